//! Configuration: the shipped `config.toml` is the default; a user's file is
//! merged over it, deserialized strictly, then validated as a whole.
//!
//! Pure: parsing and validation only; reading files is the caller's job
//! (see [`Config::load_file`], the one helper that touches the filesystem).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

pub use crate::config_error::{ConfigError, ConfigErrors};

/// The shipped configuration, embedded so that file and code cannot disagree.
pub const DEFAULT_TOML: &str = include_str!("../config.toml");

/// Whole configuration, every key present (missing keys come from the defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub timeouts: Timeouts,
    pub cache: CacheConfig,
    pub auth: crate::auth::AuthConfig,
    pub privacy: crate::anonymize::PrivacyConfig,
    pub log: LogConfig,
    pub admin: AdminConfig,
    pub dns: DnsConfig,
    pub pac: crate::pac::PacConfig,
    /// Parent proxies (`[[parent]]` tables), and how they are used.
    pub parent: Vec<crate::parent::ParentConfig>,
    pub parents: crate::parent::ParentsConfig,
    pub acl: Vec<crate::acl::RuleConfig>,
    /// Folder that relative paths are resolved against (not a TOML key).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`: listening socket and identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub name: String,
    pub connect_ports: Vec<u16>,
    pub max_connections: usize,
    pub max_request_header_size: ByteSize,
    /// Serving threads (0: one per core); read at start only.
    pub threads: usize,
}

/// `[timeouts]`: every wait the proxy does has a bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(with = "humantime_serde")]
    pub client_header: Duration,
    #[serde(with = "humantime_serde")]
    pub client_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub upstream_connect: Duration,
    #[serde(with = "humantime_serde")]
    pub upstream_response: Duration,
    #[serde(with = "humantime_serde")]
    pub upstream_body: Duration,
    #[serde(with = "humantime_serde")]
    pub client_body: Duration,
    #[serde(with = "humantime_serde")]
    pub upstream_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub tunnel_idle: Duration,
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    #[serde(with = "humantime_serde")]
    pub disk_io: Duration,
}

/// `[cache]`: the shared cache's tiers and policy knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub dir: PathBuf,
    pub memory_size: ByteSize,
    pub disk_size: ByteSize,
    pub max_object_size: ByteSize,
    pub memory_object_size: ByteSize,
    pub fill_budget: ByteSize,
    pub range_fill: bool,
    pub heuristic_fraction: f64,
    #[serde(with = "humantime_serde")]
    pub heuristic_max: Duration,
    #[serde(with = "humantime_serde")]
    pub lock_timeout: Duration,
    /// How long past its freshness a stored response may still be served
    /// when the origin cannot be reached (RFC 9111 §4.2.4); zero turns it off.
    #[serde(with = "humantime_serde")]
    pub max_stale: Duration,
}

/// `[dns]`: the caching resolver (see `dns`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers (UDP, TCP on truncation); empty: `/etc/resolv.conf`'s.
    #[serde(deserialize_with = "name_servers")]
    pub servers: Vec<SocketAddr>,
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub stale_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub cache_size: u64,
}

/// `"10.0.0.53"` (port 53) or `"10.0.0.53:5353"`, `"[::1]:53"`.
fn name_servers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<SocketAddr>()
                .or_else(|_| {
                    s.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an address such as \"10.0.0.53\" or \"10.0.0.53:5353\""
                    ))
                })
        })
        .collect()
}

/// `[log]`: diagnostics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub access: String,
    pub format: crate::access_log::Format,
}

/// `[admin]`: the metrics listener and who may purge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub listen: String,
    pub purge_from: Vec<ipnet::IpNet>,
}

impl AdminConfig {
    /// The admin address, when the listener is on.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

impl Config {
    /// The built-in defaults (the shipped `config.toml`), paths relative to `base_dir`.
    pub fn defaults(base_dir: &Path) -> Result<Config, ConfigErrors> {
        Config::from_toml_str("", base_dir)
    }

    /// Parses a user's TOML text merged over the defaults, then validates it.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        match Config::parse_all(text, base_dir) {
            (Some(config), errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(ConfigErrors(errors)),
        }
    }

