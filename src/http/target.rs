//! Request targets (RFC 9112 §3.2): classify a request as absolute-form
//! `http://` forwarding or a CONNECT authority, refuse everything else, and
//! normalize the host so that every later stage sees one spelling of it.
//! Pure.

use std::fmt;
use std::net::IpAddr;

use http::{Method, Uri};

use crate::error::ProxyError;

/// A destination host, normalized: lower case, no trailing dot, IDNs in
/// punycode, IP literals in every spelling (decimal, octal, hex, short
/// forms, bracketed IPv6, IPv4-mapped IPv6) reduced to one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name.
    Domain(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

impl Host {
    /// Parses and normalizes a host as written in a URI authority.
    pub fn parse(raw: &str) -> Result<Host, ProxyError> {
        if let Some(host) = Host::already_normal(raw) {
            return Ok(host);
        }
        let bad = || ProxyError::BadTarget(format!("invalid host {raw:?}"));
        let trimmed = raw.strip_suffix('.').unwrap_or(raw);
        if trimmed.is_empty() {
            return Err(bad());
        }
        match url::Host::parse(trimmed).map_err(|_| bad())? {
            url::Host::Domain(d) => {
                if d.is_empty() || d.ends_with('.') {
                    return Err(bad());
                }
                Ok(Host::Domain(d.to_ascii_lowercase()))
            }
            url::Host::Ipv4(ip) => Ok(Host::Ip(IpAddr::V4(ip))),
            url::Host::Ipv6(ip) => Ok(Host::Ip(ip.to_canonical())),
        }
    }

    /// The common spellings that need no normalizing: a dotted-quad IPv4
    /// address, or a lower-case ASCII name whose last label starts with a
    /// letter (so it cannot be one of the numeric IPv4 forms).
    fn already_normal(raw: &str) -> Option<Host> {
        if let Ok(ip) = raw.parse::<std::net::Ipv4Addr>() {
            return Some(Host::Ip(IpAddr::V4(ip)));
        }
        let bytes = raw.as_bytes();
        let plain = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.');
        let last = raw.rsplit('.').next().unwrap_or("");
        let labels_ok = raw.split('.').all(|l| !l.is_empty() && l.len() <= 63);
        let starts_with_letter = last.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        (plain
            && labels_ok
            && starts_with_letter
            && !raw.starts_with("xn--")
            && !raw.contains(".xn--"))
        .then(|| Host::Domain(raw.to_owned()))
    }

    /// The name to resolve or connect to (IPv6 without brackets).
    pub fn connect_name(&self) -> String {
        match self {
            Host::Domain(d) => d.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

/// Host and port of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Authority {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What a request asks the proxy to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Forward to an `http://` origin; `uri` is the normalized absolute URI.
    Http { uri: Uri, authority: Authority },
    /// Open a TCP tunnel (CONNECT host:port).
    Connect(Authority),
}

/// Classifies a request target (RFC 9112 §3.2.2 absolute-form, §3.2.3
/// authority-form); origin-form and asterisk-form are refused: we are a proxy.
pub fn classify(method: &Method, uri: &Uri) -> Result<Target, ProxyError> {
    if method == Method::CONNECT {
        let authority = uri
            .authority()
            .filter(|_| {
                uri.scheme().is_none()
                    && uri
                        .path_and_query()
                        .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
            })
            .ok_or_else(|| ProxyError::BadTarget("CONNECT needs host:port".into()))?;
        if authority.as_str().contains('@') {
            return Err(ProxyError::BadTarget("userinfo is not allowed".into()));
        }
        let port = explicit_port(authority)?
            .ok_or_else(|| ProxyError::BadTarget("CONNECT needs host:port".into()))?;
        let host = Host::parse(authority.host())?;
        return Ok(Target::Connect(Authority { host, port }));
    }
    let Some(scheme) = uri.scheme_str() else {
        return Err(ProxyError::OriginForm);
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(ProxyError::UnsupportedScheme(scheme.to_ascii_lowercase()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| ProxyError::BadTarget("missing host".into()))?;
    if authority.as_str().contains('@') {
        return Err(ProxyError::BadTarget(
            "userinfo is not allowed in the URI".into(),
        ));
    }
    let host = Host::parse(authority.host())?;
    let port = explicit_port(authority)?.unwrap_or(80);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let authority = Authority { host, port };
    let spelled = host_port(&authority, 80);
    // Most requests are already in normal form: keep their URI (a cheap clone).
    if scheme == "http"
        && uri.authority().is_some_and(|a| a.as_str() == spelled)
        && path == uri.path_and_query().map_or("", |p| p.as_str())
    {
        return Ok(Target::Http {
            uri: uri.clone(),
            authority,
        });
    }
    let normalized = format!("http://{spelled}{path}");
    let uri = normalized
        .parse::<Uri>()
        .map_err(|e| ProxyError::BadTarget(e.to_string()))?;
    Ok(Target::Http { uri, authority })
}

/// The port written after the host, if any; an empty port means the default
/// (RFC 3986 §3.2.3). Out-of-range or zero ports are refused, not defaulted.
fn explicit_port(authority: &http::uri::Authority) -> Result<Option<u16>, ProxyError> {
    let raw = authority.as_str();
    let rest = raw.strip_prefix(authority.host()).unwrap_or("");
    let digits = rest.strip_prefix(':').unwrap_or(rest);
    if digits.is_empty() {
        return Ok(None);
    }
    // port = *DIGIT (RFC 3986 §3.2.3, RFC 9110 §4.2.3): no sign, no space
    // (`str::parse` would take "+443").
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::BadTarget(format!("invalid port {digits:?}")));
    }
    digits
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .map(Some)
        .ok_or_else(|| ProxyError::BadTarget(format!("invalid port {digits:?}")))
}

/// `host` or `host:port` when the port is not the scheme's default: the Host
/// field value and the authority of the normalized URI.
pub fn host_port(authority: &Authority, default_port: u16) -> String {
    if authority.port == default_port {
        authority.host.to_string()
    } else {
        authority.to_string()
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
