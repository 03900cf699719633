//! `/metrics`: everything in the Prometheus text exposition format
//! (version 0.0.4), written by `prometheus-client`'s encoder from a
//! collector that reads the live counters at scrape time. Counter names get
//! their `_total` from the encoder.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Metrics, Outcome, CODES};
use crate::cache::policy::storability::NotStorable;
use crate::cache::store::StoreStats;
use crate::dns::DnsMetrics;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the scrape reads from outside the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scrape {
    pub store: StoreStats,
    /// `cache.memory_size` and `cache.disk_size`.
    pub memory_capacity: u64,
    pub disk_capacity: u64,
    pub coalesced: u64,
    pub log_dropped: u64,
    /// Bytes of `cache.fill_budget` held by fills in progress, and the budget.
    pub fill_used: u64,
    pub fill_budget: u64,
}

/// Renders every metric: the proxy's, and the resolver's when given.
pub fn render(metrics: &Arc<Metrics>, dns: Option<&Arc<DnsMetrics>>, scrape: Scrape) -> String {
    let mut registry = Registry::with_prefix("cachalot");
    registry.register_collector(Box::new(Collect {
        metrics: metrics.clone(),
        dns: dns.cloned(),
        scrape,
    }));
    let mut out = String::with_capacity(8192);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

struct Collect {
    metrics: Arc<Metrics>,
    dns: Option<Arc<DnsMetrics>>,
    scrape: Scrape,
}

impl fmt::Debug for Collect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect").finish_non_exhaustive()
    }
}

fn sum(a: &super::striped::Striped) -> u64 {
    a.load(Ordering::Relaxed)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// One series per `(label value, value)`.
fn family(
    e: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    label: &str,
    series: &[(&str, u64)],
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (value, n) in series {
        let labels = [(label, *value)];
        let s = m.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*n).encode(s)?,
            _ => ConstGauge::new(i64::try_from(*n).unwrap_or(i64::MAX)).encode(s)?,
        }
    }
    Ok(())
}

fn open(a: &AtomicI64) -> i64 {
    a.load(Ordering::Relaxed).max(0)
}

impl Collector for Collect {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let m = &self.metrics;
        let s = &self.scrape;
        let mut requests = Vec::new();
        let mut bytes = Vec::new();
        let labels: Vec<[String; 2]> = CODES
            .iter()
            .map(|c| [(*c).to_owned(), format!("{c}_ABORTED")])
            .collect();
        for (names, slot) in labels.iter().zip(&m.by_code) {
            for (a, name) in names.iter().enumerate() {
                let n = sum(&slot.requests[a]);
                if n > 0 {
                    requests.push((name.as_str(), n));
                    bytes.push((name.as_str(), sum(&slot.bytes[a])));
                }
            }
        }
        use MetricType::{Counter, Gauge};
        family(
            &mut e,
            ("requests", "Requests by Squid result code.", Counter),
            "code",
            &requests,
        )?;
        family(
            &mut e,
            (
                "response_bytes",
                "Bytes sent to clients by result code.",
                Counter,
            ),
            "code",
            &bytes,
        )?;
        counter(
            &mut e,
            "hits",
            "Requests answered from the cache (hit codes as Squid counts them); \
             hit ratio: rate of this over the rate of cachalot_requests_total.",
            sum(&m.hits),
        )?;
        counter(
            &mut e,
            "hit_bytes",
            "Bytes sent to clients from the cache; byte hit ratio: rate of this \
             over the rate of cachalot_bytes_out_total.",
            sum(&m.hit_bytes),
        )?;
        counter(
            &mut e,
            "bytes_out",
            "Bytes sent to clients.",
            sum(&m.bytes_out),
        )?;
        counter(
            &mut e,
            "bytes_from_origin",
            "Body bytes received from origins.",
            sum(&m.bytes_from_origin),
        )?;
        family(
            &mut e,
            (
                "tunnel_bytes",
                "Bytes carried by CONNECT tunnels, counted as they flow.",
                Counter,
            ),
            "direction",
            &[("up", sum(&m.tunnel_up)), ("down", sum(&m.tunnel_down))],
        )?;
        {
            let mut d = e.encode_descriptor(
                "request_duration_seconds",
                "Time from a request's arrival to its last byte out (a tunnel: \
                 to its close), by outcome.",
                None,
                MetricType::Histogram,
            )?;
            for (outcome, h) in Outcome::ALL.iter().zip(&m.durations) {
                let labels = [("outcome", outcome.as_str())];
                h.encode(d.encode_family(&labels)?)?;
            }
        }
        let tier = |memory: u64, disk: u64| [("memory", memory), ("disk", disk)];
        let st = &s.store;
        family(
            &mut e,
            ("cache_entries", "Stored records per tier.", Gauge),
            "tier",
            &tier(st.memory_entries, st.disk_entries),
        )?;
        family(
            &mut e,
            ("cache_bytes", "Stored bytes per tier.", Gauge),
            "tier",
            &tier(st.memory_bytes, st.disk_bytes),
        )?;
        family(
            &mut e,
            (
                "cache_capacity_bytes",
                "Configured size of each tier (cache.memory_size, cache.disk_size).",
                Gauge,
            ),
            "tier",
            &tier(s.memory_capacity, s.disk_capacity),
        )?;
        family(
            &mut e,
            (
                "cache_evictions",
                "Records evicted for room, per tier.",
                Counter,
            ),
            "tier",
            &tier(st.memory_evictions, st.disk_evictions),
        )?;
        counter(
            &mut e,
            "cache_corrupt_dropped",
            "Disk records dropped for a bad version or checksum.",
            st.disk_corrupt,
        )?;
        counter(
            &mut e,
            "cache_disk_writes_dropped",
            "Disk writes dropped because the writer queue was full.",
            st.disk_writes_dropped,
        )?;
        counter(
            &mut e,
            "cache_disk_write_errors",
            "Disk writes that failed (a full or broken disk); warned about once per run of failures.",
            st.disk_write_errors,
        )?;
        gauge(
            &mut e,
            "cache_disk_writable",
            "1 while the disk tier takes writes; 0 after a failed write (retried after 30 s) or when the cache folder could not be opened.",
            i64::from(st.disk_writable),
        )?;
        gauge(
            &mut e,
            "cache_fill_bytes",
            "Bytes of cache.fill_budget held by downloads being stored now.",
            i64::try_from(s.fill_used).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut e,
            "cache_fill_budget_bytes",
            "The configured cache.fill_budget.",
            i64::try_from(s.fill_budget).unwrap_or(i64::MAX),
        )?;
        counter(
            &mut e,
            "coalesced_requests",
            "Requests served from another request's origin fetch.",
            s.coalesced,
        )?;
        let (mut not_stored, mut not_stored_bytes) = (Vec::new(), Vec::new());
        for (reason, slot) in NotStorable::ALL.iter().zip(&m.not_stored) {
            let n = sum(&slot[0]);
            if n > 0 {
                not_stored.push((reason.as_str(), n));
                not_stored_bytes.push((reason.as_str(), sum(&slot[1])));
            }
        }
        family(
            &mut e,
            (
                "not_stored",
                "Responses from origins that were not stored, by reason.",
                Counter,
            ),
            "reason",
            &not_stored,
        )?;
        family(
            &mut e,
            (
                "not_stored_bytes",
                "Bytes sent to clients of responses that were not stored, by reason.",
                Counter,
            ),
            "reason",
            &not_stored_bytes,
        )?;
        let errors = match m.upstream_errors.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let errors: Vec<(&str, u64)> = errors.iter().map(|(k, n)| (*k, *n)).collect();
        family(
            &mut e,
            (
                "upstream_errors",
                "Failures to get a response from an origin, by kind.",
                Counter,
            ),
            "kind",
            &errors,
        )?;
        gauge(
            &mut e,
            "client_connections",
            "Open client connections.",
            open(&m.client_connections),
        )?;
        gauge(&mut e, "tunnels", "Open CONNECT tunnels.", open(&m.tunnels))?;
        gauge(
            &mut e,
            "requests_in_flight",
            "Requests received and not yet finished (open tunnels included).",
            i64::try_from(m.live.count()).unwrap_or(i64::MAX),
        )?;
        counter(
            &mut e,
            "access_log_dropped",
            "Access-log lines dropped.",
            s.log_dropped,
        )?;
        if let Some(dns) = &self.dns {
            encode_dns(&mut e, dns)?;
        }
        Ok(())
    }
}

