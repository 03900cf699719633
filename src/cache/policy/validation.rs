//! Validators (RFC 9110 §8.8): entity-tag parsing and comparison, the
//! conditional request a cache sends to revalidate (RFC 9111 §4.3.1), how a
//! 304 updates a stored response (RFC 9111 §3.2, §4.3.4), and evaluating a
//! client's own conditional against a stored response (RFC 9110 §13). Pure:
//! functions of `HeaderMap`s, with any date passed in.

use std::time::SystemTime;

use http::header::{self, HeaderMap};
use http::Method;

use crate::cache::policy::fields::{http_date, unix_secs};
use crate::cache::policy::headers_to_store;

/// An entity-tag (RFC 9110 §8.8.3) borrowed from a field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `W/` prefix present.
    pub weak: bool,
    /// The opaque-tag between the double quotes.
    pub opaque: &'a [u8],
}

impl<'a> EntityTag<'a> {
    /// Parses one entity-tag, surrounding whitespace allowed. The weak prefix
    /// is accepted in either case (`W/` or `w/`) to be tolerant.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let (tag, rest) = Self::parse_prefix(trim(value))?;
        rest.is_empty().then_some(tag)
    }

    /// The first entity-tag of a field, when it holds a valid one.
    pub fn from_field(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<Self> {
        Self::parse(headers.get(name)?.as_bytes())
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong, same opaque-tag.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): same opaque-tag.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }

    /// Parses an entity-tag at the start of `input`, returning the rest.
    fn parse_prefix(input: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let (weak, quoted) = match input {
            [b'W' | b'w', b'/', rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let inner = quoted.strip_prefix(b"\"")?;
        let close = inner.iter().position(|b| *b == b'"')?;
        let (opaque, rest) = inner.split_at(close);
        Some((Self { weak, opaque }, rest.get(1..).unwrap_or_default()))
    }
}

/// Parses an `If-None-Match`-style list (RFC 9110 §13.1.2) from all lines of
/// `name`: `(star, tags)`. Tolerant: a malformed member is skipped up to the
/// next comma that is outside a quoted string.
pub fn entity_tag_list<'a>(
    headers: &'a HeaderMap,
    name: &header::HeaderName,
) -> (bool, Vec<EntityTag<'a>>) {
    let mut star = false;
    let mut tags = Vec::new();
    for line in headers.get_all(name) {
        let mut rest = line.as_bytes();
        loop {
            let start = rest
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b','))
                .unwrap_or(rest.len());
            rest = rest.get(start..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            if let Some((tag, after)) = EntityTag::parse_prefix(rest) {
                tags.push(tag);
                rest = after;
            } else if let Some(after) = rest.strip_prefix(b"*") {
                star = true;
                rest = after;
            }
            // Skip to the next comma; garbage in between is ignored.
            let next = rest.iter().position(|b| *b == b',').unwrap_or(rest.len());
            rest = rest.get(next..).unwrap_or_default();
        }
    }
    (star, tags)
}

/// The conditional fields that revalidate a stored response (RFC 9111
/// §4.3.1): `If-None-Match` with the stored `ETag` as is (weak or strong) and
/// `If-Modified-Since` with the stored `Last-Modified` as is, when it is a
/// valid date. Never invents a date from `Date`. Empty without validators.
pub fn revalidation_headers(stored_headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(etag) = stored_headers.get(header::ETAG) {
        if !trim(etag.as_bytes()).is_empty() {
            out.insert(header::IF_NONE_MATCH, etag.clone());
        }
    }
    if let Some(last_modified) = stored_headers.get(header::LAST_MODIFIED) {
        if http_date(stored_headers, &header::LAST_MODIFIED).is_some() {
            out.insert(header::IF_MODIFIED_SINCE, last_modified.clone());
        }
    }
    out
}

/// Whether a 304 applies to this stored response (RFC 9111 §4.3.4): a strong
/// `ETag` in the 304 must strongly equal the stored one; a weak one must
/// weakly equal it; with no `ETag` but a `Last-Modified`, the dates must be
/// equal; with no validator at all it applies.
///
/// The last rule is more lenient than §4.3.4's third bullet (which also wants
/// the stored response to lack validators): the 304 answers the conditional
/// we built from this very entry (`revalidation_headers`), so it can only
/// refer to it.
pub fn validators_match_304(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    if not_modified.contains_key(header::ETAG) {
        let (Some(new), Some(old)) = (
            EntityTag::from_field(not_modified, &header::ETAG),
            EntityTag::from_field(stored, &header::ETAG),
        ) else {
            return false;
        };
        return if new.weak {
            new.weak_eq(&old)
        } else {
            new.strong_eq(&old)
        };
    }
    if not_modified.contains_key(header::LAST_MODIFIED) {
        let new = http_date(not_modified, &header::LAST_MODIFIED);
        let old = http_date(stored, &header::LAST_MODIFIED);
        return matches!((new, old), (Some(n), Some(o)) if n == o);
    }
    true
}

