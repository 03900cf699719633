//! CONNECT tunnels: bytes both ways, half-close, the port allow-list, an
//! unreachable target, and the idle timer.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

async fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    within("tunnel read", stream.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

#[tokio::test]
async fn connect_tunnel_echoes_both_ways_and_passes_half_close() {
    let (echo, _, _task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let (mut stream, response) = open_tunnel(proxy.addr, echo).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    assert!(response.status_line.contains("Connection established"));

    stream.write_all(b"ping").await.unwrap();
    assert_eq!(read_exact(&mut stream, 4).await, b"ping");
    let big = vec![b'z'; 256 * 1024];
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        writer.write_all(&big).await.unwrap();
        writer.write_all(b"last").await.unwrap();
        // Half-close: no more from us, but the echo must still arrive.
        writer.shutdown().await.unwrap();
        writer
    });
    let mut back = Vec::new();
    within("echo and close", reader.read_to_end(&mut back))
        .await
        .unwrap();
    let _writer = within("sender", send).await.unwrap();
    assert_eq!(back.len(), 256 * 1024 + 4 + 3);
    assert!(back.starts_with(&[b'z'; 1024]));
    assert!(
        back.ends_with(b"lastbye"),
        "the server's reply after our EOF"
    );
}

#[tokio::test]
async fn bytes_sent_with_the_connect_head_reach_the_origin() {
    // Clients may send their first bytes (a TLS ClientHello) without
    // waiting for the 200: hyper has read them with the head.
    let (echo, _, _task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let mut stream = connect(proxy.addr).await;
    let request = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\nearly bytes");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = b"HTTP/1.1 200 Connection established\r\n";
    let got = read_exact(&mut stream, head.len()).await;
    assert_eq!(got, head);
    let mut rest = Vec::new();
    within("the early bytes echoed", async {
        while find(&rest, b"early bytes").is_none() {
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the early bytes came back");
            rest.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    let body = &rest[find(&rest, b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, b"early bytes");
}

#[tokio::test]
async fn sixteen_mebibytes_cross_both_ways_byte_exact_and_are_logged() {
    let (echo, _, _task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let (stream, response) = open_tunnel(proxy.addr, echo).await;
    assert_eq!(response.status, 200);
    let data: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sent = data.clone();
    let (mut reader, mut writer) = stream.into_split();
    let send = tokio::spawn(async move {
        writer.write_all(&sent).await.unwrap();
        writer.shutdown().await.unwrap();
        writer
    });
    let mut back = Vec::new();
    within("16 MiB echoed", reader.read_to_end(&mut back))
        .await
        .unwrap();
    drop(within("sender", send).await.unwrap());
    assert_eq!(back.len(), data.len() + 3);
    assert!(back[..data.len()] == data[..], "byte-exact both ways");
    assert_eq!(&back[data.len()..], b"bye");
    drop(reader);
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    let line = lines.iter().find(|l| l.contains("CONNECT")).unwrap();
    let bytes: u64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(
        bytes >= data.len() as u64 + 3,
        "the log counts what reached the client: {line}"
    );
}

#[tokio::test]
async fn connect_to_port_outside_connect_ports_is_forbidden() {
    let (echo, accepted, _task) = echo_server().await;
    let proxy = start_proxy("").await;
    let (_, response) = open_tunnel(proxy.addr, echo).await;
    assert_eq!(response.status, 403);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn connect_to_refused_port_gets_502() {
    let dead = refused_addr();
    let proxy = start_proxy(&connect_ports(dead.port())).await;
    let (_, response) = open_tunnel(proxy.addr, dead).await;
    assert_eq!(response.status, 502);
}

#[tokio::test]
async fn idle_tunnel_is_closed_after_tunnel_idle() {
    let (echo, _, _task) = echo_server().await;
    let proxy = start_proxy(&format!(
        "{}[timeouts]\ntunnel_idle = \"1s\"\n",
        connect_ports(echo.port())
    ))
    .await;
    let (mut stream, response) = open_tunnel(proxy.addr, echo).await;
    assert_eq!(response.status, 200);
    stream.write_all(b"x").await.unwrap();
    assert_eq!(read_exact(&mut stream, 1).await, b"x");
    let quiet = Instant::now();
    let (rest, _) = read_to_end(&mut stream).await;
    let waited = quiet.elapsed();
    assert!(rest.is_empty());
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn connect_ports_are_digits_and_this_host_is_refused_by_the_shipped_rules() {
    let (echo, accepted, _task) = echo_server().await;
    // The shipped access rules (to_localhost), not the tests' loopback ones.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let proxy = start_proxy_exact(&connect_ports(echo.port()), dir).await;
    for target in [
        format!("127.0.0.1:+{}", echo.port()),
        format!("0.0.0.0:{}", echo.port()),
        format!("[::]:{}", echo.port()),
        format!("127.0.0.1:{}", echo.port()),
    ] {
        let r = raw_exchange(
            proxy.addr,
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(
            r.status == 400 || r.status == 403,
            "{target}: {}",
            r.status_line
        );
    }
    let r = raw_exchange(
        proxy.addr,
        format!(
            "GET http://0.0.0.0:{}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            echo.port()
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.status_line);
    assert!(r.text().contains("to_localhost"), "{}", r.text());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}
