//! Tests for the shared-cache policy (RFC 9111 §3, §4, §5; RFC 5861;
//! RFC 8246).

use super::*;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};
use std::time::UNIX_EPOCH;

const DAY: u64 = 24 * 60 * 60;

fn at(secs: i64) -> SystemTime {
    let base = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    if secs >= 0 {
        base + Duration::from_secs(secs.unsigned_abs())
    } else {
        base - Duration::from_secs(secs.unsigned_abs())
    }
}

fn date(secs: i64) -> String {
    httpdate::fmt_http_date(at(secs))
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn store(req: &[(&str, &str)], status: u16, resp: &[(&str, &str)]) -> Result<(), NotStorable> {
    storability(
        &Method::GET,
        &map(req),
        StatusCode::from_u16(status).unwrap(),
        &map(resp),
        &PolicyConfig::default(),
    )
}

fn lifetime(status: u16, resp: &[(&str, &str)]) -> Duration {
    let status = StatusCode::from_u16(status).unwrap();
    freshness_lifetime(status, &map(resp), at(0), &PolicyConfig::default())
}

/// Stored at t=0 (request and response), evaluated at t=`now`.
fn eval(req: &[(&str, &str)], stored: &[(&str, &str)], now: i64) -> Verdict {
    let times = StoredTimes {
        request_time: at(0),
        response_time: at(0),
    };
    evaluate(
        &map(req),
        StatusCode::OK,
        &map(stored),
        &times,
        at(now),
        &PolicyConfig::default(),
    )
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// RFC 9111 §3: only GET is stored.
#[test]
fn rfc9111_3_only_get() {
    for m in [Method::POST, Method::HEAD, Method::PUT] {
        let got = storability(
            &m,
            &HeaderMap::new(),
            StatusCode::OK,
            &map(&[("cache-control", "max-age=60")]),
            &PolicyConfig::default(),
        );
        assert_eq!(got, Err(NotStorable::Method), "{m}");
    }
}

// RFC 9111 §3, RFC 9110 §15.1: heuristically cacheable statuses, or explicit
// freshness / public for the others; 206 and 304 never; 1xx is not final.
#[test]
fn rfc9111_3_status_rules() {
    for code in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
        assert_eq!(store(&[], code, &[("etag", "\"a\"")]), Ok(()), "{code}");
    }
    assert_eq!(
        store(&[], 500, &[("etag", "\"a\"")]),
        Err(NotStorable::Status)
    );
    assert_eq!(
        store(&[], 302, &[("etag", "\"a\"")]),
        Err(NotStorable::Status)
    );
    assert_eq!(store(&[], 500, &[("cache-control", "max-age=5")]), Ok(()));
    assert_eq!(store(&[], 302, &[("cache-control", "s-maxage=5")]), Ok(()));
    assert_eq!(store(&[], 503, &[("expires", &date(60))]), Ok(()));
    assert_eq!(
        store(
            &[],
            500,
            &[("cache-control", "public"), ("last-modified", &date(-60))]
        ),
        Ok(())
    );
    assert_eq!(
        store(&[], 206, &[("cache-control", "max-age=5")]),
        Err(NotStorable::Partial)
    );
    assert_eq!(
        store(&[], 304, &[("cache-control", "max-age=5")]),
        Err(NotStorable::Status)
    );
    assert_eq!(
        store(&[], 103, &[("cache-control", "max-age=5")]),
        Err(NotStorable::Status)
    );
}

// RFC 9111 §5.2.1.5, §5.2.2.5: no-store in request or response.
#[test]
fn rfc9111_5_2_no_store() {
    let ok = [("cache-control", "max-age=60")];
    assert_eq!(
        store(&[("cache-control", "no-store")], 200, &ok),
        Err(NotStorable::RequestNoStore)
    );
    assert_eq!(
        store(&[], 200, &[("cache-control", "max-age=60, no-store")]),
        Err(NotStorable::ResponseNoStore)
    );
}

// RFC 9111 §5.2.2.3: must-understand makes a cache that implements the
// status code's caching rules ignore no-store; for a status whose rules it
// does not implement, it does not store.
#[test]
fn rfc9111_5_2_2_3_must_understand() {
    let mu = [("cache-control", "must-understand, no-store, max-age=3600")];
    for status in [200, 203, 204, 301, 302, 307, 308, 404, 410, 501] {
        assert_eq!(store(&[], status, &mu), Ok(()), "{status}");
    }
    for status in [299, 418, 499, 599] {
        assert_eq!(
            store(&[], status, &mu),
            Err(NotStorable::MustUnderstand),
            "{status}"
        );
    }
    // Even without no-store, an unknown status is not stored.
    assert_eq!(
        store(
            &[],
            299,
            &[("cache-control", "must-understand, max-age=60")]
        ),
        Err(NotStorable::MustUnderstand)
    );
    // Case-insensitive directive names (RFC 9111 §5.2).
    assert_eq!(
        store(
            &[],
            200,
            &[("cache-control", "MUST-UNDERSTAND, No-Store, max-age=60")]
        ),
        Ok(())
    );
    // Without must-understand, no-store wins as before.
    assert_eq!(
        store(&[], 200, &[("cache-control", "no-store, max-age=60")]),
        Err(NotStorable::ResponseNoStore)
    );
    // The other rules still apply: a request no-store, or no freshness.
    assert_eq!(
        store(&[("cache-control", "no-store")], 200, &mu),
        Err(NotStorable::RequestNoStore)
    );
    assert_eq!(
        store(&[], 500, &[("cache-control", "must-understand, no-store")]),
        Err(NotStorable::Status)
    );
    assert!(understood_status(StatusCode::OK));
    assert!(!understood_status(StatusCode::from_u16(299).unwrap()));
}

// RFC 9110 §9.3.3, RFC 9111 §2: a POST response with explicit freshness and
// a Content-Location equal to the request URI is stored as the response to
// a GET of that URI; anything less is not.
#[test]
fn rfc9110_9_3_3_post_with_content_location_stores_as_get() {
    let target: Uri = "http://example.com/submit".parse().unwrap();
    let post =
        |method: Method, resp: &[(&str, &str)]| post_stores_as_get(&method, &target, &map(resp));
    let here = ("content-location", "/submit");
    assert!(post(Method::POST, &[("cache-control", "max-age=60"), here]));
    assert!(post(
        Method::POST,
        &[("cache-control", "s-maxage=60"), here]
    ));
    assert!(post(Method::POST, &[("expires", &date(60)), here]));
    assert!(post(
        Method::POST,
        &[
            ("cache-control", "max-age=60"),
            ("content-location", "http://example.com/submit")
        ]
    ));
    // No explicit freshness, another URI, no Content-Location, or not POST.
    assert!(!post(Method::POST, &[here]));
    assert!(!post(Method::POST, &[("last-modified", &date(-60)), here]));
    assert!(!post(
        Method::POST,
        &[
            ("cache-control", "max-age=60"),
            ("content-location", "/other")
        ]
    ));
    assert!(!post(Method::POST, &[("cache-control", "max-age=60")]));
    assert!(!post(Method::PUT, &[("cache-control", "max-age=60"), here]));
}

// RFC 9111 §5.2.2.7: unqualified private is not stored by a shared cache;
// the qualified form is.
#[test]
fn rfc9111_5_2_2_7_private() {
    assert_eq!(
        store(&[], 200, &[("cache-control", "private, max-age=60")]),
        Err(NotStorable::Private)
    );
    assert_eq!(
        store(
            &[],
            200,
            &[("cache-control", "private=\"x-user\", max-age=60")]
        ),
        Ok(())
    );
}

// RFC 9111 §3.5: Authorization needs public, s-maxage or must-revalidate.
#[test]
fn rfc9111_3_5_authorization() {
    let auth = [("authorization", "Basic Zm9vOmJhcg==")];
    assert_eq!(
        store(&auth, 200, &[("cache-control", "max-age=60")]),
        Err(NotStorable::Authorization)
    );
    for cc in [
        "public, max-age=60",
        "s-maxage=60",
        "max-age=60, must-revalidate",
        "public",
    ] {
        let resp = [("cache-control", cc), ("etag", "\"a\"")];
        assert_eq!(store(&auth, 200, &resp), Ok(()), "{cc}");
    }
}

// Set-Cookie: stored only when explicitly shareable, or when the response
// names it in no-cache=/private= (RFC 9111 §5.2.2.4, §5.2.2.7).
#[test]
fn rfc9111_3_set_cookie() {
    let cookie = ("set-cookie", "id=1");
    assert_eq!(
        store(&[], 200, &[("cache-control", "max-age=60"), cookie]),
        Err(NotStorable::SetCookie)
    );
    assert_eq!(
        store(
            &[],
            200,
            &[("cache-control", "max-age=60"), ("set-cookie2", "a=1")]
        ),
        Err(NotStorable::SetCookie)
    );
    for cc in [
        "public, max-age=60",
        "s-maxage=60",
        "max-age=60, no-cache=\"set-cookie\"",
        "max-age=60, private=\"Set-Cookie\"",
    ] {
        assert_eq!(
            store(&[], 200, &[("cache-control", cc), cookie]),
            Ok(()),
            "{cc}"
        );
    }
}

// RFC 9111 §3.1 (and our privacy choice against its letter): the reason a
// Set-Cookie was not cached is named in Cache-Status's detail (RFC 9211 §2.8).
#[test]
fn rfc9111_3_1_set_cookie_reason_is_named() {
    let cookie = map(&[("set-cookie", "s=1"), ("cache-control", "max-age=60")]);
    let verdict = |resp: &HeaderMap| {
        storability(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            resp,
            &PolicyConfig::default(),
        )
    };
    assert_eq!(verdict(&cookie), Err(NotStorable::SetCookie));
    assert_eq!(
        set_cookie_detail(&cookie, verdict(&cookie), false),
        Some("set-cookie-not-shared")
    );
    let public = map(&[
        ("set-cookie", "s=1"),
        ("cache-control", "public, max-age=60"),
    ]);
    assert_eq!(verdict(&public), Ok(()));
    assert_eq!(
        set_cookie_detail(&public, verdict(&public), true),
        Some("set-cookie-withheld")
    );
    assert!(headers_to_store(&public).get("set-cookie").is_none());
    // Not stored for another reason (too large), or no cookie: no detail.
    assert_eq!(set_cookie_detail(&public, Ok(()), false), None);
    let plain = map(&[("cache-control", "max-age=60")]);
    assert_eq!(set_cookie_detail(&plain, Ok(()), true), None);
    assert_eq!(
        set_cookie_detail(&plain, Err(NotStorable::ResponseNoStore), false),
        None
    );
}

// RFC 9111 §4.1: Vary: * is never stored.
#[test]
fn rfc9111_4_1_vary_star() {
    let cc = ("cache-control", "max-age=60");
    assert_eq!(
        store(&[], 200, &[cc, ("vary", "accept, *")]),
        Err(NotStorable::VaryStar)
    );
    assert_eq!(store(&[], 200, &[cc, ("vary", "accept")]), Ok(()));
}

// RFC 9111 §3, §4.2.2: nothing to reuse without freshness or validator.
#[test]
fn rfc9111_3_no_freshness_or_validator() {
    assert_eq!(
        store(&[], 200, &[("content-type", "text/plain")]),
        Err(NotStorable::NoFreshnessOrValidator)
    );
    assert_eq!(
        store(&[], 200, &[("last-modified", "garbage")]),
        Err(NotStorable::NoFreshnessOrValidator)
    );
    assert_eq!(
        store(&[], 200, &[("cache-control", "public")]),
        Err(NotStorable::NoFreshnessOrValidator)
    );
    assert_eq!(store(&[], 200, &[("etag", "\"a\"")]), Ok(()));
    assert_eq!(store(&[], 200, &[("last-modified", &date(-60))]), Ok(()));
    assert_eq!(store(&[], 200, &[("cache-control", "max-age=0")]), Ok(()));
    assert_eq!(
        store(
            &[],
            200,
            &[("cache-control", "no-cache"), ("etag", "\"a\"")]
        ),
        Ok(())
    );
    assert_eq!(NotStorable::VaryStar.as_str(), "vary-star");
}

// Each reason has its own label, kebab-case, and its slot in `ALL`.
#[test]
fn not_storable_labels_are_distinct_and_kebab_case() {
    let labels: Vec<&str> = NotStorable::ALL.iter().map(|r| r.as_str()).collect();
    for (i, reason) in NotStorable::ALL.iter().enumerate() {
        assert_eq!(reason.index(), i);
        let label = reason.as_str();
        assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        assert_eq!(labels.iter().filter(|l| **l == label).count(), 1, "{label}");
    }
    let expected = [
        (NotStorable::ResponseNoStore, "no-store"),
        (NotStorable::Private, "private"),
        (NotStorable::Authorization, "authorization"),
        (NotStorable::SetCookie, "set-cookie"),
        (NotStorable::VaryStar, "vary-star"),
        (
            NotStorable::NoFreshnessOrValidator,
            "no-validator-no-freshness",
        ),
        (NotStorable::Status, "status"),
        (NotStorable::TooBig, "too-big"),
        (NotStorable::Method, "method"),
        (NotStorable::RequestNoStore, "request-no-store"),
        (NotStorable::Range, "range"),
    ];
    for (reason, label) in expected {
        assert_eq!(reason.as_str(), label);
    }
}

// RFC 9111 §3.1, §5.2.2.4, §5.2.2.7: what the stored copy carries.
#[test]
fn rfc9111_3_1_headers_to_store() {
    let resp = map(&[
        (
            "cache-control",
            "max-age=60, private=\"x-user\", no-cache=\"x-token, Set-Cookie\"",
        ),
        ("set-cookie", "id=1"),
        ("set-cookie", "other=2"),
        ("set-cookie2", "old=1"),
        ("connection", "keep-alive, x-hop"),
        ("keep-alive", "timeout=5"),
        ("x-hop", "1"),
        ("transfer-encoding", "chunked"),
        ("proxy-authenticate", "Basic"),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "x-sum"),
        ("upgrade", "h2c"),
        ("x-user", "alice"),
        ("x-token", "t"),
        ("age", "5"),
        ("content-type", "text/html"),
        ("x-multi", "a"),
        ("x-multi", "b"),
    ]);
    let stored = headers_to_store(&resp);
    let names: Vec<&str> = stored.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["cache-control", "age", "content-type", "x-multi"]);
    assert_eq!(stored.get_all("x-multi").iter().count(), 2);
}

