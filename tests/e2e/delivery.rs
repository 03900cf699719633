//! The access log says what clients really received: a hit is logged when
//! its last byte was written to the client (or the client left, then
//! `_ABORTED` with the bytes it got), a tunnel when it closes, with both
//! directions; calamaris and `cachalot stats` on such a log agree with the
//! clients on the byte hit ratio.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::scripted::{respond, Scripted};
use crate::support::*;

/// A client's receive buffer in these tests: small, so that what the proxy
/// has written and what the client has read differ by little.
const RCVBUF: u32 = 32 * 1024;
/// What the proxy's kernel may hold besides (loopback send buffers grow to
/// 4 MiB, `net.ipv4.tcp_wmem`), plus the client's buffer and a head.
const SLACK: u64 = 6 * 1024 * 1024;

/// An origin serving `size` cacheable bytes at every path.
async fn origin(size: usize) -> Scripted {
    let body = "x".repeat(size);
    Scripted::start(move |_, _| {
        respond(
            200,
            &[
                ("cache-control", "max-age=600".into()),
                ("content-type", "application/octet-stream".into()),
            ],
            &body,
        )
    })
    .await
}

/// A connection with a small receive buffer.
async fn small_client(proxy: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(RCVBUF).unwrap();
    within("connect", socket.connect(proxy)).await.unwrap()
}

/// Sends `GET url` (closing) and reads until `limit` bytes arrived or the
/// end, pausing `pause` after each read. Returns the bytes received (head
/// included) and how long it took.
async fn read_get(proxy: SocketAddr, url: &str, limit: u64, pause: Duration) -> (u64, Duration) {
    let started = Instant::now();
    let mut stream = small_client(proxy).await;
    let head = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    within("read", async {
        while got < limit {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    })
    .await;
    (got, started.elapsed())
}

fn fields(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_hit_read_in_part_is_logged_aborted_with_the_bytes_the_client_got() {
    const SIZE: usize = 24 * 1024 * 1024;
    let origin = origin(SIZE).await;
    let proxy = start_proxy("[cache]\nmemory_object_size = \"32MiB\"\n").await;
    let url = origin.url("/big");
    let (first, _) = read_get(proxy.addr, &url, u64::MAX, Duration::ZERO).await;
    assert!(first > SIZE as u64, "the miss is read whole");
    finished(&proxy, 1).await;
    stored(&proxy, &url).await;
    // A slow reader that gives up after 1 MiB.
    let (got, _) = read_get(proxy.addr, &url, 1024 * 1024, Duration::from_millis(5)).await;
    finished(&proxy, 2).await;
    let lines = log_lines(&proxy);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let hit = fields(&lines[1]);
    assert_eq!(hit[3], "TCP_MEM_HIT_ABORTED/200", "{}", lines[1]);
    let bytes: u64 = hit[4].parse().unwrap();
    assert!(
        bytes >= got && bytes <= got + SLACK,
        "logged {bytes}, the client got {got}: {}",
        lines[1]
    );
    // At least 16 reads of at most 64 KiB, each followed by 5 ms.
    let elapsed: u64 = hit[1].parse().unwrap();
    assert!(elapsed >= 50, "elapsed runs to the abort: {}", lines[1]);
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn a_slow_reader_of_a_hit_is_logged_with_its_transfer_time() {
    const SIZE: usize = 8 * 1024 * 1024;
    let origin = origin(SIZE).await;
    let proxy =
        start_proxy("[log]\nformat = \"json\"\n[cache]\nmemory_object_size = \"16MiB\"\n").await;
    let url = origin.url("/slow-read");
    read_get(proxy.addr, &url, u64::MAX, Duration::ZERO).await;
    finished(&proxy, 1).await;
    stored(&proxy, &url).await;
    let (got, took) = read_get(proxy.addr, &url, u64::MAX, Duration::from_millis(3)).await;
    assert!(got > SIZE as u64);
    finished(&proxy, 2).await;
    let lines = log_lines(&proxy);
    let v: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(v["result"], "TCP_MEM_HIT", "{v}");
    assert_eq!(v["bytes"], got, "every byte written was read");
    // The proxy is done once the rest fits in the socket buffers (a few
    // MiB of the 8): a good part of the client's time, never more of it.
    let elapsed = v["elapsed_ms"].as_u64().unwrap();
    let took = took.as_millis() as u64;
    assert!(
        elapsed >= took / 4 && elapsed <= took + 1000,
        "logged {elapsed} ms, the client took {took} ms"
    );
}

/// A TCP origin for tunnels: sends `down` bytes, reads what comes until
/// EOF, then closes; reports how many bytes it read.
async fn counting_server(down: usize) -> (SocketAddr, tokio::task::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(&vec![b'd'; down]).await.unwrap();
        let mut read = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n as u64,
            }
        }
        read
    });
    (addr, task)
}

