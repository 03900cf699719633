//! The two tiers as one store: lookups go memory → disk (a disk hit is
//! promoted to memory); writes go to memory at once and to disk through a
//! bounded queue served by one writer thread, so a slow disk never delays a
//! response (a full queue drops the disk write and counts it).
//!
//! Keys: `I<url>` holds a URL's [`VaryIndex`]; `E<url>\n<secondary>` holds
//! one variant, valid only while its generation matches the index's.

pub mod disk;
pub mod memory;
pub mod record;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::cache::policy::vary;
use crate::cache::store::disk::{DiskError, DiskTier};
use crate::cache::store::memory::MemoryTier;
use crate::cache::store::record::{encode, Entry, Record, VaryIndex};

/// Which tier answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Disk,
}

/// A stored variant found for a request.
#[derive(Debug, Clone)]
pub struct Found {
    pub entry: Arc<Entry>,
    pub tier: Tier,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A variant matching the request.
    Hit(Found),
    /// The URL is stored, but not for this request's Vary fields (or `Vary: *`).
    VaryMiss,
    /// Nothing stored for the URL.
    Miss,
}

enum Write {
    Put(String, Record),
    Touch(String),
    /// Remove a key; the number is its tombstone's, lifted once done.
    Remove(String, u64),
}

/// Writes the queue holds; the last `RESERVED` places are kept for removals,
/// so that an invalidation reaches the disk even when stores are dropped.
const QUEUE: usize = 4096;
const RESERVED: usize = 512;

/// Keys removed from memory whose removal from disk is still queued (or
/// could not be queued): lookups must not find them on disk meanwhile.
#[derive(Default)]
struct Tombstones {
    map: RwLock<HashMap<String, u64>>,
    count: AtomicUsize,
    seq: AtomicU64,
}

impl Tombstones {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, u64>> {
        match self.map.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Marks `key` removed; returns the mark's number.
    fn bury(&self, key: &str) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut map = self.write();
        map.insert(key.to_owned(), seq);
        self.count.store(map.len(), Ordering::Relaxed);
        seq
    }

    fn contains(&self, key: &str) -> bool {
        if self.count.load(Ordering::Relaxed) == 0 {
            return false;
        }
        match self.map.read() {
            Ok(map) => map.contains_key(key),
            Err(p) => p.into_inner().contains_key(key),
        }
    }

    /// New data was stored under `key` (in memory, and queued for disk).
    fn lift(&self, key: &str) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut map = self.write();
        map.remove(key);
        self.count.store(map.len(), Ordering::Relaxed);
    }

    /// The disk removal numbered `seq` is done; a later mark stays.
    fn lift_if(&self, key: &str, seq: u64) {
        let mut map = self.write();
        if map.get(key) == Some(&seq) {
            map.remove(key);
        }
        self.count.store(map.len(), Ordering::Relaxed);
    }
}

/// Counters of the store, for metrics and tools.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    pub memory_entries: u64,
    pub memory_bytes: u64,
    pub memory_evictions: u64,
    pub disk_entries: u64,
    pub disk_bytes: u64,
    pub disk_evictions: u64,
    pub disk_corrupt: u64,
    pub disk_writes_dropped: u64,
    /// Disk writes that failed (a full or broken disk).
    pub disk_write_errors: u64,
}

/// Memory tier over disk tier.
pub struct Store {
    memory: MemoryTier,
    disk: Arc<DiskTier>,
    writer: Mutex<Option<SyncSender<Write>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
    /// Disk writes that failed, counted by the writer thread.
    write_errors: Arc<AtomicU64>,
    generation: AtomicU64,
    /// Keys removed while their disk removal is still queued.
    removed: Arc<Tombstones>,
    /// Writes waiting in the queue.
    queued: Arc<AtomicUsize>,
    /// Hashes of the URL index keys on disk: a memory miss for a URL never
    /// stored costs no disk read (a false positive costs one).
    on_disk: RwLock<HashSet<u64>>,
    hasher: RandomState,
    /// Records whose LRU position was refreshed lately.
    touched: moka::sync::Cache<String, ()>,
}

fn index_key(url: &str) -> String {
    let mut key = String::with_capacity(url.len() + 1);
    key.push('I');
    key.push_str(url);
    key
}

fn entry_key(url: &str, secondary: &str) -> String {
    let mut key = String::with_capacity(url.len() + secondary.len() + 2);
    key.push('E');
    key.push_str(url);
    key.push('\n');
    key.push_str(secondary);
    key
}