// RFC 9111 §4.2.1: s-maxage beats max-age beats Expires.
#[test]
fn rfc9111_4_2_1_explicit_precedence() {
    let expires = date(500);
    let d = date(0);
    assert_eq!(
        lifetime(
            200,
            &[
                ("cache-control", "max-age=60, s-maxage=120"),
                ("expires", &expires)
            ]
        ),
        secs(120)
    );
    assert_eq!(
        lifetime(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("expires", &expires),
                ("date", &d)
            ]
        ),
        secs(60)
    );
    assert_eq!(
        lifetime(200, &[("expires", &expires), ("date", &d)]),
        secs(500)
    );
    assert_eq!(
        lifetime(200, &[("cache-control", "max-age=99999999999999999999")]),
        secs(1 << 31)
    );
}

// RFC 9111 §5.3: invalid or past Expires means already expired; a missing
// or invalid Date falls back to response_time.
#[test]
fn rfc9111_5_3_expires_edge_cases() {
    let old_lm = date(-100 * 60 * 60);
    assert_eq!(
        lifetime(200, &[("expires", "0"), ("last-modified", &old_lm)]),
        Duration::ZERO
    );
    assert_eq!(
        lifetime(200, &[("expires", &date(-10)), ("date", &date(0))]),
        Duration::ZERO
    );
    assert_eq!(lifetime(200, &[("expires", &date(300))]), secs(300));
    assert_eq!(
        lifetime(200, &[("expires", &date(300)), ("date", "garbage")]),
        secs(300)
    );
    // Expires - Date uses the origin's Date, not our clock.
    assert_eq!(
        lifetime(200, &[("expires", &date(300)), ("date", &date(-100))]),
        secs(400)
    );
}

