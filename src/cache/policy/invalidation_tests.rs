//! Tests for invalidation after unsafe requests (RFC 9111 §4.4, RFC 3986 §5.2).

use super::*;
use http::HeaderValue;

fn uri(text: &str) -> Uri {
    text.parse().unwrap()
}

fn targets(request: &str, fields: &[(header::HeaderName, &str)]) -> Vec<String> {
    let mut h = HeaderMap::new();
    for (name, value) in fields {
        h.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    invalidation_targets(&uri(request), &h)
        .iter()
        .map(|u| u.to_string())
        .collect()
}

// RFC 9111 §4.4: unsafe methods with non-error statuses invalidate.
#[test]
fn rfc9111_4_4_unsafe_method_non_error_status() {
    let ok = StatusCode::OK;
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        assert!(invalidates(&m, ok), "{m}");
        assert!(invalidates(&m, StatusCode::SEE_OTHER), "{m}");
        assert!(!invalidates(&m, StatusCode::NOT_FOUND), "{m}");
        assert!(!invalidates(&m, StatusCode::BAD_GATEWAY), "{m}");
    }
    for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
        assert!(!invalidates(&m, ok), "{m}");
    }
    let unknown = Method::from_bytes(b"PURGEALL").unwrap();
    assert!(invalidates(&unknown, StatusCode::NO_CONTENT));
    assert!(!invalidates(&Method::POST, StatusCode::CONTINUE));
}

// RFC 9111 §4.4: Location and Content-Location of the same origin.
#[test]
fn rfc9111_4_4_location_and_content_location_same_origin() {
    let got = targets(
        "http://a.test/items/new?x=1",
        &[
            (header::LOCATION, "http://A.test:80/items/7#frag"),
            (header::CONTENT_LOCATION, "/items/7/v?y"),
        ],
    );
    assert_eq!(
        got,
        [
            "http://a.test/items/new?x=1",
            "http://A.test:80/items/7",
            "http://a.test/items/7/v?y",
        ]
    );
}

// RFC 9111 §4.4: another origin is never a target.
#[test]
fn rfc9111_4_4_other_origin_ignored() {
    let got = targets(
        "http://a.test/p",
        &[
            (header::LOCATION, "http://b.test/p"),
            (header::CONTENT_LOCATION, "https://a.test/p2"),
            (header::LOCATION, "http://a.test:8080/p3"),
            (header::CONTENT_LOCATION, "//evil.test/x"),
            (header::LOCATION, "http://a.test:99999/p4"),
        ],
    );
    assert_eq!(got, ["http://a.test/p"]);
}

// RFC 3986 §5.2: relative references resolve against the request URI.
#[test]
fn rfc3986_5_2_relative_references() {
    let base = "http://a.test/b/c/d;p?q";
    let one = |r: &str| targets(base, &[(header::LOCATION, r)]).get(1).cloned();
    assert_eq!(one("g").as_deref(), Some("http://a.test/b/c/g"));
    assert_eq!(one("./g").as_deref(), Some("http://a.test/b/c/g"));
    assert_eq!(one("g/").as_deref(), Some("http://a.test/b/c/g/"));
    assert_eq!(one("/g").as_deref(), Some("http://a.test/g"));
    assert_eq!(one("?y").as_deref(), Some("http://a.test/b/c/d;p?y"));
    assert_eq!(one("g?y#s").as_deref(), Some("http://a.test/b/c/g?y"));
    assert_eq!(one("../g").as_deref(), Some("http://a.test/b/g"));
    assert_eq!(one("../../../g").as_deref(), Some("http://a.test/g"));
    assert_eq!(one("/./g/../h").as_deref(), Some("http://a.test/h"));
    assert_eq!(one("//a.test/z").as_deref(), Some("http://a.test/z"));
    assert_eq!(one(".."), Some("http://a.test/b/".to_owned()));
    // The request URI itself (or "#frag") is not listed twice.
    assert_eq!(one("#frag"), None);
    assert_eq!(one(""), None);
}

// Garbage or a relative request URI never panics.
#[test]
fn rfc9111_4_4_garbage_is_ignored() {
    let got = targets(
        "http://a.test/p",
        &[
            (header::LOCATION, "http://a.test/has space"),
            (header::LOCATION, "http://[bad"),
        ],
    );
    assert_eq!(got, ["http://a.test/p"]);
    assert_eq!(
        targets("/relative", &[(header::LOCATION, "/x")]),
        ["/relative"]
    );
}

// RFC 9110 §8.7, RFC 3986 §5.2: a Content-Location naming the request URI,
// absolute or relative, in any spelling of the same cache key.
#[test]
fn rfc9110_8_7_content_location_is_request_uri() {
    let names = |request: &str, location: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_LOCATION,
            HeaderValue::from_str(location).unwrap(),
        );
        content_location_is_request_uri(&uri(request), &h)
    };
    let r = "http://example.com/a/form?x=1";
    assert!(names(r, "http://example.com/a/form?x=1"));
    assert!(names(r, "HTTP://EXAMPLE.com:80/a/form?x=1"));
    assert!(names(r, "/a/form?x=1"));
    assert!(names(r, "form?x=1"));
    assert!(names(r, "./form?x=1#top"));
    assert!(!names(r, "/a/form"));
    assert!(!names(r, "/a/form?x=2"));
    assert!(!names(r, "http://other.example/a/form?x=1"));
    assert!(!names(r, "/A/form?x=1"));
    assert!(!content_location_is_request_uri(&uri(r), &HeaderMap::new()));
}
