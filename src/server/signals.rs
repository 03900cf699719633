//! Process signals: SIGINT/SIGTERM stop the proxy (after draining), SIGHUP
//! reloads the configuration, keeping the running one if the new one fails.

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::{Config, ConfigErrors};
use crate::shared::Proxy;

/// Resolves on the first SIGINT or SIGTERM.
pub async fn shutdown() {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install SIGINT/SIGTERM handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

/// On every SIGHUP, builds a new configuration with `load` and installs it,
/// or logs why it was refused and keeps the running one.
pub fn reload_on_sighup<L>(proxy: Arc<Proxy>, load: L)
where
    L: Fn() -> Result<Config, ConfigErrors> + Send + 'static,
{
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler; reload disabled");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match load().and_then(|config| proxy.reload(config)) {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(errors) => {
                    for e in &errors.0 {
                        tracing::error!("reload refused: {e}");
                    }
                    tracing::warn!("keeping the running configuration");
                }
            }
        }
    });
}

/// On every SIGUSR1, asks the access-log writer to reopen its file
/// (logrotate moves the file, then signals).
pub fn reopen_log_on_sigusr1(proxy: Arc<Proxy>) {
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::error!("cannot install the SIGUSR1 handler; log reopening disabled");
        return;
    };
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            if let Some(log) = &proxy.log {
                log.reopen();
                tracing::info!("access log reopened");
            }
        }
    });
}