// RFC 9111 §5.3 with RFC 9110 §5.6.7: Expires is understood in all three
// HTTP-date forms and in any letter case; an unparseable one still means
// "already expired".
#[test]
fn rfc9111_5_3_expires_in_every_date_form() {
    assert_eq!(date(0), "Sun, 09 Sep 2001 01:46:40 GMT");
    for expires in [
        "Sun, 09 Sep 2001 01:51:40 GMT",
        "sun, 09 sep 2001 01:51:40 gmt",
        "Sunday, 09-Sep-01 01:51:40 GMT",
        "SUNDAY, 09-SEP-01 01:51:40 GMT",
        "Sun Sep  9 01:51:40 2001",
        "sun sep  9 01:51:40 2001",
    ] {
        let resp = [
            ("expires", expires),
            ("date", "sunday, 09-sep-01 01:46:40 GMT"),
        ];
        assert_eq!(lifetime(200, &resp), secs(300), "{expires}");
    }
    for garbage in ["Sun, 09 Sep 2001 01:51:40 EST", "tomorrow", "-1"] {
        let resp = [
            ("expires", garbage),
            ("date", "Sun, 09 Sep 2001 01:46:40 GMT"),
        ];
        assert_eq!(lifetime(200, &resp), Duration::ZERO, "{garbage}");
    }
}

