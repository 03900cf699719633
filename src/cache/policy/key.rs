//! The primary cache key (RFC 9111 §2: the target URI). Pure: a function of a
//! `Uri`.

use http::Uri;

use crate::cache::policy::fields::decimal;

/// The primary cache key of an absolute target URI: scheme `://` lower-cased
/// host, `:port` only when it is not the scheme's default (80 for http, 443
/// for https), the path (`/` when empty), then `?query` exactly as sent when a
/// query is present (RFC 9111 §2, RFC 9110 §4.2.3 normalization of scheme,
/// host and default port). Userinfo and fragments never take part.
///
/// `None` when the URI has no scheme, no authority, an empty host or a port
/// that is not a number below 65536 (the `http` crate parses
/// `http://h:99999/` but reports no port, which must not alias port 80).
/// Origin-form targets are resolved by the caller before lookup.
pub fn cache_key(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let mut key = format!("{scheme}://{host}");
    // RFC 9110 §4.2.3: an explicit default port is equivalent to none.
    if let Some(port) = written_port(uri)? {
        if default_port(&scheme) != Some(port) {
            key.push(':');
            key.push_str(&port.to_string());
        }
    }
    let path = uri.path();
    key.push_str(if path.is_empty() { "/" } else { path });
    if let Some(query) = uri.query() {
        key.push('?');
        key.push_str(query);
    }
    Some(key)
}

/// The port of a URI for origin comparison (RFC 9110 §4.3.1): the written
/// port, else the scheme's default. `None` when the port is invalid, or absent
/// for a scheme without a known default.
pub fn effective_port(uri: &Uri) -> Option<u16> {
    written_port(uri)?.or_else(|| uri.scheme_str().and_then(default_port))
}

/// The port written in the authority: `Some(None)` when there is none or it
/// is empty (RFC 3986 §3.2.3: "http://h:/" means the default), `None` when it
/// is not a valid port number.
fn written_port(uri: &Uri) -> Option<Option<u16>> {
    let authority = uri.authority()?.as_str();
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let rest = host_port.strip_prefix(uri.host()?)?;
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Some(None),
        None => None,
        Some("") => Some(None),
        Some(digits) => decimal(digits)
            .and_then(|p| u16::try_from(p).ok())
            .map(Some),
    }
}

/// The default port of a scheme we cache (RFC 9110 §4.2.1, §4.2.2).
pub fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
