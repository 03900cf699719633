//! Tests for Range / If-Range evaluation (RFC 9110 §14, §13.1.5).

use super::*;

const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const LATER: &str = "Sun, 06 Nov 1994 09:49:37 GMT";

fn map(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    h
}

fn range(value: &str, len: u64) -> RangeVerdict {
    evaluate_range(
        &Method::GET,
        &map(&[(header::RANGE, value)]),
        &HeaderMap::new(),
        len,
    )
}

fn single(start: u64, end: u64) -> RangeVerdict {
    RangeVerdict::Single { start, end }
}

// RFC 9110 §14.1.2: the three byte-range forms.
#[test]
fn rfc9110_14_1_2_byte_range_forms() {
    assert_eq!(range("bytes=0-99", 1000), single(0, 99));
    assert_eq!(range("bytes=500-", 1000), single(500, 999));
    assert_eq!(range("bytes=-100", 1000), single(900, 999));
    assert_eq!(range("BYTES=1-1", 1000), single(1, 1));
    assert_eq!(range("bytes=0-0,", 10), single(0, 0));
}

// RFC 9110 §14.1.1: last-pos and suffix length are clamped to the length.
#[test]
fn rfc9110_14_1_1_clamping() {
    assert_eq!(range("bytes=5-99999999999999999999999", 10), single(5, 9));
    assert_eq!(range("bytes=-50", 10), single(0, 9));
    assert_eq!(range("bytes=9-", 10), single(9, 9));
}

// RFC 9110 §14.1.1, §15.5.17: start past the end is unsatisfiable.
#[test]
fn rfc9110_14_1_1_unsatisfiable() {
    assert_eq!(range("bytes=10-20", 10), RangeVerdict::Unsatisfiable);
    assert_eq!(
        range("bytes=99999999999999999999999-", 10),
        RangeVerdict::Unsatisfiable
    );
    assert_eq!(range("bytes=-0", 10), RangeVerdict::Unsatisfiable);
    assert_eq!(range("bytes=0-", 0), RangeVerdict::Unsatisfiable);
    assert_eq!(range("bytes=-5", 0), RangeVerdict::Unsatisfiable);
    assert_eq!(unsatisfied_range_value(10), "bytes */10");
}

// RFC 9110 §14.2: an invalid Range is ignored.
#[test]
fn rfc9110_14_2_invalid_is_ignored() {
    for bad in [
        "bytes=5-3",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes",
        "=0-1",
        "bytes=0-1,x",
        "bytes=1--2",
    ] {
        assert_eq!(range(bad, 10), RangeVerdict::Full, "{bad}");
    }
    let mut twice = map(&[(header::RANGE, "bytes=0-1")]);
    twice.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
    assert_eq!(
        evaluate_range(&Method::GET, &twice, &HeaderMap::new(), 10),
        RangeVerdict::Full
    );
    let mut raw = HeaderMap::new();
    raw.insert(
        header::RANGE,
        HeaderValue::from_bytes(b"bytes=\xff-1").unwrap(),
    );
    assert_eq!(
        evaluate_range(&Method::GET, &raw, &HeaderMap::new(), 10),
        RangeVerdict::Full
    );
}

// RFC 9110 §14.2, §14.6: several ranges are a multipart answer; another
// unit is passed through.
#[test]
fn rfc9110_14_6_multiple_ranges_and_other_units() {
    assert_eq!(range("bytes=0-1,5-6", 10), RangeVerdict::Multi);
    assert_eq!(range("bytes=0-1, -2", 10), RangeVerdict::Multi);
    assert_eq!(range("items=0-1", 10), RangeVerdict::PassThrough);
    let h = map(&[(header::RANGE, "bytes=0-1, 20-30, -2")]);
    assert_eq!(
        multi_ranges(&h, 10),
        [(0, 1), (8, 9)],
        "unsatisfiable ones dropped"
    );
    // One satisfiable range left: a plain 206; none: 416.
    assert_eq!(
        range("bytes=0-1,20-30", 10),
        RangeVerdict::Single { start: 0, end: 1 }
    );
    assert_eq!(range("bytes=20-30,40-", 10), RangeVerdict::Unsatisfiable);
    let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("{i}-{i}")).collect();
    assert_eq!(
        range(&format!("bytes={}", many.join(",")), 100),
        RangeVerdict::Full,
        "too many ranges are ignored"
    );
}

// RFC 9110 §14.2: Range only applies to GET; no Range means Full.
#[test]
fn rfc9110_14_2_only_get() {
    let h = map(&[(header::RANGE, "bytes=0-1")]);
    assert_eq!(
        evaluate_range(&Method::HEAD, &h, &HeaderMap::new(), 10),
        RangeVerdict::Full
    );
    assert_eq!(
        evaluate_range(&Method::POST, &h, &HeaderMap::new(), 10),
        RangeVerdict::Full
    );
    assert_eq!(
        evaluate_range(&Method::GET, &HeaderMap::new(), &HeaderMap::new(), 10),
        RangeVerdict::Full
    );
}

// RFC 9110 §13.1.5: If-Range with an entity-tag needs a strong match.
#[test]
fn rfc9110_13_1_5_if_range_etag() {
    let stored = map(&[(header::ETAG, "\"v1\"")]);
    let check = |if_range: &str| {
        let req = map(&[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, if_range)]);
        evaluate_range(&Method::GET, &req, &stored, 10)
    };
    assert_eq!(check("\"v1\""), single(0, 1));
    assert_eq!(check("\"v2\""), RangeVerdict::Full);
    assert_eq!(check("W/\"v1\""), RangeVerdict::Full);
    assert_eq!(check("garbage"), RangeVerdict::Full);
    let weak_stored = map(&[(header::ETAG, "W/\"v1\"")]);
    let req = map(&[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, "\"v1\"")]);
    assert_eq!(
        evaluate_range(&Method::GET, &req, &weak_stored, 10),
        RangeVerdict::Full
    );
}

// RFC 9110 §13.1.5, §8.8.2.2: If-Range with a date: exact and strong.
#[test]
fn rfc9110_13_1_5_if_range_date() {
    let strong = map(&[(header::LAST_MODIFIED, LM), (header::DATE, LATER)]);
    let weak = map(&[(header::LAST_MODIFIED, LM), (header::DATE, LM)]);
    let req = |if_range: &str| map(&[(header::RANGE, "bytes=2-"), (header::IF_RANGE, if_range)]);
    assert_eq!(
        evaluate_range(&Method::GET, &req(LM), &strong, 10),
        single(2, 9)
    );
    assert_eq!(
        evaluate_range(&Method::GET, &req(LATER), &strong, 10),
        RangeVerdict::Full
    );
    assert_eq!(
        evaluate_range(&Method::GET, &req(LM), &weak, 10),
        RangeVerdict::Full
    );
    let no_lm = map(&[(header::DATE, LATER)]);
    assert_eq!(
        evaluate_range(&Method::GET, &req(LM), &no_lm, 10),
        RangeVerdict::Full
    );
}

// RFC 9110 §14.4: Content-Range values.
#[test]
fn rfc9110_14_4_content_range_value() {
    assert_eq!(content_range_value(0, 99, 1000), "bytes 0-99/1000");
    assert_eq!(RangeVerdict::PassThrough.as_str(), "pass-through");
    assert_eq!(single(0, 1).as_str(), "single");
}
