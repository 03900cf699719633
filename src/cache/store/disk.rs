//! The disk tier's index: heads of stored entries (and URL indexes) in a
//! sled database that survives restarts, their bodies in object files
//! ([`Objects`]), bounded by `cache.disk_size` with least-recently-used
//! eviction.
//!
//! Trees: `records` (key → encoded head), `atime` (key → access sequence)
//! and `lru` (sequence → size, object id, key), so that the oldest record
//! is the first key of `lru`. A record and its LRU position are written in
//! one transaction: a crash never leaves a record that cannot be evicted.
//! An object's file is written before its head (the head is the commit)
//! and removed after it. All calls are blocking; callers run them off the
//! async threads (see `store`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::cache::store::object::{disk_bytes, Objects};
use crate::cache::store::record::{self, DecodeError, Record};

/// The persistent tier.
pub struct DiskTier {
    db: sled::Db,
    records: sled::Tree,
    atime: sled::Tree,
    lru: sled::Tree,
    pub objects: Objects,
    seq: AtomicU64,
    bytes: AtomicU64,
    /// Bytes promised to fills in progress (their files grow meanwhile).
    reserved: AtomicU64,
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
    #[error("cache files: {0}")]
    Io(#[from] std::io::Error),
}

impl From<TransactionError<()>> for DiskError {
    fn from(e: TransactionError<()>) -> DiskError {
        match e {
            TransactionError::Storage(e) => DiskError::Sled(e),
            TransactionError::Abort(()) => {
                DiskError::Sled(sled::Error::Unsupported("transaction aborted".into()))
            }
        }
    }
}

impl DiskError {
    /// Another process holds the cache folder.
    pub fn is_locked(&self) -> bool {
        match self {
            DiskError::Sled(sled::Error::Io(e)) | DiskError::Io(e) => {
                e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock")
            }
            _ => false,
        }
    }
}

/// What an LRU value holds.
struct Slot<'a> {
    size: u64,
    object: u64,
    key: &'a [u8],
}

fn slot(value: &[u8]) -> Slot<'_> {
    Slot {
        size: be_u64(value),
        object: be_u64(value.get(8..).unwrap_or_default()),
        key: value.get(16..).unwrap_or_default(),
    }
}

fn slot_value(size: u64, object: u64, key: &str) -> Vec<u8> {
    let mut value = Vec::with_capacity(16 + key.len());
    value.extend_from_slice(&size.to_be_bytes());
    value.extend_from_slice(&object.to_be_bytes());
    value.extend_from_slice(key.as_bytes());
    value
}