/// Opens a tunnel to a counting server, sends `up` bytes in three pieces
/// `pause` apart, reads the `down` bytes and closes. Returns the bytes the
/// client received (the `200` head included).
async fn tunnel_traffic(
    proxy: SocketAddr,
    server: SocketAddr,
    up: usize,
    down: usize,
    pause: Duration,
) -> u64 {
    let mut stream = connect(proxy).await;
    let request = format!("CONNECT {server} HTTP/1.1\r\nHost: {server}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    within("CONNECT answer", async {
        let mut byte = [0u8; 1];
        while find(&head, b"\r\n\r\n").is_none() {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
            head.push(byte[0]);
        }
    })
    .await;
    assert_eq!(parse_response(&head).status, 200);
    for _ in 0..3 {
        stream.write_all(&vec![b'u'; up / 3]).await.unwrap();
        tokio::time::sleep(pause).await;
    }
    stream
        .write_all(&vec![b'u'; up - 3 * (up / 3)])
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let (rest, clean) = read_to_end(&mut stream).await;
    assert!(clean);
    assert_eq!(rest.len(), down);
    (head.len() + rest.len()) as u64
}

#[tokio::test]
async fn a_tunnel_is_logged_at_close_with_both_directions_and_its_duration() {
    const UP: usize = 300_001;
    const DOWN: usize = 77_777;
    for format in ["squid", "json"] {
        let (server, read) = counting_server(DOWN).await;
        let proxy = start_proxy(&format!(
            "{}[log]\nformat = \"{format}\"\n",
            connect_ports(server.port())
        ))
        .await;
        let started = Instant::now();
        let received =
            tunnel_traffic(proxy.addr, server, UP, DOWN, Duration::from_millis(100)).await;
        let took = started.elapsed().as_millis() as u64;
        assert_eq!(within("server", read).await.unwrap(), UP as u64);
        finished(&proxy, 1).await;
        let lines = log_lines(&proxy);
        assert_eq!(lines.len(), 1, "{lines:?}");
        if format == "squid" {
            let f = fields(&lines[0]);
            assert_eq!(f[3], "TCP_TUNNEL/200", "{}", lines[0]);
            assert_eq!(
                f[4],
                received.to_string(),
                "bytes to the client: {}",
                lines[0]
            );
            assert_eq!(f[5], "CONNECT");
            let elapsed: u64 = f[1].parse().unwrap();
            assert!(
                elapsed >= 300 && elapsed <= took + 1000,
                "{} vs {took}",
                lines[0]
            );
        } else {
            let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
            assert_eq!(v["result"], "TCP_TUNNEL", "{v}");
            assert_eq!(v["bytes"], received);
            assert_eq!(v["bytes_up"], UP as u64);
            assert_eq!(v["bytes_down"], DOWN as u64);
            assert_eq!(v["client_reset"], false);
            assert_eq!(v["origin_reset"], false);
            assert!(v["elapsed_ms"].as_u64().unwrap() >= 300, "{v}");
        }
    }
}

