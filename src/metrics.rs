//! Live counters for `/metrics` (Prometheus text format): requests by
//! result code, bytes, hit ratios, tiers, coalescing, upstream errors, open
//! connections and tunnels. Lock-free on the request path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::cache::store::StoreStats;
use crate::stats::codes::is_hit;

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

/// Requests and bytes for one code, plain and aborted.
#[derive(Default)]
struct Slot {
    requests: [AtomicU64; 2],
    bytes: [AtomicU64; 2],
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    by_code: [Slot; CODES.len()],
    requests: AtomicU64,
    hits: AtomicU64,
    bytes_out: AtomicU64,
    hit_bytes: AtomicU64,
    bytes_from_origin: AtomicU64,
    tunnel_up: AtomicU64,
    tunnel_down: AtomicU64,
    upstream_errors: Mutex<BTreeMap<&'static str, u64>>,
    pub client_connections: AtomicI64,
    pub tunnels: AtomicI64,
}

impl Metrics {
    /// Counts one finished request (`code` without the `_ABORTED` suffix).
    pub fn request(&self, code: &str, aborted: bool, bytes: u64, from_origin: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.bytes_from_origin
            .fetch_add(from_origin, Ordering::Relaxed);
        if is_hit(code) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.hit_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        let index = CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(CODES.len() - 1);
        if let Some(slot) = self.by_code.get(index) {
            let a = usize::from(aborted);
            slot.requests[a].fetch_add(1, Ordering::Relaxed);
            slot.bytes[a].fetch_add(bytes, Ordering::Relaxed);
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

    /// Renders everything in the Prometheus text exposition format.
    pub fn render(&self, store: &StoreStats, coalesced: u64, log_dropped: u64) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP cachalot_{name} {help}");
            let _ = writeln!(out, "# TYPE cachalot_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "cachalot_{name}{labels} {value}");
            }
        };
        let mut codes = Vec::new();
        let mut bytes = Vec::new();
        for (code, slot) in CODES.iter().zip(&self.by_code) {
            for (a, suffix) in ["", "_ABORTED"].iter().enumerate() {
                let n = slot.requests[a].load(Ordering::Relaxed);
                if n > 0 {
                    let label = format!("{{code=\"{code}{suffix}\"}}");
                    codes.push((label.clone(), n as f64));
                    bytes.push((label, slot.bytes[a].load(Ordering::Relaxed) as f64));
                }
            }
        }
        metric(
            "requests_total",
            "counter",
            "Requests by Squid result code.",
            &codes,
        );
        metric(
            "response_bytes_total",
            "counter",
            "Bytes sent to clients by result code.",
            &bytes,
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let one = |v: f64| vec![(String::new(), v)];
        metric(
            "bytes_out_total",
            "counter",
            "Bytes sent to clients.",
            &one(load(&self.bytes_out)),
        );
        metric(
            "bytes_from_origin_total",
            "counter",
            "Body bytes received from origins.",
            &one(load(&self.bytes_from_origin)),
        );
        metric(
            "tunnel_bytes_total",
            "counter",
            "Bytes carried by CONNECT tunnels, counted as they flow.",
            &[
                ("{direction=\"up\"}".to_owned(), load(&self.tunnel_up)),
                ("{direction=\"down\"}".to_owned(), load(&self.tunnel_down)),
            ],
        );
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        metric(
            "request_hit_ratio",
            "gauge",
            "Hits / requests since start (hit codes as Squid counts them).",
            &one(ratio(load(&self.hits), load(&self.requests))),
        );
        metric(
            "byte_hit_ratio",
            "gauge",
            "Bytes served from cache / bytes served, since start.",
            &one(ratio(load(&self.hit_bytes), load(&self.bytes_out))),
        );
        let tier = |m: u64, d: u64| {
            vec![
                ("{tier=\"memory\"}".to_owned(), m as f64),
                ("{tier=\"disk\"}".to_owned(), d as f64),
            ]
        };
        metric(
            "cache_entries",
            "gauge",
            "Stored records per tier.",
            &tier(store.memory_entries, store.disk_entries),
        );
        metric(
            "cache_bytes",
            "gauge",
            "Stored bytes per tier.",
            &tier(store.memory_bytes, store.disk_bytes),
        );
        metric(
            "cache_evictions_total",
            "counter",
            "Records evicted for room, per tier.",
            &tier(store.memory_evictions, store.disk_evictions),
        );
        metric(
            "cache_corrupt_dropped_total",
            "counter",
            "Disk records dropped for a bad version or checksum.",
            &one(store.disk_corrupt as f64),
        );
        metric(
            "cache_disk_writes_dropped_total",
            "counter",
            "Disk writes dropped because the writer queue was full.",
            &one(store.disk_writes_dropped as f64),
        );
        metric(
            "coalesced_requests_total",
            "counter",
            "Requests served from another request's origin fetch.",
            &one(coalesced as f64),
        );
        let errors = match self.upstream_errors.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let errors: Vec<(String, f64)> = errors
            .iter()
            .map(|(k, n)| (format!("{{kind=\"{k}\"}}"), *n as f64))
            .collect();
        metric(
            "upstream_errors_total",
            "counter",
            "Failures to get a response from an origin, by kind.",
            &errors,
        );
        let gauge = |a: &AtomicI64| one(a.load(Ordering::Relaxed).max(0) as f64);
        metric(
            "client_connections",
            "gauge",
            "Open client connections.",
            &gauge(&self.client_connections),
        );
        metric(
            "tunnels",
            "gauge",
            "Open CONNECT tunnels.",
            &gauge(&self.tunnels),
        );
        metric(
            "access_log_dropped_total",
            "counter",
            "Access-log lines dropped.",
            &one(log_dropped as f64),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_follow_the_hit_definition() {
        let m = Metrics::default();
        m.request("TCP_MEM_HIT", false, 300, 0);
        m.request("TCP_MISS", false, 100, 100);
        m.request("TCP_REFRESH_UNMODIFIED", true, 0, 0);
        m.request("TCP_TUNNEL", false, 600, 0);
        let text = m.render(&StoreStats::default(), 2, 0);
        assert!(text.contains("cachalot_requests_total{code=\"TCP_MISS\"} 1"));
        assert!(text.contains("cachalot_request_hit_ratio 0.5"), "{text}");
        assert!(text.contains("cachalot_byte_hit_ratio 0.3"));
        assert!(text.contains("cachalot_coalesced_requests_total 2"));
    }
}
