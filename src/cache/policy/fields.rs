//! Header-field helpers shared by the cache policy modules: HTTP-date fields
//! and the hop-by-hop field set. Pure: functions of a `HeaderMap`.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Parses the first line of a date-valued field (`Date`, `Expires`,
/// `Last-Modified`, ...) as an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate and the
/// two obsolete forms). `None` when absent, not UTF-8 or not a valid date.
///
/// For a field sent several times the first line wins (RFC 9111 §4.2.1: "the
/// first occurrence should be used").
pub fn http_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    parse_http_date(headers.get(name)?.to_str().ok()?)
}

/// Parses an HTTP-date in any of its three forms (RFC 9110 §5.6.7):
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and ANSI C's `asctime()` form
/// (`Sun Nov  6 08:49:37 1994`).
///
/// Day names, month names and `GMT` are accepted in any letter case: RFC
/// 9110 §5.6.7 makes them case-sensitive, but a recipient that rejects
/// `sun, 06 nov 1994 ... gmt` only turns a usable date into "invalid" (an
/// `Expires` would then mean "already expired", RFC 9111 §5.3), so we
/// normalize the case first. Surrounding whitespace is ignored; the day name
/// must still agree with the date.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if !text.is_ascii() {
        return None;
    }
    // Nearly every date is already in the grammar's case: no copy for those
    // (a date parsed as it is reads the same after `canonical_case`).
    httpdate::parse_http_date(text)
        .or_else(|_| httpdate::parse_http_date(&canonical_case(text)))
        .ok()
}

/// Rewrites each run of letters as the HTTP-date grammar spells it: `GMT` in
/// capitals, names with one leading capital (`Sun`, `Sunday`, `Nov`).
fn canonical_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.eq_ignore_ascii_case("gmt") {
            out.push_str("GMT");
        } else {
            for (i, c) in word.chars().enumerate() {
                out.push(if i == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                });
            }
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
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
pub use crate::http::hop_by_hop::names as hop_by_hop_names;

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

pub use crate::http::token::is_tchar;

/// A `HeaderValue` from a string built by us from digits and ASCII
/// punctuation; should it ever be invalid, `fallback` is used instead of
/// failing.
pub fn ascii_value(text: String, fallback: &'static str) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(fallback))
}

#[cfg(test)]
#[path = "fields_tests.rs"]
mod tests;
