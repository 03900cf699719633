//! Range requests served from a complete stored response (RFC 9110 §14,
//! If-Range §13.1.5). Pure: functions of a method, headers and the stored
//! length.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::Method;

use crate::cache::policy::fields::{ascii_value, decimal, http_date, is_tchar, parse_http_date};
use crate::cache::policy::validation::EntityTag;

/// How to answer a request that may carry `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeVerdict {
    /// No `Range`, or one we ignore: send the full response (200).
    Full,
    /// One satisfiable byte range: send 206 with these inclusive bounds.
    Single {
        /// First byte offset.
        start: u64,
        /// Last byte offset, inclusive, always below the length.
        end: u64,
    },
    /// A valid single range outside the representation: send 416 with
    /// `Content-Range: bytes */len` (RFC 9110 §15.5.17).
    Unsatisfiable,
    /// Several ranges, or a unit other than bytes: we do not serve those from
    /// the cache; forward the request.
    PassThrough,
}

impl RangeVerdict {
    /// A short kebab-case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Single { .. } => "single",
            Self::Unsatisfiable => "unsatisfiable",
            Self::PassThrough => "pass-through",
        }
    }
}

/// Evaluates `Range` and `If-Range` of a request against a stored complete
/// response of `len` bytes (RFC 9110 §14.2, §13.1.5).
///
/// Only GET; a `Range` sent on several lines, not UTF-8 or syntactically
/// invalid is ignored (`Full`); an `If-Range` that does not match the stored
/// representation also gives `Full`.
pub fn evaluate_range(
    method: &Method,
    req_headers: &HeaderMap,
    stored_headers: &HeaderMap,
    len: u64,
) -> RangeVerdict {
    // RFC 9110 §14.2: Range is only defined for GET.
    if method != Method::GET {
        return RangeVerdict::Full;
    }
    let mut lines = req_headers.get_all(header::RANGE).iter();
    let (Some(range), None) = (lines.next(), lines.next()) else {
        return RangeVerdict::Full;
    };
    // RFC 9110 §13.1.5: a failed If-Range means "send the whole thing".
    if let Some(if_range) = req_headers.get(header::IF_RANGE) {
        if !if_range_matches(if_range, stored_headers) {
            return RangeVerdict::Full;
        }
    }
    let Ok(text) = range.to_str() else {
        return RangeVerdict::Full;
    };
    parse_range(text.trim(), len)
}

/// The `Content-Range` value of a 206: `bytes start-end/len` (RFC 9110
/// §14.4).
pub fn content_range_value(start: u64, end: u64, len: u64) -> HeaderValue {
    ascii_value(format!("bytes {start}-{end}/{len}"), "bytes */0")
}

/// The `Content-Range` value of a 416: `bytes */len` (RFC 9110 §14.4).
pub fn unsatisfied_range_value(len: u64) -> HeaderValue {
    ascii_value(format!("bytes */{len}"), "bytes */0")
}

/// RFC 9110 §13.1.5: an entity-tag must strongly match the stored `ETag`; a
/// date must equal the stored `Last-Modified` exactly, and that date must be
/// a strong validator (§8.8.2.2: the stored `Date` is at least one second
/// later). Anything else, including garbage, does not match.
fn if_range_matches(if_range: &HeaderValue, stored: &HeaderMap) -> bool {
    let bytes = if_range.as_bytes();
    let trimmed = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let looks_like_tag = matches!(
        bytes.get(trimmed..),
        Some([b'"', ..] | [b'W' | b'w', b'/', ..])
    );
    if looks_like_tag {
        return match (
            EntityTag::parse(bytes),
            EntityTag::from_field(stored, &header::ETAG),
        ) {
            (Some(wanted), Some(current)) => wanted.strong_eq(&current),
            _ => false,
        };
    }
    let wanted = if_range.to_str().ok().and_then(parse_http_date);
    let last_modified = http_date(stored, &header::LAST_MODIFIED);
    let date = http_date(stored, &header::DATE);
    match (wanted, last_modified, date) {
        (Some(wanted), Some(lm), Some(date)) => {
            let strong = date
                .duration_since(lm)
                .is_ok_and(|gap| gap >= Duration::from_secs(1));
            wanted == lm && strong
        }
        _ => false,
    }
}

/// One range-spec (RFC 9110 §14.1.1).
enum Spec {
    /// `first-last` or `first-`.
    From(u64, Option<u64>),
    /// `-suffix_length`.
    Suffix(u64),
}

/// RFC 9110 §14.1: `range-unit "=" range-set`.
fn parse_range(text: &str, len: u64) -> RangeVerdict {
    let Some((unit, set)) = text.split_once('=') else {
        return RangeVerdict::Full;
    };
    let unit = unit.trim();
    // RFC 9110 §14.1: range units are case-insensitive.
    if !unit.eq_ignore_ascii_case("bytes") {
        let is_token = !unit.is_empty() && unit.bytes().all(is_tchar);
        return if is_token {
            RangeVerdict::PassThrough
        } else {
            RangeVerdict::Full
        };
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: empty list members are ignored.
    for member in set.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        match parse_spec(member) {
            Some(spec) => specs.push(spec),
            None => return RangeVerdict::Full,
        }
    }
    match specs.as_slice() {
        [] => RangeVerdict::Full,
        [spec] => resolve(spec, len),
        _ => RangeVerdict::PassThrough,
    }
}

/// One range-spec. Positions that overflow u64 saturate (see `decimal`): a
/// position that large lies past any stored length, so the verdict is the
/// same.
fn parse_spec(member: &str) -> Option<Spec> {
    let (first, last) = member.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(decimal(last)?));
    }
    let first = decimal(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(decimal(last)?)
    };
    // RFC 9110 §14.1.1: last-pos below first-pos is invalid.
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From(first, last))
}

/// RFC 9110 §14.1.1: satisfiable when first-pos is below the length, or a
/// suffix has a non-zero length; last-pos is clamped to length − 1.
fn resolve(spec: &Spec, len: u64) -> RangeVerdict {
    let Some(last_byte) = len.checked_sub(1) else {
        return RangeVerdict::Unsatisfiable;
    };
    match *spec {
        Spec::From(start, _) if start >= len => RangeVerdict::Unsatisfiable,
        Spec::From(start, end) => RangeVerdict::Single {
            start,
            end: end.map_or(last_byte, |end| end.min(last_byte)),
        },
        Spec::Suffix(0) => RangeVerdict::Unsatisfiable,
        Spec::Suffix(n) => RangeVerdict::Single {
            start: len.saturating_sub(n),
            end: last_byte,
        },
    }
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
