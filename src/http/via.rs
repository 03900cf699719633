//! The Via field (RFC 9110 §7.6.3): each proxy appends its own entry, and a
//! request already carrying ours has gone round in a loop. Pure.

use http::header::VIA;
use http::{HeaderMap, HeaderValue, Version};

/// Appends `<protocol-version> <name>` for the hop the message arrived on.
pub fn append(headers: &mut HeaderMap, version: Version, name: &str) {
    let protocol = match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    if let Ok(value) = HeaderValue::from_str(&format!("{protocol} {name}")) {
        headers.append(VIA, value);
    }
}

/// True when one Via entry was received by `name` (compared case-insensitively).
pub fn contains(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.split_whitespace().nth(1))
        .any(|received_by| received_by.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_protocol_and_name() {
        let mut h = HeaderMap::new();
        h.insert(VIA, HeaderValue::from_static("1.0 fred"));
        append(&mut h, Version::HTTP_11, "cachalot");
        let all: Vec<_> = h.get_all(VIA).iter().collect();
        assert_eq!(all, ["1.0 fred", "1.1 cachalot"]);
    }

    #[test]
    fn detects_own_pseudonym_in_any_entry() {
        // RFC 9110 §7.6.3: received-by is the second token of each entry.
        let mut h = HeaderMap::new();
        h.insert(
            VIA,
            HeaderValue::from_static("1.0 fred, 1.1 CACHALOT (cachalot/0.1)"),
        );
        assert!(contains(&h, "cachalot"));
        assert!(!contains(&h, "fred2"));
        h.insert(VIA, HeaderValue::from_static("1.1 cachalot-2"));
        assert!(!contains(&h, "cachalot"));
    }
}
