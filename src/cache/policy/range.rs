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
    /// Several byte ranges, at least two of them satisfiable: send 206 as
    /// `multipart/byteranges` (RFC 9110 §14.6); [`multi_ranges`] lists them.
    Multi,
    /// A valid range set with no range inside the representation: send 416
    /// with `Content-Range: bytes */len` (RFC 9110 §15.5.17).
    Unsatisfiable,
    /// A unit other than bytes: we do not serve those from the cache;
    /// forward the request.
    PassThrough,
}

/// More ranges than this in one request are ignored (the whole response is
/// sent), as RFC 9110 §14.2 allows against range-request abuse.
pub const MAX_RANGES: usize = 32;

impl RangeVerdict {
    /// A short kebab-case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Single { .. } => "single",
            Self::Multi => "multi",
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
    parse_range(text.trim(), len).0
}

/// The satisfiable ranges, inclusive, in request order, of a request that
/// [`evaluate_range`] found [`RangeVerdict::Multi`].
pub fn multi_ranges(req_headers: &HeaderMap, len: u64) -> Vec<(u64, u64)> {
    req_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|text| parse_range(text.trim(), len).1)
        .unwrap_or_default()
}

/// The `Content-Type` of a multi-range answer with this `boundary`.
pub fn multipart_type(boundary: &str) -> HeaderValue {
    ascii_value(
        format!("multipart/byteranges; boundary={boundary}"),
        "multipart/byteranges",
    )
}

/// The head of one part of a `multipart/byteranges` body (RFC 9110
/// §14.6): its boundary line (after the CRLF that ends the previous part),
/// its `Content-Type` when the representation has one, its `Content-Range`.
pub fn part_head(
    boundary: &str,
    content_type: Option<&str>,
    start: u64,
    end: u64,
    len: u64,
) -> String {
    let mut head = format!("\r\n--{boundary}\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str(&format!("content-range: bytes {start}-{end}/{len}\r\n\r\n"));
    head
}

/// The line that closes a `multipart/byteranges` body.
pub fn closing(boundary: &str) -> String {
    format!("\r\n--{boundary}--\r\n")
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

/// RFC 9110 §14.1: `range-unit "=" range-set`; for a multi-range set,
/// its satisfiable ranges.
fn parse_range(text: &str, len: u64) -> (RangeVerdict, Vec<(u64, u64)>) {
    let Some((unit, set)) = text.split_once('=') else {
        return (RangeVerdict::Full, Vec::new());
    };
    let unit = unit.trim();
    // RFC 9110 §14.1: range units are case-insensitive.
    if !unit.eq_ignore_ascii_case("bytes") {
        let is_token = !unit.is_empty() && unit.bytes().all(is_tchar);
        let verdict = if is_token {
            RangeVerdict::PassThrough
        } else {
            RangeVerdict::Full
        };
        return (verdict, Vec::new());
    }
    let mut specs = Vec::new();
    // RFC 9110 §5.6.1: empty list members are ignored.
    for member in set.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        match parse_spec(member) {
            Some(spec) => specs.push(spec),
            None => return (RangeVerdict::Full, Vec::new()),
        }
    }
    match specs.as_slice() {
        [] => (RangeVerdict::Full, Vec::new()),
        [spec] => (resolve(spec, len), Vec::new()),
        many if many.len() > MAX_RANGES => (RangeVerdict::Full, Vec::new()),
        many => {
            let satisfiable: Vec<(u64, u64)> = many
                .iter()
                .filter_map(|spec| match resolve(spec, len) {
                    RangeVerdict::Single { start, end } => Some((start, end)),
                    _ => None,
                })
                .collect();
            match satisfiable.as_slice() {
                [] => (RangeVerdict::Unsatisfiable, satisfiable),
                // One range left: a plain 206 (RFC 9110 §14.6 allows it).
                [(start, end)] => (
                    RangeVerdict::Single {
                        start: *start,
                        end: *end,
                    },
                    Vec::new(),
                ),
                _ => (RangeVerdict::Multi, satisfiable),
            }
        }
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
