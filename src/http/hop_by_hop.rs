//! Hop-by-hop fields (RFC 9110 §7.6.1): meaningful for one connection only,
//! so a proxy removes them in both directions before forwarding. Pure.

use http::header::{
    HeaderName, CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::HeaderMap;

/// Fields that are always connection-specific, besides those named by Connection.
const ALWAYS: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "http2-settings",
    "proxy-authorization-info",
];

/// Removes Connection and every field it names, plus the fixed hop-by-hop
/// set: Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding (framing
/// is redone by our own connection), Upgrade, Proxy-Authorization and
/// Proxy-Authenticate.
pub fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .chain(headers.get_all("proxy-connection").iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHORIZATION,
        PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    for name in ALWAYS {
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
        let left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept", "content-length"]);
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
