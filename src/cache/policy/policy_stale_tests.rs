//! Tests for serving stale when the origin cannot be reached (RFC 9111
//! §4.2.4) and the `ttl` that such an answer reports (RFC 9211 §2.4).

use super::*;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};

const WEEK: u64 = 7 * 24 * 60 * 60;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
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

/// A response with max-age=60 stored `age` seconds ago.
fn allows(req: &[(&str, &str)], cc: &str, age: u64) -> bool {
    stale_on_unreachable_allows(
        &map(req),
        &map(&[("cache-control", cc)]),
        secs(60),
        secs(age),
        &PolicyConfig::default(),
    )
}

// RFC 9111 §4.2.4: a disconnected cache may serve stale, up to the
// configured maximum staleness (a week by default, like Squid's max_stale).
#[test]
fn rfc9111_4_2_4_disconnected_cache_serves_stale_up_to_max_stale() {
    assert!(PolicyConfig::default().max_stale == secs(WEEK));
    assert!(allows(&[], "max-age=60", 61));
    assert!(allows(&[], "max-age=60", 60 + WEEK));
    assert!(!allows(&[], "max-age=60", 61 + WEEK));
    let off = PolicyConfig {
        max_stale: Duration::ZERO,
        ..PolicyConfig::default()
    };
    let stored = map(&[("cache-control", "max-age=60")]);
    assert!(!stale_on_unreachable_allows(
        &HeaderMap::new(),
        &stored,
        secs(60),
        secs(61),
        &off
    ));
    let hour = PolicyConfig {
        max_stale: secs(3600),
        ..PolicyConfig::default()
    };
    assert!(stale_on_unreachable_allows(
        &HeaderMap::new(),
        &stored,
        secs(60),
        secs(3660),
        &hour
    ));
    assert!(!stale_on_unreachable_allows(
        &HeaderMap::new(),
        &stored,
        secs(60),
        secs(3661),
        &hour
    ));
}

// RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.4, §5.2.2.8, §5.2.2.10: explicit
// response directives forbid it, whatever stale-if-error says.
#[test]
fn rfc9111_4_2_4_response_directives_forbid_serving_stale() {
    for cc in [
        "max-age=60, must-revalidate",
        "max-age=60, proxy-revalidate",
        "s-maxage=60",
        "max-age=60, s-maxage=60",
        "max-age=60, no-cache",
        "no-cache, max-age=60, stale-if-error=600",
        "max-age=60, must-revalidate, stale-if-error=600",
    ] {
        assert!(!allows(&[], cc, 61), "{cc}");
    }
    // A qualified no-cache only strips the named fields from storage.
    assert!(allows(&[], "max-age=60, no-cache=\"x-private\"", 61));
}

// RFC 9111 §5.2.1: the request forbids it with no-cache (§5.2.1.4, and
// Pragma §5.4), max-age (§5.2.1.1), min-fresh (§5.2.1.3), or a max-stale
// (§5.2.1.2) / stale-if-error (RFC 5861 §4) bound tighter than the staleness.
#[test]
fn rfc9111_5_2_1_request_directives_forbid_serving_stale() {
    let cc = "max-age=60";
    for req in [
        [("cache-control", "no-cache")],
        [("pragma", "no-cache")],
        [("cache-control", "max-age=0")],
        [("cache-control", "max-age=100")],
        [("cache-control", "min-fresh=1")],
        [("cache-control", "max-stale=10")],
        [("cache-control", "stale-if-error=10")],
    ] {
        assert!(!allows(&req, cc, 120), "{req:?}");
    }
    for req in [
        [("cache-control", "max-age=200")],
        [("cache-control", "max-stale")],
        [("cache-control", "max-stale=60")],
        [("cache-control", "stale-if-error=60")],
        [("cache-control", "no-transform")],
    ] {
        assert!(allows(&req, cc, 120), "{req:?}");
    }
    // Pragma is ignored when Cache-Control is present (RFC 9111 §5.4).
    assert!(allows(
        &[("cache-control", "max-stale"), ("pragma", "no-cache")],
        cc,
        120
    ));
}

// RFC 9211 §2.4: ttl is the remaining freshness, negative once stale; a
// stale response rounds its staleness up, so it never reads 0.
#[test]
fn rfc9211_2_4_ttl_is_negative_when_stale() {
    assert_eq!(cache_status_ttl(secs(60), secs(10)), 50);
    assert_eq!(cache_status_ttl(secs(60), secs(60)), -1);
    assert_eq!(cache_status_ttl(secs(60), secs(3660)), -3600);
    assert_eq!(
        cache_status_ttl(secs(60), Duration::from_millis(60_500)),
        -1
    );
    assert_eq!(
        cache_status_ttl(secs(60), Duration::from_millis(62_500)),
        -3
    );
    assert_eq!(cache_status_ttl(Duration::ZERO, Duration::MAX), i64::MIN);
}
