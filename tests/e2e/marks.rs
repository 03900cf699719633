//! What the proxy adds to what passes through it: Via chains that grow by
//! one entry each way (RFC 9110 §7.6.3), and a `Cache-Status` (RFC 9211) on
//! every answer, the proxy's own refusals and failures included.

use std::time::Duration;

use http::StatusCode;

use crate::scripted::{date_ago, respond, Scripted};
use crate::support::*;

fn status_of(headers: &http::HeaderMap) -> String {
    joined(headers, "cache-status").unwrap_or_default()
}

#[tokio::test]
async fn via_chains_grow_by_our_entry_both_ways_on_misses_and_hits() {
    let origin = Scripted::start(|_, _| {
        respond(
            200,
            &[
                ("cache-control", "max-age=600".into()),
                ("via", "1.0 origin-cdn, 1.1 edge".into()),
            ],
            "chained",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/via");
    let mut first = get(&url);
    first
        .headers_mut()
        .insert("via", "1.0 upstream-a, 1.1 upstream-b".parse().unwrap());
    let (_, miss, _) = fetch(proxy.addr, first).await;
    // Two field lines arriving count as one list.
    let mut second = get(&origin.url("/via2"));
    second
        .headers_mut()
        .append("via", "1.0 upstream-a".parse().unwrap());
    second
        .headers_mut()
        .append("via", "1.1 upstream-b".parse().unwrap());
    fetch(proxy.addr, second).await;
    let heads = origin.heads();
    for head in &heads {
        assert_eq!(
            joined(head, "via").as_deref(),
            Some("1.0 upstream-a, 1.1 upstream-b, 1.1 cachalot")
        );
    }
    assert_eq!(
        joined(&miss, "via").as_deref(),
        Some("1.0 origin-cdn, 1.1 edge, 1.1 cachalot")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, hit, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(body, "chained");
    assert_eq!(status_of(&hit), "cachalot; hit");
    assert_eq!(
        joined(&hit, "via").as_deref(),
        Some("1.0 origin-cdn, 1.1 edge, 1.1 cachalot"),
        "stored without ours, ours added once per answer"
    );
    // An HTTP/1.0 client's request is received as 1.0.
    let raw = raw_exchange(
        proxy.addr,
        format!(
            "GET {} HTTP/1.0\r\nVia: 1.1 inner\r\n\r\n",
            origin.url("/v10")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(
        joined(origin.heads().last().unwrap(), "via").as_deref(),
        Some("1.1 inner, 1.0 cachalot")
    );
}

#[tokio::test]
async fn our_name_anywhere_in_via_is_a_loop_for_requests_and_tunnels() {
    let origin = Origin::start().await;
    let (echo, accepted, _task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    for via in [
        "1.1 cachalot",
        "1.0 a, 1.1 cachalot, 1.1 b",
        "1.0 a, HTTP/1.1 CACHALOT (cachalot/0.1)",
    ] {
        let mut request = get(&origin.url("/echo"));
        request.headers_mut().insert("via", via.parse().unwrap());
        let (status, headers, _) = fetch(proxy.addr, request).await;
        assert_eq!(status, StatusCode::LOOP_DETECTED, "{via}");
        assert_eq!(status_of(&headers), "cachalot; detail=loop");
        let tunnel = raw_exchange(
            proxy.addr,
            format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\nVia: {via}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(tunnel.status, 508, "{via}");
    }
    assert_eq!(origin.requests(), 0);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_proxys_own_403_407_and_502_carry_cache_status() {
    let proxy = start_proxy("").await;
    let denied = raw_exchange(
        proxy.addr,
        b"CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(denied.status, 403, "{:?}", denied.headers);
    assert_eq!(
        denied.header("cache-status").as_deref(),
        Some("cachalot; detail=port-denied"),
        "{:?}",
        denied.headers
    );
    let (status, headers, _) =
        fetch(proxy.addr, get(&format!("http://{}/x", refused_addr()))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(status_of(&headers), "cachalot; fwd=miss; detail=refused");

    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(dir.path().join("users"), format!("alice:{hash}\n")).unwrap();
    let auth = start_proxy_in("[auth]\nusers_file = \"users\"\n", dir).await;
    let (status, headers, _) = fetch(auth.addr, get("http://127.0.0.1:1/")).await;
    assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(status_of(&headers), "cachalot; detail=auth-required");
}

#[tokio::test]
async fn a_stale_if_error_answer_names_the_failed_status() {
    let origin = Scripted::start(|parts, n| {
        if n > 1 && parts.headers.contains_key("if-none-match") {
            return respond(503, &[], "down");
        }
        respond(
            200,
            &[
                ("cache-control", "max-age=1, stale-if-error=600".into()),
                ("etag", "\"e\"".into()),
                ("date", date_ago(60)),
            ],
            "kept",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/sie");
    fetch(proxy.addr, get(&url)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, headers, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"kept"[..]));
    assert_eq!(
        status_of(&headers),
        "cachalot; hit; fwd=stale; detail=stale-if-error; fwd-status=503"
    );
}
