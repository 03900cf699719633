//! Access control: ordered allow/deny rules, first match wins, with an
//! implicit final deny. A rule matches when every condition it lists holds.
//! Hosts and addresses arrive normalized (see `http::target`), so a rule
//! cannot be bypassed by another spelling of the same destination.
//!
//! Two phases, as Squid splits fast and slow ACLs: rules are first run
//! without the destination's address; evaluation that reaches a rule with
//! `dst` whose other conditions hold stops and asks for the address
//! ([`Decision::NeedsAddress`]), and is run again with it. Pure.

use std::fmt;
use std::net::IpAddr;

use http::Method;
use ipnet::IpNet;
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::http::target::Host;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

/// One `[[acl]]` table as written in config.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Optional label shown on the 403 page and in logs.
    pub name: Option<String>,
    pub action: Option<Action>,
    #[serde(default)]
    pub src: Vec<String>,
    #[serde(default)]
    pub dst_domain: Vec<String>,
    #[serde(default)]
    pub dst: Vec<String>,
    #[serde(default)]
    pub port: Vec<u16>,
    #[serde(default)]
    pub method: Vec<String>,
    #[serde(default)]
    pub user: Vec<String>,
}

/// A host pattern of `dst_domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Domain {
    /// `example.com`: that host only.
    Exact(Host),
    /// `.example.com`: the domain and every subdomain (Squid's dstdomain).
    Suffix(String),
    /// `*.example.com`: subdomains only.
    Subdomains(String),
}

impl Domain {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (Domain::Exact(h), host) => h == host,
            (Domain::Suffix(s), Host::Domain(d)) => d == s || is_subdomain(d, s),
            (Domain::Subdomains(s), Host::Domain(d)) => is_subdomain(d, s),
            _ => false,
        }
    }
}

fn is_subdomain(host: &str, domain: &str) -> bool {
    host.len() > domain.len()
        && host.ends_with(domain)
        && host.as_bytes().get(host.len() - domain.len() - 1) == Some(&b'.')
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub label: String,
    pub action: Action,
    src: Vec<IpNet>,
    dst_domain: Vec<Domain>,
    dst: Vec<IpNet>,
    port: Vec<u16>,
    method: Vec<Method>,
    user: Vec<String>,
}

/// What is known of the destination's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// Not looked up yet: a rule that needs it stops the evaluation.
    Unknown,
    /// The name does not resolve: no `dst` condition holds (Squid's rule).
    Unresolvable,
    /// The address the proxy will connect to.
    Known(IpAddr),
}

/// What is known of a request when rules are evaluated.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub src: IpAddr,
    pub host: &'a Host,
    pub port: u16,
    pub method: &'a Method,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    pub dst: Dst,
}

/// The verdict of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the rule at this index.
    Allow(usize),
    /// Denied by the rule at this index, or by the implicit final deny.
    Deny(Option<usize>),
    /// The rule at this index has `dst` and its other conditions hold:
    /// evaluate again with the address.
    NeedsAddress(usize),
}

/// `dst = ["to_localhost"]`: destinations on this host (Squid's
/// `to_localhost`, plus the unspecified addresses, which reach it too).
pub const TO_LOCALHOST: &str = "to_localhost";

