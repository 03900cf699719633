//! RFC 9111 conformance, second round (issue 14), end to end: a scripted
//! origin that counts requests, the proxy in-process, real clients. Each
//! test cites the section whose behaviour it observes. Waits for storage
//! poll the store with a deadline instead of sleeping.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::scripted::{respond, Scripted};
use crate::support::{fetch, get, start_proxy, within, RunningProxy};

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
    let key = cachalot::cache::key::cache_key(&url.parse().unwrap()).unwrap();
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