// RFC 9111 §5.1, §4.2.3: an Age sent as a list (one line or two) is read by
// its first member; a non-numeric Age is ignored.
#[test]
fn rfc9111_5_1_age_list_first_member() {
    let age = |lines: &[&str]| {
        let pairs: Vec<(&str, &str)> = lines.iter().map(|l| ("age", *l)).collect();
        age_value(&map(&pairs))
    };
    assert_eq!(age(&["7200, 0"]), Some(7200));
    assert_eq!(age(&["0, 7200"]), Some(0));
    assert_eq!(age(&[" 7200 ,0"]), Some(7200));
    assert_eq!(age(&["7200", "0"]), Some(7200));
    assert_eq!(age(&["0", "7200"]), Some(0));
    for bad in ["", ",", "abc", "abc, 7200", "-5", "1.5", "7200 0", "0x10"] {
        assert_eq!(age(&[bad]), None, "{bad:?}");
    }
    assert_eq!(age(&["99999999999999999999999, 1"]), Some(1 << 31));
    // The first member decides freshness: stale with 7200 first, fresh with 0.
    let stale = [("cache-control", "max-age=3600"), ("age", "7200, 0")];
    assert_eq!(
        eval(&[], &stale, 0),
        Verdict::Revalidate(RevalidateReason::Stale)
    );
    let fresh = [("cache-control", "max-age=3600"), ("age", "0, 7200")];
    assert_eq!(eval(&[], &fresh, 0), Verdict::Fresh);
    let two_lines = [
        ("cache-control", "max-age=3600"),
        ("age", "7200"),
        ("age", "0"),
    ];
    assert_eq!(
        eval(&[], &two_lines, 0),
        Verdict::Revalidate(RevalidateReason::Stale)
    );
    let junk = [("cache-control", "max-age=3600"), ("age", "soon, 7200")];
    assert_eq!(eval(&[], &junk, 0), Verdict::Fresh);
}

