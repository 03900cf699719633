//! Header-field helpers shared by the cache policy modules: HTTP-date fields
//! and the hop-by-hop field set. Pure: functions of a `HeaderMap`.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Parses the first line of a date-valued field (`Date`, `Expires`,
/// `Last-Modified`, ...) as an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate and the
/// two obsolete forms). `None` when absent, not UTF-8 or not a valid date.
///
/// For a field sent several times the first line wins (RFC 9111 §4.2.1: "the
/// first occurrence should be used").
pub fn http_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value.trim()).ok()
}

/// Whole seconds since the Unix epoch, so that two instants can be compared at
/// the one-second resolution of an HTTP-date (RFC 9110 §5.6.7). Instants
/// before the epoch map to 0 (no HTTP-date can name them).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The fields that are hop-by-hop by definition (RFC 9110 §7.6.1, plus the
/// non-standard `Keep-Alive` and `Proxy-Connection`) and are never stored or
/// forwarded from a cache entry.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// The lower-cased names of every hop-by-hop field of this message: the fixed
/// set plus each field named by a `Connection` line (RFC 9110 §7.6.1).
pub fn hop_by_hop_names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = HOP_BY_HOP.iter().map(|s| (*s).to_owned()).collect();
    for line in headers.get_all(header::CONNECTION) {
        names.extend(list_tokens(line.as_bytes()));
    }
    names
}

/// Splits a comma-separated list of tokens (RFC 9110 §5.6.1) into trimmed,
/// lower-cased, non-empty members. Tolerant: never fails, non-UTF-8 bytes are
/// replaced.
pub fn list_tokens(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value)
        .split(',')
        .map(|member| member.trim().to_ascii_lowercase())
        .filter(|member| !member.is_empty())
        .collect()
}

/// Parses `1*DIGIT` (RFC 9110 §5.6.1 style numbers), saturating at
/// `u64::MAX` instead of overflowing. `None` for an empty string or any
/// non-digit (signs, spaces, dots).
pub fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(b.saturating_sub(b'0')))
    }))
}

/// RFC 9110 §5.6.2 `tchar`: the bytes a token is made of.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `HeaderValue` from a string built by us from digits and ASCII
/// punctuation; should it ever be invalid, `fallback` is used instead of
/// failing.
pub fn ascii_value(text: String, fallback: &'static str) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(fallback))
}

#[cfg(test)]
mod tests {
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
}
