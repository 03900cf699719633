//! Thread per core: the proxy serves on `server.threads` single-threaded
//! runtimes, each accepting on its own `SO_REUSEPORT` socket bound to the
//! same address, so that a client connection, the origin connection it
//! uses, and the tasks between them stay on one thread (no cross-thread
//! wake-ups, no work-stealing bookkeeping). The kernel spreads new
//! connections across the sockets. The first runtime is the caller's; it
//! also runs what is not a client connection (signals, the admin listener,
//! the resolver's and the store's background tasks), and outlives the others.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::listener;
use crate::shared::Proxy;

/// How many serving threads `server.threads` asks for (0: one per core
/// this process may run on).
pub fn count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `count` listening sockets on `addr`, all with `SO_REUSEPORT` (a port 0
/// is chosen by the first and reused by the others).
pub fn bind(addr: SocketAddr, count: usize) -> std::io::Result<Vec<TcpListener>> {
    let first = listener::bind_shared(addr)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..count {
        all.push(listener::bind_shared(addr)?);
    }
    Ok(all)
}

/// Serves `listeners` (one per thread, the first on the caller's runtime)
/// until `shutdown` resolves, then drains every thread. The limit of
/// `server.max_connections` is shared by all of them.
pub async fn run<F>(listeners: Vec<TcpListener>, proxy: Arc<Proxy>, shutdown: F)
where
    F: Future<Output = ()>,
{
    let max = proxy.current().config.server.max_connections;
    let limit = Arc::new(Semaphore::new(max));
    let stop = CancellationToken::new();
    let mut listeners = listeners.into_iter();
    let Some(first) = listeners.next() else {
        return;
    };
    let threads: Vec<JoinHandle<()>> = listeners
        .enumerate()
        .filter_map(|(i, listener)| spawn(i + 1, listener, &proxy, &limit, &stop))
        .collect();
    let own_stop = stop.clone();
    let own = async move {
        shutdown.await;
        own_stop.cancel();
    };
    listener::run_with(first, proxy, limit, own).await;
    stop.cancel();
    // The other threads drain within the same `timeouts.drain`; joining
    // them must not block this runtime, which runs what they may need.
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
}

/// Starts serving thread `index` on its own runtime; None (logged) if the
/// thread or its runtime cannot be made: the other threads serve.
fn spawn(
    index: usize,
    listener: TcpListener,
    proxy: &Arc<Proxy>,
    limit: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Option<JoinHandle<()>> {
    let listener = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("serving thread {index}: cannot move its socket: {e}");
            return None;
        }
    };
    let (proxy, limit, stop) = (proxy.clone(), limit.clone(), stop.clone());
    let started = std::thread::Builder::new()
        .name(format!("cachalot-{index}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("serving thread {index}: cannot start its runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        listener::run_with(listener, proxy, limit, stop.cancelled_owned()).await
                    }
                    Err(e) => tracing::error!("serving thread {index}: cannot listen: {e}"),
                }
            });
        });
    match started {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::error!("cannot start serving thread {index}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_threads_means_one_per_core() {
        assert_eq!(count(3), 3);
        assert!(count(0) >= 1);
    }

    #[tokio::test]
    async fn sockets_share_one_port_even_when_it_is_chosen() {
        let all = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = all.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != 0 && ports.iter().all(|&p| p == ports[0]));
    }
}