// RFC 9111 §4.2.2: heuristic freshness and its limits.
#[test]
fn rfc9111_4_2_2_heuristic() {
    let d = date(0);
    let lm = date(-1000);
    assert_eq!(
        lifetime(200, &[("date", &d), ("last-modified", &lm)]),
        secs(100)
    );
    assert_eq!(
        lifetime(200, &[("last-modified", &lm)]),
        secs(100),
        "Date missing: response_time"
    );
    // Capped at heuristic_max (1 day by default).
    let ancient = date(-(100 * DAY as i64));
    assert_eq!(
        lifetime(200, &[("date", &d), ("last-modified", &ancient)]),
        secs(DAY)
    );
    // Not with explicit expiration, nor a Last-Modified in the future.
    assert_eq!(
        lifetime(
            200,
            &[("date", &d), ("last-modified", &lm), ("expires", &d)]
        ),
        Duration::ZERO
    );
    assert_eq!(
        lifetime(200, &[("date", &d), ("last-modified", &date(50))]),
        Duration::ZERO
    );
    // Only for heuristically cacheable statuses, or public.
    assert_eq!(
        lifetime(500, &[("date", &d), ("last-modified", &lm)]),
        Duration::ZERO
    );
    assert_eq!(
        lifetime(
            500,
            &[
                ("date", &d),
                ("last-modified", &lm),
                ("cache-control", "public")
            ]
        ),
        secs(100)
    );
    assert_eq!(lifetime(200, &[("date", &d)]), Duration::ZERO);
}