/// The whole ordered rule set.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl Rules {
    /// Compiles `[[acl]]` tables; every problem is reported with its key.
    /// `own` are this proxy's own addresses, part of `to_localhost`.
    pub fn compile(
        configs: &[RuleConfig],
        auth_enabled: bool,
        own: &[IpAddr],
    ) -> Result<Rules, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let key = |field: &str| format!("acl[{i}].{field}");
            let mut err = |field: &str, message: String| {
                errors.push(ConfigError {
                    key: key(field),
                    message,
                })
            };
            let Some(action) = c.action else {
                err("action", "is required (\"allow\" or \"deny\")".into());
                continue;
            };
            let src = nets(&c.src).unwrap_or_else(|bad| {
                err("src", format!("{bad:?} is not an address or CIDR"));
                Vec::new()
            });
            let (local, listed): (Vec<String>, Vec<String>) = c
                .dst
                .iter()
                .cloned()
                .partition(|d| d.trim() == TO_LOCALHOST);
            let mut dst = nets(&listed).unwrap_or_else(|bad| {
                err(
                    "dst",
                    format!("{bad:?} is not an address, a CIDR or \"{TO_LOCALHOST}\""),
                );
                Vec::new()
            });
            if !local.is_empty() {
                dst.extend(to_localhost(own));
            }
            let mut dst_domain = Vec::new();
            for d in &c.dst_domain {
                match domain(d) {
                    Some(d) => dst_domain.push(d),
                    None => err("dst_domain", format!("{d:?} is not a host name")),
                }
            }
            let mut method = Vec::new();
            for m in &c.method {
                match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                    Ok(m) => method.push(m),
                    Err(_) => err("method", format!("{m:?} is not a method")),
                }
            }
            if c.port.contains(&0) {
                err("port", "0 is not a port".into());
            }
            if !c.user.is_empty() && !auth_enabled {
                err(
                    "user",
                    "names users, so [auth] users_file must be set".into(),
                );
            }
            rules.push(Rule {
                label: match &c.name {
                    Some(name) => format!("acl rule {} ({name:?})", i + 1),
                    None => format!("acl rule {}", i + 1),
                },
                action,
                src,
                dst_domain,
                dst,
                port: c.port.clone(),
                method,
                user: c.user.clone(),
            });
        }
        if errors.is_empty() {
            Ok(Rules { rules })
        } else {
            Err(errors)
        }
    }

    /// First matching rule decides; nothing matching means deny. With the
    /// address unknown, stops at the first rule that needs it.
    pub fn evaluate(&self, s: &Subject<'_>) -> Decision {
        let src = s.src.to_canonical();
        for (i, rule) in self.rules.iter().enumerate() {
            let others = (rule.src.is_empty() || rule.src.iter().any(|n| n.contains(&src)))
                && (rule.dst_domain.is_empty()
                    || rule.dst_domain.iter().any(|d| d.matches(s.host)))
                && (rule.port.is_empty() || rule.port.contains(&s.port))
                && (rule.method.is_empty() || rule.method.contains(s.method))
                && (rule.user.is_empty()
                    || s.user.is_some_and(|u| rule.user.iter().any(|r| r == u)));
            if !others {
                continue;
            }
            let holds = rule.dst.is_empty()
                || match s.dst {
                    Dst::Unknown => return Decision::NeedsAddress(i),
                    Dst::Unresolvable => false,
                    Dst::Known(ip) => {
                        let ip = ip.to_canonical();
                        rule.dst.iter().any(|n| n.contains(&ip))
                    }
                };
            if holds {
                return match rule.action {
                    Action::Allow => Decision::Allow(i),
                    Action::Deny => Decision::Deny(Some(i)),
                };
            }
        }
        Decision::Deny(None)
    }

    /// The label of a rule, or of the implicit final deny.
    pub fn label(&self, index: Option<usize>) -> String {
        index
            .and_then(|i| self.rules.get(i))
            .map_or_else(|| "the implicit final deny".to_owned(), |r| r.label.clone())
    }

    /// What the 403 page says of a denial: the rule, its key, and for a
    /// rule on the destination address, how to allow it.
    pub fn explain(&self, index: Option<usize>, dst: Option<IpAddr>) -> String {
        let label = self.label(index);
        match (index, index.and_then(|i| self.rules.get(i)), dst) {
            (Some(i), Some(rule), Some(ip)) if !rule.dst.is_empty() => format!(
                "{label} (key acl[{i}].dst): the destination address {ip} is refused; \
                 to allow it, put an allow rule with its dst before acl[{i}]"
            ),
            (Some(i), Some(_), _) => format!("{label} (key acl[{i}])"),
            _ => format!("{label} (no [[acl]] rule allows this request)"),
        }
    }
}

/// The networks of `to_localhost`: loopback, the unspecified addresses
/// (connecting to them reaches this host), and this proxy's own addresses.
fn to_localhost(own: &[IpAddr]) -> Vec<IpNet> {
    let mut nets: Vec<IpNet> = ["127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    for ip in own {
        let ip = ip.to_canonical();
        if !ip.is_unspecified() && !nets.iter().any(|n| n.contains(&ip)) {
            nets.push(IpNet::from(ip));
        }
    }
    nets
}

/// Parses CIDRs and bare addresses (a bare address is a /32 or /128).
fn nets(raw: &[String]) -> Result<Vec<IpNet>, String> {
    raw.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| match n {
                    // An IPv4-mapped IPv6 network is written for IPv4 clients.
                    IpNet::V6(v6)
                        if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 =>
                    {
                        match v6.addr().to_ipv4_mapped() {
                            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                                .map(IpNet::V4)
                                .unwrap_or(n),
                            None => n,
                        }
                    }
                    n => n.trunc(),
                })
                .map_err(|_| s.to_owned())
        })
        .collect()
}

fn domain(raw: &str) -> Option<Domain> {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix("*.") {
        return match Host::parse(rest).ok()? {
            Host::Domain(d) => Some(Domain::Subdomains(d)),
            Host::Ip(_) => None,
        };
    }
    if let Some(rest) = raw.strip_prefix('.') {
        return match Host::parse(rest).ok()? {
            Host::Domain(d) => Some(Domain::Suffix(d)),
            Host::Ip(_) => None,
        };
    }
    Host::parse(raw).ok().map(Domain::Exact)
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
