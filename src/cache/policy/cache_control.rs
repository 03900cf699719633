//! Cache-Control parsing (RFC 9111 §5.2) for requests and responses. Pure: a
//! function of a `HeaderMap`, tolerant of any input; it never fails.
//!
//! Choices for malformed or repeated directives (RFC 9111 §4.2.1: "If
//! directives conflict ..., the most restrictive directive should be
//! honored"):
//! - unknown directives, and directives whose name is not a token, are ignored;
//! - arguments are accepted in token or quoted-string form (RFC 9111 §5.2);
//! - a repeated directive keeps its most restrictive value: the smallest
//!   `max-age`, `s-maxage`, `max-stale`, `stale-while-revalidate` and
//!   `stale-if-error`, the largest `min-fresh`; qualified `no-cache`/`private`
//!   lists are merged, and the unqualified form beats any list;
//! - `max-age`/`s-maxage` with a missing or invalid argument count as `0`
//!   (RFC 9111 §4.2.1 encourages treating invalid freshness as stale);
//! - `max-stale` with an invalid argument, and an invalid `min-fresh`,
//!   `stale-while-revalidate` or `stale-if-error`, are ignored (never widening
//!   what may be served);
//! - `no-cache=""`/`private=""` (an empty field list) count as unqualified;
//! - delta-seconds larger than 2^31 become 2^31 (RFC 9111 §1.2.2).

use http::header::{self, HeaderMap};

use crate::cache::policy::fields::{decimal, is_tchar, list_tokens};

/// The largest delta-seconds value we represent: 2^31 (RFC 9111 §1.2.2).
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// A directive that may name fields: `no-cache` and `private` (RFC 9111
/// §5.2.2.4, §5.2.2.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FieldDirective {
    /// The directive is not present.
    #[default]
    Absent,
    /// Unqualified: applies to the whole message.
    All,
    /// Qualified: applies only to these fields (lower-cased names).
    Fields(Vec<String>),
}

impl FieldDirective {
    /// True when the directive is present in either form.
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::Absent)
    }

    /// True for the unqualified form.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    /// The named fields of the qualified form (empty otherwise).
    pub fn fields(&self) -> &[String] {
        match self {
            Self::Fields(names) => names,
            Self::Absent | Self::All => &[],
        }
    }

    /// Merges a repeated directive, keeping the most restrictive meaning.
    fn merge(&mut self, other: Self) {
        match (&mut *self, other) {
            (Self::All, _) | (_, Self::Absent) => {}
            (slot @ (Self::Absent | Self::Fields(_)), Self::All) => *slot = Self::All,
            (slot @ Self::Absent, fields @ Self::Fields(_)) => *slot = fields,
            (Self::Fields(mine), Self::Fields(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
        }
    }
}

/// The `max-stale` request directive (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// No argument: the client accepts a stale response of any staleness.
    Any,
    /// The client accepts a response stale by at most this many seconds.
    Seconds(u64),
}

impl MaxStale {
    /// True when a response stale by `staleness` is acceptable.
    pub fn accepts(self, staleness: std::time::Duration) -> bool {
        match self {
            Self::Any => true,
            Self::Seconds(limit) => staleness <= std::time::Duration::from_secs(limit),
        }
    }
}

