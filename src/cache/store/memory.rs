//! The memory tier: a moka cache of decoded records, weighted by bytes, so
//! a hit shares the stored body (`Bytes`) without copying it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;
use moka::sync::Cache;

use crate::cache::store::record::Record;

/// Bounded in-memory records, least recently / frequently used evicted first.
pub struct MemoryTier {
    cache: Cache<String, Record>,
    evictions: Arc<AtomicU64>,
    /// Records and bytes held, moved together on insert and on every
    /// removal (moka's own counts are updated lazily, each on its own
    /// schedule, so the two gauges read from them disagreed).
    held: Arc<Held>,
}

#[derive(Default)]
struct Held {
    entries: AtomicI64,
    bytes: AtomicI64,
}

impl Held {
    /// Counts a response (URL indexes count in bytes only).
    fn add(&self, sign: i64, record: &Record) {
        if matches!(record, Record::Entry(_)) {
            self.entries.fetch_add(sign, Ordering::Relaxed);
        }
        self.bytes
            .fetch_add(sign * i64::from(record.weight()), Ordering::Relaxed);
    }
}

impl MemoryTier {
    /// A tier holding at most `capacity` bytes (approximately).
    pub fn new(capacity: u64) -> MemoryTier {
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = evictions.clone();
        let held = Arc::new(Held::default());
        let removed = held.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_key: &String, record: &Record| record.weight())
            // Every removal, a replaced or refused insert included.
            .eviction_listener(move |_key, value: Record, cause| {
                removed.add(-1, &value);
                if cause == RemovalCause::Size && matches!(value, Record::Entry(_)) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        MemoryTier {
            cache,
            evictions,
            held,
        }
    }

    pub fn get(&self, key: &str) -> Option<Record> {
        self.cache.get(key)
    }

    pub fn insert(&self, key: String, record: Record) {
        self.held.add(1, &record);
        self.cache.insert(key, record);
    }

    pub fn remove(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Number of responses held.
    pub fn entry_count(&self) -> u64 {
        self.held.entries.load(Ordering::Relaxed).max(0) as u64
    }

    /// Bytes held, as the weigher counts them.
    pub fn weighted_size(&self) -> u64 {
        self.held.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Records evicted for room.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::record::VaryIndex;

    /// A stored response with an `n`-byte body.
    fn index(n: usize) -> Record {
        let times = crate::cache::policy::StoredTimes {
            request_time: std::time::SystemTime::now(),
            response_time: std::time::SystemTime::now(),
        };
        Record::Entry(Arc::new(crate::cache::store::record::Entry::in_memory(
            http::StatusCode::OK,
            http::HeaderMap::new(),
            times,
            bytes::Bytes::from(vec![b'x'; n]),
        )))
    }

    #[test]
    fn url_indexes_count_in_bytes_not_in_responses() {
        let tier = MemoryTier::new(10_000);
        tier.insert(
            "I".into(),
            Record::Index(Arc::new(VaryIndex {
                names: vec![],
                generation: 0,
            })),
        );
        assert_eq!(tier.entry_count(), 0);
        assert!(tier.weighted_size() > 0);
    }

    #[test]
    fn entries_and_bytes_move_together_through_inserts_replacements_and_removals() {
        let tier = MemoryTier::new(10_000);
        tier.insert("a".into(), index(10));
        tier.insert("b".into(), index(20));
        tier.insert("a".into(), index(30));
        tier.remove("b");
        tier.cache.run_pending_tasks();
        assert_eq!(tier.entry_count(), 1);
        assert_eq!(tier.weighted_size(), u64::from(index(30).weight()));
        assert_eq!(tier.entry_count(), tier.cache.entry_count());
        assert_eq!(tier.weighted_size(), tier.cache.weighted_size());
        for i in 0..200 {
            tier.insert(format!("k{i}"), index(200));
        }
        tier.cache.run_pending_tasks();
        assert_eq!(tier.entry_count(), tier.cache.entry_count());
        assert_eq!(tier.weighted_size(), tier.cache.weighted_size());
        assert!(tier.weighted_size() <= 10_000);
    }
}
