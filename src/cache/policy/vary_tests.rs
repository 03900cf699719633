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

// RFC 9111 §4.1 (normalizing values known to have identical semantics) with
// RFC 9110 §12.4.2 and §12.5: preference lists match whatever their member
// order, case, whitespace, repeats and `q=1` weights.
#[test]
fn rfc9111_4_1_negotiation_lists_are_normalized() {
    for field in [
        "accept-language",
        "accept-encoding",
        "accept",
        "accept-charset",
    ] {
        let n = names(&[field]);
        let key = |v: &'static [u8]| secondary_key(&n, &map(&[(field, v)]));
        assert_eq!(key(b"en, fr"), key(b"fr, en"), "{field}");
        assert_eq!(key(b"EN"), key(b"en"), "{field}");
        assert_eq!(key(b"en,fr"), key(b" FR ,\ten "), "{field}");
        assert_eq!(key(b"en, fr"), key(b"fr, en, fr"), "{field}");
        assert_ne!(key(b"en"), key(b"fr"), "{field}");
        assert_ne!(key(b"en"), key(b"en, fr"), "{field}");
    }
    let n = names(&["accept-language"]);
    let key = |v: &'static [u8]| secondary_key(&n, &map(&[("accept-language", v)]));
    // Weights: whitespace and case around them, trailing zeros, and q=1.
    assert_eq!(key(b"en;q=0.5, fr"), key(b"FR, en ; Q=0.500"));
    assert_eq!(key(b"en;q=1, fr;q=1.0"), key(b"fr, en"));
    assert_ne!(key(b"en;q=0.5, fr"), key(b"en, fr;q=0.5"));
    assert_ne!(key(b"en;q=0.5"), key(b"en"));
    // Lines combine as one list (RFC 9110 §5.3).
    let two_lines = secondary_key(
        &n,
        &map(&[("accept-language", b"fr"), ("accept-language", b"EN")]),
    );
    assert_eq!(two_lines, key(b"en, fr"));
    // Absent and empty stay distinct.
    assert_ne!(secondary_key(&n, &HeaderMap::new()), key(b""));
    assert_eq!(key(b""), key(b" , "));
    // Media ranges with parameters; an invalid weight is kept as written.
    let a = names(&["accept"]);
    let accept = |v: &'static [u8]| secondary_key(&a, &map(&[("accept", v)]));
    assert_eq!(
        accept(b"text/html;level=1, application/json;q=0.9"),
        accept(b"Application/JSON; q=0.90, TEXT/HTML; level=1")
    );
    assert_ne!(accept(b"text/html;q=2"), accept(b"text/html"));
    // Other fields keep their order and case.
    let x = names(&["x-custom"]);
    let custom = |v: &'static [u8]| secondary_key(&x, &map(&[("x-custom", v)]));
    assert_ne!(custom(b"a, b"), custom(b"b, a"));
    assert_ne!(custom(b"A"), custom(b"a"));
}

// RFC 9110 §12.4.2: weights in their valid forms only.
#[test]
fn rfc9110_12_4_2_qvalue() {
    assert_eq!(qvalue(b"0"), Some(0));
    assert_eq!(qvalue(b"0."), Some(0));
    assert_eq!(qvalue(b"0.5"), Some(500));
    assert_eq!(qvalue(b"0.123"), Some(123));
    assert_eq!(qvalue(b"1"), Some(1000));
    assert_eq!(qvalue(b"1.000"), Some(1000));
    for bad in [&b"1.001"[..], b"2", b"0.1234", b"", b".5", b"0.5x", b"-0"] {
        assert_eq!(qvalue(bad), None, "{bad:?}");
    }
}