    /// Parses and validates, reporting every problem: the configuration
    /// with each bad entry put back to its default (when one could be
    /// built), and the errors.
    pub fn parse_all(text: &str, base_dir: &Path) -> (Option<Config>, Vec<ConfigError>) {
        let parse = |src: &str| -> Result<toml::Table, ConfigErrors> {
            src.parse::<toml::Table>()
                .map_err(|e| ConfigErrors::one("", format!("invalid TOML: {e}")))
        };
        let (defaults, user) = match (parse(DEFAULT_TOML), parse(text)) {
            (Ok(d), Ok(u)) => (d, u),
            (Err(e), _) | (_, Err(e)) => return (None, e.0),
        };
        let mut merged = defaults.clone();
        merge(&mut merged, user);
        let (config, mut errors) = deserialize_all(merged, &defaults);
        let Some(mut config) = config else {
            return (None, errors);
        };
        config.base_dir = base_dir.to_path_buf();
        if let Err(invalid) = config.validate() {
            // A key already reported (and removed) is not reported twice.
            let known: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
            errors.extend(invalid.0.into_iter().filter(|e| !known.contains(&e.key)));
        }
        (Some(config), errors)
    }

    /// Reads and parses a config file; relative paths resolve against its folder.
    pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
        match Config::check_file(path) {
            (Some(config), errors) if errors.is_empty() => Ok(config),
            (_, errors) => Err(ConfigErrors(errors)),
        }
    }

    /// [`Config::parse_all`] of a file.
    pub fn check_file(path: &Path) -> (Option<Config>, Vec<ConfigError>) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                let error = format!("cannot read {}: {e}", path.display());
                return (None, ConfigErrors::one("", error).0);
            }
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Config::parse_all(&text, &base)
    }

    /// Checks values that parse but make no sense; returns all problems at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errors.push(ConfigError {
                    key: key.to_owned(),
                    message: message.to_owned(),
                });
            }
        };
        let s = &self.server;
        check(
            !s.name.is_empty() && s.name.bytes().all(crate::http::token::is_tchar),
            "server.name",
            "must be a non-empty HTTP token (letters, digits, and !#$%&'*+-.^_`|~)",
        );
        check(
            !s.connect_ports.is_empty() && !s.connect_ports.contains(&0),
            "server.connect_ports",
            "must list at least one port, none of them 0",
        );
        check(
            s.max_connections > 0,
            "server.max_connections",
            "must be at least 1",
        );
        check(s.threads <= 1024, "server.threads", "must be at most 1024");
        let header = s.max_request_header_size.as_u64();
        check(
            (1024..=16 * 1024 * 1024).contains(&header),
            "server.max_request_header_size",
            "must be between 1KiB and 16MiB",
        );
        let t = &self.timeouts;
        for (key, value) in [
            ("timeouts.client_header", t.client_header),
            ("timeouts.client_idle", t.client_idle),
            ("timeouts.upstream_connect", t.upstream_connect),
            ("timeouts.upstream_response", t.upstream_response),
            ("timeouts.upstream_body", t.upstream_body),
            ("timeouts.client_body", t.client_body),
            ("timeouts.upstream_idle", t.upstream_idle),
            ("timeouts.tunnel_idle", t.tunnel_idle),
        ] {
            check(!value.is_zero(), key, "must be longer than zero");
        }
        check(
            !self.dns.timeout.is_zero(),
            "dns.timeout",
            "must be longer than zero",
        );
        check(
            self.dns.cache_size > 0,
            "dns.cache_size",
            "must be at least 1",
        );
        let c = &self.cache;
        check(
            (0.0..=1.0).contains(&c.heuristic_fraction),
            "cache.heuristic_fraction",
            "must be between 0 and 1",
        );
        check(
            c.max_object_size.as_u64() <= c.disk_size.as_u64(),
            "cache.max_object_size",
            "must not exceed cache.disk_size",
        );
        check(
            c.memory_object_size.as_u64() <= c.memory_size.as_u64(),
            "cache.memory_object_size",
            "must not exceed cache.memory_size",
        );
        check(
            c.fill_budget.as_u64() >= 1024 * 1024,
            "cache.fill_budget",
            "must be at least 1MiB",
        );
        check(
            !self.timeouts.disk_io.is_zero(),
            "timeouts.disk_io",
            "must be longer than zero",
        );
        check(
            !c.dir.as_os_str().is_empty(),
            "cache.dir",
            "must name a folder",
        );
        check(
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            "log.level",
            "is not a level (error, warn, info, debug, trace) or a tracing filter",
        );
        check(
            self.admin.listen.is_empty() || self.admin.listen_addr().is_some(),
            "admin.listen",
            "must be empty (off) or an address such as \"127.0.0.1:9090\"",
        );
        // The access rules, privacy presets, parents and users are checked
        // where they are compiled, once (`shared::compile`).
        errors.extend(crate::pac::validate(&self.pac));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Resolves a configured path against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// One line describing the configuration, for `check-config`.
    pub fn summary(&self) -> String {
        format!(
            "listen {}, name {}, CONNECT ports {:?}, max {} connections, cache {} (memory {}, disk {})",
            self.server.listen,
            self.server.name,
            self.server.connect_ports,
            self.server.max_connections,
            self.resolve(&self.cache.dir).display(),
            self.cache.memory_size,
            self.cache.disk_size,
        )
    }
}

