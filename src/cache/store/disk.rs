//! The disk tier: records in a sled database that survives restarts,
//! bounded by `cache.disk_size` with least-recently-used eviction.
//!
//! Trees: `records` (key → encoded record), `atime` (key → access sequence)
//! and `lru` (sequence → size + key), so that the oldest record is the first
//! key of `lru`. All calls are blocking; callers run them off the async
//! threads (see `store`).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::store::record::{self, DecodeError, Record};

/// The persistent tier.
pub struct DiskTier {
    db: sled::Db,
    records: sled::Tree,
    atime: sled::Tree,
    lru: sled::Tree,
    seq: AtomicU64,
    bytes: AtomicU64,
    /// Records held, kept up to date (sled's `len` walks the whole tree).
    entries: AtomicU64,
    limit: u64,
    corrupt: AtomicU64,
    evictions: AtomicU64,
}

/// Failures of the disk tier (the proxy goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cache database: {0}")]
    Sled(#[from] sled::Error),
}

impl DiskTier {
    /// Opens (or creates) the database at `dir`, bounded to `limit` bytes.
    pub fn open(dir: &Path, limit: u64) -> Result<DiskTier, DiskError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .flush_every_ms(Some(1000))
            .open()?;
        let records = db.open_tree("records")?;
        let atime = db.open_tree("atime")?;
        let lru = db.open_tree("lru")?;
        let mut bytes = 0u64;
        let mut seq = 0u64;
        let mut entries = 0u64;
        for item in lru.iter() {
            let (k, v) = item?;
            seq = seq.max(be_u64(&k));
            bytes = bytes.saturating_add(be_u64(&v));
            entries += 1;
        }
        Ok(DiskTier {
            db,
            records,
            atime,
            lru,
            seq: AtomicU64::new(seq + 1),
            bytes: AtomicU64::new(bytes),
            entries: AtomicU64::new(entries),
            limit,
            corrupt: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Reads and verifies a record; a record failing its checks is removed
    /// and counted, and reported as absent.
    pub fn get(&self, key: &str) -> Result<Option<Record>, DiskError> {
        let Some(raw) = self.records.get(key.as_bytes())? else {
            return Ok(None);
        };
        // The record's bytes are shared with sled's buffer: the body is not copied.
        let raw = bytes::Bytes::from_owner(raw);
        match record::decode_shared(&raw) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                self.drop_corrupt(key, e)?;
                Ok(None)
            }
        }
    }

    fn drop_corrupt(&self, key: &str, e: DecodeError) -> Result<(), DiskError> {
        tracing::warn!(key, "dropping unreadable cache record: {e}");
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        self.remove(key)
    }

    /// Marks a record as just used (moves it to the young end of the LRU).
    pub fn touch(&self, key: &str) -> Result<(), DiskError> {
        let Some(size) = self.size_of(key)? else {
            return Ok(());
        };
        self.set_atime(key, size)
    }

    fn size_of(&self, key: &str) -> Result<Option<u64>, DiskError> {
        let Some(old) = self.atime.get(key.as_bytes())? else {
            return Ok(None);
        };
        Ok(self.lru.get(&old)?.map(|v| be_u64(&v)))
    }

