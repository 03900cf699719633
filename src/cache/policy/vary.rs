//! Vary handling (RFC 9111 §4.1): which request fields select a stored
//! variant, and the secondary key built from them. Pure: functions of
//! `HeaderMap`s.

use http::header::{self, HeaderMap};

use crate::cache::policy::fields::list_tokens;

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
///
/// The content-negotiation lists `Accept`, `Accept-Charset`,
/// `Accept-Encoding` and `Accept-Language` are normalized further (see
/// [`normalize_list`]): member order, letter case, whitespace, repeated
/// members and a `q=1` weight do not change their meaning (RFC 9110
/// §12.4.2, §12.5), so `en, fr` selects the same variant as `FR,EN`.
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
        let normalized = if NEGOTIATION_LISTS.contains(&name.as_str()) {
            normalize_list(&joined)
        } else {
            normalize(&joined)
        };
        push_escaped(&mut key, &normalized);
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

/// Request fields whose value is a list of preferences (RFC 9110 §12.5).
const NEGOTIATION_LISTS: [&str; 4] = [
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
];

/// The canonical form of a preference list (RFC 9110 §12.4.2, §12.5): each
/// member without whitespace (only optional whitespace may appear around
/// `;` and `=`) and in lower case (language ranges, codings, charsets and
/// media ranges are case-insensitive); a weight written as `q=1`, `q=1.0`
/// or `Q=1.000` dropped (1 is the default) and any other weight in three
/// decimals (`q=0.5` and `q=0.500` are the same); empty members dropped;
/// the members sorted and deduplicated, joined with ",".
///
/// Sorting treats members of equal weight as equal preferences whatever
/// their order, which RFC 9111 §4.1 lets a cache do; a server that breaks
/// ties by order would see the first client's order.
pub fn normalize_list(value: &[u8]) -> Vec<u8> {
    let mut members: Vec<Vec<u8>> = value
        .split(|b| *b == b',')
        .map(normalize_member)
        .filter(|m| !m.is_empty())
        .collect();
    members.sort();
    members.dedup();
    members.join(&b',')
}

fn normalize_member(member: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = member
        .iter()
        .filter(|b| **b != b' ' && **b != b'\t')
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut out = Vec::with_capacity(compact.len());
    for (i, part) in compact.split(|b| *b == b';').enumerate() {
        if i > 0 {
            if let Some(weight) = part.strip_prefix(b"q=").and_then(qvalue) {
                if weight == 1000 {
                    continue;
                }
                out.extend_from_slice(format!(";q=0.{weight:03}").as_bytes());
                continue;
            }
            out.push(b';');
        }
        out.extend_from_slice(part);
    }
    out
}

/// A weight (RFC 9110 §12.4.2: `0[.ddd]` or `1[.000]`) in thousandths.
fn qvalue(text: &[u8]) -> Option<u16> {
    let (int, frac) = match text.iter().position(|b| *b == b'.') {
        Some(dot) => (text.get(..dot)?, text.get(dot.saturating_add(1)..)?),
        None => (text, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        let digit = frac.get(i).map_or(0, |d| u16::from(d.saturating_sub(b'0')));
        thousandths = thousandths.saturating_mul(10).saturating_add(digit);
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
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