#[tokio::test]
async fn metrics_count_tunnel_bytes_while_the_tunnel_is_open() {
    let (server, read) = counting_server(5000).await;
    let proxy = start_proxy(&connect_ports(server.port())).await;
    let mut stream = connect(proxy.addr).await;
    let request = format!("CONNECT {server} HTTP/1.1\r\nHost: {server}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&[b'u'; 1234]).await.unwrap();
    let metrics = proxy.proxy.metrics.clone();
    wait_until("tunnel bytes counted", || {
        let text = cachalot::metrics::encode::render(&metrics, None, Default::default());
        text.contains("cachalot_tunnel_bytes_total{direction=\"up\"} 1234")
            && text.contains("cachalot_tunnel_bytes_total{direction=\"down\"} 5000")
    })
    .await;
    assert_eq!(metrics.requests(), 0, "the tunnel is logged at its close");
    stream.shutdown().await.unwrap();
    read_to_end(&mut stream).await;
    within("server", read).await.unwrap();
    finished(&proxy, 1).await;
}

#[tokio::test]
async fn calamaris_and_stats_agree_with_the_clients_on_the_byte_hit_ratio() {
    const SIZE: usize = 16 * 1024 * 1024;
    let origin = origin(SIZE).await;
    let (server, read) = counting_server(10_000).await;
    let proxy = start_proxy(&connect_ports(server.port())).await;
    let url = origin.url("/ratio");
    // (bytes the client received, a hit?)
    let mut received = Vec::new();
    let (miss, _) = read_get(proxy.addr, &url, u64::MAX, Duration::ZERO).await;
    received.push((miss, false));
    finished(&proxy, 1).await;
    stored(&proxy, &url).await;
    let (hit, _) = read_get(proxy.addr, &url, u64::MAX, Duration::ZERO).await;
    received.push((hit, true));
    let (part, _) = read_get(proxy.addr, &url, 512 * 1024, Duration::from_millis(2)).await;
    received.push((part, true));
    let tunnel = tunnel_traffic(proxy.addr, server, 3000, 10_000, Duration::ZERO).await;
    received.push((tunnel, false));
    within("server", read).await.unwrap();
    finished(&proxy, 4).await;
    let lines = log_lines(&proxy);
    assert_eq!(lines.len(), 4, "{lines:?}");

    let (mut logged_hit, mut logged_all) = (0u64, 0u64);
    for line in &lines {
        let f = fields(line);
        let bytes: u64 = f[4].parse().unwrap();
        logged_all += bytes;
        if cachalot::stats::codes::is_hit(f[3].split('/').next().unwrap()) {
            logged_hit += bytes;
        }
    }
    let client_hit: u64 = received.iter().filter(|r| r.1).map(|r| r.0).sum();
    let client_all: u64 = received.iter().map(|r| r.0).sum();
    // Only the abandoned hit may differ, by what sat in socket buffers.
    assert!(
        logged_hit >= client_hit && logged_hit <= client_hit + SLACK,
        "{logged_hit} vs {client_hit}:\n{}",
        lines.join("\n")
    );
    assert_eq!(logged_all - logged_hit, client_all - client_hit);
    let logged_ratio = logged_hit as f64 / logged_all as f64;
    let client_ratio = client_hit as f64 / client_all as f64;
    // 16 MiB missed, 16 MiB hit, a part hit: about a half, where the log
    // before counted the whole object for the part (two thirds).
    assert!(
        (logged_ratio - client_ratio).abs() < 0.1,
        "{logged_ratio} vs {client_ratio}"
    );

    let path = proxy.dir.path().join("logs/access.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cachalot"))
        .args(["stats", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = report["byte_hit_ratio"].as_f64().unwrap();
    assert!(
        (ours - logged_ratio).abs() < 1e-3,
        "stats {ours} vs log {logged_ratio}"
    );

    let calamaris = std::process::Command::new("calamaris")
        .arg("-a")
        .stdin(std::fs::File::open(&path).unwrap())
        .output();
    let Ok(calamaris) = calamaris else {
        tool_missing("calamaris", "the calamaris check");
        return;
    };
    let text = String::from_utf8_lossy(&calamaris.stdout);
    let savings: f64 = text
        .lines()
        .find(|l| l.starts_with("Bandwidth savings in Percent"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bandwidth savings in\n{text}"));
    assert!(
        (savings - 100.0 * logged_ratio).abs() < 0.01,
        "calamaris {savings}% vs log {logged_ratio}\n{text}"
    );
    assert!((savings / 100.0 - client_ratio).abs() < 0.1);
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_is_logged_aborted() {
    // A closed client reads the same as a half-closed one (RFC 9112 §9.6),
    // which is answered; the answer then fails to reach the client, and the
    // line says so with the bytes the socket took.
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut stream = connect(proxy.addr).await;
    let url = origin.url("/large/20000000");
    let head = format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    drop(stream);
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    let f = fields(&lines[0]);
    assert!(f[3].ends_with("_ABORTED/200"), "{}", lines[0]);
    let bytes: u64 = f[4].parse().unwrap();
    assert!(bytes < 20_000_000, "{}", lines[0]);
    assert_eq!(f[6], url);
}

#[tokio::test]
async fn a_tunnel_the_origin_resets_is_logged_aborted_with_the_reset_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let reset = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).await.unwrap();
        stream.set_zero_linger().unwrap();
    });
    let proxy = start_proxy(&format!(
        "{}[log]\nformat = \"json\"\n",
        connect_ports(server.port())
    ))
    .await;
    let mut stream = connect(proxy.addr).await;
    let request = format!("CONNECT {server} HTTP/1.1\r\nHost: {server}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    within("server", reset).await.unwrap();
    read_to_end(&mut stream).await;
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["result"], "TCP_TUNNEL_ABORTED", "{v}");
    assert_eq!(v["origin_reset"], true, "{v}");
    assert_eq!(v["bytes_up"], 4);
    assert_eq!(v["bytes_down"], 5);
}