/// The directives of all `Cache-Control` lines of one message (RFC 9111
/// §5.2). Request-only and response-only directives share one struct; a
/// caller reads those that apply to the message it parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age` (RFC 9111 §5.2.1.1 request, §5.2.2.1 response), seconds.
    pub max_age: Option<u64>,
    /// `s-maxage` (RFC 9111 §5.2.2.10), seconds; shared caches only.
    pub s_maxage: Option<u64>,
    /// `no-store` (RFC 9111 §5.2.1.5, §5.2.2.5).
    pub no_store: bool,
    /// `no-cache` (RFC 9111 §5.2.1.4, §5.2.2.4).
    pub no_cache: FieldDirective,
    /// `private` (RFC 9111 §5.2.2.7).
    pub private: FieldDirective,
    /// `public` (RFC 9111 §5.2.2.9).
    pub public: bool,
    /// `must-revalidate` (RFC 9111 §5.2.2.2).
    pub must_revalidate: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3).
    pub must_understand: bool,
    /// `proxy-revalidate` (RFC 9111 §5.2.2.8).
    pub proxy_revalidate: bool,
    /// `immutable` (RFC 8246 §2).
    pub immutable: bool,
    /// `no-transform` (RFC 9111 §5.2.1.6, §5.2.2.6).
    pub no_transform: bool,
    /// `max-stale` (RFC 9111 §5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `min-fresh` (RFC 9111 §5.2.1.3), seconds.
    pub min_fresh: Option<u64>,
    /// `only-if-cached` (RFC 9111 §5.2.1.7).
    pub only_if_cached: bool,
    /// `stale-while-revalidate` (RFC 5861 §3), seconds.
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` (RFC 5861 §4), seconds.
    pub stale_if_error: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line of `headers` as one list (RFC 9110
    /// §5.3: several lines combine as if comma-joined). Never fails.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut cc = Self::default();
        for line in headers.get_all(header::CACHE_CONTROL) {
            for (name, arg) in Directives::new(line.as_bytes()) {
                cc.apply(&name, arg.as_deref());
            }
        }
        cc
    }

    fn apply(&mut self, name: &str, arg: Option<&str>) {
        // RFC 9111 §5.2: directive names are case-insensitive (lower-cased by
        // the tokenizer).
        match name {
            "max-age" => min_into(&mut self.max_age, arg.and_then(delta_seconds).unwrap_or(0)),
            "s-maxage" => min_into(&mut self.s_maxage, arg.and_then(delta_seconds).unwrap_or(0)),
            "no-store" => self.no_store = true,
            "no-cache" => self.no_cache.merge(field_directive(arg)),
            "private" => self.private.merge(field_directive(arg)),
            "public" => self.public = true,
            "must-revalidate" => self.must_revalidate = true,
            "must-understand" => self.must_understand = true,
            "proxy-revalidate" => self.proxy_revalidate = true,
            "immutable" => self.immutable = true,
            "no-transform" => self.no_transform = true,
            "only-if-cached" => self.only_if_cached = true,
            "max-stale" => {
                // RFC 9111 §5.2.1.2: no argument means any staleness.
                let parsed = match arg {
                    None => Some(MaxStale::Any),
                    Some(text) => delta_seconds(text).map(MaxStale::Seconds),
                };
                self.max_stale = match (self.max_stale, parsed) {
                    (current, None) => current,
                    (None | Some(MaxStale::Any), new) => new,
                    (Some(MaxStale::Seconds(a)), Some(MaxStale::Seconds(b))) => {
                        Some(MaxStale::Seconds(a.min(b)))
                    }
                    (current @ Some(MaxStale::Seconds(_)), Some(MaxStale::Any)) => current,
                };
            }
            "min-fresh" => {
                if let Some(secs) = arg.and_then(delta_seconds) {
                    self.min_fresh = Some(self.min_fresh.map_or(secs, |m| m.max(secs)));
                }
            }
            "stale-while-revalidate" => {
                if let Some(secs) = arg.and_then(delta_seconds) {
                    min_into(&mut self.stale_while_revalidate, secs);
                }
            }
            "stale-if-error" => {
                if let Some(secs) = arg.and_then(delta_seconds) {
                    min_into(&mut self.stale_if_error, secs);
                }
            }
            _ => {}
        }
    }
}

/// Whether a request asks for revalidation: a `no-cache` request directive,
/// or, only when no `Cache-Control` line is present, `Pragma: no-cache`
/// (RFC 9111 §5.4).
pub fn request_no_cache(headers: &HeaderMap) -> bool {
    request_no_cache_with(&CacheControl::from_headers(headers), headers)
}

/// `request_no_cache` for a caller that already parsed the request's
/// `Cache-Control` into `cc`.
pub fn request_no_cache_with(cc: &CacheControl, headers: &HeaderMap) -> bool {
    if headers.contains_key(header::CACHE_CONTROL) {
        return cc.no_cache.is_present();
    }
    headers
        .get_all(header::PRAGMA)
        .iter()
        .any(|line| list_tokens(line.as_bytes()).iter().any(|t| t == "no-cache"))
}

/// Parses delta-seconds (RFC 9111 §1.2.2): one or more ASCII digits, with
/// surrounding whitespace tolerated. Values above 2^31, including ones that
/// overflow `u64`, become 2^31.
pub fn delta_seconds(text: &str) -> Option<u64> {
    decimal(text.trim()).map(|value| value.min(DELTA_SECONDS_MAX))
}

fn min_into(slot: &mut Option<u64>, value: u64) {
    *slot = Some(slot.map_or(value, |current| current.min(value)));
}

/// `no-cache`/`private` argument: absent or an empty list means unqualified.
fn field_directive(arg: Option<&str>) -> FieldDirective {
    let names = arg
        .map(|text| list_tokens(text.as_bytes()))
        .unwrap_or_default();
    if names.is_empty() {
        FieldDirective::All
    } else {
        FieldDirective::Fields(names)
    }
}

/// Tokenizer over one `Cache-Control` line: yields `(lower-cased name,
/// argument)` pairs. Commas inside quoted strings do not split; backslash
/// escapes in quoted strings are honoured; an unterminated quote runs to the
/// end of the line; garbage after a closing quote is skipped.
struct Directives<'a> {
    rest: &'a [u8],
}

