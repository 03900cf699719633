//! Tests for Vary handling (RFC 9111 §4.1).

use super::*;
use http::HeaderValue;

fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    h
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

// RFC 9111 §4.1: field order and case in Vary do not matter.
#[test]
fn rfc9111_4_1_vary_names_sorted_lowercased_deduplicated() {
    let ab = vary_names(&map(&[("vary", b"A, B")])).unwrap();
    let ba = vary_names(&map(&[("vary", b"b, a")])).unwrap();
    assert_eq!(ab, ba);
    assert_eq!(ab, names(&["a", "b"]));
    let multi = map(&[
        ("vary", b"Accept-Encoding"),
        ("vary", b" accept ,accept-encoding,"),
    ]);
    assert_eq!(
        vary_names(&multi).unwrap(),
        names(&["accept", "accept-encoding"])
    );
    assert_eq!(vary_names(&HeaderMap::new()).unwrap(), Vec::<String>::new());
}

// RFC 9111 §4.1: "Vary: *" never matches.
#[test]
fn rfc9111_4_1_vary_star_is_none() {
    assert_eq!(vary_names(&map(&[("vary", b"*")])), None);
    assert_eq!(
        vary_names(&map(&[("vary", b"accept"), ("vary", b"cookie, *")])),
        None
    );
}

// RFC 9111 §4.1: whitespace-only differences normalize to one key.
#[test]
fn rfc9111_4_1_whitespace_normalized() {
    let n = names(&["accept-encoding"]);
    let a = secondary_key(&n, &map(&[("accept-encoding", b"gzip,deflate")]));
    let b = secondary_key(&n, &map(&[("accept-encoding", b"  gzip ,  deflate ")]));
    let c = secondary_key(
        &n,
        &map(&[
            ("accept-encoding", b"gzip"),
            ("accept-encoding", b"deflate"),
        ]),
    );
    let d = secondary_key(&n, &map(&[("Accept-Encoding", b"gzip,\t deflate")]));
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a, d);
    let inner = |v: &'static [u8]| secondary_key(&names(&["x"]), &map(&[("x", v)]));
    assert_eq!(inner(b"a   b"), inner(b"a b"));
}

// RFC 9111 §4.1: an absent field differs from an empty one and values differ.
#[test]
fn rfc9111_4_1_absent_empty_and_different_values_differ() {
    let n = names(&["accept-encoding"]);
    let absent = secondary_key(&n, &HeaderMap::new());
    let empty = secondary_key(&n, &map(&[("accept-encoding", b"")]));
    let gzip = secondary_key(&n, &map(&[("accept-encoding", b"gzip")]));
    let br = secondary_key(&n, &map(&[("accept-encoding", b"br")]));
    assert_ne!(absent, empty);
    assert_ne!(empty, gzip);
    assert_ne!(gzip, br);
    // A value of "-" does not look like the absent marker.
    let dash = secondary_key(&n, &map(&[("accept-encoding", b"-")]));
    assert_ne!(dash, absent);
}

// RFC 9111 §4.1: names in any order or case give the same key.
#[test]
fn rfc9111_4_1_name_order_and_case_do_not_matter() {
    let req = map(&[("accept", b"text/html"), ("accept-language", b"fr")]);
    let one = secondary_key(&names(&["accept", "accept-language"]), &req);
    let two = secondary_key(&names(&["Accept-Language", "ACCEPT", "accept"]), &req);
    assert_eq!(one, two);
}

// Non-UTF-8 values are escaped, never merged by lossy decoding.
#[test]
fn rfc9111_4_1_non_utf8_values_stay_distinct() {
    let n = names(&["x"]);
    let a = secondary_key(&n, &map(&[("x", b"\xff")]));
    let b = secondary_key(&n, &map(&[("x", b"\xfe")]));
    let c = secondary_key(&n, &map(&[("x", b"%FF")]));
    assert_ne!(a, b);
    assert_ne!(a, c);
}
