//! Parked keep-alive connections (hyper's buffers released while a client
//! is idle) behave exactly like live ones.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test]
async fn parked_connection_serves_the_next_request_and_split_heads() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let url = origin.url("/fixed");
    let mut stream = connect(proxy.addr).await;
    let head = format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n");
    for round in 0..3 {
        stream.write_all(head.as_bytes()).await.unwrap();
        let r = read_one_response(&mut stream).await;
        assert_eq!(r.status, 200, "round {round}");
        assert_eq!(r.text(), FIXED_BODY);
        // Long enough to be parked between requests.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A head that arrives in two pieces after parking.
    let (a, b) = head.split_at(10);
    stream.write_all(a.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    stream.write_all(b.as_bytes()).await.unwrap();
    assert_eq!(read_one_response(&mut stream).await.status, 200);
    assert_eq!(origin.requests(), 4);
}

#[tokio::test]
async fn parked_connection_still_closes_after_client_idle() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[timeouts]\nclient_idle = \"1s\"\n").await;
    let mut stream = connect(proxy.addr).await;
    let head = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/fixed"));
    stream.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_one_response(&mut stream).await.status, 200);
    let start = Instant::now();
    let (rest, _) = read_to_end(&mut stream).await;
    assert!(rest.is_empty());
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn slow_reader_of_a_cached_body_gets_every_byte() {
    use tokio::io::AsyncReadExt;
    // A cache hit hands hyper the whole body at once: the request is over for
    // the proxy long before a slow client has read it. Parking then would
    // lose what hyper still holds.
    let size = 4 * 1024 * 1024;
    let body = "x".repeat(size);
    let origin = crate::scripted::Scripted::start(move |_, _| {
        crate::scripted::respond(200, &[("cache-control", "max-age=600".into())], &body)
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/big");
    let (_, _, first) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(first.len(), size);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stream = connect(proxy.addr).await;
    let head = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    within("slow read", async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    let r = parse_response(&got);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), size, "every byte of the body arrived");
    assert_eq!(origin.requests(), 1);
}
