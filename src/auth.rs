//! Basic proxy authentication (RFC 7617, RFC 9110 §11.7): users from an
//! htpasswd file of bcrypt entries; successful checks cached briefly (bcrypt
//! is slow on purpose); failed attempts counted per client address and
//! throttled. Owns the users file and the bcrypt work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::header::{PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::http::body::Body;
use crate::http::error_page;

/// `[auth]` as written in config.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub realm: String,
    /// Empty: authentication off.
    pub users_file: String,
}

/// Failed attempts a client address may make per window before throttling.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified credential is trusted without running bcrypt again.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// A valid bcrypt hash (htpasswd -B's default cost), so that an unknown
/// user costs as much time as a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| bcrypt::hash("no such user", 5).unwrap_or_default())
}

/// The outcome of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated as this user.
    User(Arc<str>),
    /// No Proxy-Authorization field.
    Missing,
    /// Malformed, unknown user or wrong password.
    Invalid,
    /// Too many failures from this address lately.
    Throttled,
}

/// The user database and its caches.
pub struct Auth {
    realm: String,
    users: HashMap<String, String>,
    verified: moka::sync::Cache<String, Arc<str>>,
    failures: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
}

impl Auth {
    /// Loads `[auth]`; `None` when authentication is off.
    pub fn load(c: &AuthConfig, base_dir: &Path) -> Result<Option<Auth>, Vec<ConfigError>> {
        if c.users_file.is_empty() {
            return Ok(None);
        }
        let err = |message: String| {
            vec![ConfigError {
                key: "auth.users_file".into(),
                message,
            }]
        };
        if c.realm.contains('"') || c.realm.is_empty() {
            return Err(vec![ConfigError {
                key: "auth.realm".into(),
                message: "must be non-empty and contain no double quote".into(),
            }]);
        }
        let path = base_dir.join(&c.users_file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let users = parse_htpasswd(&text).map_err(err)?;
        Ok(Some(Auth {
            realm: c.realm.clone(),
            users,
            verified: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(VERIFIED_TTL)
                .build(),
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FAILURE_WINDOW)
                .build(),
        }))
    }

    /// Checks a request's Proxy-Authorization.
    pub async fn check(&self, headers: &HeaderMap, client: IpAddr) -> Verdict {
        let Some(value) = headers.get(PROXY_AUTHORIZATION) else {
            return Verdict::Missing;
        };
        let Ok(value) = value.to_str() else {
            return self.failed(client, "non-ASCII credentials");
        };
        if let Some(user) = self.verified.get(value) {
            return Verdict::User(user);
        }
        let failures = self.failures.get(&client);
        if failures
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed) >= MAX_FAILURES)
        {
            tracing::warn!(%client, "proxy authentication throttled after repeated failures");
            return Verdict::Throttled;
        }
        let Some((user, password)) = decode_basic(value) else {
            return self.failed(client, "malformed credentials");
        };
        let known = self.users.get(&user);
        let hash = known.cloned().unwrap_or_else(|| dummy_hash().to_owned());
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok && known.is_some() {
            let user: Arc<str> = user.into();
            self.verified.insert(value.to_owned(), user.clone());
            Verdict::User(user)
        } else {
            self.failed(client, &format!("bad password or unknown user {user:?}"))
        }
    }

    fn failed(&self, client: IpAddr, why: &str) -> Verdict {
        let counter = self
            .failures
            .get_with(client, || Arc::new(AtomicU32::new(0)));
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= MAX_FAILURES {
            tracing::warn!(%client, attempt = n, "proxy authentication failed: {why}");
        }
        Verdict::Invalid
    }

    /// The 407 answer asking for credentials.
    pub fn challenge(&self, proxy_name: &str) -> Response<Body> {
        let mut response = error_page::page(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "Proxy authentication required",
            "This proxy needs a user name and password (Basic authentication).",
            proxy_name,
        );
        let value = format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(PROXY_AUTHENTICATE, value);
        }
        response
    }
}

/// `Basic <base64(user:password)>` (RFC 7617 §2), scheme case-insensitive.
fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Parses `user:hash` lines; only bcrypt hashes (`htpasswd -B`) are accepted.
fn parse_htpasswd(text: &str) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {}: expected user:hash", n + 1));
        };
        let bcrypt = ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p));
        if !bcrypt || hash.len() != 60 {
            return Err(format!(
                "line {}: user {user:?} has no bcrypt hash; only bcrypt entries are accepted \
                 (create them with `htpasswd -B`); plain-text, MD5, SHA and crypt entries are refused",
                n + 1
            ));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderMap {
        let token = base64::engine::general_purpose::STANDARD.encode(user_pass);
        let mut h = HeaderMap::new();
        h.insert(
            PROXY_AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn auth_with(line: &str) -> Auth {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users"), line).unwrap();
        let c = AuthConfig {
            realm: "test".into(),
            users_file: "users".into(),
        };
        Auth::load(&c, dir.path()).unwrap().unwrap()
    }

    #[tokio::test]
    async fn right_password_passes_and_wrong_ones_fail() {
        // RFC 7617 §2.
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = auth_with(&format!("alice:{hash}\n"));
        let ip = "10.0.0.1".parse().unwrap();
        assert_eq!(
            auth.check(&basic("alice:s3cret"), ip).await,
            Verdict::User("alice".into())
        );
        assert_eq!(
            auth.check(&basic("alice:wrong"), ip).await,
            Verdict::Invalid
        );
        assert_eq!(
            auth.check(&basic("mallory:s3cret"), ip).await,
            Verdict::Invalid
        );
        assert_eq!(auth.check(&HeaderMap::new(), ip).await, Verdict::Missing);
        let mut garbage = HeaderMap::new();
        garbage.insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(auth.check(&garbage, ip).await, Verdict::Invalid);
    }

    #[tokio::test]
    async fn repeated_failures_are_throttled() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let auth = auth_with(&format!("bob:{hash}\n"));
        let ip = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.check(&basic("bob:nope"), ip).await, Verdict::Invalid);
        }
        assert_eq!(auth.check(&basic("bob:pw"), ip).await, Verdict::Throttled);
    }

    #[test]
    fn plain_text_and_md5_entries_are_refused() {
        assert!(parse_htpasswd("alice:password\n")
            .unwrap_err()
            .contains("htpasswd -B"));
        assert!(parse_htpasswd("alice:$apr1$abc$def\n").is_err());
        assert!(parse_htpasswd("# comment\n\n").unwrap().is_empty());
    }
}
