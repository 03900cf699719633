//! Parent proxies (a cache hierarchy, like Squid's `cache_peer … parent`):
//! which parent a request goes through, by rendezvous (highest random
//! weight) hashing of its URL, as Squid's CARP and ATS's consistent-hash
//! parent selection do, so that each URL always goes to the same parent and
//! a parent that is down gives only its own share to the others; which
//! hosts go direct (`always_direct`) or never do (`never_direct`). The
//! choice is pure; the down marks are the one piece of state, with time
//! passed in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::http::target::Host;

/// One `[[parent]]` table as written in config.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentConfig {
    /// Label for logs and the hash (default `host:port`). Changing it moves
    /// the parent's share of URLs.
    pub name: Option<String>,
    pub host: String,
    pub port: u16,
    /// Basic credentials sent to the parent in `Proxy-Authorization`.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Relative share of URLs (rendezvous weight).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// `[parents]`: how parents are used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentsConfig {
    pub always_direct: Vec<String>,
    pub never_direct: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub down_for: Duration,
}

/// A configured parent, ready to use.
#[derive(Debug)]
pub struct Parent {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `Basic …`, when credentials are configured.
    pub authorization: Option<HeaderValue>,
    weight: f64,
    /// Until when it counts as down (a connection to it failed).
    down_until: Mutex<Option<Instant>>,
}

impl Parent {
    /// Whether it is marked down at `now`.
    pub fn is_down(&self, now: Instant) -> bool {
        match self.down_until.lock() {
            Ok(g) => g.is_some_and(|t| now < t),
            Err(p) => p.into_inner().is_some_and(|t| now < t),
        }
    }

    /// Marks it down until `until`; true when it was up (say so once).
    pub fn mark_down(&self, until: Instant, now: Instant) -> bool {
        let mut g = match self.down_until.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let was_up = !g.is_some_and(|t| now < t);
        *g = Some(until);
        was_up
    }
}

/// A domain list (`dst_domain` syntax, or `"*"` for every host).
#[derive(Debug, Default)]
struct Domains {
    all: bool,
    exact: Vec<String>,
    suffixes: Vec<String>,
}

impl Domains {
    fn compile(raw: &[String], key: &str, errors: &mut Vec<ConfigError>) -> Domains {
        let mut d = Domains::default();
        for pattern in raw {
            let p = pattern.trim();
            if p == "*" {
                d.all = true;
                continue;
            }
            let (suffix, name) = match (p.strip_prefix("*."), p.strip_prefix('.')) {
                (Some(rest), _) => (Some(true), rest),
                (None, Some(rest)) => (Some(false), rest),
                (None, None) => (None, p),
            };
            match Host::parse(name) {
                Ok(Host::Domain(n)) => match suffix {
                    // ".example.com": the domain and its subdomains
                    Some(false) => {
                        d.exact.push(n.clone());
                        d.suffixes.push(format!(".{n}"));
                    }
                    Some(true) => d.suffixes.push(format!(".{n}")),
                    None => d.exact.push(n),
                },
                Ok(Host::Ip(ip)) if suffix.is_none() => d.exact.push(ip.to_string()),
                _ => errors.push(ConfigError {
                    key: key.to_owned(),
                    message: format!("{pattern:?} is not a host name, .domain, *.domain or \"*\""),
                }),
            }
        }
        d
    }

    fn matches(&self, host: &str) -> bool {
        self.all
            || self.exact.iter().any(|e| e == host)
            || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }
}

/// Where a request may go, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Indexes of the parents to try, best first.
    pub parents: Vec<usize>,
    /// Whether going direct is allowed once the parents failed (or first,
    /// when `parents` is empty).
    pub direct: bool,
}

/// Every configured parent and the rules for using them.
#[derive(Debug, Default)]
pub struct Parents {
    pub list: Vec<Parent>,
    always_direct: Domains,
    never_direct: Domains,
    down_for: Duration,
}

impl Parents {
    /// Compiles `[[parent]]` and `[parents]`; every problem with its key.
    pub fn compile(
        parents: &[ParentConfig],
        rules: &ParentsConfig,
    ) -> Result<Parents, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut list: Vec<Parent> = Vec::with_capacity(parents.len());
        for (i, p) in parents.iter().enumerate() {
            let mut err = |field: &str, message: &str| {
                errors.push(ConfigError {
                    key: format!("parent[{i}].{field}"),
                    message: message.to_owned(),
                })
            };
            if p.host.trim().is_empty() {
                err("host", "must name the parent proxy's host");
            }
            if p.port == 0 {
                err("port", "0 is not a port");
            }
            if !(p.weight.is_finite() && p.weight > 0.0) {
                err("weight", "must be a number above 0");
            }
            let authorization = match (&p.user, &p.password) {
                (Some(user), Some(password)) => {
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    HeaderValue::from_str(&format!("Basic {token}")).ok()
                }
                (None, None) => None,
                _ => {
                    err("user", "user and password go together");
                    None
                }
            };
            let name = p
                .name
                .clone()
                .unwrap_or_else(|| format!("{}:{}", p.host, p.port));
            if list.iter().any(|other| other.name == name) {
                err("name", "two parents have this name");
            }
            list.push(Parent {
                name,
                host: p.host.trim().to_owned(),
                port: p.port,
                authorization,
                weight: p.weight,
                down_until: Mutex::new(None),
            });
        }
        let always_direct =
            Domains::compile(&rules.always_direct, "parents.always_direct", &mut errors);
        let never_direct =
            Domains::compile(&rules.never_direct, "parents.never_direct", &mut errors);
        if errors.is_empty() {
            Ok(Parents {
                list,
                always_direct,
                never_direct,
                down_for: rules.down_for,
            })
        } else {
            Err(errors)
        }
    }

    /// How long a parent that failed counts as down.
    pub fn down_for(&self) -> Duration {
        self.down_for
    }

    /// Where a request for `key` (its URL; `host:port` for CONNECT) to
    /// `host` goes: parents up at `now` by descending rendezvous score, then
    /// direct when allowed; when every parent is down and going direct is
    /// not allowed, the down ones are tried anyway.
    pub fn plan(&self, key: &str, host: &str, now: Instant) -> Plan {
        if self.list.is_empty() || self.always_direct.matches(host) {
            return Plan {
                parents: Vec::new(),
                direct: true,
            };
        }
        let direct = !self.never_direct.matches(host);
        let mut scored: Vec<(f64, usize)> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, p)| (score(key, &p.name, p.weight), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (up, down): (Vec<usize>, Vec<usize>) = scored
            .into_iter()
            .map(|(_, i)| i)
            .partition(|i| self.list.get(*i).is_some_and(|p| !p.is_down(now)));
        let parents = if up.is_empty() && !direct { down } else { up };
        Plan { parents, direct }
    }
}

/// Weighted rendezvous score (Schindelhauer and Schomaker's logarithmic
/// method): `-weight / ln(u)` for a uniform `u` in (0, 1) derived from the
/// key and the parent's name, so a parent's share follows its weight and
/// removing one parent moves only the keys it had.
fn score(key: &str, name: &str, weight: f64) -> f64 {
    let h = mix(fnv1a(
        fnv1a(0xcbf2_9ce4_8422_2325, key.as_bytes()) ^ 0xff,
        name.as_bytes(),
    ));
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -weight / u.ln()
}

/// FNV-1a, 64-bit: stable across builds and machines, so that two proxies
/// with the same parents send each URL to the same parent.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finalizer: FNV's low bits mix poorly on their own.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "parent_tests.rs"]
mod tests;
