//! The memory tier: a moka cache of decoded records, weighted by bytes, so
//! a hit shares the stored body (`Bytes`) without copying it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;
use moka::sync::Cache;

use super::entry::Record;

/// Bounded in-memory records, least recently / frequently used evicted first.
pub struct MemoryTier {
    cache: Cache<String, Record>,
    evictions: Arc<AtomicU64>,
}

impl MemoryTier {
    /// A tier holding at most `capacity` bytes (approximately).
    pub fn new(capacity: u64) -> MemoryTier {
        let evictions = Arc::new(AtomicU64::new(0));
        let counter = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_key: &String, record: &Record| record.weight())
            .eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        MemoryTier { cache, evictions }
    }

    pub fn get(&self, key: &str) -> Option<Record> {
        self.cache.get(key)
    }

    pub fn insert(&self, key: String, record: Record) {
        self.cache.insert(key, record);
    }

    pub fn remove(&self, key: &str) {
        self.cache.invalidate(key);
    }

    /// Number of records (approximate, as moka counts).
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Bytes held (approximate).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Records evicted for room.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}
