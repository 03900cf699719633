//! What is going on now: every request in flight (CONNECT tunnels
//! included, for as long as they stay open) with its client, target, age and
//! bytes so far, and the bandwidth windows they feed. A request registers
//! when it arrives and leaves when it is logged; its bytes are counted as
//! they flow (one relaxed atomic add per body frame or tunnel write) and
//! credited to the windows once a second by [`Live::sweep`] and when it
//! finishes, so a long download shows while it runs.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use http_body::{Frame, SizeHint};

use super::window::{Finished, Ratio, Top, Windows};

/// Shards of the in-flight table: requests on different workers rarely
/// meet on one lock.
const SHARDS: usize = 8;

/// One request in flight.
#[derive(Debug)]
pub struct Transfer {
    pub client: IpAddr,
    pub method: Method,
    pub started: Instant,
    /// The request target as received.
    target: Box<str>,
    /// Where the host is in `target`.
    host: (usize, usize),
    tunnel: AtomicBool,
    /// Bytes to the client (response bodies, tunnel downstream).
    down: AtomicU64,
    /// Bytes from the client through a tunnel.
    up: AtomicU64,
    /// `down + up` already credited to the windows.
    credited: AtomicU64,
}

impl Transfer {
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The host the request is for (`-` when it names none).
    pub fn domain(&self) -> &str {
        match self.target.get(self.host.0..self.host.1) {
            Some(h) if !h.is_empty() => h,
            _ => "-",
        }
    }

    pub fn is_tunnel(&self) -> bool {
        self.tunnel.load(Ordering::Relaxed)
    }

    /// The request became a CONNECT tunnel.
    pub fn set_tunnel(&self) {
        self.tunnel.store(true, Ordering::Relaxed);
    }

