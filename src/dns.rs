//! Names to addresses, once per TTL: a hickory resolver (it reads
//! `/etc/resolv.conf` and `/etc/hosts`) behind a cache of our own that
//! honours TTLs up to `dns.max_ttl`, remembers "no such name" for
//! `dns.negative_ttl`, makes one query for concurrent lookups of one name,
//! and serves an expired answer for up to `dns.stale_ttl` when the name
//! servers do not answer (RFC 8767). Owns every DNS query the proxy makes;
//! the access rules ask it only when a `dst` rule needs an address, and a
//! cache hit whose rules need none never does.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, TokioResolver};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::striped::Striped;

use crate::config::DnsConfig;
use crate::metrics::Histogram;

/// RFC 8767 §5: after a failed refresh, an expired answer is served without
/// asking again for this long (the "failure recheck timer").
const STALE_RECHECK: Duration = Duration::from_secs(30);
/// A name whose lookup failed (no answer, not "no such name") and that has
/// no expired answer to fall back on fails at once for this long, so that a
/// dead resolver costs each name one timeout, not one per request.
const FAILURE_HOLD: Duration = Duration::from_secs(5);

/// Why a name has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The name servers say the name does not exist or has no address.
    #[error("{0} (no such host)")]
    NoSuchHost(String),
    /// No answer within `dns.timeout`, or the name servers failed.
    #[error("{0} (no answer from the name servers within {1:?})")]
    NoAnswer(String, Duration),
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A cached answer within its TTL.
    Cache,
    /// A query made for this lookup (or joined while in flight).
    Query,
    /// An expired answer, because the name servers did not answer (RFC 8767).
    Stale,
}

/// The addresses of a name, in the order to try them.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub addrs: Arc<[IpAddr]>,
    pub source: Source,
}

/// The counters `/metrics` shows (encoded in `metrics::encode`), striped
/// by thread: hits behind a `dst` rule make a lookup per request.
#[derive(Debug)]
pub struct DnsMetrics {
    /// Lookups asked of the resolver (cache hits included).
    pub lookups: Striped,
    /// Lookups answered from the cache within the TTL.
    pub cache_hits: Striped,
    /// Queries sent to the name servers (one per flight).
    pub queries: Striped,
    /// Lookups that ended without an address.
    pub failures: Striped,
    /// Lookups answered with an expired answer (serve-stale).
    pub stale: Striped,
    /// Latency of the queries sent.
    pub latency: Histogram,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        DnsMetrics {
            lookups: Striped::default(),
            cache_hits: Striped::default(),
            queries: Striped::default(),
            failures: Striped::default(),
            stale: Striped::default(),
            latency: Histogram::new(crate::metrics::histogram::DNS_BUCKETS),
        }
    }
}

/// One cached answer.
#[derive(Debug, Clone)]
struct Slot {
    /// The addresses, or why there are none (a negative answer, or a
    /// failed lookup held for a moment).
    answer: Result<Arc<[IpAddr]>, DnsError>,
    /// Good until then.
    expires: Instant,
    /// Set after a failed refresh: do not ask again before then.
    recheck: Option<Instant>,
}

type Flight = watch::Receiver<Option<Result<Resolved, DnsError>>>;

/// The caching resolver, shared by the whole process (it outlives reloads).
pub struct Resolver {
    inner: TokioResolver,
    cache: moka::sync::Cache<String, Arc<Slot>>,
    flights: Mutex<HashMap<String, Flight>>,
    config: DnsConfig,
    degraded: AtomicBool,
    pub metrics: Arc<DnsMetrics>,
}