impl Store {
    /// Opens the disk tier at `dir` and starts its writer thread.
    pub fn open(dir: &Path, memory_size: u64, disk_size: u64) -> Result<Store, DiskError> {
        let disk = Arc::new(DiskTier::open(dir, disk_size)?);
        let (tx, rx) = sync_channel::<Write>(QUEUE);
        let writer_disk = disk.clone();
        let removed = Arc::new(Tombstones::default());
        let writer_removed = removed.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = queued.clone();
        let write_errors = Arc::new(AtomicU64::new(0));
        let writer_failed = write_errors.clone();
        let thread = std::thread::Builder::new()
            .name("cachalot-disk".into())
            .spawn(move || {
                let mut failing = false;
                for write in rx {
                    writer_queued.fetch_sub(1, Ordering::Relaxed);
                    let result = match &write {
                        Write::Put(key, record) => writer_disk.put(key, &encode(record)),
                        Write::Touch(key) => writer_disk.touch(key),
                        Write::Remove(key, seq) => writer_disk
                            .remove(key)
                            .map(|()| writer_removed.lift_if(key, *seq)),
                    };
                    match result {
                        // Said once per run of failures (a full disk fails
                        // every write), then counted in /metrics.
                        Err(e) => {
                            writer_failed.fetch_add(1, Ordering::Relaxed);
                            if !failing {
                                tracing::warn!(
                                    "disk cache write failed: {e}; further failures are \
                                     counted (cachalot_cache_disk_write_errors_total) until \
                                     a write succeeds"
                                );
                                failing = true;
                            }
                        }
                        Ok(()) if failing => {
                            tracing::info!("disk cache writes succeed again");
                            failing = false;
                        }
                        Ok(()) => {}
                    }
                }
                if let Err(e) = writer_disk.flush() {
                    tracing::warn!("disk cache flush failed: {e}");
                }
            })
            .map_err(|e| DiskError::Sled(sled::Error::Io(e)))?;
        let hasher = RandomState::new();
        let on_disk = disk
            .keys_cheaply()
            .filter(|k| k.starts_with('I'))
            .map(|k| hasher.hash_one(&k))
            .collect();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Ok(Store {
            memory: MemoryTier::new(memory_size),
            disk,
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            dropped: AtomicU64::new(0),
            write_errors,
            generation: AtomicU64::new(seed),
            removed,
            queued,
            on_disk: RwLock::new(on_disk),
            hasher,
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(30))
                .build(),
        })
    }

    fn queue(&self, write: Write) {
        let guard = match self.writer.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let Some(tx) = guard.as_ref() else {
            return;
        };
        let removal = matches!(write, Write::Remove(..));
        if !removal && self.queued.load(Ordering::Relaxed) >= QUEUE - RESERVED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match tx.try_send(write) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                // A removal that cannot be queued keeps its tombstone: the
                // key stays invisible until new data is stored under it.
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    async fn get(&self, key: &str) -> Option<(Record, Tier)> {
        if let Some(record) = self.memory.get(key) {
            return Some((record, Tier::Memory));
        }
        if self.removed.contains(key) {
            return None;
        }
        if key.starts_with('I') {
            let hash = self.hasher.hash_one(key);
            let known = match self.on_disk.read() {
                Ok(set) => set.contains(&hash),
                Err(p) => p.into_inner().contains(&hash),
            };
            if !known {
                return None;
            }
        }
        let disk = self.disk.clone();
        let owned = key.to_owned();
        let found = tokio::task::spawn_blocking(move || disk.get(&owned))
            .await
            .ok()?
            .unwrap_or_else(|e| {
                tracing::warn!("disk cache read failed: {e}");
                None
            })?;
        self.memory.insert(key.to_owned(), found.clone());
        // The disk LRU needs a record's age to the nearest half-minute, not
        // three disk writes per hit.
        if !self.touched.contains_key(key) {
            self.touched.insert(key.to_owned(), ());
            self.queue(Write::Touch(key.to_owned()));
        }
        Some((found, Tier::Disk))
    }

    /// Finds the variant of `url` matching the request's fields.
    pub async fn lookup(&self, url: &str, request: &HeaderMap) -> Lookup {
        let Some((Record::Index(index), _)) = self.get(&index_key(url)).await else {
            return Lookup::Miss;
        };
        let secondary = vary::secondary_key(&index.names, request);
        match self.get(&entry_key(url, &secondary)).await {
            Some((Record::Entry(entry), tier)) if entry.generation == index.generation => {
                Lookup::Hit(Found { entry, tier })
            }
            // A URL without Vary whose entry is gone (evicted, dropped) is
            // a plain miss: `fwd=vary-miss` only where variants exist.
            _ if index.names.is_empty() => Lookup::Miss,
            _ => Lookup::VaryMiss,
        }
    }

    /// Stores a variant of `url` selected by `vary_names` from `request`.
    pub fn insert(
        &self,
        url: &str,
        vary_names: Vec<String>,
        request: &HeaderMap,
        mut entry: Entry,
    ) {
        let ikey = index_key(url);
        let (generation, names) = match self.memory.get(&ikey) {
            Some(Record::Index(index)) if index.names == vary_names => {
                (index.generation, vary_names)
            }
            _ => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                let record = Record::Index(Arc::new(VaryIndex {
                    names: vary_names.clone(),
                    generation,
                }));
                self.removed.lift(&ikey);
                self.memory.insert(ikey.clone(), record.clone());
                let hash = self.hasher.hash_one(&ikey);
                match self.on_disk.write() {
                    Ok(mut set) => set.insert(hash),
                    Err(p) => p.into_inner().insert(hash),
                };
                self.queue(Write::Put(ikey, record));
                (generation, vary_names)
            }
        };
        entry.generation = generation;
        let ekey = entry_key(url, &vary::secondary_key(&names, request));
        let record = Record::Entry(Arc::new(entry));
        self.memory.insert(ekey.clone(), record.clone());
        self.queue(Write::Put(ekey, record));
    }

    /// Makes every stored variant of `url` unreachable (RFC 9111 §4.4).
    pub fn invalidate(&self, url: &str) {
        let key = index_key(url);
        let seq = self.removed.bury(&key);
        self.memory.remove(&key);
        self.queue(Write::Remove(key, seq));
    }

    /// Removes `url` (every variant); true when something was stored.
    pub async fn purge(&self, url: &str) -> bool {
        let found = self.get(&index_key(url)).await.is_some();
        self.invalidate(url);
        found
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            memory_entries: self.memory.entry_count(),
            memory_bytes: self.memory.weighted_size(),
            memory_evictions: self.memory.evictions(),
            disk_entries: self.disk.len() as u64,
            disk_bytes: self.disk.bytes(),
            disk_evictions: self.disk.evictions(),
            disk_corrupt: self.disk.corrupt(),
            disk_writes_dropped: self.dropped.load(Ordering::Relaxed),
            disk_write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    /// The disk tier itself (for tools and tests).
    pub fn disk(&self) -> &DiskTier {
        &self.disk
    }

    /// Finishes queued disk writes and flushes; later writes are dropped.
    pub fn close(&self) {
        let tx = match self.writer.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(tx);
        let thread = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_is_lifted_only_by_its_own_removal_or_new_data() {
        let t = Tombstones::default();
        assert!(!t.contains("Ihttp://a/"));
        let first = t.bury("Ihttp://a/");
        let second = t.bury("Ihttp://a/");
        t.lift_if("Ihttp://a/", first);
        assert!(
            t.contains("Ihttp://a/"),
            "a later invalidation is still pending"
        );
        t.lift_if("Ihttp://a/", second);
        assert!(!t.contains("Ihttp://a/"));
        t.bury("Ihttp://b/");
        t.lift("Ihttp://b/");
        assert!(!t.contains("Ihttp://b/"));
    }

    /// A stored 200 with the body `x`.
    fn entry_x() -> Entry {
        Entry {
            status: http::StatusCode::OK,
            headers: HeaderMap::new(),
            times: crate::cache::policy::StoredTimes {
                request_time: SystemTime::now(),
                response_time: SystemTime::now(),
            },
            generation: 0,
            body: bytes::Bytes::from_static(b"x"),
        }
    }

    #[tokio::test]
    async fn a_url_without_vary_whose_entry_is_gone_is_a_plain_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20, 1 << 24).unwrap();
        store.insert("http://a/", vec![], &HeaderMap::new(), entry_x());
        store.close();
        // The entry goes (evicted, dropped as corrupt); its index stays.
        let ekey = entry_key("http://a/", "");
        store.memory.remove(&ekey);
        store.disk().remove(&ekey).unwrap();
        assert!(matches!(
            store.lookup("http://a/", &HeaderMap::new()).await,
            Lookup::Miss
        ));
    }

    #[tokio::test]
    async fn invalidated_url_is_gone_at_once_and_after_the_disk_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20, 1 << 24).unwrap();
        store.insert("http://a/", vec![], &HeaderMap::new(), entry_x());
        assert!(matches!(
            store.lookup("http://a/", &HeaderMap::new()).await,
            Lookup::Hit(_)
        ));
        store.invalidate("http://a/");
        assert!(matches!(
            store.lookup("http://a/", &HeaderMap::new()).await,
            Lookup::Miss
        ));
        store.close();
        assert!(
            store.disk().get("Ihttp://a/").unwrap().is_none(),
            "removed on disk too"
        );
        assert!(
            !store.removed.contains("Ihttp://a/"),
            "tombstone lifted once done"
        );
    }
}
