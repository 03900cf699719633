//! The proxy's own proxy auto-configuration (PAC) file: `GET /proxy.pac`
//! or `/wpad.dat` sent to the proxy port in origin form, which would
//! otherwise be the "this is a proxy" 400, answers a `FindProxyForURL`
//! script generated from the configuration. `pipeline` asks [`wanted`]
//! before anything else (browsers fetch PAC files without proxy
//! credentials). Pure.
//!
//! The script sends DIRECT plain host names, loopback, the `[pac] direct`
//! domains and the LAN ranges of the allow rules (their `src` CIDRs: the
//! clients' own networks); everything else to `PROXY host:port`.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderValue, Method, Response, StatusCode, Uri};
use ipnet::IpNet;
use serde::Deserialize;

use crate::acl::{Action, RuleConfig};
use crate::config_error::ConfigError;
use crate::error::ProxyError;
use crate::http::body::{full, Body};
use crate::http::target::Host;

/// The paths answered: Netscape's name and WPAD's (what a browser asks
/// `http://wpad.<domain>/` for).
pub const PATHS: &[&str] = &["/proxy.pac", "/wpad.dat"];

/// The PAC media type (Netscape's; what browsers and WinHTTP expect).
pub const CONTENT_TYPE_PAC: &str = "application/x-ns-proxy-autoconfig";

/// `[pac]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacConfig {
    /// Answer `/proxy.pac` and `/wpad.dat` at all.
    pub enabled: bool,
    /// The proxy's host as clients must write it; empty: the request's Host.
    pub proxy_host: String,
    /// Domains reached DIRECT, in `dst_domain` syntax.
    pub direct: Vec<String>,
}

/// One `direct` pattern, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Domain {
    /// `example.com`: that host only.
    Exact(String),
    /// `.example.com`: the domain and its subdomains.
    Suffix(String),
    /// `*.example.com`: subdomains only.
    Subdomains(String),
}

fn domain(raw: &str) -> Option<Domain> {
    let raw = raw.trim();
    let (make, rest): (fn(String) -> Domain, &str) = if let Some(rest) = raw.strip_prefix("*.") {
        (Domain::Subdomains, rest)
    } else if let Some(rest) = raw.strip_prefix('.') {
        (Domain::Suffix, rest)
    } else {
        (Domain::Exact, raw)
    };
    match Host::parse(rest).ok()? {
        Host::Domain(d) => Some(make(d)),
        Host::Ip(_) => None,
    }
}

/// Checks `[pac]`; every problem with its key.
pub fn validate(pac: &PacConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if !pac.proxy_host.is_empty() && Host::parse(&pac.proxy_host).is_err() {
        errors.push(ConfigError {
            key: "pac.proxy_host".into(),
            message: format!("{:?} is not a host name or address", pac.proxy_host),
        });
    }
    for raw in &pac.direct {
        if domain(raw).is_none() {
            errors.push(ConfigError {
                key: "pac.direct".into(),
                message: format!(
                    "{raw:?} is not a domain such as \"example.com\", \".example.com\" or \
                     \"*.example.com\""
                ),
            });
        }
    }
    errors
}

/// True when the request asks for the PAC file: GET or HEAD of one of
/// [`PATHS`] in origin form (a query is ignored), with `[pac]` enabled.
pub fn wanted(pac: &PacConfig, method: &Method, uri: &Uri) -> bool {
    pac.enabled
        && (method == Method::GET || method == Method::HEAD)
        && uri.scheme().is_none()
        && uri.authority().is_none()
        && PATHS.contains(&uri.path())
}

/// The PAC answer. `port` is the port the proxy listens on; `host_field`
/// the request's Host, used when `pac.proxy_host` is empty.
pub fn answer(
    pac: &PacConfig,
    rules: &[RuleConfig],
    port: u16,
    host_field: Option<&HeaderValue>,
) -> Result<Response<Body>, ProxyError> {
    let from_request = pac.proxy_host.is_empty();
    let host = proxy_host(pac, host_field)?;
    let text = script(pac, rules, &format!("{host}:{port}"));
    let mut response = Response::new(full(text.clone()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PAC));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    // Browsers fetch it once per start or network change; five minutes
    // lets a changed configuration reach them soon.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    if from_request {
        headers.insert(VARY, HeaderValue::from_static("Host"));
    }
    Ok(response)
}

/// The host clients must use for the proxy: `pac.proxy_host`, else the
/// host of the request's Host field, normalized.
fn proxy_host(pac: &PacConfig, host_field: Option<&HeaderValue>) -> Result<Host, ProxyError> {
    if !pac.proxy_host.is_empty() {
        return Host::parse(&pac.proxy_host);
    }
    let field = host_field
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ProxyError::BadRequest(
                "the PAC file needs a Host field naming this proxy (or pac.proxy_host)".into(),
            )
        })?;
    let authority = http::uri::Authority::from_str(field)
        .map_err(|_| ProxyError::BadRequest(format!("invalid Host field {field:?}")))?;
    Host::parse(authority.host())
}