    /// `n` bytes went to the client.
    pub fn down(&self, n: u64) {
        self.down.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` bytes came from the client through a tunnel.
    pub fn up(&self, n: u64) {
        self.up.fetch_add(n, Ordering::Relaxed);
    }

    /// (up, down) so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }

    /// Bytes not yet credited to the windows; marks them credited.
    fn uncredited(&self) -> u64 {
        let (up, down) = self.bytes();
        let total = up + down;
        // fetch_max: two creditors never count the same bytes twice.
        total.saturating_sub(self.credited.fetch_max(total, Ordering::Relaxed))
    }
}

/// Where the host is in a request target: `http://host:port/...`,
/// `host:port` (CONNECT), `[v6]:port`; empty for origin form.
fn host_span(target: &str) -> (usize, usize) {
    let start = target.find("://").map_or(0, |i| i + 3);
    let rest = target.get(start..).unwrap_or_default();
    if rest.starts_with('/') {
        return (0, 0);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = authority.get(host_start..).unwrap_or_default();
    let host_len = if host.starts_with('[') {
        host.find(']').map_or(host.len(), |i| i + 1)
    } else {
        host.find(':').unwrap_or(host.len())
    };
    (start + host_start, start + host_start + host_len)
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Arc<Transfer>>>,
    free: Vec<usize>,
    len: usize,
}

/// The in-flight table and the windows.
pub struct Live {
    shards: [Mutex<Shard>; SHARDS],
    windows: Mutex<Windows>,
    epoch: Instant,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            shards: Default::default(),
            windows: Mutex::new(Windows::default()),
            epoch: Instant::now(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A request's place in the table: leaves it when dropped (or finished).
pub struct Registration {
    live: Arc<Live>,
    shard: usize,
    slot: usize,
    pub transfer: Arc<Transfer>,
    done: bool,
}

impl Registration {
    /// The request is logged: credits what it moved and whether it was a
    /// hit (`None`: it does not count in the hit ratio), and leaves.
    pub fn finish(mut self, finished: Option<Finished>) {
        self.leave(finished);
    }

    fn leave(&mut self, finished: Option<Finished>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        {
            let mut shard = lock(&self.live.shards[self.shard % SHARDS]);
            if let Some(s) = shard.slots.get_mut(self.slot) {
                *s = None;
                shard.free.push(self.slot);
                shard.len -= 1;
            }
        }
        self.live.credit(&self.transfer, finished);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.leave(None);
    }
}

impl Live {
    /// Registers a request that just arrived.
    pub fn start(
        self: &Arc<Self>,
        client: IpAddr,
        method: &Method,
        target: &str,
        now: Instant,
    ) -> Registration {
        let transfer = Arc::new(Transfer {
            client,
            method: method.clone(),
            started: now,
            host: host_span(target),
            target: target.into(),
            tunnel: AtomicBool::new(false),
            down: AtomicU64::new(0),
            up: AtomicU64::new(0),
            credited: AtomicU64::new(0),
        });
        // Each thread its own shard: no lock or line shared per request.
        let shard = crate::thread_slot::this_thread() % SHARDS;
        let slot = {
            let mut s = lock(&self.shards[shard]);
            s.len += 1;
            match s.free.pop() {
                Some(i) => {
                    if let Some(place) = s.slots.get_mut(i) {
                        *place = Some(transfer.clone());
                    }
                    i
                }
                None => {
                    s.slots.push(Some(transfer.clone()));
                    s.slots.len() - 1
                }
            }
        };
        Registration {
            live: self.clone(),
            shard,
            slot,
            transfer,
            done: false,
        }
    }

    fn now_secs(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    fn credit(&self, t: &Transfer, finished: Option<Finished>) {
        let bytes = t.uncredited();
        if bytes == 0 && finished.is_none() {
            return;
        }
        let now = self.now_secs();
        lock(&self.windows).credit(now, t.client, t.domain(), bytes, finished);
    }

    /// Every request in flight now.
    pub fn in_flight(&self) -> Vec<Arc<Transfer>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(lock(shard).slots.iter().flatten().cloned());
        }
        all
    }

    /// Requests in flight (tunnels included).
    pub fn count(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len).sum()
    }

    /// Credits the bytes in-flight requests moved since the last sweep.
    pub fn sweep(&self) {
        for t in self.in_flight() {
            self.credit(&t, None);
        }
    }

    /// The windows now: (last 10 s, last 5 min, hit ratio over 5 min).
    pub fn windows(&self) -> (Top, Top, Ratio) {
        let now = self.now_secs();
        let w = lock(&self.windows);
        (w.short(now), w.long(now), w.ratio(now))
    }
}

/// A response body that counts its bytes into a [`Transfer`] as they go.
pub struct CountedBody<B> {
    inner: B,
    transfer: Option<Arc<Transfer>>,
}

impl<B> CountedBody<B> {
    pub fn new(inner: B, transfer: Option<Arc<Transfer>>) -> Self {
        CountedBody { inner, transfer }
    }
}

impl<B: http_body::Body<Data = Bytes> + Unpin> http_body::Body for CountedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let (Some(data), Some(t)) = (frame.data_ref(), &self.transfer) {
                t.down(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_found_in_every_target_form() {
        for (target, host) in [
            ("http://example.com/a", "example.com"),
            ("http://user@example.com:8080/a?b", "example.com"),
            ("example.com:443", "example.com"),
            ("[::1]:443", "[::1]"),
            ("http://[::1]:80/", "[::1]"),
            ("/proxy.pac", ""),
        ] {
            let (a, b) = host_span(target);
            assert_eq!(&target[a..b], host, "{target}");
        }
    }

    #[test]
    fn a_request_is_in_flight_until_it_finishes_and_its_bytes_are_credited_once() {
        let live = Arc::new(Live::default());
        let ip = IpAddr::from([10, 0, 0, 1]);
        let a = live.start(ip, &Method::GET, "http://a.test/x", Instant::now());
        let b = live.start(ip, &Method::CONNECT, "b.test:443", Instant::now());
        b.transfer.set_tunnel();
        assert_eq!(live.count(), 2);
        a.transfer.down(100);
        b.transfer.up(5);
        b.transfer.down(7);
        live.sweep();
        live.sweep();
        a.transfer.down(50);
        a.finish(Some(Finished {
            hit: true,
            bytes: 150,
        }));
        assert_eq!(live.count(), 1);
        let (short, long, ratio) = live.windows();
        assert_eq!(short.bytes, 162);
        assert_eq!(long.bytes, 162);
        assert_eq!(short.domains[0].key, "a.test");
        assert_eq!((ratio.requests, ratio.hits), (1, 1));
        drop(b);
        assert_eq!(live.count(), 0);
        assert!(live.in_flight().is_empty());
    }
}