impl DiskTier {
    /// Opens (or creates) the database at `dir`, bounded to `limit` bytes.
    pub fn open(dir: &Path, limit: u64) -> Result<DiskTier, DiskError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .flush_every_ms(Some(1000))
            .open()?;
        let objects = Objects::open(dir)?;
        let records = db.open_tree("records")?;
        let atime = db.open_tree("atime")?;
        let lru = db.open_tree("lru")?;
        let mut bytes = 0u64;
        let mut seq = 0u64;
        let mut entries = 0u64;
        for item in lru.iter() {
            let (k, v) = item?;
            seq = seq.max(be_u64(&k));
            let slot = slot(&v);
            bytes = bytes.saturating_add(slot.size);
            entries += u64::from(is_response(slot.key));
        }
        Ok(DiskTier {
            db,
            records,
            atime,
            lru,
            objects,
            seq: AtomicU64::new(seq + 1),
            bytes: AtomicU64::new(bytes),
            reserved: AtomicU64::new(0),
            entries: AtomicU64::new(entries),
            limit,
            corrupt: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        })
    }

    /// Removes object files no record names, except those `keep` says are
    /// being written now. Returns how many were removed.
    pub fn sweep(&self, keep: impl Fn(u64) -> bool) -> usize {
        let named: HashSet<u64> = self
            .lru
            .iter()
            .values()
            .filter_map(|v| v.ok())
            .map(|v| slot(&v).object)
            .collect();
        let mut removed = 0;
        for (id, _) in self.objects.list() {
            if !named.contains(&id) && !keep(id) && self.objects.remove(id).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Reads and verifies a record; a record failing its checks is removed
    /// and counted, and reported as absent.
    pub fn get(&self, key: &str) -> Result<Option<Record>, DiskError> {
        let Some(raw) = self.records.get(key.as_bytes())? else {
            return Ok(None);
        };
        match record::decode(&raw) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                self.drop_corrupt(key, e)?;
                Ok(None)
            }
        }
    }

    fn drop_corrupt(&self, key: &str, e: DecodeError) -> Result<(), DiskError> {
        tracing::warn!(key, "dropping unreadable cache record: {e}");
        self.drop_damaged(key)
    }

    /// Counts a body found damaged and removes its record.
    pub fn drop_damaged(&self, key: &str) -> Result<(), DiskError> {
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        self.remove(key)
    }

    /// Marks a record as just used (moves it to the young end of the LRU).
    pub fn touch(&self, key: &str) -> Result<(), DiskError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        (&self.atime, &self.lru).transaction(|(atime, lru)| {
            let Some(old) = atime.get(key.as_bytes())? else {
                return Ok(());
            };
            let Some(value) = lru.remove(old)? else {
                return Ok(());
            };
            atime.insert(key.as_bytes(), &seq)?;
            lru.insert(&seq, value)?;
            Ok::<(), ConflictableTransactionError<()>>(())
        })?;
        Ok(())
    }

    /// Stores an encoded record (whose body, if any, is object `object`
    /// of `length` bytes, already written), then evicts the oldest until
    /// within bounds. A record it replaces loses its object file.
    pub fn put(&self, key: &str, raw: &[u8], object: u64, length: u64) -> Result<(), DiskError> {
        let size = raw.len() as u64 + key.len() as u64 + disk_bytes(length);
        if size > self.limit {
            if object != 0 {
                self.objects.remove(object)?;
            }
            return Ok(());
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let value = slot_value(size, object, key);
        let old =
            (&self.records, &self.atime, &self.lru).transaction(|(records, atime, lru)| {
                records.insert(key.as_bytes(), raw)?;
                let old = match atime.insert(key.as_bytes(), &seq)? {
                    Some(old) => lru.remove(old)?.map(|v| v.to_vec()),
                    None => None,
                };
                lru.insert(&seq, value.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(old)
            })?;
        match old {
            Some(old) => {
                let old = slot(&old);
                self.sub_bytes(old.size);
                if old.object != 0 && old.object != object {
                    self.objects.remove(old.object)?;
                }
            }
            None if is_response(key.as_bytes()) => {
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        self.make_room()
    }

    /// Promises `n` bytes to a fill in progress (see [`DiskTier::make_room`]);
    /// false (nothing promised) when the fills in progress already hold so
    /// much that `n` more would not fit even with every record evicted.
    pub fn reserve(&self, n: u64) -> bool {
        self.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                (r + n <= self.limit).then_some(r + n)
            })
            .is_ok()
    }

    /// Takes back a promise made with [`DiskTier::reserve`].
    pub fn release(&self, n: u64) {
        let _ = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r.saturating_sub(n))
            });
    }

    /// Evicts the least recently used records until what is stored and
    /// what is promised fit in the limit.
    pub fn make_room(&self) -> Result<(), DiskError> {
        while self.bytes.load(Ordering::Relaxed) + self.reserved.load(Ordering::Relaxed)
            > self.limit
        {
            let Some((seq, value)) = self.lru.first()? else {
                break;
            };
            let victim = slot(&value);
            (&self.records, &self.atime, &self.lru).transaction(|(records, atime, lru)| {
                lru.remove(&seq)?;
                records.remove(victim.key)?;
                atime.remove(victim.key)?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })?;
            if victim.object != 0 {
                self.objects.remove(victim.object)?;
            }
            self.sub_bytes(victim.size);
            if is_response(victim.key) {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                self.forget_one();
            }
        }
        Ok(())
    }

    fn sub_bytes(&self, n: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    /// Removes a record (and its object file) if present.
    pub fn remove(&self, key: &str) -> Result<(), DiskError> {
        let old =
            (&self.records, &self.atime, &self.lru).transaction(|(records, atime, lru)| {
                records.remove(key.as_bytes())?;
                let old = match atime.remove(key.as_bytes())? {
                    Some(old) => lru.remove(old)?.map(|v| v.to_vec()),
                    None => None,
                };
                Ok::<_, ConflictableTransactionError<()>>(old)
            })?;
        if let Some(old) = old {
            let old = slot(&old);
            self.sub_bytes(old.size);
            if is_response(key.as_bytes()) {
                self.forget_one();
            }
            if old.object != 0 {
                self.objects.remove(old.object)?;
            }
        }
        Ok(())
    }

    /// Removes a URL's index and every stored variant of it (with their
    /// object files): `index_key` is `I<url>`, the variants `E<url>\n…`.
    /// Returns the number of variants removed.
    pub fn remove_url(&self, index_key: &str) -> Result<usize, DiskError> {
        self.remove(index_key)?;
        let Some(url) = index_key.strip_prefix('I') else {
            return Ok(0);
        };
        let mut removed = 0;
        // Its variants, and the pieces of its partial object.
        for prefix in [format!("E{url}\n"), format!("P{url}\n")] {
            let keys: Vec<String> = self
                .atime
                .scan_prefix(prefix.as_bytes())
                .keys()
                .filter_map(|k| k.ok())
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .collect();
            for key in &keys {
                self.remove(key)?;
            }
            removed += keys.len();
        }
        Ok(removed)
    }

    /// The records whose keys start with `prefix` (the pieces of one
    /// partial object); those failing their checks are dropped.
    pub fn with_prefix(&self, prefix: &str) -> Result<Vec<(String, Record)>, DiskError> {
        let mut found = Vec::new();
        let keys: Vec<String> = self
            .records
            .scan_prefix(prefix.as_bytes())
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        for key in keys {
            if let Some(record) = self.get(&key)? {
                found.push((key, record));
            }
        }
        Ok(found)
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

    /// Removes every record and object file.
    pub fn clear(&self) -> Result<(), DiskError> {
        self.records.clear()?;
        self.atime.clear()?;
        self.lru.clear()?;
        self.bytes.store(0, Ordering::Relaxed);
        self.entries.store(0, Ordering::Relaxed);
        for (id, _) in self.objects.list() {
            self.objects.remove(id)?;
        }
        Ok(())
    }

    /// Responses held (URL indexes are not counted; a counter: no table
    /// scan, cheap on any thread).
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of records and bodies held (bodies in whole file-system blocks).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The configured bound.
    pub fn limit(&self) -> u64 {
        self.limit
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
            .map(|v| String::from_utf8_lossy(slot(&v).key).into_owned())
    }

    /// Every stored key (for tools).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.records
            .iter()
            .keys()
            .filter_map(|k| k.ok())
            .map(|k| String::from_utf8_lossy(&k).into_owned())
    }

    /// Records without an LRU position and LRU positions without a record
    /// (for `cache verify`; a correct tier has none).
    pub fn unevictable(&self) -> Result<(u64, u64), DiskError> {
        let mut in_lru = HashSet::new();
        let mut dangling = 0;
        for value in self.lru.iter().values() {
            let value = value?;
            let key = slot(&value).key.to_vec();
            if !self.records.contains_key(&key)? {
                dangling += 1;
            }
            in_lru.insert(key);
        }
        let mut orphans = 0;
        for key in self.records.iter().keys() {
            if !in_lru.contains(key?.as_ref()) {
                orphans += 1;
            }
        }
        Ok((orphans, dangling))
    }
}

