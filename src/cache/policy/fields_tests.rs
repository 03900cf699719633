//! Tests for the shared header-field helpers (RFC 9110 §5.6).

use super::*;
use std::time::Duration;

// RFC 9110 §5.6.7: all three date formats are accepted.
#[test]
fn rfc9110_5_6_7_parses_the_three_date_formats() {
    let want = UNIX_EPOCH + Duration::from_secs(784_111_777);
    for text in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        let mut h = HeaderMap::new();
        h.insert(header::DATE, HeaderValue::from_static(text));
        assert_eq!(http_date(&h, &header::DATE), Some(want), "{text}");
    }
}

// RFC 9110 §5.6.7: garbage, "0" and non-UTF-8 are not dates.
#[test]
fn rfc9110_5_6_7_invalid_dates_are_none() {
    for raw in [&b"0"[..], b"", b"yesterday", b"\xff\xfe"] {
        let mut h = HeaderMap::new();
        h.insert(header::EXPIRES, HeaderValue::from_bytes(raw).unwrap());
        assert_eq!(http_date(&h, &header::EXPIRES), None);
    }
    assert_eq!(http_date(&HeaderMap::new(), &header::EXPIRES), None);
}

// RFC 9110 §7.6.1: fields named by Connection are hop-by-hop too.
#[test]
fn rfc9110_7_6_1_connection_named_fields_are_hop_by_hop() {
    let mut h = HeaderMap::new();
    h.append(header::CONNECTION, HeaderValue::from_static("X-Foo, close"));
    h.append(header::CONNECTION, HeaderValue::from_static(" x-bar ,"));
    let names = hop_by_hop_names(&h);
    for want in ["x-foo", "close", "x-bar", "transfer-encoding", "keep-alive"] {
        assert!(names.iter().any(|n| n == want), "{want}");
    }
}

// RFC 9110 §5.6.1: digits only; overflow saturates instead of panicking.
#[test]
fn rfc9110_5_6_1_decimal() {
    assert_eq!(decimal("0042"), Some(42));
    assert_eq!(decimal("99999999999999999999999"), Some(u64::MAX));
    for bad in ["", "+1", "-1", " 1", "1.0", "1e3", "٣"] {
        assert_eq!(decimal(bad), None, "{bad}");
    }
}

#[test]
fn unix_secs_before_epoch_is_zero() {
    assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), 0);
    assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(2500)), 2);
}

// RFC 9110 §5.6.7: day names, month names and GMT in any letter case, in
// all three forms, mean the same instant.
#[test]
fn rfc9110_5_6_7_names_in_any_case() {
    let want = UNIX_EPOCH + Duration::from_secs(784_111_777);
    for text in [
        "sun, 06 nov 1994 08:49:37 gmt",
        "SUN, 06 NOV 1994 08:49:37 GMT",
        "sUn, 06 nOv 1994 08:49:37 GmT",
        "SUNDAY, 06-NOV-94 08:49:37 GMT",
        "sunday, 06-nov-94 08:49:37 gmt",
        "SUN NOV  6 08:49:37 1994",
        "sun nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
    ] {
        assert_eq!(parse_http_date(text), Some(want), "{text}");
    }
}

// RFC 9110 §5.6.7: a day name that disagrees with the date, another zone,
// or a malformed layout is not a date.
#[test]
fn rfc9110_5_6_7_malformed_dates_stay_invalid() {
    for text in [
        "Mon, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov 6 08:49:37 1994 GMT",
        "Sün, 06 Nov 1994 08:49:37 GMT",
    ] {
        assert_eq!(parse_http_date(text), None, "{text}");
    }
}