// RFC 9111 §4.2.2: odd configurations never panic.
#[test]
fn rfc9111_4_2_2_heuristic_config() {
    let resp = map(&[("date", &date(0)), ("last-modified", &date(-1000))]);
    let with = |fraction: f64, max: u64| {
        let cfg = PolicyConfig {
            heuristic_fraction: fraction,
            heuristic_max: secs(max),
            ..PolicyConfig::default()
        };
        freshness_lifetime(StatusCode::OK, &resp, at(0), &cfg)
    };
    assert_eq!(with(0.5, 60), secs(60));
    assert_eq!(with(0.0, 60), Duration::ZERO);
    assert_eq!(with(-1.0, 60), Duration::ZERO);
    assert_eq!(with(f64::NAN, 60), Duration::ZERO);
    assert_eq!(with(f64::INFINITY, 60), secs(60));
    assert_eq!(with(1e300, u64::MAX), Duration::from_secs(u64::MAX));
    assert_eq!(PolicyConfig::default().heuristic_max, secs(DAY));
}

// RFC 9111 §4.2.3: the age calculation, term by term.
#[test]
fn rfc9111_4_2_3_current_age() {
    let times = StoredTimes {
        request_time: at(-5),
        response_time: at(0),
    };
    // No Date, no Age: response_delay + resident_time.
    assert_eq!(current_age(&HeaderMap::new(), &times, at(10)), secs(15));
    // Age header: corrected_age_value = age_value + response_delay.
    assert_eq!(
        current_age(&map(&[("age", "100")]), &times, at(10)),
        secs(115)
    );
    // apparent_age wins when larger.
    let d = date(-30);
    assert_eq!(
        current_age(&map(&[("date", &d), ("age", "3")]), &times, at(10)),
        secs(40)
    );
    // corrected_age_value wins when larger.
    assert_eq!(
        current_age(&map(&[("date", &d), ("age", "60")]), &times, at(10)),
        secs(75)
    );
}

// RFC 9111 §4.2.3: skewed or backwards clocks saturate at zero.
#[test]
fn rfc9111_4_2_3_clock_skew() {
    let times = StoredTimes {
        request_time: at(0),
        response_time: at(0),
    };
    // Origin Date in our future: apparent_age is 0.
    assert_eq!(
        current_age(&map(&[("date", &date(3600))]), &times, at(10)),
        secs(10)
    );
    // `now` before response_time: resident_time is 0.
    assert_eq!(
        current_age(&HeaderMap::new(), &times, at(-100)),
        Duration::ZERO
    );
    // request_time after response_time: response_delay is 0.
    let odd = StoredTimes {
        request_time: at(50),
        response_time: at(0),
    };
    assert_eq!(current_age(&HeaderMap::new(), &odd, at(1)), secs(1));
    // Invalid Date and Age are ignored; a huge Age saturates (RFC 9111 §1.2.2).
    assert_eq!(
        current_age(&map(&[("date", "0"), ("age", "-5")]), &times, at(2)),
        secs(2)
    );
    let huge = map(&[("age", "99999999999999999999999")]);
    assert_eq!(current_age(&huge, &times, at(0)), secs(1 << 31));
}

