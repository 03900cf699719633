//! Partial objects (RFC 9111 §3.3–3.4, RFC 9110 §14): the pieces of a
//! representation stored from single-range 206 responses, what a new range
//! request can be answered with (a stored piece, or a stored piece and the
//! missing rest from the origin), whether a new piece may join them, and
//! when they add up to the whole representation. Pure.

use http::header::{self, HeaderMap};

use crate::cache::policy::fields::decimal;
use crate::cache::policy::validation::EntityTag;

/// A stored piece: bytes `[start, start + len)` of a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub len: u64,
}

impl Span {
    /// One past the last byte.
    pub fn end(self) -> u64 {
        self.start + self.len
    }
}

/// How to answer the inclusive range `[first, last]` from stored pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// Piece `piece` holds every byte.
    Whole { piece: usize },
    /// Piece `piece` holds `[first, have)`; `[have, last]` must come from
    /// the origin (RFC 9111 §3.4: the two are combined into one answer).
    Prefix { piece: usize, have: u64 },
    /// No piece holds `first`.
    None,
}

/// What stored pieces cover of the inclusive range `[first, last]`.
pub fn cover(pieces: &[Span], first: u64, last: u64) -> Cover {
    let Some((i, span)) = pieces
        .iter()
        .enumerate()
        .find(|(_, s)| s.start <= first && first < s.end())
    else {
        return Cover::None;
    };
    if last < span.end() {
        Cover::Whole { piece: i }
    } else {
        Cover::Prefix {
            piece: i,
            have: span.end(),
        }
    }
}

/// May a piece `new` be stored beside `pieces`? Only when it overlaps none
/// (so no byte is ever held twice, or twice differently).
pub fn fits(pieces: &[Span], new: Span) -> bool {
    new.len > 0
        && pieces
            .iter()
            .all(|s| new.end() <= s.start || s.end() <= new.start)
}

/// The order in which `pieces` make up `[0, total)`, when they do.
pub fn complete(pieces: &[Span], total: u64) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| pieces[i].start);
    let mut at = 0;
    for &i in &order {
        if pieces[i].start != at {
            return None;
        }
        at = pieces[i].end();
    }
    (at == total && total > 0).then_some(order)
}

/// The `Content-Range` of a single-part 206: `bytes first-last/total`
/// (RFC 9110 §14.4), with a known total.
pub fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let mut values = headers.get_all(header::CONTENT_RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let text = value.to_str().ok()?.trim();
    let rest = text.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, total) = (
        decimal(first.trim())?,
        decimal(last.trim())?,
        decimal(total.trim())?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

/// The validator pieces are matched by: a strong `ETag`, else
/// `Last-Modified`. None: pieces of it may not be combined.
pub fn validator(headers: &HeaderMap) -> Option<String> {
    if let Some(tag) = EntityTag::from_field(headers, &header::ETAG) {
        if !tag.weak {
            return headers
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        return None;
    }
    headers
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
#[path = "partial_tests.rs"]
mod tests;