/// Keys of responses start with `E`, pieces of partial objects with `P`
/// (URL indexes with `I`, see `store`).
fn is_response(key: &[u8]) -> bool {
    key.first() == Some(&b'E')
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
            disk.put("Ea", &index(1, 10), 0, 0).unwrap();
            disk.flush().unwrap();
        }
        let disk = DiskTier::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(disk.get("Ea").unwrap(), Some(Record::Index(i)) if i.generation == 1));
        assert!(disk.bytes() > 0);
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let dir = tempfile::tempdir().unwrap();
        let one = index(1, 400).len() as u64 + 2;
        let disk = DiskTier::open(dir.path(), one * 3).unwrap();
        disk.put("Ea", &index(1, 400), 0, 0).unwrap();
        disk.put("Eb", &index(2, 400), 0, 0).unwrap();
        disk.put("Ec", &index(3, 400), 0, 0).unwrap();
        disk.touch("Ea").unwrap();
        disk.put("Ed", &index(4, 400), 0, 0).unwrap();
        assert!(disk.get("Ea").unwrap().is_some());
        assert!(
            disk.get("Eb").unwrap().is_none(),
            "b was least recently used"
        );
        assert!(disk.get("Ec").unwrap().is_some());
        assert!(disk.get("Ed").unwrap().is_some());
        assert!(disk.bytes() <= one * 3);
        assert_eq!(disk.evictions(), 1);
    }

    #[test]
    fn the_record_count_follows_puts_removals_evictions_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let one = index(1, 400).len() as u64 + 2;
        {
            let disk = DiskTier::open(dir.path(), one * 3).unwrap();
            disk.put("Ea", &index(1, 400), 0, 0).unwrap();
            disk.put("Ea", &index(2, 400), 0, 0).unwrap();
            disk.put("Eb", &index(3, 400), 0, 0).unwrap();
            assert_eq!(disk.len(), 2, "a replaced record is one record");
            disk.remove("Eb").unwrap();
            disk.remove("Eb").unwrap();
            assert_eq!(disk.len(), 1);
            for key in ["Ec", "Ed", "Ee", "Ef"] {
                disk.put(key, &index(4, 400), 0, 0).unwrap();
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
        disk.put("Ek", &raw, 0, 0).unwrap();
        raw[12] ^= 1;
        disk.raw_put("Ek", &raw).unwrap();
        assert!(disk.get("Ek").unwrap().is_none());
        assert_eq!(disk.corrupt(), 1);
        assert!(disk.raw_get("Ek").unwrap().is_none(), "dropped from disk");
    }
}
