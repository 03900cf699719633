//! A lock-free histogram of durations, encoded through `prometheus-client`
//! (its own `Histogram` takes a lock per observation; this one is a few
//! relaxed atomic adds on this thread's stripes, for the request path).

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::striped::Striped;

/// Upper bounds (seconds) of the request-duration buckets: from a memory
/// hit (well under a millisecond) to a long tunnel.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Upper bounds (seconds) of the DNS query-duration buckets.
pub const DNS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Counts of observations per bucket (not cumulative), their count and sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Box<[Striped]>,
    count: Striped,
    sum_nanos: Striped,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| Striped::default()).collect(),
            count: Striped::default(),
            sum_nanos: Striped::default(),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            if let Some(c) = self.counts.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(self.counts.iter())
            .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
            .collect();
        // Read the count after the buckets: a concurrent observation then
        // shows in +Inf at worst, and the buckets stay cumulative.
        let in_buckets: u64 = buckets.iter().map(|(_, c)| c).sum();
        let count = self.count().max(in_buckets);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
