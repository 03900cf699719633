//! RFC 9111 conformance, second round (issue 14), end to end: a scripted
//! origin that counts requests, the proxy in-process, real clients. Each
//! test cites the section whose behaviour it observes. Waits for storage
//! poll the store with a deadline instead of sleeping.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::scripted::{respond, Scripted};
use crate::support::{fetch, get, start_proxy, wait_until, within, RunningProxy};

fn cache_status(headers: &HeaderMap) -> String {
    headers
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn get_with(
    proxy: &RunningProxy,
    url: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = get(url);
    for (name, value) in fields {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (status, headers, body) = fetch(proxy.addr, request).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Waits until a response for `url`, as requested with `fields`, is stored.
async fn stored(proxy: &RunningProxy, url: &str, fields: &[(&str, &str)]) {
    let key = cachalot::cache::policy::key::cache_key(&url.parse().unwrap()).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    within("the response to be stored", async {
        loop {
            let lookup = proxy.proxy.cache.store.lookup(&key, &headers).await;
            if matches!(lookup, cachalot::cache::store::Lookup::Hit(_)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// `t` as an RFC 850 date (RFC 9110 §5.6.7), e.g. `Sunday, 06-Nov-94 08:49:37 GMT`.
fn rfc850(t: SystemTime) -> String {
    // From "Sun, 06 Nov 1994 08:49:37 GMT".
    let imf = httpdate::fmt_http_date(t);
    let day = match &imf[..3] {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    };
    format!(
        "{day}, {}-{}-{} {} GMT",
        &imf[5..7],
        &imf[8..11],
        &imf[14..16],
        &imf[17..25]
    )
}

/// `t` in ANSI C's asctime() form (RFC 9110 §5.6.7), e.g. `Sun Nov  6 08:49:37 1994`.
fn asctime(t: SystemTime) -> String {
    let imf = httpdate::fmt_http_date(t);
    let day: u8 = imf[5..7].parse().unwrap();
    format!(
        "{} {} {day:>2} {} {}",
        &imf[..3],
        &imf[8..11],
        &imf[17..25],
        &imf[12..16]
    )
}

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn expires_in_rfc850_and_asctime_forms_in_any_case_makes_a_hit() {
    // RFC 9110 §5.6.7 (three date forms), RFC 9111 §5.3 (Expires).
    let origin = Scripted::start(|parts, n| {
        let later = in_secs(3600);
        let expires = match parts.uri.path() {
            "/rfc850" => rfc850(later).to_ascii_lowercase(),
            "/asctime" => asctime(later).to_ascii_uppercase(),
            _ => "next tuesday".to_owned(),
        };
        respond(200, &[("expires", expires)], &format!("body {n}"))
    })
    .await;
    let proxy = start_proxy("").await;
    for path in ["/rfc850", "/asctime"] {
        let url = origin.url(path);
        let before = origin.requests();
        get_with(&proxy, &url, &[]).await;
        stored(&proxy, &url, &[]).await;
        let (status, h, _) = get_with(&proxy, &url, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(cache_status(&h), "cachalot; hit", "{path}");
        assert_eq!(origin.requests(), before + 1, "{path}");
    }
    // RFC 9111 §5.3: an unparseable Expires means already expired; with no
    // validator such a response is not even stored.
    let url = origin.url("/garbage");
    let before = origin.requests();
    get_with(&proxy, &url, &[]).await;
    let (_, h, _) = get_with(&proxy, &url, &[]).await;
    assert!(cache_status(&h).contains("fwd="), "{}", cache_status(&h));
    assert_eq!(origin.requests(), before + 2);
}

#[tokio::test]
async fn age_list_is_read_by_its_first_member() {
    // RFC 9111 §5.1 and §4.2.3: `Age: 7200, 0` is 7200 s old (stale under
    // max-age=3600), `Age: 0, 7200` is fresh; two Age lines likewise.
    let origin = Scripted::start(|parts, n| {
        let mut fields = vec![("cache-control", "max-age=3600".to_owned())];
        match parts.uri.path() {
            "/old-first" => fields.push(("age", "7200, 0".into())),
            "/young-first" => fields.push(("age", "0, 7200".into())),
            "/two-lines" => {
                fields.push(("age", "7200".into()));
                fields.push(("age", "0".into()));
            }
            _ => fields.push(("age", "soon".into())),
        }
        respond(200, &fields, &format!("body {n}"))
    })
    .await;
    let proxy = start_proxy("").await;
    for (path, hit) in [
        ("/old-first", false),
        ("/young-first", true),
        ("/two-lines", false),
        ("/junk", true),
    ] {
        let url = origin.url(path);
        let before = origin.requests();
        get_with(&proxy, &url, &[]).await;
        stored(&proxy, &url, &[]).await;
        let (status, h, _) = get_with(&proxy, &url, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            cache_status(&h) == "cachalot; hit",
            hit,
            "{path}: {}",
            cache_status(&h)
        );
        let expected = if hit { before + 1 } else { before + 2 };
        assert_eq!(origin.requests(), expected, "{path}");
        if hit {
            let age: u64 = h.get("age").unwrap().to_str().unwrap().parse().unwrap();
            assert!(
                age < 3600,
                "{path}: Age {age} recomputed from the first member"
            );
        }
    }
}

/// A response stored 30 s ago that was fresh for 1 s: stale by 29 s.
fn stale_response(cc: &str, n: usize) -> http::Response<crate::support::TestBody> {
    respond(
        200,
        &[
            ("cache-control", cc.into()),
            ("etag", "\"s\"".into()),
            ("date", crate::scripted::date_ago(30)),
        ],
        &format!("stale {n}"),
    )
}

/// The path of each route names its Cache-Control.
async fn stale_origin() -> Scripted {
    Scripted::start(|parts, n| {
        let cc = match parts.uri.path() {
            "/must-revalidate" => "max-age=1, must-revalidate",
            "/proxy-revalidate" => "max-age=1, proxy-revalidate",
            "/no-cache" => "no-cache, max-age=1",
            "/s-maxage" => "s-maxage=1",
            _ => "max-age=1",
        };
        stale_response(cc, n)
    })
    .await
}

fn ttl_of(cache_status: &str) -> i64 {
    cache_status
        .split(';')
        .find_map(|p| p.trim().strip_prefix("ttl="))
        .unwrap_or_else(|| panic!("no ttl in {cache_status:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn stale_entry_is_served_when_the_origin_is_down_and_logged_refresh_fail_old() {
    // RFC 9111 §4.2.4 (a disconnected cache may serve stale), RFC 9211 §2.4
    // (a negative ttl), logged as Squid's TCP_REFRESH_FAIL_OLD.
    let origin = stale_origin().await;
    let proxy = start_proxy("[log]\naccess = \"access.log\"\n").await;
    let url = origin.url("/plain");
    get_with(&proxy, &url, &[]).await;
    stored(&proxy, &url, &[]).await;
    origin.stop();
    let (status, h, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stale 1"));
    let cs = cache_status(&h);
    assert!(
        cs.starts_with("cachalot; hit; ttl=-") && cs.ends_with("; detail=origin-unreachable"),
        "{cs}"
    );
    assert!(ttl_of(&cs) <= -29, "{cs}");
    let age: u64 = h.get("age").unwrap().to_str().unwrap().parse().unwrap();
    assert!(age >= 30, "the stale copy carries its true Age, got {age}");
    let metrics = proxy.proxy.metrics.clone();
    wait_until("two requests logged", move || metrics.requests() >= 2).await;
    proxy.proxy.log.as_ref().unwrap().close();
    let log = std::fs::read_to_string(proxy.dir.path().join("access.log")).unwrap();
    let last = log.lines().last().unwrap();
    assert_eq!(
        last.split_whitespace().nth(3),
        Some("TCP_REFRESH_FAIL_OLD/200"),
        "{log}"
    );
}

#[tokio::test]
async fn revalidation_directives_forbid_stale_when_the_origin_is_down() {
    // RFC 9111 §4.2.4 with §5.2.2.2 (must-revalidate), §5.2.2.8
    // (proxy-revalidate), §5.2.2.4 (no-cache), §5.2.2.10 (s-maxage).
    let origin = stale_origin().await;
    let proxy = start_proxy("").await;
    let paths = [
        "/must-revalidate",
        "/proxy-revalidate",
        "/no-cache",
        "/s-maxage",
    ];
    for path in paths {
        let url = origin.url(path);
        get_with(&proxy, &url, &[]).await;
        stored(&proxy, &url, &[]).await;
    }
    origin.stop();
    for path in paths {
        let (status, h, _) = get_with(&proxy, &origin.url(path), &[]).await;
        assert!(status.is_server_error(), "{path}: {status}");
        assert!(!cache_status(&h).contains("hit"), "{path}");
    }
}

#[tokio::test]
async fn a_request_that_forbids_stale_gets_the_error() {
    // RFC 9111 §5.2.1.4 (no-cache), §5.4 (Pragma), §5.2.1.1 (max-age),
    // §5.2.1.3 (min-fresh), §5.2.1.2 (max-stale bound).
    let origin = stale_origin().await;
    let proxy = start_proxy("").await;
    let url = origin.url("/plain");
    get_with(&proxy, &url, &[]).await;
    stored(&proxy, &url, &[]).await;
    origin.stop();
    for fields in [
        [("cache-control", "no-cache")],
        [("pragma", "no-cache")],
        [("cache-control", "max-age=5")],
        [("cache-control", "min-fresh=1")],
        [("cache-control", "max-stale=5")],
    ] {
        let (status, _, _) = get_with(&proxy, &url, &fields).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{fields:?}");
    }
    let (status, _, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stale 1"));
}

#[tokio::test]
async fn max_stale_bounds_serving_stale_and_zero_turns_it_off() {
    // cache.max_stale (Squid's max_stale): the entry is 29 s stale.
    let origin = stale_origin().await;
    let url = origin.url("/plain");
    let off = start_proxy("[cache]\nmax_stale = \"0s\"\n").await;
    let short = start_proxy("[cache]\nmax_stale = \"10s\"\n").await;
    let long = start_proxy("[cache]\nmax_stale = \"1h\"\n").await;
    for proxy in [&off, &short, &long] {
        get_with(proxy, &url, &[]).await;
        stored(proxy, &url, &[]).await;
    }
    origin.stop();
    for (proxy, expected) in [
        (&off, StatusCode::BAD_GATEWAY),
        (&short, StatusCode::BAD_GATEWAY),
        (&long, StatusCode::OK),
    ] {
        let (status, _, _) = get_with(proxy, &url, &[]).await;
        assert_eq!(status, expected);
    }
}

#[tokio::test]
async fn an_origin_5xx_is_passed_on_without_stale_if_error() {
    // RFC 9111 §4.2.4 covers a disconnected cache; an origin that answers
    // 5xx is governed by stale-if-error (RFC 5861 §4) alone.
    let origin = Scripted::start(|parts, n| {
        if parts.headers.contains_key("if-none-match") {
            return respond(503, &[], "down for maintenance");
        }
        stale_response("max-age=1", n)
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/five");
    get_with(&proxy, &url, &[]).await;
    stored(&proxy, &url, &[]).await;
    let (status, _, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance")
    );
}

/// How a [`failing_origin`] treats every request after the first.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Resets the connection (RST).
    Reset,
    /// Closes the connection (FIN) without a response.
    Close,
    /// Keeps the connection open and never answers.
    Silent,
}

/// An origin on raw TCP: the first connection gets a stale-at-once
/// response, every later one fails as `failure` says as soon as its request
/// head has arrived.
async fn failing_origin(failure: Failure) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = first;
            first = false;
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while crate::support::find(&head, b"\r\n\r\n").is_none() {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if answer {
                    let date = crate::scripted::date_ago(30);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nCache-Control: max-age=1\r\nETag: \"r\"\r\n\
                         Date: {date}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept"
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                } else {
                    match failure {
                        Failure::Reset => {
                            let _ = stream.set_zero_linger();
                        }
                        Failure::Close => {}
                        Failure::Silent => {
                            // Holds the connection until the proxy gives up.
                            let _ = within("the proxy to give up", stream.read(&mut buf)).await;
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn an_origin_that_resets_closes_or_never_answers_counts_as_unreachable() {
    // RFC 9111 §4.2.4: no response at all is a disconnected cache.
    for failure in [Failure::Reset, Failure::Close, Failure::Silent] {
        let (addr, task) = failing_origin(failure).await;
        let proxy = start_proxy("[timeouts]\nupstream_response = \"500ms\"\n").await;
        let url = format!("http://{addr}/r");
        get_with(&proxy, &url, &[]).await;
        stored(&proxy, &url, &[]).await;
        let (status, h, body) = get_with(&proxy, &url, &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "kept"),
            "{failure:?}"
        );
        assert!(
            cache_status(&h).ends_with("detail=origin-unreachable"),
            "{failure:?}: {}",
            cache_status(&h)
        );
        task.abort();
    }
}

#[tokio::test]
async fn must_understand_overrides_no_store_only_for_understood_statuses() {
    // RFC 9111 §5.2.2.3.
    let origin = Scripted::start(|parts, n| {
        let (status, cc) = match parts.uri.path() {
            "/unknown-status" => (299, "must-understand, no-store, max-age=3600"),
            // Explicitly fresh, no no-store: stored but for must-understand.
            "/unknown-plain" => (299, "must-understand, max-age=3600"),
            _ => (200, "must-understand, no-store, max-age=3600"),
        };
        respond(
            status,
            &[("cache-control", cc.into())],
            &format!("body {n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/understood");
    let (_, h, _) = get_with(&proxy, &url, &[]).await;
    assert!(
        !cache_status(&h).contains("detail="),
        "{}",
        cache_status(&h)
    );
    stored(&proxy, &url, &[]).await;
    let (_, h, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!(
        (cache_status(&h).as_str(), body.as_str()),
        ("cachalot; hit", "body 1")
    );
    assert_eq!(origin.requests(), 1);

    let url = origin.url("/unknown-status");
    for n in [2, 3] {
        let (status, h, body) = get_with(&proxy, &url, &[]).await;
        assert_eq!(status.as_u16(), 299);
        assert_eq!(body, format!("body {n}"));
        assert!(cache_status(&h).contains("detail="), "{}", cache_status(&h));
    }
    assert_eq!(origin.requests(), 3);
    let url = origin.url("/unknown-plain");
    for _ in 0..2 {
        let (_, h, _) = get_with(&proxy, &url, &[]).await;
        assert!(cache_status(&h).contains("detail="), "{}", cache_status(&h));
    }
    assert_eq!(origin.requests(), 5);
}

#[tokio::test]
async fn vary_matches_equivalent_preference_lists() {
    // RFC 9111 §4.1: selecting header fields compared after normalizing
    // member order, case and whitespace (RFC 9110 §12.5).
    let origin = Scripted::start(|parts, n| {
        let lang = parts
            .headers
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("vary", "Accept-Language, Accept-Encoding".into()),
            ],
            &format!("#{n} for {lang}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/negotiated");
    let first = [
        ("accept-language", "en, fr"),
        ("accept-encoding", "gzip, br"),
    ];
    let (_, _, body) = get_with(&proxy, &url, &first).await;
    assert_eq!(body, "#1 for en, fr");
    stored(&proxy, &url, &first).await;
    for equivalent in [
        [
            ("accept-language", "fr, en"),
            ("accept-encoding", "br,gzip"),
        ],
        [
            ("accept-language", "FR ,EN"),
            ("accept-encoding", "GZIP, BR, gzip"),
        ],
        [
            ("accept-language", "en;q=1, fr"),
            ("accept-encoding", "br ,\tgzip"),
        ],
    ] {
        let (_, h, body) = get_with(&proxy, &url, &equivalent).await;
        assert_eq!(body, "#1 for en, fr", "{equivalent:?}");
        assert_eq!(cache_status(&h), "cachalot; hit", "{equivalent:?}");
    }
    assert_eq!(origin.requests(), 1);
    let other = [
        ("accept-language", "en;q=0.5, fr"),
        ("accept-encoding", "gzip, br"),
    ];
    let (_, h, body) = get_with(&proxy, &url, &other).await;
    assert_eq!(body, "#2 for en;q=0.5, fr");
    assert!(
        cache_status(&h).contains("fwd=vary-miss"),
        "{}",
        cache_status(&h)
    );
}

#[tokio::test]
async fn conditionals_are_answered_304_from_a_fresh_entry_without_last_modified() {
    // RFC 9111 §4.3.2 and RFC 9110 §13.1.3: If-Modified-Since against the
    // stored Date when there is no Last-Modified; §13.1.2 If-None-Match;
    // RFC 9110 §5.6.7: the IMS date in RFC 850 form behaves the same.
    let date = SystemTime::now() - Duration::from_secs(100);
    let origin = Scripted::start(move |_, n| {
        respond(
            200,
            &[
                ("cache-control", "max-age=3600".into()),
                ("date", httpdate::fmt_http_date(date)),
                ("etag", "\"tag\"".into()),
            ],
            &format!("body {n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/cond");
    get_with(&proxy, &url, &[]).await;
    stored(&proxy, &url, &[]).await;
    let since = date + Duration::from_secs(50);
    for (name, value) in [
        ("if-modified-since", httpdate::fmt_http_date(date)),
        ("if-modified-since", httpdate::fmt_http_date(since)),
        ("if-modified-since", rfc850(since)),
        ("if-modified-since", rfc850(date).to_ascii_lowercase()),
        ("if-modified-since", asctime(since)),
        ("if-none-match", "\"tag\"".to_owned()),
        ("if-none-match", "W/\"other\", W/\"tag\"".to_owned()),
    ] {
        let (status, h, body) = get_with(&proxy, &url, &[(name, &value)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{name}: {value}");
        assert!(body.is_empty());
        assert_eq!(cache_status(&h), "cachalot; hit", "{name}: {value}");
        assert_eq!(h.get("etag").unwrap(), "\"tag\"");
    }
    let earlier = date - Duration::from_secs(50);
    for (name, value) in [
        ("if-modified-since", httpdate::fmt_http_date(earlier)),
        ("if-modified-since", rfc850(earlier)),
        ("if-none-match", "\"other\"".to_owned()),
    ] {
        let (status, _, body) = get_with(&proxy, &url, &[(name, &value)]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "body 1"),
            "{name}: {value}"
        );
    }
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn post_response_naming_itself_is_stored_as_the_get_response() {
    // RFC 9110 §9.3.3 and RFC 9111 §2: explicit freshness and a
    // Content-Location equal to the request URI; the invalidation of RFC
    // 9111 §4.4 runs first.
    let origin = Scripted::start(|parts, n| {
        let path = parts.uri.path();
        if parts.method != http::Method::POST {
            return respond(
                200,
                &[("cache-control", "max-age=60".into())],
                &format!("got #{n}"),
            );
        }
        let mut fields = vec![("content-location", path.to_owned())];
        match path {
            "/form" => fields.push(("cache-control", "max-age=60".into())),
            "/elsewhere" => {
                fields = vec![
                    ("cache-control", "max-age=60".into()),
                    ("content-location", "/somewhere-else".into()),
                ];
            }
            _ => {} // "/no-freshness": Content-Location but no explicit freshness
        }
        respond(200, &fields, &format!("posted #{n}"))
    })
    .await;
    let proxy = start_proxy("").await;
    let post =
        |url: &str| crate::support::request(http::Method::POST, url, crate::support::full("a=1"));
    let url = origin.url("/form");
    let (_, _, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!(body, "got #1");
    stored(&proxy, &url, &[]).await;

    let (status, h, body) = fetch(proxy.addr, post(&url)).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"posted #2"[..]));
    assert!(
        !cache_status(&h).contains("detail="),
        "{}",
        cache_status(&h)
    );
    stored(&proxy, &url, &[]).await;
    let (_, h, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!(body, "posted #2", "the POST's response answers the GET");
    assert_eq!(cache_status(&h), "cachalot; hit");
    assert_eq!(origin.requests(), 2);

    for path in ["/elsewhere", "/no-freshness"] {
        let url = origin.url(path);
        let before = origin.requests();
        let (_, h, _) = fetch(proxy.addr, post(&url)).await;
        assert!(
            cache_status(&h).contains("detail="),
            "{path}: {}",
            cache_status(&h)
        );
        let (_, _, body) = get_with(&proxy, &url, &[]).await;
        assert_eq!(body, format!("got #{}", before + 2), "{path}");
    }
}

#[tokio::test]
async fn malformed_chunked_request_body_is_400_forwards_nothing_and_closes() {
    // RFC 9112 §7.1: a bad chunk-size hex digit, or a chunk size that
    // overflows, is the client's error; nothing reaches the origin, and the
    // connection (whose framing is lost) is closed.
    use tokio::io::AsyncWriteExt;
    let origin = crate::support::Origin::start().await;
    let proxy = start_proxy("").await;
    let target = origin.url("/echo");
    for chunks in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5g\r\nhello\r\n0\r\n\r\n",
        "FFFFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut stream = crate::support::connect(proxy.addr).await;
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}",
            origin.addr
        );
        within("write", stream.write_all(request.as_bytes()))
            .await
            .unwrap();
        // Keep-alive was not refused by the client: the proxy must close.
        let (bytes, _) = crate::support::read_to_end(&mut stream).await;
        let response = crate::support::parse_response(&bytes);
        assert_eq!(response.status, 400, "{chunks:?}: {}", response.status_line);
        assert_eq!(origin.requests(), 0, "{chunks:?}");
        assert_eq!(origin.connections(), 0, "{chunks:?}: nothing forwarded");
    }
    // Broken framing after a good first chunk: the head and that chunk may
    // already be on their way, but the answer is still the client's 400.
    let mut stream = crate::support::connect(proxy.addr).await;
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
        origin.addr
    );
    within("write", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let (bytes, _) = crate::support::read_to_end(&mut stream).await;
    assert_eq!(crate::support::parse_response(&bytes).status, 400);
    // A well-formed chunked body still goes through.
    let ok = crate::support::raw_exchange(
        proxy.addr,
        format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            origin.addr
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(&origin.last().body[..], b"hello");
}

#[tokio::test]
async fn set_cookie_is_never_replayed_and_the_reason_is_in_cache_status_and_the_log() {
    // RFC 9111 §3.1 allows storing Set-Cookie; for privacy we never replay
    // one client's cookie to another, and say so (RFC 9211 §2.8 detail).
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
            &format!("body {n}"),
        )
    })
    .await;
    let proxy = start_proxy("[log]\naccess = \"access.log\"\nformat = \"json\"\n").await;
    let url = origin.url("/public");
    let (_, h, _) = get_with(&proxy, &url, &[]).await;
    assert_eq!(h.get("set-cookie").unwrap(), "session=user1");
    assert_eq!(
        cache_status(&h),
        "cachalot; fwd=uri-miss; fwd-status=200; detail=set-cookie-withheld"
    );
    stored(&proxy, &url, &[]).await;
    let (_, h, body) = get_with(&proxy, &url, &[]).await;
    assert_eq!(
        (cache_status(&h).as_str(), body.as_str()),
        ("cachalot; hit", "body 1")
    );
    assert!(h.get("set-cookie").is_none(), "another client's cookie");

    let url = origin.url("/plain");
    for n in [2, 3] {
        let (_, h, _) = get_with(&proxy, &url, &[]).await;
        assert_eq!(h.get("set-cookie").unwrap(), &format!("session=user{n}"));
        assert_eq!(
            cache_status(&h),
            "cachalot; fwd=uri-miss; fwd-status=200; detail=set-cookie-not-shared"
        );
    }
    let metrics = proxy.proxy.metrics.clone();
    wait_until("four requests logged", move || metrics.requests() >= 4).await;
    proxy.proxy.log.as_ref().unwrap().close();
    let log = std::fs::read_to_string(proxy.dir.path().join("access.log")).unwrap();
    assert!(log.contains("detail=set-cookie-withheld"), "{log}");
    assert!(log.contains("detail=set-cookie-not-shared"), "{log}");
}

#[tokio::test]
async fn a_name_that_no_longer_resolves_is_an_unreachable_origin() {
    // RFC 9111 §4.2.4: a cache that cannot resolve the origin's name is as
    // disconnected as one that cannot connect; the stale entry is served,
    // unless the stored response forbids it.
    let dns = crate::dns_server::DnsServer::start().await;
    // TTL 0 and no serve-stale: every lookup asks, and fails once silenced.
    dns.set("lost.test", &["127.0.0.1"], 0);
    let origin = stale_origin().await;
    let proxy = start_proxy(&dns.config("timeout = \"1s\"\nstale_ttl = \"0s\"")).await;
    let port = origin.addr.port();
    let plain = format!("http://lost.test:{port}/plain");
    let strict = format!("http://lost.test:{port}/must-revalidate");
    for url in [&plain, &strict] {
        get_with(&proxy, url, &[]).await;
        stored(&proxy, url, &[]).await;
    }
    dns.silence(true);
    let (status, h, body) = get_with(&proxy, &plain, &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stale 1"));
    let cs = cache_status(&h);
    assert!(cs.ends_with("; detail=origin-unreachable"), "{cs}");
    assert!(ttl_of(&cs) < 0, "{cs}");
    let (status, _, _) = get_with(&proxy, &strict, &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "must-revalidate");
    assert_eq!(origin.requests(), 2);
    assert!(dns.queries("lost.test") >= 4);
}