impl Resolver {
    /// Builds the resolver from `[dns]`. Reads `/etc/resolv.conf` (when no
    /// servers are configured) and `/etc/hosts` once: call it at start,
    /// not on an async worker.
    pub fn new(config: &DnsConfig) -> Arc<Resolver> {
        let (resolver_config, mut opts) = if config.servers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok(system) => system,
                Err(e) => {
                    tracing::warn!(
                        "cannot read the system's resolver configuration ({e}); \
                         only /etc/hosts names will resolve until dns.servers is set"
                    );
                    (ResolverConfig::new(), ResolverOpts::default())
                }
            }
        } else {
            let ips: Vec<SocketAddr> = config.servers.clone();
            let mut group = NameServerConfigGroup::new();
            for addr in ips {
                group.merge(NameServerConfigGroup::from_ips_clear(
                    &[addr.ip()],
                    addr.port(),
                    true,
                ));
            }
            (
                ResolverConfig::from_parts(None, Vec::new(), group),
                ResolverOpts::default(),
            )
        };
        // Our cache is the one that counts (serve-stale, metrics, one query
        // per flight); hickory's own stays off.
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Always;
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.attempts = 2;
        opts.timeout = (config.timeout / 2).max(Duration::from_millis(100));
        let inner =
            TokioResolver::builder_with_config(resolver_config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Arc::new(Resolver {
            inner,
            cache: moka::sync::Cache::builder()
                .max_capacity(config.cache_size)
                .time_to_live(config.max_ttl + config.stale_ttl + STALE_RECHECK)
                .build(),
            flights: Mutex::new(HashMap::new()),
            config: config.clone(),
            degraded: AtomicBool::new(false),
            metrics: Arc::new(DnsMetrics::default()),
        })
    }

    /// The addresses of `name` (normalized, no trailing dot), IPv4 and
    /// IPv6 interleaved, IPv4 first (RFC 8305 §4, with the families'
    /// order swapped: a LAN's IPv6 route is the one more often broken).
    pub async fn lookup(self: &Arc<Self>, name: &str) -> Result<Resolved, DnsError> {
        self.metrics.lookups.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let cached = self.cache.get(name);
        if let Some(slot) = &cached {
            if now < slot.expires {
                self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                return self.answer_from(slot, Source::Cache);
            }
            if slot.recheck.is_some_and(|r| now < r) {
                if let Some(addrs) = self.usable_stale(slot, now) {
                    self.metrics.stale.fetch_add(1, Ordering::Relaxed);
                    return Ok(Resolved {
                        addrs,
                        source: Source::Stale,
                    });
                }
            }
        }
        let mut rx = self.join(name);
        let deadline = now + self.config.timeout + Duration::from_millis(100);
        loop {
            if let Some(result) = rx.borrow_and_update().clone() {
                if result.is_err() {
                    self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                }
                if matches!(&result, Ok(r) if r.source == Source::Stale) {
                    self.metrics.stale.fetch_add(1, Ordering::Relaxed);
                }
                return result;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // The flight's task ended without an answer, or took too long.
                Ok(Err(_)) | Err(_) => {
                    self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(DnsError::NoAnswer(name.to_owned(), self.config.timeout));
                }
            }
        }
    }

    /// The socket addresses of `host:port`: an IP literal (brackets allowed)
    /// as it is, a name through [`Resolver::lookup`].
    pub async fn socket_addrs(
        self: &Arc<Self>,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, DnsError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let resolved = self.lookup(host).await?;
        Ok(resolved
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect())
    }

    fn answer_from(&self, slot: &Slot, source: Source) -> Result<Resolved, DnsError> {
        match &slot.answer {
            Ok(addrs) => Ok(Resolved {
                addrs: addrs.clone(),
                source,
            }),
            Err(error) => {
                self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                Err(error.clone())
            }
        }
    }

    /// The addresses of an expired positive answer still within `stale_ttl`.
    fn usable_stale(&self, slot: &Slot, now: Instant) -> Option<Arc<[IpAddr]>> {
        let addrs = slot.answer.clone().ok()?;
        (now < slot.expires + self.config.stale_ttl).then_some(addrs)
    }

    /// Joins the flight for `name`, starting it when there is none.
    fn join(self: &Arc<Self>, name: &str) -> Flight {
        let mut flights = match self.flights.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(rx) = flights.get(name) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(name.to_owned(), rx.clone());
        drop(flights);
        let this = self.clone();
        let name = name.to_owned();
        // A task of its own: a caller that goes away does not cancel the
        // query the others wait on.
        tokio::spawn(async move {
            let result = this.query(&name).await;
            let mut flights = match this.flights.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            flights.remove(&name);
            drop(flights);
            let _ = tx.send(Some(result));
        });
        rx
    }

    /// Asks the name servers and updates the cache.
    async fn query(&self, name: &str) -> Result<Resolved, DnsError> {
        self.metrics.queries.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        // A fully qualified name: search domains do not apply to a URL's host.
        let fqdn = format!("{name}.");
        let outcome =
            tokio::time::timeout(self.config.timeout, self.inner.lookup_ip(fqdn.as_str())).await;
        let now = Instant::now();
        self.metrics.latency.observe(now - started);
        let failure = match outcome {
            Ok(Ok(lookup)) => {
                let addrs = interleave(lookup.iter());
                if addrs.is_empty() {
                    Some(false)
                } else {
                    let ttl = lookup
                        .valid_until()
                        .saturating_duration_since(now.into_std())
                        .min(self.config.max_ttl);
                    self.recovered();
                    let addrs: Arc<[IpAddr]> = addrs.into();
                    self.cache.insert(
                        name.to_owned(),
                        Arc::new(Slot {
                            answer: Ok(addrs.clone()),
                            expires: now + ttl,
                            recheck: None,
                        }),
                    );
                    return Ok(Resolved {
                        addrs,
                        source: Source::Query,
                    });
                }
            }
            Ok(Err(e)) => Some(is_negative(&e)),
            Err(_) => Some(false),
        };
        if failure == Some(true) {
            self.recovered();
            let error = DnsError::NoSuchHost(name.to_owned());
            self.cache.insert(
                name.to_owned(),
                Arc::new(Slot {
                    answer: Err(error.clone()),
                    expires: now + self.config.negative_ttl,
                    recheck: None,
                }),
            );
            return Err(error);
        }
        // No answer: fall back on the last good one (RFC 8767 §4).
        let error = DnsError::NoAnswer(name.to_owned(), self.config.timeout);
        self.degrade(&error);
        if let Some(old) = self.cache.get(name) {
            if let Some(addrs) = self.usable_stale(&old, now) {
                self.cache.insert(
                    name.to_owned(),
                    Arc::new(Slot {
                        recheck: Some(now + STALE_RECHECK),
                        ..(*old).clone()
                    }),
                );
                return Ok(Resolved {
                    addrs,
                    source: Source::Stale,
                });
            }
            if old.answer.is_ok() {
                // Too old to serve: forget it, keep only the failure.
                self.cache.invalidate(name);
            }
        }
        self.cache.insert(
            name.to_owned(),
            Arc::new(Slot {
                answer: Err(error.clone()),
                expires: now + FAILURE_HOLD.min(self.config.negative_ttl),
                recheck: None,
            }),
        );
        Err(error)
    }

    /// Says once that the name servers stopped answering.
    fn degrade(&self, error: &DnsError) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "DNS lookup failed: {error}; expired answers are used for up to {:?} \
                 (dns.stale_ttl) while the name servers do not answer",
                self.config.stale_ttl
            );
        }
    }

    fn recovered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("the name servers answer again");
        }
    }
}

