//! Shared state: an immutable snapshot built from one validated config
//! (compiled ACL, users, privacy, upstream client), swapped whole on SIGHUP,
//! and the long-lived proxy that holds it along with what must outlive a
//! reload (the cache, background tasks, the bound address).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLog;
use crate::acl::Rules;
use crate::anonymize::Privacy;
use crate::auth::Auth;
use crate::cache::store::disk::DiskError;
use crate::cache::Cache;
use crate::config::{Config, ConfigErrors};
use crate::dns::Resolver;
use crate::forward::Forwarding;
use crate::metrics::Metrics;
use crate::upstream::{LocalSockets, Upstream};

/// Everything a request needs that derives from the configuration.
pub struct Shared {
    pub config: Arc<Config>,
    pub acl: Rules,
    /// Basic authentication, when `[auth] users_file` is set.
    pub auth: Option<Auth>,
    /// The admin listener's address, parsed once.
    pub admin_addr: Option<SocketAddr>,
    /// What forwarding needs: our name and Via, privacy, the upstream.
    pub forwarding: Forwarding,
    /// `<name>; hit`, the Cache-Status of a memory hit.
    pub hit_status: http::HeaderValue,
}

impl Shared {
    /// Builds a snapshot from a validated configuration (reads the users
    /// file); `listen` is the address actually listened on.
    pub fn new(
        config: Config,
        dns: Arc<Resolver>,
        listen: SocketAddr,
    ) -> Result<Shared, ConfigErrors> {
        let admin_addr = config.admin.listen_addr();
        let Compiled {
            acl,
            privacy,
            auth,
            parents,
        } = compile(&config, listen)?;
        let local = LocalSockets {
            listen,
            admin: admin_addr,
        };
        let upstream = Upstream::new(&config, dns, local, Arc::new(parents));
        let via =
            http::HeaderValue::from_str(&format!("1.1 {}", config.server.name)).map_err(|_| {
                ConfigErrors(vec![crate::config_error::ConfigError {
                    key: "server.name".into(),
                    message: "is not a valid header value".into(),
                }])
            })?;
        let hit_status = http::HeaderValue::from_str(
            &crate::cache::outcome::Outcome::MemHit.cache_status(&config.server.name, None),
        )
        .unwrap_or_else(|_| http::HeaderValue::from_static("cachalot; hit"));
        Ok(Shared {
            admin_addr,
            hit_status,
            forwarding: Forwarding {
                name: config.server.name.clone(),
                via,
                privacy,
                upstream,
            },
            config: Arc::new(config),
            acl,
            auth,
        })
    }
}

/// The parts of a configuration that are compiled before use.
pub struct Compiled {
    pub acl: Rules,
    pub privacy: Privacy,
    /// Basic authentication, when `[auth] users_file` is set.
    pub auth: Option<Auth>,
    pub parents: crate::parent::Parents,
}

/// Compiles the access rules, privacy presets, users file and parents of
/// `config`, once, reporting every problem with its key (`check-config`
/// calls this too). `listen` is the address listened on, part of the
/// access rules' `to_localhost`. Reads the users file.
pub fn compile(config: &Config, listen: SocketAddr) -> Result<Compiled, ConfigErrors> {
    let auth_on = !config.auth.users_file.is_empty();
    let own: Vec<std::net::IpAddr> = std::iter::once(listen.ip())
        .chain(config.admin.listen_addr().map(|a| a.ip()))
        .collect();
    let mut errors = Vec::new();
    let acl = Rules::compile(&config.acl, auth_on, &own).map_err(|e| errors.extend(e));
    let privacy = Privacy::compile(&config.privacy).map_err(|e| errors.extend(e));
    let auth = Auth::load(&config.auth, &config.base_dir).map_err(|e| errors.extend(e));
    let parents = crate::parent::Parents::compile(&config.parent, &config.parents)
        .map_err(|e| errors.extend(e));
    match (acl, privacy, auth, parents) {
        (Ok(acl), Ok(privacy), Ok(auth), Ok(parents)) => Ok(Compiled {
            acl,
            privacy,
            auth,
            parents,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration refused:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error("cannot open the cache: {0}")]
    Cache(#[from] DiskError),
    #[error("cannot open the access log {0}: {1}")]
    Log(String, std::io::Error),
}

/// The running proxy.
pub struct Proxy {
    current: ArcSwap<Shared>,
    /// Work that must finish before exit: CONNECT tunnels, background refreshes.
    pub tasks: TaskTracker,
    /// The address actually listened on.
    pub listen_addr: SocketAddr,
    /// The shared cache; opened once, kept across reloads.
    pub cache: Arc<Cache>,
    /// The access log (None when `log.access` is empty); fixed at start.
    pub log: Option<AccessLog>,
    pub metrics: Arc<Metrics>,
    /// The caching resolver; kept across reloads (`[dns]` changes apply at
    /// restart), so that a reload does not forget every name.
    pub dns: Arc<Resolver>,
}

impl Proxy {
    /// A proxy serving `config`, listening on `listen_addr`; opens the cache.
    pub fn new(config: Config, listen_addr: SocketAddr) -> Result<Arc<Proxy>, StartError> {
        let cache = Arc::new(Cache::open(&config)?);
        let log = match config.log.access.as_str() {
            "" => None,
            "-" => Some(AccessLog::start(
                std::path::Path::new("-"),
                config.log.format,
            )),
            path => Some(AccessLog::start(
                &config.resolve(std::path::Path::new(path)),
                config.log.format,
            )),
        }
        .transpose()
        .map_err(|e| StartError::Log(config.log.access.clone(), e))?;
        let dns = Resolver::new(&config.dns);
        let shared = Shared::new(config, dns.clone(), listen_addr)?;
        Ok(Arc::new(Proxy {
            dns,
            current: ArcSwap::from_pointee(shared),
            tasks: TaskTracker::new(),
            listen_addr,
            cache,
            log,
            metrics: Arc::new(Metrics::default()),
        }))
    }

    /// The snapshot in force now; requests keep theirs until they finish.
    pub fn current(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    /// Installs a new configuration, or keeps the running one and says why.
    /// In-flight requests finish with the snapshot they started with.
    pub fn reload(&self, config: Config) -> Result<(), ConfigErrors> {
        let old = self.current();
        let c = &config.cache;
        if c.dir != old.config.cache.dir
            || c.memory_size != old.config.cache.memory_size
            || c.disk_size != old.config.cache.disk_size
        {
            tracing::warn!(
                "cache.dir, cache.memory_size and cache.disk_size take effect at restart"
            );
        }
        if config.dns != old.config.dns {
            tracing::warn!("the [dns] section takes effect at restart");
        }
        if config.server.listen != old.config.server.listen {
            tracing::warn!(
                "server.listen cannot change on reload; still listening on {}",
                self.listen_addr
            );
        }
        let shared = Shared::new(config, self.dns.clone(), self.listen_addr)?;
        self.current.store(Arc::new(shared));
        Ok(())
    }

    /// Writes what is pending (log lines, disk writes) before exit.
    pub fn close(&self) {
        if let Some(log) = &self.log {
            log.close();
        }
        self.cache.store.close();
    }
}
