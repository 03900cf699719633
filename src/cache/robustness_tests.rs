//! No panic on any header input (RFC 9111 §1.2.2 overflow rules, RFC 9110
//! §5.5 field values): every public function of the policy core is fed
//! pseudo-random field values built from troublesome fragments, with extreme
//! times and statuses, and a few invariants are checked.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::cache::policy::cache_control::{request_no_cache, CacheControl};
use crate::cache::policy::key::cache_key;
use crate::cache::policy::range::{content_range_value, evaluate_range, RangeVerdict};
use crate::cache::policy::vary::{secondary_key, vary_names};
use crate::cache::policy::*;

const NAMES: &[&str] = &[
    "cache-control",
    "pragma",
    "date",
    "expires",
    "last-modified",
    "age",
    "etag",
    "vary",
    "set-cookie",
    "connection",
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "location",
    "content-location",
    "authorization",
    "accept-encoding",
    "content-length",
];

const FRAGMENTS: &[&[u8]] = &[
    b"max-age",
    b"s-maxage",
    b"no-cache",
    b"private",
    b"public",
    b"no-store",
    b"immutable",
    b"must-revalidate",
    b"max-stale",
    b"min-fresh",
    b"stale-while-revalidate",
    b"stale-if-error",
    b"=",
    b",",
    b" ",
    b"\t",
    b"\"",
    b"\\",
    b"W/",
    b"*",
    b"-",
    b"bytes",
    b"0",
    b"1",
    b"60",
    b"99999999999999999999999",
    b"18446744073709551616",
    b"\xff",
    b"\xc3\x28",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Fri, 31 Dec 9999 23:59:59 GMT",
    b"Thu, 01 Jan 1970 00:00:00 GMT",
    b"http://a.test",
    b"/",
    b"..",
    b"?",
    b"#",
    b":",
    b"//",
    b"[::1]",
    b"x-foo",
    b"gzip",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize].clone()
    }

    fn headers(&mut self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for _ in 0..self.next() % 8 {
            let mut value = Vec::new();
            for _ in 0..self.next() % 8 {
                value.extend_from_slice(self.pick(FRAGMENTS));
            }
            if let Ok(v) = HeaderValue::from_bytes(&value) {
                h.append(HeaderName::from_static(self.pick(NAMES)), v);
            }
        }
        h
    }
}

#[test]
fn rfc9111_1_2_2_no_panic_on_any_input() {
    let times = [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(784_111_777),
        UNIX_EPOCH + Duration::from_secs(253_402_300_799),
        UNIX_EPOCH + Duration::from_secs(1 << 40),
    ];
    let methods = [Method::GET, Method::HEAD, Method::POST, Method::DELETE];
    let statuses = [100, 200, 204, 206, 304, 404, 500, 599];
    let cfg = PolicyConfig::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let (req, resp) = (rng.headers(), rng.headers());
        let method = &rng.pick(&methods);
        let status = StatusCode::from_u16(rng.pick(&statuses)).unwrap();
        let st = StoredTimes {
            request_time: rng.pick(&times),
            response_time: rng.pick(&times),
        };
        let now = rng.pick(&times);

        let _ = CacheControl::from_headers(&req);
        let _ = request_no_cache(&req);
        if let Err(reason) = storability(method, &req, status, &resp, &cfg) {
            assert!(!reason.as_str().is_empty());
        }
        let stored = headers_to_store(&resp);
        assert!(!stored.contains_key("set-cookie") && !stored.contains_key("connection"));
        let lifetime = freshness_lifetime(status, &stored, st.response_time, &cfg);
        let age = current_age(&stored, &st, now);
        assert!(age_header_value(age)
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok());
        assert!(!evaluate(&req, status, &stored, &st, now, &cfg)
            .as_str()
            .is_empty());
        let _ = stale_if_error_allows(&req, &stored, lifetime, age);
        let _ = must_not_serve_stale(&stored);
        let _ = revalidation_headers(&stored);
        let _ = validators_match_304(&stored, &resp);
        let _ = update_headers_from_304(&stored, &resp);
        let _ = client_conditional(method, &req, &stored, Some(now));
        let _ = invalidates(method, status);
        let base: Uri = "http://a.test/b/c?q".parse().unwrap();
        for uri in invalidation_targets(&base, &resp) {
            assert!(cache_key(&uri).is_some());
        }
        if let Some(names) = vary_names(&resp) {
            let _ = secondary_key(&names, &req);
        }
        let len = rng.next() % 4;
        if let RangeVerdict::Single { start, end } = evaluate_range(method, &req, &stored, len) {
            assert!(start <= end && end < len);
            let _ = content_range_value(start, end, len);
        }
    }
}