    fn set_atime(&self, key: &str, size: u64) -> Result<(), DiskError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        if let Some(old) = self.atime.insert(key.as_bytes(), &seq)? {
            self.lru.remove(old)?;
        }
        let mut value = size.to_be_bytes().to_vec();
        value.extend_from_slice(key.as_bytes());
        self.lru.insert(seq, value)?;
        Ok(())
    }

    /// Stores an encoded record, then evicts the oldest until within bounds.
    pub fn put(&self, key: &str, raw: &[u8]) -> Result<(), DiskError> {
        let size = raw.len() as u64 + key.len() as u64;
        if size > self.limit {
            return Ok(());
        }
        let old = self.size_of(key)?;
        self.records.insert(key.as_bytes(), raw)?;
        self.set_atime(key, size)?;
        match old {
            Some(old) => {
                self.bytes.fetch_sub(
                    old.min(self.bytes.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
            None => {
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        while self.bytes.load(Ordering::Relaxed) > self.limit {
            let Some((_, value)) = self.lru.pop_min()? else {
                break;
            };
            let victim = value.get(8..).unwrap_or_default();
            self.records.remove(victim)?;
            self.atime.remove(victim)?;
            self.bytes.fetch_sub(
                be_u64(&value).min(self.bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            self.evictions.fetch_add(1, Ordering::Relaxed);
            self.forget_one();
        }
        Ok(())
    }

    /// Removes a record if present.
    pub fn remove(&self, key: &str) -> Result<(), DiskError> {
        let size = self.size_of(key)?;
        self.records.remove(key.as_bytes())?;
        if let Some(old) = self.atime.remove(key.as_bytes())? {
            self.lru.remove(old)?;
        }
        if let Some(size) = size {
            self.bytes.fetch_sub(
                size.min(self.bytes.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            self.forget_one();
        }
        Ok(())
    }

    /// One record fewer (saturating: never below zero).
    fn forget_one(&self) {
        let _ = self
            .entries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), DiskError> {
        self.db.flush()?;
        Ok(())
    }

    /// Removes every record.
    pub fn clear(&self) -> Result<(), DiskError> {
        self.records.clear()?;
        self.atime.clear()?;
        self.lru.clear()?;
        self.bytes.store(0, Ordering::Relaxed);
        self.entries.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Records held (a counter: no table scan, cheap on any thread).
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of records held.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Records dropped because they failed their checks.
    pub fn corrupt(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
    }

    /// Records evicted for room.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The raw stored bytes of a record (for tools and tests).
    pub fn raw_get(&self, key: &str) -> Result<Option<Vec<u8>>, DiskError> {
        Ok(self.records.get(key.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Overwrites the raw stored bytes of a record (for tools and tests).
    pub fn raw_put(&self, key: &str, raw: &[u8]) -> Result<(), DiskError> {
        self.records.insert(key.as_bytes(), raw)?;
        Ok(())
    }

    /// The keys of every record, read from the small LRU tree (no values).
    pub fn keys_cheaply(&self) -> impl Iterator<Item = String> + '_ {
        self.lru
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .map(|v| String::from_utf8_lossy(v.get(8..).unwrap_or_default()).into_owned())
    }

    /// Every stored key (for tools).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.records
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if let Some(head) = bytes.get(..8) {
        a.copy_from_slice(head);
    }
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::record::{encode, VaryIndex};
    use std::sync::Arc;

    fn index(generation: u64, pad: usize) -> Vec<u8> {
        encode(&Record::Index(Arc::new(VaryIndex {
            names: vec!["x".repeat(pad)],
            generation,
        })))
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let disk = DiskTier::open(dir.path(), 1 << 20).unwrap();
            disk.put("a", &index(1, 10)).unwrap();
            disk.flush().unwrap();
        }
        let disk = DiskTier::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(disk.get("a").unwrap(), Some(Record::Index(i)) if i.generation == 1));
        assert!(disk.bytes() > 0);
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let dir = tempfile::tempdir().unwrap();
        let one = index(1, 400).len() as u64 + 1;
        let disk = DiskTier::open(dir.path(), one * 3).unwrap();
        disk.put("a", &index(1, 400)).unwrap();
        disk.put("b", &index(2, 400)).unwrap();
        disk.put("c", &index(3, 400)).unwrap();
        disk.touch("a").unwrap();
        disk.put("d", &index(4, 400)).unwrap();
        assert!(disk.get("a").unwrap().is_some());
        assert!(
            disk.get("b").unwrap().is_none(),
            "b was least recently used"
        );
        assert!(disk.get("c").unwrap().is_some());
        assert!(disk.get("d").unwrap().is_some());
        assert!(disk.bytes() <= one * 3);
        assert_eq!(disk.evictions(), 1);
    }

    #[test]
    fn the_record_count_follows_puts_removals_evictions_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let one = index(1, 400).len() as u64 + 1;
        {
            let disk = DiskTier::open(dir.path(), one * 3).unwrap();
            disk.put("a", &index(1, 400)).unwrap();
            disk.put("a", &index(2, 400)).unwrap();
            disk.put("b", &index(3, 400)).unwrap();
            assert_eq!(disk.len(), 2, "a replaced record is one record");
            disk.remove("b").unwrap();
            disk.remove("b").unwrap();
            assert_eq!(disk.len(), 1);
            for key in ["c", "d", "e", "f"] {
                disk.put(key, &index(4, 400)).unwrap();
            }
            assert_eq!(disk.len(), 3, "evictions count down");
            assert_eq!(disk.len(), disk.records.len());
            disk.flush().unwrap();
        }
        let disk = DiskTier::open(dir.path(), one * 3).unwrap();
        assert_eq!(disk.len(), 3, "counted again at open");
    }

    #[test]
    fn corrupt_record_is_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskTier::open(dir.path(), 1 << 20).unwrap();
        let mut raw = index(7, 10);
        disk.put("k", &raw).unwrap();
        raw[12] ^= 1;
        disk.raw_put("k", &raw).unwrap();
        assert!(disk.get("k").unwrap().is_none());
        assert_eq!(disk.corrupt(), 1);
        assert!(disk.raw_get("k").unwrap().is_none(), "dropped from disk");
    }
}