/// Deserializes the merged table, collecting every unknown key and bad
/// value rather than the first: each one found is noted with its key, then
/// replaced by its default (or removed when it has none) and the rest tried
/// again. Returns the config when what is left deserializes.
fn deserialize_all(
    merged: toml::Table,
    defaults: &toml::Table,
) -> (Option<Config>, Vec<ConfigError>) {
    use serde_path_to_error::Segment;
    let defaults = toml::Value::Table(defaults.clone());
    let mut value = toml::Value::Table(merged);
    let mut errors: Vec<ConfigError> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    // Bounded: each round takes one key away or puts a default in its place.
    for _ in 0..64 {
        let error = match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) => return (Some(config), errors),
            Err(e) => e,
        };
        let key = error.path().to_string();
        let text = error.inner().to_string();
        // toml appends "in `table`" on a line of its own; the key says it.
        let message = text.lines().next().unwrap_or_default().to_owned();
        // A field missing because we removed a bad one is not another error.
        if message.starts_with("missing field") && removed.iter().any(|r| parent(r) == key) {
            break;
        }
        errors.push(ConfigError {
            key: key.clone(),
            message,
        });
        let path: Vec<Segment> = error.path().iter().cloned().collect();
        match repair(&mut value, &defaults, &path) {
            Some(true) => removed.push(key),
            Some(false) => {}
            None => break,
        }
    }
    (None, errors)
}

/// `acl[2].action` → `acl[2]`; `server` → ``.
fn parent(key: &str) -> &str {
    match key.rfind(['.', '[']) {
        Some(i) => &key[..i],
        None => "",
    }
}

/// Puts the default at `path` in `value`, or removes what is there when the
/// defaults have nothing at that path. `Some(true)`: removed; `Some(false)`:
/// replaced; `None`: the path cannot be repaired.
fn repair(
    value: &mut toml::Value,
    defaults: &toml::Value,
    path: &[serde_path_to_error::Segment],
) -> Option<bool> {
    use serde_path_to_error::Segment;
    let (last, init) = path.split_last()?;
    let mut node = value;
    let mut default = Some(defaults);
    for segment in init {
        match segment {
            Segment::Map { key } => {
                default = default.and_then(|d| d.get(key.as_str()));
                node = node.get_mut(key.as_str())?;
            }
            Segment::Seq { index } => {
                default = default.and_then(|d| d.get(*index));
                node = node.get_mut(*index)?;
            }
            _ => return None,
        }
    }
    match last {
        Segment::Map { key } => {
            let table = node.as_table_mut()?;
            match default.and_then(|d| d.get(key.as_str())) {
                Some(d) => {
                    table.insert(key.clone(), d.clone());
                    Some(false)
                }
                None => table.remove(key.as_str()).map(|_| true),
            }
        }
        Segment::Seq { index } => {
            let array = node.as_array_mut()?;
            (*index < array.len()).then(|| {
                array.remove(*index);
                true
            })
        }
        _ => None,
    }
}