// RFC 9111 §5.1: Age is whole seconds, capped at 2^31.
#[test]
fn rfc9111_5_1_age_header_value() {
    assert_eq!(age_header_value(Duration::from_millis(10_900)), "10");
    assert_eq!(age_header_value(Duration::ZERO), "0");
    assert_eq!(age_header_value(Duration::MAX), "2147483648");
}

// RFC 9111 §4.2: fresh while lifetime > age, stale from then on.
#[test]
fn rfc9111_4_2_fresh_then_stale() {
    let stored = [("cache-control", "max-age=60")];
    assert_eq!(eval(&[], &stored, 59), Verdict::Fresh);
    assert_eq!(
        eval(&[], &stored, 60),
        Verdict::Revalidate(RevalidateReason::Stale)
    );
    assert_eq!(
        eval(
            &[],
            &[("last-modified", &date(-1000)), ("date", &date(0))],
            99
        ),
        Verdict::Fresh
    );
    assert_eq!(
        Verdict::Revalidate(RevalidateReason::Stale).as_str(),
        "revalidate"
    );
    assert_eq!(
        RevalidateReason::RequestMinFresh.as_str(),
        "request-min-fresh"
    );
    assert_eq!(
        Verdict::StaleWhileRevalidate.as_str(),
        "stale-while-revalidate"
    );
}

// RFC 9111 §5.2.2.4: response no-cache always revalidates; qualified does not.
#[test]
fn rfc9111_5_2_2_4_response_no_cache() {
    let v = eval(
        &[],
        &[("cache-control", "max-age=60, no-cache, immutable")],
        1,
    );
    assert_eq!(v, Verdict::Revalidate(RevalidateReason::ResponseNoCache));
    assert_eq!(
        eval(&[], &[("cache-control", "max-age=60, no-cache=\"x\"")], 1),
        Verdict::Fresh
    );
}

// RFC 9111 §5.2.1.4, §5.4: request no-cache and Pragma.
#[test]
fn rfc9111_5_2_1_4_request_no_cache() {
    let stored = [("cache-control", "max-age=60")];
    let no_cache = Verdict::Revalidate(RevalidateReason::RequestNoCache);
    assert_eq!(eval(&[("cache-control", "no-cache")], &stored, 1), no_cache);
    assert_eq!(eval(&[("pragma", "no-cache")], &stored, 1), no_cache);
    assert_eq!(
        eval(
            &[("pragma", "no-cache"), ("cache-control", "max-stale")],
            &stored,
            1
        ),
        Verdict::Fresh
    );
}

// RFC 8246 §2: a fresh immutable response ignores reloads.
#[test]
fn rfc8246_2_immutable() {
    let stored = [("cache-control", "max-age=60, immutable")];
    assert_eq!(
        eval(&[("cache-control", "no-cache")], &stored, 10),
        Verdict::Fresh
    );
    assert_eq!(eval(&[("pragma", "no-cache")], &stored, 10), Verdict::Fresh);
    assert_eq!(
        eval(&[("cache-control", "max-age=0")], &stored, 10),
        Verdict::Fresh
    );
    assert_eq!(
        eval(&[("cache-control", "max-age=5")], &stored, 10),
        Verdict::Revalidate(RevalidateReason::RequestMaxAge)
    );
    assert_eq!(
        eval(&[("cache-control", "no-cache")], &stored, 61),
        Verdict::Revalidate(RevalidateReason::RequestNoCache)
    );
}

// RFC 9111 §5.2.1.1: request max-age bounds the age.
#[test]
fn rfc9111_5_2_1_1_request_max_age() {
    let stored = [("cache-control", "max-age=600")];
    assert_eq!(
        eval(&[("cache-control", "max-age=30")], &stored, 30),
        Verdict::Fresh
    );
    assert_eq!(
        eval(&[("cache-control", "max-age=30")], &stored, 31),
        Verdict::Revalidate(RevalidateReason::RequestMaxAge)
    );
    assert_eq!(
        eval(&[("cache-control", "max-age=0")], &stored, 1),
        Verdict::Revalidate(RevalidateReason::RequestMaxAge)
    );
}

