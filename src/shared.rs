//! Shared state: an immutable snapshot built from one validated config
//! (swapped whole on SIGHUP), and the long-lived proxy that holds it along
//! with what must outlive a reload (background tasks, the bound address).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

use crate::cache::disk::DiskError;
use crate::cache::Cache;
use crate::config::Config;
use crate::upstream::Upstream;

/// Everything a request needs that derives from the configuration.
pub struct Shared {
    pub config: Arc<Config>,
    pub upstream: Upstream,
}

impl Shared {
    /// Builds a snapshot from a validated configuration.
    pub fn new(config: Config) -> Shared {
        let upstream = Upstream::new(&config);
        Shared {
            config: Arc::new(config),
            upstream,
        }
    }
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
}

impl Proxy {
    /// A proxy serving `config`, listening on `listen_addr`; opens the cache.
    pub fn new(config: Config, listen_addr: SocketAddr) -> Result<Arc<Proxy>, DiskError> {
        let cache = Arc::new(Cache::open(&config)?);
        Ok(Arc::new(Proxy {
            current: ArcSwap::from_pointee(Shared::new(config)),
            tasks: TaskTracker::new(),
            listen_addr,
            cache,
        }))
    }

    /// The snapshot in force now; requests keep theirs until they finish.
    pub fn current(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    /// Installs a new configuration; in-flight requests keep the old one.
    pub fn reload(&self, config: Config) {
        let old = self.current();
        if config.cache.dir != old.config.cache.dir
            || config.cache.memory_size != old.config.cache.memory_size
            || config.cache.disk_size != old.config.cache.disk_size
        {
            tracing::warn!(
                "cache.dir, cache.memory_size and cache.disk_size take effect at restart"
            );
        }
        if config.server.listen != old.config.server.listen {
            tracing::warn!(
                "server.listen cannot change on reload; still listening on {}",
                self.listen_addr
            );
        }
        self.current.store(Arc::new(Shared::new(config)));
    }
}