fn encode_dns(e: &mut DescriptorEncoder, dns: &DnsMetrics) -> fmt::Result {
    for (name, help, value) in [
        (
            "dns_lookups",
            "Name lookups asked of the resolver (cache hits included).",
            &dns.lookups,
        ),
        (
            "dns_cache_hits",
            "Lookups answered from the resolver cache within the TTL.",
            &dns.cache_hits,
        ),
        (
            "dns_queries",
            "DNS queries sent to the name servers.",
            &dns.queries,
        ),
        (
            "dns_failures",
            "Lookups that ended without an address.",
            &dns.failures,
        ),
        (
            "dns_stale_answers",
            "Lookups answered with an expired answer because the name servers \
             did not answer (RFC 8767).",
            &dns.stale,
        ),
    ] {
        counter(e, name, help, sum(value))?;
    }
    let m = e.encode_descriptor(
        "dns_query_duration_seconds",
        "Time the name servers took to answer a query.",
        None,
        MetricType::Histogram,
    )?;
    dns.latency.encode(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Counted;
    use std::time::Duration;

    #[test]
    fn counters_are_named_once_and_ratios_are_left_to_prometheus() {
        let m = Arc::new(Metrics::default());
        let count = |code, hit, bytes| Counted {
            code,
            aborted: false,
            bytes,
            from_origin: 0,
            hit,
            outcome: Outcome::of(code, hit, false),
            elapsed: Duration::from_millis(3),
            not_stored: (!hit).then_some(NotStorable::Private),
        };
        m.request(count("TCP_MEM_HIT", true, 300));
        m.request(count("TCP_MISS", false, 100));
        let dns = Arc::new(DnsMetrics::default());
        let text = render(&m, Some(&dns), Scrape::default());
        assert!(text.contains("cachalot_requests_total{code=\"TCP_MISS\"} 1\n"));
        assert!(text.contains("# TYPE cachalot_requests_total counter\n"));
        assert!(text.contains("cachalot_hits_total 1\n"), "{text}");
        assert!(text.contains("cachalot_hit_bytes_total 300\n"));
        assert!(text.contains(
            "cachalot_request_duration_seconds_bucket{outcome=\"hit\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains("cachalot_request_duration_seconds_count{outcome=\"miss\"} 1\n"));
        assert!(text.contains("# TYPE cachalot_dns_query_duration_seconds histogram\n"));
        assert!(!text.contains("ratio "), "no computed ratio gauges");
        assert!(!text.contains("_total_total"));
        assert!(text.contains("cachalot_not_stored_total{reason=\"private\"} 1\n"));
        assert!(text.contains("cachalot_not_stored_bytes_total{reason=\"private\"} 100\n"));
    }
}
