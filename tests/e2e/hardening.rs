//! Misbehaving peers: an origin that stalls in the middle of a body, with
//! clients sharing its response.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// An origin that answers a cacheable 1000-byte response, sends 100 bytes of
/// it, then holds the connection without sending more (for up to 20 s).
async fn stalling_origin() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while find(&head, b"\r\n\r\n").is_none() {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut out =
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nCache-Control: max-age=60\r\n\r\n"
                        .to_vec();
                out.extend_from_slice(&[b's'; 100]);
                let _ = stream.write_all(&out).await;
                tokio::time::sleep(Duration::from_secs(20)).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn an_origin_stalling_mid_body_aborts_every_client_and_stores_nothing() {
    let (origin, accepted) = stalling_origin().await;
    let proxy = start_proxy("[timeouts]\nupstream_body = \"1s\"\n").await;
    let url = format!("http://{origin}/stall");
    let started = Instant::now();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let response = client.send(get(&url)).await;
                assert_eq!(response.status(), StatusCode::OK);
                within("the body ends", response.into_body().collect())
                    .await
                    .map(|c| c.to_bytes().len())
            })
        })
        .collect();
    for c in clients {
        assert!(
            c.await.unwrap().is_err(),
            "an aborted transfer, not a short body"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut after the body timeout, not when the origin lets go: {:?}",
        started.elapsed()
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the three shared one fetch"
    );
    // Nothing was stored: the next request goes to the origin again.
    let mut client = Client::connect(proxy.addr).await;
    let response = client.send(get(&url)).await;
    let _ = within("the body ends", response.into_body().collect()).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_stalling_mid_body_is_cut_after_client_body() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[timeouts]\nclient_body = \"1s\"\n").await;
    let mut stream = connect(proxy.addr).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\n",
        origin.url("/echo"),
        origin.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'p'; 100]).await.unwrap();
    let started = Instant::now();
    // Then nothing more: the proxy must give up on its own.
    let (bytes, _) = read_to_end(&mut stream).await;
    if !bytes.is_empty() {
        let response = parse_response(&bytes);
        assert_eq!(response.status, 400, "{}", response.status_line);
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut after client_body: {:?}",
        started.elapsed()
    );
}
