//! Vary handling (RFC 9111 §4.1): which request fields select a stored
//! variant, and the secondary key built from them. Pure: functions of
//! `HeaderMap`s.

use http::header::{self, HeaderMap};

use super::fields::list_tokens;

/// The field names listed by all `Vary` lines of a response: lower-cased,
/// deduplicated and sorted, so `Vary: A, B` and `Vary: b, a` give the same
/// list. `None` when any member is `*` (RFC 9111 §4.1: such a response never
/// matches a later request). An absent `Vary` gives an empty list.
pub fn vary_names(resp_headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for line in resp_headers.get_all(header::VARY) {
        for name in list_tokens(line.as_bytes()) {
            if name == "*" {
                return None;
            }
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}

/// The secondary key of a request for a response varying on `names`
/// (RFC 9111 §4.1): a deterministic string of the request's values of those
/// fields.
///
/// Normalization (RFC 9111 §4.1 allows "normalizing both header values in a
/// way that is known to have identical semantics"): names are compared
/// case-insensitively and taken in sorted order; a field's lines are joined
/// with ", " (RFC 9110 §5.3); whitespace around commas and at both ends is
/// removed and inner runs of whitespace become one space, so `gzip,deflate`
/// and `gzip, deflate` match. An absent field is distinct from an empty one.
/// Bytes outside printable ASCII, and `%`, are percent-encoded so distinct
/// values never collide. Commas inside quoted strings are normalized like any
/// other comma, which at worst merges values that differ only in that
/// whitespace.
pub fn secondary_key(names: &[String], req_headers: &HeaderMap) -> String {
    let mut sorted: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    sorted.sort();
    sorted.dedup();
    let mut key = String::new();
    for name in &sorted {
        // A name is a token, so it never holds a tab or a newline; the value
        // is escaped, so it never holds a newline either.
        key.push_str(name);
        let mut lines = req_headers.get_all(name.as_str()).iter().peekable();
        if lines.peek().is_none() {
            key.push_str("\t-\n");
            continue;
        }
        let mut joined: Vec<u8> = Vec::new();
        for (i, line) in lines.enumerate() {
            if i > 0 {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(line.as_bytes());
        }
        key.push_str("\t=");
        push_escaped(&mut key, &normalize(&joined));
        key.push('\n');
    }
    key
}

/// Trims each comma-separated member, collapses inner whitespace runs to one
/// space and rejoins the members with ", ".
fn normalize(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for (i, member) in value.split(|b| *b == b',').enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let mut words = member
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        if let Some(first) = words.next() {
            out.extend_from_slice(first);
        }
        for word in words {
            out.push(b' ');
            out.extend_from_slice(word);
        }
    }
    out
}

fn push_escaped(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
#[path = "vary_tests.rs"]
mod tests;
