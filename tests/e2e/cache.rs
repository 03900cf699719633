//! The shared cache end to end: a scripted origin that counts requests,
//! the proxy in-process, and a real client. Each test cites the RFC 9111
//! (or 5861/9211) section whose behaviour it observes.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::scripted::{date_ago, respond, Scripted};
use crate::support::{fetch, get, request, start_proxy, start_proxy_in, within, RunningProxy};

fn cache_status(headers: &http::HeaderMap) -> String {
    headers
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get_body(proxy: &RunningProxy, url: &str) -> (StatusCode, http::HeaderMap, String) {
    let (status, headers, body) = fetch(proxy.addr, get(url)).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Waits until the tee has stored what it fetched (storage is asynchronous).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn second_request_is_a_hit_and_the_origin_count_does_not_move() {
    // RFC 9111 §3 (storing) and §4.2 (fresh → served from cache, §5.1 Age).
    let origin = Scripted::start(|_, n| {
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("body {n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/a");
    let (_, h1, b1) = get_body(&proxy, &url).await;
    assert_eq!(b1, "body 1");
    assert_eq!(cache_status(&h1), "cachalot; fwd=uri-miss; fwd-status=200");
    settle().await;
    let (status, h2, b2) = get_body(&proxy, &url).await;
    assert_eq!((status, b2.as_str()), (StatusCode::OK, "body 1"));
    assert_eq!(cache_status(&h2), "cachalot; hit");
    assert!(
        h2.contains_key("age"),
        "RFC 9111 §5.1: Age on a cached response"
    );
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn no_store_private_and_request_no_store_are_not_stored() {
    // RFC 9111 §3: no-store (§5.2.2.5, §5.2.1.5) and private (§5.2.2.7) in a shared cache.
    let origin = Scripted::start(|parts, n| {
        let cc = match parts.uri.path() {
            "/no-store" => "no-store",
            "/private" => "private, max-age=60",
            _ => "max-age=60",
        };
        respond(200, &[("cache-control", cc.into())], &format!("body {n}"))
    })
    .await;
    let proxy = start_proxy("").await;
    for path in ["/no-store", "/private"] {
        let url = origin.url(path);
        let before = origin.requests();
        get_body(&proxy, &url).await;
        settle().await;
        get_body(&proxy, &url).await;
        assert_eq!(
            origin.requests(),
            before + 2,
            "{path} must not be served from cache"
        );
    }
    let url = origin.url("/req-no-store");
    let mut req = get(&url);
    req.headers_mut()
        .insert("cache-control", "no-store".parse().unwrap());
    fetch(proxy.addr, req).await;
    settle().await;
    get_body(&proxy, &url).await;
    assert_eq!(origin.requests(), 6);
}

#[tokio::test]
async fn stored_response_never_hands_out_another_clients_set_cookie() {
    // RFC 9111 §3.1 and §7.3: Set-Cookie is never replayed from a shared cache.
    let origin = Scripted::start(|parts, n| {
        let cc = if parts.uri.path() == "/public" {
            "public, max-age=60"
        } else {
            "max-age=60"
        };
        respond(
            200,
            &[
                ("cache-control", cc.into()),
                ("set-cookie", format!("session=user{n}")),
            ],
            "cookie body",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/public");
    let (_, first, _) = get_body(&proxy, &url).await;
    assert_eq!(first.get("set-cookie").unwrap(), "session=user1");
    settle().await;
    let (_, second, body) = get_body(&proxy, &url).await;
    assert_eq!(body, "cookie body");
    assert_eq!(
        origin.requests(),
        1,
        "public response with Set-Cookie is stored"
    );
    assert!(
        second.get("set-cookie").is_none(),
        "the stored copy has no Set-Cookie"
    );
    // Without public, a Set-Cookie response is not stored at all.
    let url = origin.url("/plain");
    get_body(&proxy, &url).await;
    settle().await;
    let (_, h, _) = get_body(&proxy, &url).await;
    assert_eq!(h.get("set-cookie").unwrap(), "session=user3");
    assert_eq!(origin.requests(), 3);
}

#[tokio::test]
async fn authorization_requests_are_stored_only_when_the_response_allows() {
    // RFC 9111 §3.5.
    let origin = Scripted::start(|parts, n| {
        let cc = if parts.uri.path() == "/public" {
            "public, max-age=60"
        } else {
            "max-age=60"
        };
        respond(200, &[("cache-control", cc.into())], &format!("secret {n}"))
    })
    .await;
    let proxy = start_proxy("").await;
    for (path, expected) in [("/plain", 2), ("/public", 3)] {
        let url = origin.url(path);
        let mut first = get(&url);
        first
            .headers_mut()
            .insert("authorization", "Basic YTpi".parse().unwrap());
        fetch(proxy.addr, first).await;
        settle().await;
        get_body(&proxy, &url).await;
        assert_eq!(origin.requests(), expected, "{path}");
    }
}

#[tokio::test]
async fn stale_entry_is_revalidated_and_a_304_refreshes_it() {
    // RFC 9111 §4.3.1 (conditional request), §4.3.3/§4.3.4 (304 updates the entry).
    let origin = Scripted::start(|parts, n| {
        if parts
            .headers
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            return respond(
                304,
                &[
                    ("etag", "\"v1\"".into()),
                    ("x-refreshed", n.to_string()),
                    ("cache-control", "max-age=60".into()),
                ],
                "",
            );
        }
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("etag", "\"v1\"".into()),
                ("date", date_ago(120)),
            ],
            "original",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/r");
    get_body(&proxy, &url).await;
    settle().await;
    // Stored with Date two minutes old and max-age 60: stale at once.
    let (status, h, body) = get_body(&proxy, &url).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "original"));
    assert_eq!(cache_status(&h), "cachalot; fwd=stale; fwd-status=304");
    assert_eq!(
        h.get("x-refreshed").unwrap(),
        "2",
        "304 fields update the entry"
    );
    assert_eq!(origin.heads()[1].get("if-none-match").unwrap(), "\"v1\"");
    settle().await;
    let (_, h, body) = get_body(&proxy, &url).await;
    assert_eq!(body, "original");
    assert_eq!(
        cache_status(&h),
        "cachalot; hit",
        "refreshed entry is fresh again"
    );
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn no_cache_response_is_stored_but_always_revalidated() {
    // RFC 9111 §5.2.2.4.
    let origin = Scripted::start(|parts, _| {
        if parts.headers.contains_key("if-modified-since") {
            return respond(304, &[], "");
        }
        respond(
            200,
            &[
                ("cache-control", "no-cache".into()),
                ("last-modified", date_ago(3600)),
            ],
            "nc",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/nc");
    get_body(&proxy, &url).await;
    settle().await;
    for _ in 0..2 {
        let (_, h, body) = get_body(&proxy, &url).await;
        assert_eq!(body, "nc");
        assert!(
            cache_status(&h).contains("fwd-status=304"),
            "{}",
            cache_status(&h)
        );
    }
    assert_eq!(origin.requests(), 3);
}

#[tokio::test]
async fn vary_variants_are_kept_apart() {
    // RFC 9111 §4.1.
    let origin = Scripted::start(|parts, _| {
        let lang = parts
            .headers
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("vary", "Accept-Language".into()),
            ],
            &format!("lang={lang}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/v");
    let ask = |lang: &'static str| {
        let mut r = get(&url);
        r.headers_mut()
            .insert("accept-language", lang.parse().unwrap());
        r
    };
    for round in 0..2 {
        for lang in ["en", "fr"] {
            let (_, _, body) = fetch(proxy.addr, ask(lang)).await;
            assert_eq!(body, format!("lang={lang}").as_bytes(), "round {round}");
            settle().await;
        }
    }
    assert_eq!(origin.requests(), 2, "one origin request per variant");
}

#[tokio::test]
async fn post_invalidates_the_stored_response() {
    // RFC 9111 §4.4.
    let origin = Scripted::start(|_, n| {
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("v{n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/doc");
    get_body(&proxy, &url).await;
    settle().await;
    get_body(&proxy, &url).await;
    assert_eq!(origin.requests(), 1);
    fetch(
        proxy.addr,
        request(Method::POST, &url, crate::support::full("x")),
    )
    .await;
    settle().await;
    let (_, _, body) = get_body(&proxy, &url).await;
    assert_eq!(body, "v3", "after POST the next GET goes to the origin");
}

#[tokio::test]
async fn truncated_origin_body_is_not_stored() {
    // RFC 9111 §3.3/§3.4: an incomplete response is not stored as complete.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 1000\r\n\r\n")
                    .await;
                let _ = s.write_all(&[b'x'; 100]).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    let proxy = start_proxy("").await;
    let url = format!("http://{addr}/t");
    for _ in 0..2 {
        let mut client = crate::support::Client::connect(proxy.addr).await;
        let response = client.send(get(&url)).await;
        assert!(
            crate::support::body_bytes(response).await.is_err(),
            "aborted, not short"
        );
        settle().await;
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    server.abort();
}

#[tokio::test]
async fn only_if_cached_miss_is_504() {
    // RFC 9111 §5.2.1.7.
    let origin = Scripted::start(|_, _| respond(200, &[], "x")).await;
    let proxy = start_proxy("").await;
    let mut req = get(&origin.url("/oic"));
    req.headers_mut()
        .insert("cache-control", "only-if-cached".parse().unwrap());
    let (status, _, _) = fetch(proxy.addr, req).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn must_revalidate_with_the_origin_down_is_504_and_stale_if_error_serves_stale() {
    // RFC 9111 §5.2.2.2 and RFC 5861 §4.
    let origin = Scripted::start(|parts, _| {
        let cc = if parts.uri.path() == "/mr" {
            "max-age=1, must-revalidate"
        } else {
            "max-age=1, stale-if-error=600"
        };
        respond(
            200,
            &[
                ("cache-control", cc.into()),
                ("etag", "\"e\"".into()),
                ("date", date_ago(30)),
            ],
            "kept",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    get_body(&proxy, &origin.url("/mr")).await;
    get_body(&proxy, &origin.url("/sie")).await;
    settle().await;
    origin.stop();
    let (status, _, _) = get_body(&proxy, &origin.url("/mr")).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let (status, h, body) = get_body(&proxy, &origin.url("/sie")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "kept"));
    assert!(
        cache_status(&h).contains("stale-if-error"),
        "{}",
        cache_status(&h)
    );
}

#[tokio::test]
async fn single_range_and_conditionals_and_head_are_answered_from_cache() {
    // RFC 9110 §14.2 (Range), §13.1.2 (If-None-Match), RFC 9111 §4 (HEAD from GET).
    let origin = Scripted::start(|_, _| {
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("etag", "\"d\"".into()),
            ],
            "0123456789",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/digits");
    get_body(&proxy, &url).await;
    settle().await;
    let mut ranged = get(&url);
    ranged
        .headers_mut()
        .insert("range", "bytes=2-4".parse().unwrap());
    let (status, h, body) = fetch(proxy.addr, ranged).await;
    assert_eq!(
        (status, &body[..]),
        (StatusCode::PARTIAL_CONTENT, &b"234"[..])
    );
    assert_eq!(h.get("content-range").unwrap(), "bytes 2-4/10");
    let mut cond = get(&url);
    cond.headers_mut()
        .insert("if-none-match", "W/\"d\"".parse().unwrap());
    let (status, _, _) = fetch(proxy.addr, cond).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, h, body) = fetch(
        proxy.addr,
        request(Method::HEAD, &url, crate::support::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(h.get("content-length").unwrap(), "10");
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn heuristic_freshness_applies_with_last_modified() {
    // RFC 9111 §4.2.2.
    let origin =
        Scripted::start(|_, _| respond(200, &[("last-modified", date_ago(10 * 86400))], "h")).await;
    let proxy = start_proxy("").await;
    let url = origin.url("/h");
    get_body(&proxy, &url).await;
    settle().await;
    let (_, h, _) = get_body(&proxy, &url).await;
    assert_eq!(cache_status(&h), "cachalot; hit");
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn stale_while_revalidate_serves_at_once_and_refreshes_in_the_background() {
    // RFC 5861 §3.
    let origin = Scripted::start(|_, n| {
        respond(
            200,
            &[
                (
                    "cache-control",
                    "max-age=10, stale-while-revalidate=600".into(),
                ),
                ("date", date_ago(20)),
            ],
            &format!("gen {n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/swr");
    get_body(&proxy, &url).await;
    settle().await;
    let (_, h, body) = get_body(&proxy, &url).await;
    assert_eq!(body, "gen 1", "stale copy served at once");
    assert!(cache_status(&h).contains("stale-while-revalidate"));
    within("background refresh", async {
        while origin.requests() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    settle().await;
    let (_, _, body) = get_body(&proxy, &url).await;
    assert_eq!(
        body, "gen 2",
        "the refreshed response replaced the stale one"
    );
}

#[tokio::test]
async fn oversize_response_streams_through_uncached() {
    // cache.max_object_size: larger bodies are never stored.
    let big = "z".repeat(300 * 1024);
    let origin =
        Scripted::start(move |_, _| respond(200, &[("cache-control", "max-age=60".into())], &big))
            .await;
    let proxy = start_proxy("[cache]\nmax_object_size = \"256KiB\"\n").await;
    let url = origin.url("/big");
    for _ in 0..2 {
        let (_, _, body) = get_body(&proxy, &url).await;
        assert_eq!(body.len(), 300 * 1024);
        settle().await;
    }
    assert_eq!(origin.requests(), 2);
}

/// Opens the disk tier of a stopped proxy, waiting (at most 10 s) for the
/// last of its tasks to let go of the folder's lock.
async fn open_disk(dir: &std::path::Path) -> cachalot::cache::store::disk::DiskTier {
    for _ in 0..200 {
        if let Ok(disk) = cachalot::cache::store::disk::DiskTier::open(dir, 1 << 30) {
            return disk;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cache folder stays locked");
}

async fn stop(proxy: RunningProxy) {
    let RunningProxy {
        shutdown,
        task,
        proxy,
        ..
    } = proxy;
    let _ = shutdown.send(());
    within("proxy drain", task).await.unwrap();
    proxy.cache.store.close();
    drop(proxy);
}

#[tokio::test]
async fn entries_survive_restart_with_the_origin_down_and_corrupt_ones_are_not_served() {
    // RFC 9111 §4.2.3 (Age across restarts); on-disk records are checksummed.
    let origin = Scripted::start(|parts, n| {
        respond(
            200,
            &[("cache-control", "max-age=600".into())],
            &format!("{} #{n}", parts.uri.path()),
        )
    })
    .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let proxy = start_proxy_in("", dir.clone()).await;
    get_body(&proxy, &origin.url("/keep")).await;
    get_body(&proxy, &origin.url("/corrupt")).await;
    crate::support::stored(&proxy, &origin.url("/keep")).await;
    crate::support::stored(&proxy, &origin.url("/corrupt")).await;
    stop(proxy).await;

    // Flip a byte in the stored head of /corrupt, through the disk tier's raw API.
    {
        let disk = open_disk(&dir.path().join("cache")).await;
        let key = disk
            .keys()
            .find(|k| k.starts_with('E') && k.contains("/corrupt"))
            .unwrap();
        let mut raw = disk.raw_get(&key).unwrap().unwrap();
        let i = raw.len() - 6;
        raw[i] ^= 0xff;
        disk.raw_put(&key, &raw).unwrap();
        disk.flush().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    origin.stop();
    let proxy = start_proxy_in("", dir.clone()).await;
    let (status, h, body) = get_body(&proxy, &origin.url("/keep")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "/keep #1"));
    assert_eq!(cache_status(&h), "cachalot; hit");
    let age: u64 = h.get("age").unwrap().to_str().unwrap().parse().unwrap();
    assert!(
        age >= 1,
        "Age counts the time across the restart, got {age}"
    );
    let (status, _, body) = get_body(&proxy, &origin.url("/corrupt")).await;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "corrupt entry not served: {body}"
    );
    assert_eq!(proxy.proxy.cache.store.stats().disk_corrupt, 1);
    stop(proxy).await;
}
