//! Anonymization: which identifying header fields leave the proxy. Runs on
//! the request before the cache key and Vary are evaluated, so that stored
//! variants match what the origin saw, and on every response. Pure.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, USER_AGENT};
use http::HeaderMap;
use serde::Deserialize;

use crate::config_error::ConfigError;

/// The `[privacy] mode` presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only what the other keys say.
    Off,
    /// Strip fields naming the client or earlier proxies; add none of ours.
    Standard,
    /// Standard, plus Referer, Accept-Language, and a generic User-Agent.
    Paranoid,
}

/// What to do with X-Forwarded-For.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Xff {
    /// Append the client's address (Squid's `forwarded_for on`).
    Add,
    /// Pass on what the client sent.
    Keep,
    /// Remove it.
    Strip,
}

/// `[privacy]` as written in config.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    pub mode: Mode,
    pub x_forwarded_for: Xff,
    pub via: bool,
    pub strip_request_headers: Vec<String>,
    pub strip_response_headers: Vec<String>,
}

/// Fields `standard` removes from requests.
const STANDARD: [&str; 6] = [
    "x-forwarded-for",
    "forwarded",
    "via",
    "x-real-ip",
    "client-ip",
    "from",
];
/// Fields `paranoid` removes besides.
const PARANOID: [&str; 2] = ["referer", "accept-language"];
/// The one User-Agent every client shares in `paranoid` mode.
pub const GENERIC_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The compiled privacy settings.
#[derive(Debug, Clone)]
pub struct Privacy {
    xff: Xff,
    via: bool,
    strip_request: Vec<HeaderName>,
    strip_response: Vec<HeaderName>,
    user_agent: Option<HeaderValue>,
}

impl Privacy {
    /// Compiles the settings: a preset overrides `x_forwarded_for` and `via`
    /// and adds its fields to `strip_request_headers`.
    pub fn compile(c: &PrivacyConfig) -> Result<Privacy, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut names = |key: &str, list: &[String]| -> Vec<HeaderName> {
            list.iter()
                .filter_map(|n| match HeaderName::from_bytes(n.trim().as_bytes()) {
                    Ok(name) => Some(name),
                    Err(_) => {
                        errors.push(ConfigError {
                            key: format!("privacy.{key}"),
                            message: format!("{n:?} is not a header field name"),
                        });
                        None
                    }
                })
                .collect()
        };
        let mut strip_request = names("strip_request_headers", &c.strip_request_headers);
        let strip_response = names("strip_response_headers", &c.strip_response_headers);
        if !errors.is_empty() {
            return Err(errors);
        }
        let (mut xff, mut via, mut user_agent) = (c.x_forwarded_for, c.via, None);
        if c.mode != Mode::Off {
            xff = Xff::Strip;
            via = false;
            strip_request.extend(STANDARD.iter().map(|n| HeaderName::from_static(n)));
        }
        if c.mode == Mode::Paranoid {
            strip_request.extend(PARANOID.iter().map(|n| HeaderName::from_static(n)));
            user_agent = Some(HeaderValue::from_static(GENERIC_USER_AGENT));
        }
        Ok(Privacy {
            xff,
            via,
            strip_request,
            strip_response,
            user_agent,
        })
    }

    /// Whether the proxy adds its own Via.
    pub fn via(&self) -> bool {
        self.via
    }

    /// Strips a request's fields before anything else sees the request.
    pub fn request(&self, headers: &mut HeaderMap) {
        for name in &self.strip_request {
            headers.remove(name);
        }
        if let Some(agent) = &self.user_agent {
            headers.insert(USER_AGENT, agent.clone());
        }
    }

    /// X-Forwarded-For as configured, on a request about to go upstream.
    pub fn forwarded_for(&self, headers: &mut HeaderMap, client: IpAddr) {
        match self.xff {
            Xff::Keep => {}
            Xff::Strip => {
                headers.remove("x-forwarded-for");
            }
            Xff::Add => {
                let client = client.to_canonical().to_string();
                let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                    Some(before) if !before.trim().is_empty() => format!("{before}, {client}"),
                    _ => client,
                };
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert("x-forwarded-for", value);
                }
            }
        }
    }

    /// Removes the configured fields from a response.
    pub fn response(&self, headers: &mut HeaderMap) {
        for name in &self.strip_response {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode) -> PrivacyConfig {
        PrivacyConfig {
            mode,
            x_forwarded_for: Xff::Add,
            via: true,
            strip_request_headers: vec![],
            strip_response_headers: vec![],
        }
    }

    fn identifying() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-forwarded-for", "10.9.9.9"),
            ("forwarded", "for=10.9.9.9"),
            ("via", "1.1 inner"),
            ("x-real-ip", "10.9.9.9"),
            ("client-ip", "10.9.9.9"),
            ("from", "me@example.com"),
            ("referer", "http://secret.example/"),
            ("accept-language", "fr"),
            ("user-agent", "MyBrowser/1"),
            ("cookie", "a=b"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn off_adds_the_client_to_x_forwarded_for() {
        let p = Privacy::compile(&config(Mode::Off)).unwrap();
        let mut h = identifying();
        p.request(&mut h);
        p.forwarded_for(&mut h, "192.168.1.5".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.9.9.9, 192.168.1.5");
        assert!(p.via());
    }

    #[test]
    fn standard_strips_identifying_fields_and_adds_none() {
        let p = Privacy::compile(&config(Mode::Standard)).unwrap();
        let mut h = identifying();
        p.request(&mut h);
        p.forwarded_for(&mut h, "192.168.1.5".parse().unwrap());
        for gone in STANDARD {
            assert!(!h.contains_key(gone), "{gone}");
        }
        assert_eq!(h["referer"], "http://secret.example/");
        assert!(!p.via());
    }

    #[test]
    fn paranoid_also_strips_referer_language_and_fixes_user_agent() {
        let p = Privacy::compile(&config(Mode::Paranoid)).unwrap();
        let mut h = identifying();
        p.request(&mut h);
        p.forwarded_for(&mut h, "192.168.1.5".parse().unwrap());
        assert!(!h.contains_key("referer") && !h.contains_key("accept-language"));
        assert_eq!(h["user-agent"], GENERIC_USER_AGENT);
        assert_eq!(h["cookie"], "a=b", "Cookie only when listed");
    }

    #[test]
    fn listed_fields_are_stripped_both_ways() {
        let mut c = config(Mode::Off);
        c.x_forwarded_for = Xff::Keep;
        c.strip_request_headers = vec!["Cookie".into()];
        c.strip_response_headers = vec!["Server".into()];
        let p = Privacy::compile(&c).unwrap();
        let mut h = identifying();
        p.request(&mut h);
        p.forwarded_for(&mut h, "192.168.1.5".parse().unwrap());
        assert!(!h.contains_key("cookie"));
        assert_eq!(h["x-forwarded-for"], "10.9.9.9");
        let mut r = HeaderMap::new();
        r.insert("server", HeaderValue::from_static("nginx"));
        p.response(&mut r);
        assert!(r.is_empty());
    }

    #[test]
    fn bad_field_names_are_refused() {
        let mut c = config(Mode::Off);
        c.strip_request_headers = vec!["bad name".into()];
        assert_eq!(
            Privacy::compile(&c).unwrap_err()[0].key,
            "privacy.strip_request_headers"
        );
    }
}
