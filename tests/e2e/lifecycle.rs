//! Start and stop: graceful shutdown of the in-process server, and the real
//! binary (version, help, check-config, serving, SIGTERM).

use std::io::ErrorKind;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_cachalot");

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_refuses_new_and_returns() {
    let origin = Origin::start().await;
    let RunningProxy {
        addr,
        shutdown,
        task,
        dir: _dir,
        ..
    } = start_proxy("").await;
    let mut client = Client::connect(addr).await;
    let url = origin.url("/slow/2000");
    let in_flight = tokio::spawn(async move {
        let response = client.send(get(&url)).await;
        (response.status(), body_bytes(response).await)
    });
    wait_until("the slow request reaches the origin", || {
        origin.requests() == 1
    })
    .await;
    let stopped_at = Instant::now();
    shutdown.send(()).unwrap();

    // The listener goes away promptly: new connections are refused.
    within("new connections refused", async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "new connections must be refused while the slow response drains"
    );

    let (status, body) = within("in-flight response", in_flight).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.unwrap(), "slow done");
    within("server::run returns", task).await.unwrap();
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_with_only_idle_connections_returns_at_once() {
    let origin = Origin::start().await;
    let RunningProxy {
        addr,
        shutdown,
        task,
        dir: _dir,
        ..
    } = start_proxy("[timeouts]\ndrain = \"30s\"\n").await;
    let mut client = Client::connect(addr).await;
    let response = client.send(get(&origin.url("/fixed"))).await;
    body_bytes(response).await.unwrap();
    let started = Instant::now();
    shutdown.send(()).unwrap();
    within("server::run returns", task).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    // The idle keep-alive connection was closed, not left hanging.
    within("client connection closed", client.conn)
        .await
        .unwrap()
        .unwrap();
}

async fn run_cli(args: &[&str]) -> std::process::Output {
    within(
        "cachalot exits",
        Command::new(BIN).args(args).kill_on_drop(true).output(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn cli_version_prints_name_and_version() {
    let out = run_cli(&["--version"]).await;
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("cachalot {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn cli_help_lists_flags_and_check_config() {
    let out = run_cli(&["--help"]).await;
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for word in ["--config", "--listen", "check-config"] {
        assert!(stdout.contains(word), "{word} missing from:\n{stdout}");
    }
}

#[tokio::test]
async fn check_config_accepts_a_good_file_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, "[timeouts]\nclient_idle = \"5s\"\n").unwrap();
    let out = run_cli(&["check-config", path.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("config OK"), "{stdout}");
}

#[tokio::test]
async fn check_config_refuses_unknown_key_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten_port = 3128\n").unwrap();
    let out = run_cli(&["check-config", path.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen_port"), "{stderr}");
}

#[tokio::test]
async fn check_config_with_three_errors_prints_three_each_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten_port = 3128\n[timeouts]\ndrain = \"soon\"\n[cache]\nheuristic_fraction = 7.0\n",
    )
    .unwrap();
    let out = run_cli(&["check-config", path.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    for (line, key) in errors.iter().zip([
        "server.listen_port:",
        "timeouts.drain:",
        "cache.heuristic_fraction:",
    ]) {
        assert!(
            line.starts_with(key),
            "{line:?} should name {key}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn a_second_instance_on_a_locked_cache_fails_without_saying_listening() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cachalot.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\naccess = \"\"\n"),
    )
    .unwrap();
    let mut first = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Diagnostics go to stderr, and without colour when it is not a terminal.
    let mut lines = tokio::io::BufReader::new(first.stderr.take().unwrap()).lines();
    let listening = within("first instance listening", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("stderr open");
            if line.contains("listening") {
                return line;
            }
        }
    })
    .await;
    assert!(
        !listening.contains('\x1b'),
        "no colour when stderr is not a terminal: {listening:?}"
    );
    let second = within(
        "second instance",
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "info")
            .output(),
    )
    .await
    .unwrap();
    let _ = first.start_kill();
    assert!(!second.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(!all.contains("listening"), "{all}");
    assert!(all.contains("cache"), "the reason is given: {all}");
    let _ = first.wait().await;
}

#[tokio::test]
async fn binary_serves_curl_and_exits_zero_on_sigterm() {
    if !curl_available("binary_serves_curl_and_exits_zero_on_sigterm").await {
        return;
    }
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, listen) = start_binary(
        dir.path(),
        "[timeouts]\ndrain = \"2s\"\n[log]\nlevel = \"warn\"\n",
    )
    .await;

    let out = within(
        "curl",
        Command::new("curl")
            .args(["-sS", "--max-time", "5", "--noproxy", "", "-x"])
            .arg(format!("http://{listen}"))
            .arg(origin.url("/fixed"))
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), FIXED_BODY);
    assert_eq!(origin.last().header("via").as_deref(), Some("1.1 cachalot"));

    let pid = child.id().unwrap().to_string();
    let kill = within("kill", Command::new("kill").args(["-TERM", &pid]).status())
        .await
        .unwrap();
    assert!(kill.success());
    let status = within("cachalot stops on SIGTERM", child.wait())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn check_config_lists_compile_errors_beside_parse_errors() {
    // A bad value (parsing), a bad access rule and a bad parent (compiled
    // by the code the proxy runs): all three, each with its key.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[timeouts]\ndrain = \"soon\"\n\
         [[acl]]\naction = \"allow\"\nsrc = [\"10.0.0.0/33\"]\n\
         [[parent]]\nhost = \"p\"\nport = 0\n",
    )
    .unwrap();
    let out = run_cli(&["check-config", path.to_str().unwrap()]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["timeouts.drain:", "acl[0].src:", "parent[0].port:"] {
        assert!(
            stderr.lines().any(|l| l.starts_with(key)),
            "{key} in\n{stderr}"
        );
    }
}
