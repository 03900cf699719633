//! Tests for validators, revalidation, 304 updates and client conditionals
//! (RFC 9110 §8.8, §13; RFC 9111 §3.2, §4.3).

use super::*;
use http::HeaderValue;
use std::time::{Duration, UNIX_EPOCH};

const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const LATER: &str = "Sun, 06 Nov 1994 09:49:37 GMT";
const LM_SECS: u64 = 784_111_777;

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

// RFC 9110 §8.8.3: entity-tag syntax, tolerant of the prefix case.
#[test]
fn rfc9110_8_8_3_entity_tag_parse() {
    let strong = EntityTag::parse(b" \"abc\" ").unwrap();
    assert!(!strong.weak);
    assert_eq!(strong.opaque, b"abc");
    let weak = EntityTag::parse(b"W/\"abc\"").unwrap();
    assert!(weak.weak);
    assert!(EntityTag::parse(b"w/\"x\"").unwrap().weak);
    assert_eq!(EntityTag::parse(b"\"\"").unwrap().opaque, b"");
    for bad in [&b"abc"[..], b"\"abc", b"\"a\"b", b"W/abc", b""] {
        assert_eq!(EntityTag::parse(bad), None);
    }
}

// RFC 9110 §8.8.3.2: strong vs weak comparison table.
#[test]
fn rfc9110_8_8_3_2_comparison() {
    let w1 = EntityTag::parse(b"W/\"1\"").unwrap();
    let w2 = EntityTag::parse(b"W/\"2\"").unwrap();
    let s1 = EntityTag::parse(b"\"1\"").unwrap();
    assert!(!w1.strong_eq(&w1) && w1.weak_eq(&w1));
    assert!(!w1.strong_eq(&w2) && !w1.weak_eq(&w2));
    assert!(!w1.strong_eq(&s1) && w1.weak_eq(&s1));
    assert!(s1.strong_eq(&s1) && s1.weak_eq(&s1));
}

// RFC 9110 §13.1.2: If-None-Match lists across lines, "*", garbage skipped.
#[test]
fn rfc9110_13_1_2_entity_tag_list() {
    let h = map(&[
        ("if-none-match", "\"a,b\", W/\"c\" , junk, \"d\"x, "),
        ("if-none-match", "*"),
    ]);
    let (star, tags) = entity_tag_list(&h, &header::IF_NONE_MATCH);
    assert!(star);
    let opaques: Vec<&[u8]> = tags.iter().map(|t| t.opaque).collect();
    assert_eq!(opaques, [&b"a,b"[..], b"c", b"d"]);
}

// RFC 9111 §4.3.1: validators copied as is; no date invented.
#[test]
fn rfc9111_4_3_1_revalidation_headers() {
    let h = revalidation_headers(&map(&[("etag", "W/\"v\""), ("last-modified", LM)]));
    assert_eq!(h.get(header::IF_NONE_MATCH).unwrap(), "W/\"v\"");
    assert_eq!(h.get(header::IF_MODIFIED_SINCE).unwrap(), LM);
    assert_eq!(h.len(), 2);
    assert!(revalidation_headers(&map(&[("date", LM), ("content-type", "x/y")])).is_empty());
    assert!(revalidation_headers(&map(&[("last-modified", "yesterday")])).is_empty());
    assert!(revalidation_headers(&map(&[("etag", "  ")])).is_empty());
}

// RFC 9111 §4.3.4: which stored response a 304 applies to.
#[test]
fn rfc9111_4_3_4_validators_match_304() {
    let stored = map(&[("etag", "\"v1\""), ("last-modified", LM)]);
    assert!(validators_match_304(&stored, &map(&[("etag", "\"v1\"")])));
    assert!(!validators_match_304(&stored, &map(&[("etag", "\"v2\"")])));
    assert!(validators_match_304(&stored, &map(&[("etag", "W/\"v1\"")])));
    assert!(validators_match_304(
        &stored,
        &map(&[("last-modified", LM)])
    ));
    assert!(!validators_match_304(
        &stored,
        &map(&[("last-modified", LATER)])
    ));
    assert!(validators_match_304(&stored, &HeaderMap::new()));
    // A strong 304 ETag never matches a weak stored one, nor a missing one.
    let weak_stored = map(&[("etag", "W/\"v1\"")]);
    assert!(!validators_match_304(
        &weak_stored,
        &map(&[("etag", "\"v1\"")])
    ));
    assert!(!validators_match_304(
        &HeaderMap::new(),
        &map(&[("etag", "\"v1\"")])
    ));
    assert!(!validators_match_304(&stored, &map(&[("etag", "garbage")])));
}