/// Deep merge: tables merge key by key; any other value (arrays of tables
/// such as `[[acl]]` included) replaces the default wholesale.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml_str(text, Path::new("/etc/cachalot"))
    }

    #[test]
    fn shipped_file_parses_and_is_the_default() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:3128".parse().unwrap());
        assert_eq!(c.server.name, "cachalot");
        assert_eq!(c.server.connect_ports, vec![443]);
        assert_eq!(c.timeouts.client_header, Duration::from_secs(30));
        assert_eq!(c.server.max_request_header_size.as_u64(), 64 * 1024);
        assert!(c.pac.enabled);
        assert!(c.pac.proxy_host.is_empty() && c.pac.direct.is_empty());
    }

    #[test]
    fn pac_keys_are_validated() {
        let e = parse("[pac]\nproxy_host = \"a b\"\ndirect = [\"ok.example\", \"-bad-/\"]\n")
            .unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["pac.proxy_host", "pac.direct"]);
    }

    #[test]
    fn max_stale_defaults_to_a_week_and_zero_turns_it_off() {
        let c = parse("").unwrap();
        assert_eq!(c.cache.max_stale, Duration::from_secs(7 * 24 * 60 * 60));
        let c = parse("[cache]\nmax_stale = \"0s\"\n").unwrap();
        assert!(c.cache.max_stale.is_zero());
        let e = parse("[cache]\nmax_stale = \"forever\"\n").unwrap_err();
        assert_eq!(e.0[0].key, "cache.max_stale");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = parse("[timeouts]\nclient_idle = \"5s\"\n").unwrap();
        assert_eq!(c.timeouts.client_idle, Duration::from_secs(5));
        assert_eq!(c.timeouts.client_header, Duration::from_secs(30));
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let e = parse("[server]\nlisten_port = 1\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.to_string().contains("listen_port"), "{e}");
    }

    #[test]
    fn unknown_section_is_refused() {
        let e = parse("[nonsense]\na = 1\n").unwrap_err();
        assert!(e.to_string().contains("nonsense"), "{e}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let e = parse("[server]\nlisten = \"not an address\"\n").unwrap_err();
        assert_eq!(e.0[0].key, "server.listen");
        let e = parse("[timeouts]\ndrain = \"soon\"\n").unwrap_err();
        assert_eq!(e.0[0].key, "timeouts.drain");
    }

    #[test]
    fn validation_reports_every_problem() {
        let e = parse(
            "[server]\nname = \"bad name\"\nconnect_ports = []\n[timeouts]\nclient_idle = \"0s\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.name",
                "server.connect_ports",
                "timeouts.client_idle"
            ]
        );
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported_with_the_validation_errors() {
        let e = parse(concat!(
            "[server]\nlisten_port = 1\nlisten = \"nowhere\"\nname = \"bad name\"\n",
            "[log]\nformat = \"xml\"\n[nonsense]\na = 1\n",
            "[[acl]]\naction = \"maybe\"\nsrc = [\"10.0.0.0/8\"]\n",
        ))
        .unwrap_err();
        let mut keys: Vec<_> = e.0.iter().map(|e| e.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "acl[0].action",
                "log.format",
                "nonsense",
                "server.listen",
                "server.listen_port",
                "server.name"
            ],
            "{e}"
        );
        assert!(!e.to_string().contains("\nin `"), "{e}");
    }

    #[test]
    fn a_bad_value_without_a_default_is_one_error_not_two() {
        let e = parse(concat!(
            "[[acl]]\naction = \"allow\"\nsrc = [\"10.0.0.0/8\"]\n",
            "[[acl]]\naction = \"maybe\"\n",
        ))
        .unwrap_err();
        assert_eq!(e.0.len(), 1, "{:?}", e.0);
        assert_eq!(e.0[0].key, "acl[1].action");
    }

    #[test]
    fn syntax_error_is_an_error_not_a_panic() {
        assert!(parse("[server\n").is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let c = parse("").unwrap();
        assert_eq!(
            c.resolve(Path::new("cache")),
            PathBuf::from("/etc/cachalot/cache")
        );
        assert_eq!(c.resolve(Path::new("/var/x")), PathBuf::from("/var/x"));
    }
}
