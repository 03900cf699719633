//! The binary on several serving threads (`server.threads`): connections
//! accepted on every thread's socket share one cache and one connection
//! limit, and SIGTERM drains what is in flight on any of them.

use http::Response;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::scripted::Scripted;
use crate::support::*;

#[tokio::test]
async fn four_serving_threads_share_one_cache_and_drain_on_sigterm() {
    let origin = Scripted::start(|_, n| {
        Response::builder()
            .header("cache-control", "max-age=60")
            .header("content-length", "8")
            .body(full(format!("cached {n}")))
            .unwrap()
    })
    .await;
    let slow = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, listen) = start_binary(
        dir.path(),
        "[server]\nthreads = 4\n[timeouts]\ndrain = \"5s\"\n[log]\nlevel = \"warn\"\n",
    )
    .await;
    let addr = listen.parse().unwrap();
    let url = format!("http://{}/cached", origin.addr);
    let request = format!(
        "GET {url} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        origin.addr
    );
    // 48 fresh connections: the kernel spreads them over the 4 sockets, and
    // every one is answered from the one cache the first filled.
    for i in 0..48 {
        let response = raw_exchange(addr, request.as_bytes()).await;
        assert_eq!(response.status, 200, "connection {i}");
        assert_eq!(response.text(), "cached 1", "connection {i}");
    }
    assert_eq!(origin.requests(), 1, "one cache for every thread");

    // Requests in flight on several threads when SIGTERM comes all finish.
    let mut in_flight = Vec::new();
    for _ in 0..8 {
        let mut stream = connect(addr).await;
        let target = slow.url("/slow/1500");
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            slow.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        in_flight.push(tokio::spawn(async move {
            let (bytes, _) = read_to_end(&mut stream).await;
            parse_response(&bytes)
        }));
    }
    wait_until("the slow requests reach the origin", || {
        slow.requests() == 8
    })
    .await;
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    for request in in_flight {
        let response = within("a drained response", request).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "slow done");
    }
    let status = within("cachalot stops on SIGTERM", child.wait())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
