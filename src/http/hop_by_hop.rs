//! Hop-by-hop fields (RFC 9110 §7.6.1): meaningful for one connection only,
//! so a proxy removes them in both directions before forwarding. Pure.

use http::header::{HeaderName, CONNECTION};
use http::HeaderMap;

/// Fields that are always connection-specific (RFC 9110 §7.6.1, RFC 9112
/// §9.6, RFC 7540 §3.2.1 for HTTP2-Settings), besides those that
/// `Connection` (or the legacy `Proxy-Connection`) names.
pub const FIXED: [HeaderName; 11] = [
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    HeaderName::from_static("transfer-encoding"),
    HeaderName::from_static("upgrade"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("proxy-authorization-info"),
    HeaderName::from_static("http2-settings"),
];

/// The lower-cased members of every `Connection` and `Proxy-Connection`
/// line, each once (nothing allocated when there are none).
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    let mut named: Vec<String> = Vec::new();
    for line in headers
        .get_all(CONNECTION)
        .iter()
        .chain(headers.get_all(&FIXED[2]).iter())
    {
        for member in String::from_utf8_lossy(line.as_bytes()).split(',') {
            let member = member.trim().to_ascii_lowercase();
            if !member.is_empty() && !named.contains(&member) {
                named.push(member);
            }
        }
    }
    named
}

/// The lower-cased names of every hop-by-hop field of this message: the
/// fixed set plus each field named by a `Connection` or `Proxy-Connection`
/// line.
pub fn names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = FIXED.iter().map(|n| n.as_str().to_owned()).collect();
    for member in connection_named(headers) {
        if !names.contains(&member) {
            names.push(member);
        }
    }
    names
}

/// Removes every hop-by-hop field (see [`names`]) from `headers`. Runs for
/// every request, hits included: the fixed names are built once.
pub fn strip(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in &FIXED {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn removes_fixed_set_and_connection_named_fields() {
        // RFC 9110 §7.6.1: Connection options and the fields they name.
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "close, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eDp5"),
            ("proxy-authenticate", "Basic"),
            ("x-kept", "yes"),
            ("content-length", "3"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-kept"]);
    }

    #[test]
    fn tolerates_garbage_in_connection() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static(" , ,,bad name,"));
        h.append("x-a", HeaderValue::from_static("1"));
        strip(&mut h);
        assert!(h.contains_key("x-a"));
    }
}
