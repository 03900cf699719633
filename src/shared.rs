//! Shared state: an immutable snapshot built from one validated config
//! (swapped whole on SIGHUP), and the long-lived proxy that holds it along
//! with what must outlive a reload (background tasks, the bound address).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

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
}

impl Proxy {
    /// A proxy serving `config`, listening on `listen_addr`.
    pub fn new(config: Config, listen_addr: SocketAddr) -> Arc<Proxy> {
        Arc::new(Proxy {
            current: ArcSwap::from_pointee(Shared::new(config)),
            tasks: TaskTracker::new(),
            listen_addr,
        })
    }

    /// The snapshot in force now; requests keep theirs until they finish.
    pub fn current(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    /// Installs a new configuration; in-flight requests keep the old one.
    pub fn reload(&self, config: Config) {
        if config.server.listen != self.current().config.server.listen {
            tracing::warn!(
                "server.listen cannot change on reload; still listening on {}",
                self.listen_addr
            );
        }
        self.current.store(Arc::new(Shared::new(config)));
    }
}