/// True when the error is an answer ("no such name", "no address"), not a
/// failure to get one.
fn is_negative(error: &ResolveError) -> bool {
    error.is_nx_domain() || error.is_no_records_found()
}

/// IPv4 and IPv6 addresses alternated, IPv4 first, each family in the
/// order the name servers gave (RFC 8305 §4), duplicates removed.
pub fn interleave(addrs: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for a in addrs {
        let list = if a.is_ipv4() { &mut v4 } else { &mut v6 };
        if !list.contains(&a) {
            list.push(a);
        }
    }
    let mut out = Vec::with_capacity(v4.len() + v6.len());
    let (mut a, mut b) = (v4.into_iter(), v6.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_alternate_ipv4_first() {
        let ips: Vec<IpAddr> = ["::1", "10.0.0.1", "::2", "10.0.0.2", "10.0.0.3", "10.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(ips.into_iter())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.0.0.1", "::1", "10.0.0.2", "::2", "10.0.0.3"]);
    }

    #[test]
    fn errors_say_what_failed() {
        let e = DnsError::NoAnswer("example.com".into(), Duration::from_secs(5));
        assert_eq!(
            e.to_string(),
            "example.com (no answer from the name servers within 5s)"
        );
        assert_eq!(
            DnsError::NoSuchHost("x.test".into()).to_string(),
            "x.test (no such host)"
        );
    }
}
