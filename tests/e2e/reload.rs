//! SIGHUP reload of the real binary: a new configuration applies to new
//! requests without dropping open connections; a broken one is refused and
//! the running one kept.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_cachalot");

async fn signal(child: &tokio::process::Child, sig: &str) {
    let pid = child.id().unwrap().to_string();
    let status = within("kill", Command::new("kill").args([sig, &pid]).status())
        .await
        .unwrap();
    assert!(status.success());
}

/// One request on an open keep-alive connection; returns its status.
async fn ask(stream: &mut TcpStream, url: &str) -> u16 {
    let request = format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n");
    within("write", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    read_one_response(stream).await.status
}

#[tokio::test]
async fn sighup_applies_a_new_config_keeps_connections_and_refuses_a_broken_one() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cachalot.toml");
    let allow = "[log]\nlevel = \"warn\"\naccess = \"\"\n[[acl]]\naction = \"allow\"\n";
    std::fs::write(&config, allow).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--listen", &listen])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    within("the binary listens", async {
        while TcpStream::connect(&listen).await.is_err() {
            assert!(child.try_wait().unwrap().is_none(), "exited early");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let url = origin.url("/fixed");
    let mut kept = TcpStream::connect(&listen).await.unwrap();
    assert_eq!(ask(&mut kept, &url).await, 200);

    std::fs::write(
        &config,
        "[log]\nlevel = \"warn\"\naccess = \"\"\n[[acl]]\nname = \"closed\"\naction = \"deny\"\n",
    )
    .unwrap();
    signal(&child, "-HUP").await;
    within("the new rules apply", async {
        loop {
            let mut fresh = TcpStream::connect(&listen).await.unwrap();
            if ask(&mut fresh, &url).await == 403 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        ask(&mut kept, &url).await,
        403,
        "the open connection survived the reload and uses the new rules"
    );

    std::fs::write(&config, "[server]\nno_such_key = 1\n").unwrap();
    signal(&child, "-HUP").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "a bad reload must not stop the proxy"
    );
    assert_eq!(
        ask(&mut kept, &url).await,
        403,
        "the running config is kept"
    );

    signal(&child, "-TERM").await;
    drop(kept);
    let status = within("exit", child.wait()).await.unwrap();
    assert!(status.success(), "{status}");
}