/// The LAN ranges: `src` of the allow rules, loopback first, without
/// duplicates; `/0` ("any client") is no LAN and is left out.
fn lan_ranges(rules: &[RuleConfig]) -> Vec<IpNet> {
    let loopback = ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse::<IpNet>().ok());
    let from_rules = rules
        .iter()
        .filter(|r| r.action == Some(Action::Allow))
        .flat_map(|r| r.src.iter())
        .filter_map(|s| net(s));
    let mut nets: Vec<IpNet> = Vec::new();
    for n in loopback.chain(from_rules) {
        if n.prefix_len() > 0 && !nets.contains(&n) {
            nets.push(n);
        }
    }
    nets
}

/// A CIDR or a bare address, as the access rules read them (an
/// IPv4-mapped IPv6 network is the IPv4 one).
fn net(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    let n = raw
        .parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .ok()?;
    match n {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .ok()
                .map(IpNet::V4),
            None => Some(n.trunc()),
        },
        n => Some(n.trunc()),
    }
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// The script; `proxy` is `host:port`.
pub fn script(pac: &PacConfig, rules: &[RuleConfig], proxy: &str) -> String {
    let nets = lan_ranges(rules);
    let mut out = String::with_capacity(2048);
    // Writing to a String cannot fail.
    let _ = write_script(&mut out, pac, &nets, proxy);
    out
}

fn write_script(
    out: &mut String,
    pac: &PacConfig,
    nets: &[IpNet],
    proxy: &str,
) -> std::fmt::Result {
    let proxy = js(&format!("PROXY {proxy}"));
    writeln!(
        out,
        "// Proxy auto-configuration written by cachalot from its configuration ([pac],\n\
         // [[acl]]). DIRECT: plain host names, loopback, pac.direct domains and the\n\
         // LAN ranges of the allow rules; everything else through the proxy."
    )?;
    writeln!(out, "function FindProxyForURL(url, host) {{")?;
    writeln!(out, "    host = host.toLowerCase();")?;
    writeln!(out, "    if (host.indexOf(\":\") >= 0) {{")?;
    writeln!(
        out,
        "        // An IPv6 literal; isInNetEx is the IPv6-aware test of Chrome, Edge and WinHTTP."
    )?;
    writeln!(out, "        var v6 = host.replace(/^\\[|\\]$/g, \"\");")?;
    let v6: Vec<String> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)))
        .map(|n| format!("isInNetEx(v6, {})", js(&n.to_string())))
        .collect();
    writeln!(out, "        if (v6 == \"::1\") return \"DIRECT\";")?;
    if !v6.is_empty() {
        writeln!(
            out,
            "        if (typeof isInNetEx == \"function\" &&\n            ({}))\n            return \"DIRECT\";",
            v6.join(" ||\n             ")
        )?;
    }
    writeln!(out, "        return {proxy};")?;
    writeln!(out, "    }}")?;
    writeln!(
        out,
        "    if (isPlainHostName(host) || host == \"localhost\" || dnsDomainIs(host, \".localhost\"))"
    )?;
    writeln!(out, "        return \"DIRECT\";")?;
    let mut names = Vec::new();
    for raw in &pac.direct {
        match domain(raw) {
            Some(Domain::Exact(d)) => names.push(format!("host == {}", js(&d))),
            Some(Domain::Suffix(d)) => {
                names.push(format!("host == {}", js(&d)));
                names.push(format!("dnsDomainIs(host, {})", js(&format!(".{d}"))));
            }
            Some(Domain::Subdomains(d)) => {
                names.push(format!("dnsDomainIs(host, {})", js(&format!(".{d}"))));
            }
            None => {}
        }
    }
    if !names.is_empty() {
        writeln!(out, "    // pac.direct")?;
        writeln!(
            out,
            "    if ({})\n        return \"DIRECT\";",
            names.join(" ||\n        ")
        )?;
    }
    let v4: Vec<String> = nets
        .iter()
        .filter_map(|n| match n {
            IpNet::V4(n) => Some(format!(
                "isInNet(ip, {}, {})",
                js(&n.network().to_string()),
                js(&n.netmask().to_string())
            )),
            IpNet::V6(_) => None,
        })
        .collect();
    if !v4.is_empty() {
        writeln!(
            out,
            "    // Loopback and the allow rules' LAN ranges, by address: an IPv4 literal\n    \
             // as it is, a name through the browser's resolver."
        )?;
        writeln!(
            out,
            "    var ip = /^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) ? host : dnsResolve(host);"
        )?;
        writeln!(
            out,
            "    if (ip &&\n        ({}))\n        return \"DIRECT\";",
            v4.join(" ||\n         ")
        )?;
    }
    writeln!(out, "    return {proxy};")?;
    writeln!(out, "}}")
}

#[cfg(test)]
#[path = "pac_tests.rs"]
mod tests;