/// The stored header fields after a 304 (RFC 9111 §3.2, §4.3.4): each field
/// of the 304 replaces every stored line of that name, except
/// `Content-Length` and the fields never stored (`headers_to_store`:
/// hop-by-hop, `Set-Cookie`, fields named by `private=`/`no-cache=`). The
/// result is filtered by `headers_to_store` again, so the merged
/// `Cache-Control` decides which fields stay.
///
/// The 304's own `Set-Cookie` is for the client that triggered it; passing it
/// on is the caller's job.
pub fn update_headers_from_304(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let update = headers_to_store(not_modified);
    let mut merged = stored.clone();
    for name in update.keys() {
        if name == header::CONTENT_LENGTH {
            continue;
        }
        merged.remove(name);
        for value in update.get_all(name) {
            merged.append(name.clone(), value.clone());
        }
    }
    headers_to_store(&merged)
}

/// The result of evaluating a client's conditional request against a stored
/// response (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditional {
    /// No usable precondition: serve the stored response as is.
    Absent,
    /// The precondition says the client's copy is current: answer 304.
    NotModified,
    /// A precondition was evaluated and the client's copy is not current:
    /// serve the full response.
    Modified,
}

impl Conditional {
    /// A short kebab-case label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::NotModified => "not-modified",
            Self::Modified => "modified",
        }
    }
}

/// Evaluates `If-None-Match` / `If-Modified-Since` of a GET or HEAD against a
/// stored response (RFC 9110 §13.1.2, §13.1.3, §13.2.2).
///
/// `If-None-Match` (weak comparison, `*` matches any stored response) takes
/// precedence; `If-Modified-Since` is then ignored. A present but unparsable
/// `If-None-Match` counts as `Modified` (the full response is always safe).
/// `If-Modified-Since` is compared at one-second resolution with the stored
/// `Last-Modified`, or with `stored_last_modified_fallback` (e.g. the stored
/// `Date`) when there is none; an invalid or repeated date is ignored.
pub fn client_conditional(
    method: &Method,
    req_headers: &HeaderMap,
    stored_headers: &HeaderMap,
    stored_last_modified_fallback: Option<SystemTime>,
) -> Conditional {
    // RFC 9110 §13.1.2, §13.1.3: only GET and HEAD.
    if method != Method::GET && method != Method::HEAD {
        return Conditional::Absent;
    }
    if req_headers.contains_key(header::IF_NONE_MATCH) {
        let (star, tags) = entity_tag_list(req_headers, &header::IF_NONE_MATCH);
        let stored = EntityTag::from_field(stored_headers, &header::ETAG);
        // RFC 9110 §13.1.2: "*" is false when any current representation
        // exists (ours does), a listed tag is false when it weakly matches.
        let matched = star || stored.is_some_and(|s| tags.iter().any(|t| t.weak_eq(&s)));
        return if matched {
            Conditional::NotModified
        } else {
            Conditional::Modified
        };
    }
    // RFC 9110 §13.1.3: ignore more than one member or an invalid date.
    if req_headers
        .get_all(header::IF_MODIFIED_SINCE)
        .iter()
        .count()
        != 1
    {
        return Conditional::Absent;
    }
    let Some(since) = http_date(req_headers, &header::IF_MODIFIED_SINCE) else {
        return Conditional::Absent;
    };
    let last_modified =
        http_date(stored_headers, &header::LAST_MODIFIED).or(stored_last_modified_fallback);
    match last_modified {
        Some(lm) if unix_secs(lm) <= unix_secs(since) => Conditional::NotModified,
        _ => Conditional::Modified,
    }
}

/// What a client's `If-Modified-Since` is compared with when the stored
/// response has no `Last-Modified` (RFC 9111 §4.3.2): its `Date`, or, with
/// no valid `Date`, the time the response was received.
pub fn last_modified_stand_in(stored_headers: &HeaderMap, response_time: SystemTime) -> SystemTime {
    http_date(stored_headers, &header::DATE).unwrap_or(response_time)
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i.saturating_add(1));
    value.get(start..end).unwrap_or_default()
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