// RFC 9111 §3.2, §4.3.4: a 304's fields replace the stored ones, except
// Content-Length, hop-by-hop, Set-Cookie and fields excluded from storage.
#[test]
fn rfc9111_3_2_update_headers_from_304() {
    let stored = map(&[
        ("cache-control", "max-age=10"),
        ("content-length", "42"),
        ("content-type", "text/plain"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("etag", "\"v1\""),
    ]);
    let not_modified = map(&[
        ("cache-control", "max-age=600, private=\"x-secret\""),
        ("content-length", "0"),
        ("x-multi", "c"),
        ("set-cookie", "id=1"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "s"),
        ("expires", LATER),
    ]);
    let merged = update_headers_from_304(&stored, &not_modified);
    assert_eq!(
        merged.get("cache-control").unwrap(),
        "max-age=600, private=\"x-secret\""
    );
    assert_eq!(merged.get("content-length").unwrap(), "42");
    assert_eq!(merged.get("content-type").unwrap(), "text/plain");
    let multi: Vec<_> = merged.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["c"]);
    assert_eq!(merged.get("expires").unwrap(), LATER);
    assert_eq!(merged.get("etag").unwrap(), "\"v1\"");
    for gone in [
        "set-cookie",
        "connection",
        "x-hop",
        "keep-alive",
        "x-secret",
    ] {
        assert!(!merged.contains_key(gone), "{gone}");
    }
}

// RFC 9110 §13.1.2: If-None-Match uses weak comparison; "*" matches.
#[test]
fn rfc9110_13_1_2_if_none_match() {
    let stored = map(&[("etag", "\"v1\""), ("last-modified", LM)]);
    let check = |inm: &str| {
        client_conditional(&Method::GET, &map(&[("if-none-match", inm)]), &stored, None)
    };
    assert_eq!(check("\"v1\""), Conditional::NotModified);
    assert_eq!(check("W/\"v1\""), Conditional::NotModified);
    assert_eq!(check("\"x\", \"v1\""), Conditional::NotModified);
    assert_eq!(check("*"), Conditional::NotModified);
    assert_eq!(check("\"v2\""), Conditional::Modified);
    assert_eq!(check("garbage"), Conditional::Modified);
    let no_etag = map(&[("last-modified", LM)]);
    let req = map(&[("if-none-match", "\"v1\"")]);
    assert_eq!(
        client_conditional(&Method::HEAD, &req, &no_etag, None),
        Conditional::Modified
    );
}

// RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present.
#[test]
fn rfc9110_13_1_3_if_none_match_takes_precedence() {
    let stored = map(&[("etag", "\"v1\""), ("last-modified", LM)]);
    let req = map(&[("if-none-match", "\"v2\""), ("if-modified-since", LATER)]);
    assert_eq!(
        client_conditional(&Method::GET, &req, &stored, None),
        Conditional::Modified
    );
}

// RFC 9110 §13.1.3, §13.2.2: If-Modified-Since against Last-Modified.
#[test]
fn rfc9110_13_1_3_if_modified_since() {
    let stored = map(&[("last-modified", LM)]);
    let check = |ims: &str| {
        client_conditional(
            &Method::GET,
            &map(&[("if-modified-since", ims)]),
            &stored,
            None,
        )
    };
    assert_eq!(check(LM), Conditional::NotModified);
    assert_eq!(check(LATER), Conditional::NotModified);
    assert_eq!(
        check("Sun, 06 Nov 1994 08:49:36 GMT"),
        Conditional::Modified
    );
    assert_eq!(check("not a date"), Conditional::Absent);
    let twice = map(&[("if-modified-since", LM), ("if-modified-since", LM)]);
    assert_eq!(
        client_conditional(&Method::GET, &twice, &stored, None),
        Conditional::Absent
    );
    let post = map(&[("if-modified-since", LM)]);
    assert_eq!(
        client_conditional(&Method::POST, &post, &stored, None),
        Conditional::Absent
    );
    assert_eq!(
        client_conditional(&Method::GET, &HeaderMap::new(), &stored, None),
        Conditional::Absent
    );
}

// RFC 9110 §13.2.2: without Last-Modified the fallback date is used, at
// one-second resolution.
#[test]
fn rfc9110_13_2_2_last_modified_fallback() {
    let req = map(&[("if-modified-since", LM)]);
    let fallback = UNIX_EPOCH + Duration::from_secs(LM_SECS) + Duration::from_millis(700);
    let none = HeaderMap::new();
    assert_eq!(
        client_conditional(&Method::GET, &req, &none, Some(fallback)),
        Conditional::NotModified
    );
    let newer = fallback + Duration::from_secs(1);
    assert_eq!(
        client_conditional(&Method::GET, &req, &none, Some(newer)),
        Conditional::Modified
    );
    assert_eq!(
        client_conditional(&Method::GET, &req, &none, None),
        Conditional::Modified
    );
    assert_eq!(Conditional::NotModified.as_str(), "not-modified");
}