impl<'a> Directives<'a> {
    fn new(line: &'a [u8]) -> Self {
        Self { rest: line }
    }
}

impl Iterator for Directives<'_> {
    type Item = (String, Option<String>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let start = self.rest.iter().position(|b| !is_ows(*b) && *b != b',')?;
            let input = self.rest.get(start..).unwrap_or_default();
            let name_len = input
                .iter()
                .position(|b| *b == b'=' || *b == b',')
                .unwrap_or(input.len());
            let (raw_name, after) = input.split_at(name_len);
            let name = String::from_utf8_lossy(raw_name)
                .trim()
                .to_ascii_lowercase();
            let (arg, rest) = match after.split_first() {
                Some((b'=', value)) => {
                    let (arg, rest) = argument(value);
                    (Some(arg), rest)
                }
                _ => (None, after),
            };
            self.rest = rest;
            if !name.is_empty() && name.bytes().all(is_tchar) {
                return Some((name, arg));
            }
        }
    }
}

/// Reads a directive argument (token or quoted-string) and returns it with the
/// input left after the next comma-delimited member.
fn argument(value: &[u8]) -> (String, &[u8]) {
    let skip = value
        .iter()
        .position(|b| !is_ows(*b))
        .unwrap_or(value.len());
    let value = value.get(skip..).unwrap_or_default();
    if let Some((b'"', quoted)) = value.split_first() {
        let mut out = Vec::new();
        let mut iter = quoted.iter().enumerate();
        let mut end = quoted.len();
        while let Some((i, b)) = iter.next() {
            match b {
                b'"' => {
                    end = i;
                    break;
                }
                b'\\' => {
                    if let Some((_, escaped)) = iter.next() {
                        out.push(*escaped);
                    }
                }
                _ => out.push(*b),
            }
        }
        let after = quoted.get(end..).unwrap_or_default();
        let next = after.iter().position(|b| *b == b',').unwrap_or(after.len());
        let rest = after.get(next..).unwrap_or_default();
        (String::from_utf8_lossy(&out).into_owned(), rest)
    } else {
        let len = value.iter().position(|b| *b == b',').unwrap_or(value.len());
        let (token, rest) = value.split_at(len);
        (String::from_utf8_lossy(token).trim().to_owned(), rest)
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
#[path = "cache_control_tests.rs"]
mod tests;
