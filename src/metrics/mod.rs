//! Live counters for `/metrics` and the status page: requests by result
//! code, bytes, hits, request durations by outcome, tiers, coalescing,
//! upstream errors, open connections and tunnels, and (in `live`) what is in
//! flight now. Lock-free on the request path; encoded at scrape time in the
//! Prometheus text format by `prometheus-client` (see `encode`).

pub mod encode;
pub mod histogram;
pub mod live;
pub mod striped;
pub mod window;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use histogram::Histogram;
use striped::Striped;

use crate::cache::policy::storability::NotStorable;
use live::Live;

/// Every result code the proxy logs; counted in fixed slots (no lock).
const CODES: [&str; 17] = [
    "TCP_MISS",
    "TCP_MEM_HIT",
    "TCP_HIT",
    "TCP_NEGATIVE_HIT",
    "TCP_IMS_HIT",
    "TCP_REFRESH_UNMODIFIED",
    "TCP_REFRESH_MODIFIED",
    "TCP_REFRESH_FAIL_OLD",
    "TCP_REFRESH_FAIL_ERR",
    "TCP_CLIENT_REFRESH_MISS",
    "TCP_DENIED",
    "TCP_TUNNEL",
    "NONE_NONE",
    "TCP_INM_HIT",
    "TCP_SWAPFAIL_MISS",
    "TCP_OFFLINE_HIT",
    "OTHER",
];

/// The `outcome` label of the request-duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from the cache (Squid's hit codes).
    Hit,
    /// Fetched from the origin.
    Miss,
    /// A stored response revalidated with the origin.
    Refresh,
    /// A CONNECT tunnel, from its request to its close.
    Tunnel,
    /// Refused by the access rules or authentication.
    Denied,
    /// Failed: the proxy answered with an error page.
    Error,
    /// The proxy's own answers (PAC file, PURGE) and the rest.
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Refresh,
        Outcome::Tunnel,
        Outcome::Denied,
        Outcome::Error,
        Outcome::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Refresh => "refresh",
            Outcome::Tunnel => "tunnel",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::Other => "other",
        }
    }

    /// The outcome of a request logged with Squid result `code` (without
    /// `_ABORTED`); `failed` when it ended with an error page.
    pub fn of(code: &str, hit: bool, failed: bool) -> Outcome {
        match code {
            "TCP_DENIED" => Outcome::Denied,
            _ if failed => Outcome::Error,
            "TCP_TUNNEL" => Outcome::Tunnel,
            _ if code.starts_with("TCP_REFRESH") => Outcome::Refresh,
            _ if hit => Outcome::Hit,
            _ if code.ends_with("_MISS") => Outcome::Miss,
            _ => Outcome::Other,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Requests and bytes for one code, plain and aborted.
#[derive(Default)]
struct Slot {
    requests: [Striped; 2],
    bytes: [Striped; 2],
}

/// One finished request, as counted.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// Squid result code without the `_ABORTED` suffix.
    pub code: &'a str,
    pub aborted: bool,
    /// Bytes sent to the client (a tunnel's were counted as they flowed).
    pub bytes: u64,
    pub from_origin: u64,
    pub hit: bool,
    pub outcome: Outcome,
    /// From the request's arrival to its last byte out (a tunnel: its close).
    pub elapsed: Duration,
    /// Why its response was not stored, if the cache decided so.
    pub not_stored: Option<NotStorable>,
}

/// Process-wide counters.
pub struct Metrics {
    by_code: [Slot; CODES.len()],
    requests: Striped,
    hits: Striped,
    bytes_out: Striped,
    hit_bytes: Striped,
    bytes_from_origin: Striped,
    tunnel_up: Striped,
    tunnel_down: Striped,
    durations: [Histogram; Outcome::ALL.len()],
    /// Requests and bytes not stored, per reason (`NotStorable::ALL` order).
    not_stored: [[Striped; 2]; NotStorable::ALL.len()],
    upstream_errors: Mutex<BTreeMap<&'static str, u64>>,
    pub client_connections: AtomicI64,
    pub tunnels: AtomicI64,
    /// Requests in flight and the bandwidth windows (the status page).
    pub live: Arc<Live>,
    pub started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_code: Default::default(),
            requests: Striped::default(),
            hits: Striped::default(),
            bytes_out: Striped::default(),
            hit_bytes: Striped::default(),
            bytes_from_origin: Striped::default(),
            tunnel_up: Striped::default(),
            tunnel_down: Striped::default(),
            durations: Outcome::ALL.map(|_| Histogram::new(histogram::REQUEST_BUCKETS)),
            not_stored: Default::default(),
            upstream_errors: Mutex::new(BTreeMap::new()),
            client_connections: AtomicI64::new(0),
            tunnels: AtomicI64::new(0),
            live: Arc::new(Live::default()),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    /// Counts one finished request.
    pub fn request(&self, r: Counted<'_>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(r.bytes, Ordering::Relaxed);
        self.bytes_from_origin
            .fetch_add(r.from_origin, Ordering::Relaxed);
        if r.hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.hit_bytes.fetch_add(r.bytes, Ordering::Relaxed);
        }
        let index = CODES
            .iter()
            .position(|c| *c == r.code)
            .unwrap_or(CODES.len() - 1);
        if let Some(slot) = self.by_code.get(index) {
            let a = usize::from(r.aborted);
            slot.requests[a].fetch_add(1, Ordering::Relaxed);
            slot.bytes[a].fetch_add(r.bytes, Ordering::Relaxed);
        }
        if let Some(h) = self.durations.get(r.outcome.index()) {
            h.observe(r.elapsed);
        }
        if let Some(slot) = r.not_stored.and_then(|n| self.not_stored.get(n.index())) {
            slot[0].fetch_add(1, Ordering::Relaxed);
            slot[1].fetch_add(r.bytes, Ordering::Relaxed);
        }
    }

    /// Counts bytes crossing a tunnel as they flow (`up`: client to origin),
    /// so that a long tunnel shows before it closes. Bytes to the client are
    /// bytes out, under `TCP_TUNNEL`; [`Metrics::request`] at the close adds
    /// only the `200` head.
    pub fn tunnel_bytes(&self, up: bool, n: u64) {
        if up {
            self.tunnel_up.fetch_add(n, Ordering::Relaxed);
            return;
        }
        self.tunnel_down.fetch_add(n, Ordering::Relaxed);
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
        if let Some(slot) = CODES
            .iter()
            .position(|c| *c == "TCP_TUNNEL")
            .and_then(|i| self.by_code.get(i))
        {
            slot.bytes[0].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts one failure to reach an origin, by kind.
    pub fn upstream_error(&self, kind: &'static str) {
        let mut errors = match self.upstream_errors.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *errors.entry(kind).or_insert(0) += 1;
    }

    /// Requests counted so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_result_code() {
        let of = |code, failed| Outcome::of(code, crate::stats::codes::is_hit(code), failed);
        assert_eq!(of("TCP_MEM_HIT", false), Outcome::Hit);
        assert_eq!(of("TCP_REFRESH_UNMODIFIED", false), Outcome::Refresh);
        assert_eq!(of("TCP_MISS", false), Outcome::Miss);
        assert_eq!(of("TCP_CLIENT_REFRESH_MISS", false), Outcome::Miss);
        assert_eq!(of("TCP_MISS", true), Outcome::Error);
        assert_eq!(of("TCP_DENIED", true), Outcome::Denied);
        assert_eq!(of("TCP_TUNNEL", false), Outcome::Tunnel);
        assert_eq!(of("NONE_NONE", false), Outcome::Other);
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
    }
}
