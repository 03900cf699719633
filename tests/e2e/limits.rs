//! Bounds on what a client can make the proxy hold: time (slow-loris head,
//! idle keep-alive), request head size, and memory for a huge body.

use std::time::{Duration, Instant};

use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// The huge body: 1 GiB, generated and counted in 1 MiB frames, passes
/// origin → proxy → client in about half a second even in a debug build.
const LARGE: u64 = 1 << 30;

/// How much this process (origin, proxy and client together) may grow.
const MAX_GROWTH: u64 = 200 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_streamed_body_passes_with_bounded_memory() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let before = rss_bytes();
    let mut client = Client::connect(proxy.addr).await;
    let response = client
        .send(get(&origin.url(&format!("/large/{LARGE}"))))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        LARGE.to_string().as_str()
    );
    let mut body = response.into_body();
    let mut received: u64 = 0;
    let mut peak = before;
    let mut next_sample = 0;
    // Counted as it streams, never collected; each frame has its own deadline.
    while let Some(frame) = within("next body frame", body.frame()).await {
        let frame = frame.unwrap();
        if let Some(data) = frame.data_ref() {
            received += data.len() as u64;
        }
        if received >= next_sample {
            peak = peak.max(rss_bytes());
            next_sample = received + (16 << 20);
        }
    }
    peak = peak.max(rss_bytes());
    assert_eq!(received, LARGE);
    let growth = peak.saturating_sub(before);
    eprintln!(
        "DEBUG growth {} KiB, before {} KiB, origin reqs {}",
        growth >> 10,
        before >> 10,
        origin.requests()
    );
    assert!(
        growth < MAX_GROWTH,
        "RSS grew by {} MiB while streaming {} MiB",
        growth >> 20,
        LARGE >> 20
    );
}

#[tokio::test]
async fn slow_loris_head_is_cut_after_client_header() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[timeouts]\nclient_header = \"1s\"\n").await;
    let mut stream = connect(proxy.addr).await;
    let started = Instant::now();
    let start = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        origin.url("/fixed"),
        origin.addr
    );
    stream.write_all(start.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let mut closed = false;
    // One header line every 200 ms; at most 25 of them (5 s).
    for _ in 0..25 {
        tokio::select! {
            read = stream.read(&mut buf) => {
                assert!(!matches!(read, Ok(n) if n > 0), "answered a partial head");
                closed = true;
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(b"X-Trickle: 1\r\n").await.is_err() {
                    closed = true;
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "connection still open after {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_client_idle() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[timeouts]\nclient_idle = \"1s\"\n").await;
    let mut stream = connect(proxy.addr).await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        origin.url("/fixed"),
        origin.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_one_response(&mut stream).await;
    assert_eq!(response.status, 200);
    let idle = Instant::now();
    let (rest, _) = read_to_end(&mut stream).await;
    let waited = idle.elapsed();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn slow_response_is_not_cut_by_the_idle_timer() {
    // The idle timer runs only while nothing is in flight.
    let origin = Origin::start().await;
    let proxy =
        start_proxy("[timeouts]\nclient_idle = \"500ms\"\nclient_header = \"500ms\"\n").await;
    let (status, _, body) = fetch(proxy.addr, get(&origin.url("/slow/1500"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "slow done");
}

fn head_with_field_of(size: usize, origin: &Origin) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        origin.url("/echo"),
        origin.addr,
        "a".repeat(size)
    )
}

#[tokio::test]
async fn oversized_request_head_gets_431() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[server]\nmax_request_header_size = \"8KiB\"\n").await;
    let response = raw_exchange(
        proxy.addr,
        head_with_field_of(12 * 1024, &origin).as_bytes(),
    )
    .await;
    assert_eq!(response.status, 431, "{}", response.status_line);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn request_head_under_the_limit_is_served() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[server]\nmax_request_header_size = \"8KiB\"\n").await;
    let response = raw_exchange(proxy.addr, head_with_field_of(6 * 1024, &origin).as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    assert_eq!(
        origin.last().header("x-big").map(|v| v.len()),
        Some(6 * 1024)
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_client_header() {
    let proxy = start_proxy("[timeouts]\nclient_header = \"1s\"\nclient_idle = \"2m\"\n").await;
    let mut stream = connect(proxy.addr).await;
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = within(
        "the proxy closes the silent connection",
        stream.read(&mut buf),
    )
    .await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "closed after client_header, not client_idle: {:?}",
        started.elapsed()
    );
}