// RFC 9111 §5.2.1.3: min-fresh needs that much freshness left.
#[test]
fn rfc9111_5_2_1_3_min_fresh() {
    let stored = [("cache-control", "max-age=100")];
    assert_eq!(
        eval(&[("cache-control", "min-fresh=60")], &stored, 50),
        Verdict::Revalidate(RevalidateReason::RequestMinFresh)
    );
    assert_eq!(
        eval(&[("cache-control", "min-fresh=40")], &stored, 50),
        Verdict::Fresh
    );
}

// RFC 9111 §5.2.1.2: max-stale accepts stale responses.
#[test]
fn rfc9111_5_2_1_2_max_stale() {
    let stored = [("cache-control", "max-age=60")];
    assert_eq!(
        eval(&[("cache-control", "max-stale")], &stored, 10_000),
        Verdict::StaleAllowed
    );
    assert_eq!(
        eval(&[("cache-control", "max-stale=30")], &stored, 90),
        Verdict::StaleAllowed
    );
    assert_eq!(
        eval(&[("cache-control", "max-stale=30")], &stored, 91),
        Verdict::Revalidate(RevalidateReason::Stale)
    );
}

// RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8, §5.2.2.10: never served stale.
#[test]
fn rfc9111_4_2_4_must_revalidate_beats_max_stale_and_swr() {
    for cc in [
        "max-age=60, must-revalidate, stale-while-revalidate=600",
        "max-age=60, proxy-revalidate, stale-while-revalidate=600",
        "s-maxage=60, stale-while-revalidate=600",
    ] {
        let v = eval(
            &[("cache-control", "max-stale")],
            &[("cache-control", cc)],
            61,
        );
        assert_eq!(v, Verdict::Revalidate(RevalidateReason::Stale), "{cc}");
        assert!(must_not_serve_stale(&map(&[("cache-control", cc)])), "{cc}");
        assert_eq!(
            eval(&[], &[("cache-control", cc)], 30),
            Verdict::Fresh,
            "{cc}"
        );
    }
    assert!(!must_not_serve_stale(&map(&[(
        "cache-control",
        "max-age=60"
    )])));
}

// RFC 5861 §3: stale-while-revalidate window.
#[test]
fn rfc5861_3_stale_while_revalidate() {
    let stored = [("cache-control", "max-age=60, stale-while-revalidate=30")];
    assert_eq!(eval(&[], &stored, 90), Verdict::StaleWhileRevalidate);
    assert_eq!(
        eval(&[], &stored, 91),
        Verdict::Revalidate(RevalidateReason::Stale)
    );
    assert_eq!(
        eval(&[("cache-control", "max-stale=100")], &stored, 100),
        Verdict::StaleAllowed
    );
}

// RFC 5861 §4: stale-if-error from the response or the request.
#[test]
fn rfc5861_4_stale_if_error() {
    let allows = |req: &[(&str, &str)], cc: &str, age: u64| {
        stale_if_error_allows(
            &map(req),
            &map(&[("cache-control", cc)]),
            secs(60),
            secs(age),
        )
    };
    assert!(allows(&[], "max-age=60, stale-if-error=60", 120));
    assert!(!allows(&[], "max-age=60, stale-if-error=60", 121));
    assert!(allows(
        &[("cache-control", "stale-if-error=120")],
        "max-age=60",
        150
    ));
    assert!(allows(
        &[("cache-control", "stale-if-error=10")],
        "max-age=60, stale-if-error=600",
        150
    ));
    assert!(!allows(&[], "max-age=60", 61));
    assert!(
        allows(&[], "max-age=60, stale-if-error=1", 30),
        "fresh counts as staleness 0"
    );
    // RFC 9111 §4.2.4: explicit directives forbid serving stale.
    for cc in [
        "max-age=60, must-revalidate",
        "max-age=60, proxy-revalidate",
        "s-maxage=60",
        "max-age=60, no-cache",
    ] {
        let with_sie = format!("{cc}, stale-if-error=600");
        assert!(
            !allows(&[("cache-control", "stale-if-error=600")], &with_sie, 61),
            "{cc}"
        );
    }
}
