//! The two tiers as one store: lookups go memory → disk (a disk hit is
//! promoted to memory: the whole body when it is small enough for the
//! memory tier, the head alone otherwise, its body then streamed from its
//! object file); heads go to memory at once and to disk through a queue
//! bounded in bytes, served by one writer thread, so a slow disk never
//! delays a response (a full queue drops the disk write and counts it).
//! Bodies reach the disk while they download, written by their fill
//! ([`NewObject`]); no sled call and no file operation runs on an async
//! worker, and each has a deadline (`timeouts.disk_io`).
//!
//! Keys: `I<url>` holds a URL's [`VaryIndex`]; `E<url>\n<secondary>` holds
//! one variant, valid only while its generation matches the index's.

pub mod disk;
pub mod health;
pub mod memory;
pub mod object;
pub mod record;
pub mod writing;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::cache::policy::vary;
use crate::cache::store::disk::{DiskError, DiskTier};
use crate::cache::store::health::DiskHealth;
use crate::cache::store::memory::MemoryTier;
use crate::cache::store::object::read_all;
use crate::cache::store::record::{encode, Entry, Record, VaryIndex};
use crate::cache::store::writing::NewObject;

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
    /// An encoded head (object id and body length beside it).
    Put(String, Vec<u8>, u64, u64),
    Touch(String),
    /// Remove a key; the number is its tombstone's, lifted once done.
    Remove(String, u64),
    /// Evict until the space promised to fills is free.
    MakeRoom,
}

impl Write {
    fn bytes(&self) -> usize {
        match self {
            Write::Put(key, raw, ..) => key.len() + raw.len() + 64,
            Write::Touch(key) | Write::Remove(key, _) => key.len() + 64,
            Write::MakeRoom => 64,
        }
    }
}

/// Writes the queue holds, and their bytes; the last `RESERVED` places are
/// kept for removals, so that an invalidation reaches the disk even when
/// stores are dropped.
const QUEUE: usize = 8192;
const RESERVED: usize = 512;
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// How long closing waits for the writer to finish what is queued.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

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
    /// Whether the disk tier takes writes now.
    pub disk_writable: bool,
}

/// Why a download gets no object file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoObject {
    /// The disk tier takes no writes now (a failure, or it could not be opened).
    Off,
    /// The downloads being stored already hold all of `cache.disk_size`.
    Full,
}

/// The store's sizes and deadlines (from `[cache]` and `[timeouts]`).
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    pub memory_size: u64,
    pub disk_size: u64,
    /// Bodies up to this size are held in the memory tier too.
    pub memory_object_size: u64,
    /// The longest a disk operation may take before it counts as failed.
    pub disk_io: Duration,
}

/// The writer thread's queue.
struct Queue {
    tx: Mutex<Option<SyncSender<Write>>>,
    count: AtomicUsize,
    bytes: AtomicUsize,
    dropped: AtomicU64,
}

/// Memory tier over disk tier.
pub struct Store {
    memory: MemoryTier,
    disk: Option<Arc<DiskTier>>,
    health: Arc<DiskHealth>,
    queue: Arc<Queue>,
    /// Signalled by the writer thread when it has finished.
    finished: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    generation: AtomicU64,
    /// Ids of new objects: this run's epoch in the high half.
    next_object: AtomicU64,
    /// Keys removed while their disk removal is still queued.
    removed: Arc<Tombstones>,
    /// Hashes of the URL index keys on disk: a memory miss for a URL never
    /// stored costs no disk read (a false positive costs one).
    on_disk: RwLock<HashSet<u64>>,
    hasher: RandomState,
    /// Records whose LRU position was refreshed lately.
    touched: moka::sync::Cache<String, ()>,
    config: StoreConfig,
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

/// Runs a blocking disk call on the blocking pool, within `deadline`.
async fn blocking<T: Send + 'static>(
    deadline: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::time::timeout(deadline, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::warn!("disk cache: a read took longer than {deadline:?} (timeouts.disk_io)");
            None
        }
    }
}

impl Store {
    /// Opens the disk tier at `dir` and starts its writer thread. A cache
    /// folder that cannot be opened (a full or unreadable disk) leaves the
    /// store on its memory tier, with a warning; one that another process
    /// holds is an error.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, DiskError> {
        let (disk, health) = match DiskTier::open(dir, config.disk_size) {
            Ok(disk) => (Some(Arc::new(disk)), Arc::new(DiskHealth::default())),
            Err(e) if e.is_locked() => return Err(e),
            Err(e) => {
                tracing::warn!(
                    "the disk cache at {} cannot be opened ({e}): going on with the memory \
                     tier only; nothing is kept across restarts",
                    dir.display()
                );
                (None, Arc::new(DiskHealth::failed_at_start()))
            }
        };
        Self::start(disk, health, config)
    }

    fn start(
        disk: Option<Arc<DiskTier>>,
        health: Arc<DiskHealth>,
        config: StoreConfig,
    ) -> Result<Store, DiskError> {
        let (tx, rx) = sync_channel::<Write>(QUEUE);
        let queue = Arc::new(Queue {
            tx: Mutex::new(Some(tx)),
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        });
        let removed = Arc::new(Tombstones::default());
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let epoch = (seed ^ (u64::from(std::process::id()) << 16)) & 0xffff_ffff;
        let epoch = epoch.max(1);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        {
            let disk = disk.clone();
            let health = health.clone();
            let removed = removed.clone();
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("cachalot-disk".into())
                .spawn(move || {
                    if let Some(disk) = &disk {
                        // Bodies no head names: a crash or a fill cut short.
                        let swept = disk.sweep(|id| id >> 32 == epoch);
                        if swept > 0 {
                            tracing::info!("disk cache: removed {swept} unfinished object files");
                        }
                    }
                    for write in rx {
                        queue.count.fetch_sub(1, Ordering::Relaxed);
                        queue.bytes.fetch_sub(write.bytes(), Ordering::Relaxed);
                        let Some(disk) = &disk else { continue };
                        let result = match &write {
                            Write::Put(key, raw, object, length) => {
                                disk.put(key, raw, *object, *length)
                            }
                            Write::Touch(key) => disk.touch(key),
                            // A URL's removal frees its variants' files too.
                            Write::Remove(key, seq) if key.starts_with('I') => {
                                disk.remove_url(key).map(|_| removed.lift_if(key, *seq))
                            }
                            Write::Remove(key, seq) => {
                                disk.remove(key).map(|()| removed.lift_if(key, *seq))
                            }
                            Write::MakeRoom => disk.make_room(),
                        };
                        if let Err(e) = result {
                            health.failed(&e);
                        }
                    }
                    if let Some(disk) = &disk {
                        if let Err(e) = disk.flush() {
                            tracing::warn!("disk cache flush failed: {e}");
                        }
                    }
                    let _ = done_tx.send(());
                })
                .map_err(DiskError::Io)?;
        }
        let hasher = RandomState::new();
        let on_disk = disk
            .as_ref()
            .map(|disk| {
                disk.keys_cheaply()
                    .filter(|k| k.starts_with('I'))
                    .map(|k| hasher.hash_one(&k))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Store {
            memory: MemoryTier::new(config.memory_size),
            disk,
            health,
            queue,
            finished: Mutex::new(Some(done_rx)),
            generation: AtomicU64::new(seed),
            next_object: AtomicU64::new((epoch << 32) | 1),
            removed,
            on_disk: RwLock::new(on_disk),
            hasher,
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            config,
        })
    }

    fn queue(&self, write: Write) {
        if self.disk.is_none() {
            return;
        }
        let guard = match self.queue.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let Some(tx) = guard.as_ref() else {
            return;
        };
        let removal = matches!(write, Write::Remove(..));
        let bytes = write.bytes();
        if !removal
            && (self.queue.count.load(Ordering::Relaxed) >= QUEUE - RESERVED
                || self.queue.bytes.load(Ordering::Relaxed) + bytes > QUEUE_BYTES)
        {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            self.discard(&write);
            return;
        }
        // Counted before it is sent: the writer subtracts once it takes it.
        self.queue.count.fetch_add(1, Ordering::Relaxed);
        self.queue.bytes.fetch_add(bytes, Ordering::Relaxed);
        match tx.try_send(write) {
            Ok(()) => {}
            Err(TrySendError::Full(write)) | Err(TrySendError::Disconnected(write)) => {
                self.queue.count.fetch_sub(1, Ordering::Relaxed);
                self.queue.bytes.fetch_sub(bytes, Ordering::Relaxed);
                self.discard(&write);
                // A removal that cannot be queued keeps its tombstone: the
                // key stays invisible until new data is stored under it.
                self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A head that will not be written leaves its body file unnamed:
    /// remove it now rather than at the next start.
    fn discard(&self, write: &Write) {
        let (Write::Put(_, _, object, _), Some(disk)) = (write, &self.disk) else {
            return;
        };
        if *object == 0 {
            return;
        }
        let (disk, id) = (disk.clone(), *object);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn_blocking(move || disk.objects.remove(id));
        }
    }

    /// The largest body the memory tier holds.
    pub fn memory_object_size(&self) -> u64 {
        self.config.memory_object_size
    }

    /// The longest a disk operation may take.
    pub fn disk_io(&self) -> Duration {
        self.config.disk_io
    }

    /// A new object file for a body about to download (`expected` bytes,
    /// when known), or why there is none.
    pub fn new_object(&self, expected: Option<u64>) -> Result<NewObject, NoObject> {
        let disk = self.disk.as_ref().ok_or(NoObject::Off)?;
        if !self.health.writable() {
            return Err(NoObject::Off);
        }
        let id = self.next_object.fetch_add(1, Ordering::Relaxed);
        let object = NewObject::new(
            id,
            disk.clone(),
            self.health.clone(),
            expected,
            self.config.disk_io,
        )
        .ok_or(NoObject::Full)?;
        if expected.is_some_and(|n| n > 0) {
            self.queue(Write::MakeRoom);
        }
        Ok(object)
    }

    /// Whether the disk tier takes writes now.
    pub fn disk_writable(&self) -> bool {
        self.disk.is_some() && !self.health.is_off()
    }

    /// Opens the object file of an entry whose body is not in memory; None
    /// when it is gone or cannot be opened in time.
    pub async fn open_object(&self, entry: &Entry) -> Option<Arc<File>> {
        let (disk, object) = (self.disk.clone()?, entry.object.clone()?);
        let id = object.id;
        match blocking(self.config.disk_io, move || disk.objects.open_file(id)).await {
            Some(Ok(file)) => Some(Arc::new(file)),
            _ => None,
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
        let disk = self.disk.clone()?;
        let owned = key.to_owned();
        let small = self.config.memory_object_size;
        let found = blocking(self.config.disk_io, move || {
            read_record(&disk, &owned, small)
        })
        .await?
        .unwrap_or_else(|e| {
            tracing::warn!("disk cache read failed: {e}");
            None
        })?;
        let record = found;
        self.memory.insert(key.to_owned(), record.clone());
        // The disk LRU needs a record's age to the nearest half-minute, not
        // three disk writes per hit.
        if !self.touched.contains_key(key) {
            self.touched.insert(key.to_owned(), ());
            self.queue(Write::Touch(key.to_owned()));
        }
        Some((record, Tier::Disk))
    }

    /// Finds the variant of `url` matching the request's fields.
    pub async fn lookup(&self, url: &str, request: &HeaderMap) -> Lookup {
        let Some((Record::Index(index), ..)) = self.get(&index_key(url)).await else {
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

    /// A body read from disk failed its check or is gone: the entry goes,
    /// and counts.
    pub fn damaged(&self, url: &str, request: &HeaderMap, entry: &Entry) {
        self.damaged_key(self.entry_key_for(url, request, entry));
    }

    /// [`Store::damaged`], for the entry stored under `key`.
    pub fn damaged_key(&self, key: String) {
        tracing::warn!(key, "dropping a cache entry whose body fails its checksum");
        if let Some(disk) = &self.disk {
            let disk = disk.clone();
            let owned = key.clone();
            let seq = self.removed.bury(&key);
            self.memory.remove(&key);
            let removed = self.removed.clone();
            tokio::task::spawn_blocking(move || {
                if disk.drop_damaged(&owned).is_ok() {
                    removed.lift_if(&owned, seq);
                }
            });
        }
    }

    /// The key `entry`, a variant of `url`, is stored under for `request`.
    pub fn entry_key_for(&self, url: &str, request: &HeaderMap, entry: &Entry) -> String {
        let names = vary::vary_names(&entry.headers).unwrap_or_default();
        entry_key(url, &vary::secondary_key(&names, request))
    }

    /// Stores a variant of `url` selected by `vary_names` from `request`:
    /// in memory (the whole body when it is small enough, else the head)
    /// and, when its body is on disk, its head on disk.
    /// Returns the generation it was stored under.
    pub fn insert(
        &self,
        url: &str,
        vary_names: Vec<String>,
        request: &HeaderMap,
        mut entry: Entry,
    ) -> u64 {
        let ikey = index_key(url);
        let (index, fresh) = match self.memory.get(&ikey) {
            Some(Record::Index(index)) if index.names == vary_names => (index, false),
            _ => {
                let index = Arc::new(VaryIndex {
                    names: vary_names,
                    generation: self.generation.fetch_add(1, Ordering::Relaxed),
                });
                self.removed.lift(&ikey);
                self.memory
                    .insert(ikey.clone(), Record::Index(index.clone()));
                (index, true)
            }
        };
        // The URL's index goes to disk with the first of its entries that
        // does (an entry kept in memory only leaves nothing on disk).
        if entry.object.is_some() {
            let hash = self.hasher.hash_one(&ikey);
            let known = match self.on_disk.write() {
                Ok(mut set) => !set.insert(hash),
                Err(p) => !p.into_inner().insert(hash),
            };
            if fresh || !known {
                let raw = encode(&Record::Index(index.clone()));
                self.queue(Write::Put(ikey, raw, 0, 0));
            }
        }
        let (generation, names) = (index.generation, &index.names);
        entry.generation = generation;
        if entry.length > self.config.memory_object_size {
            entry.body = None;
        }
        if entry.body.is_none() && entry.object.is_none() {
            return generation;
        }
        let ekey = entry_key(url, &vary::secondary_key(names, request));
        self.removed.lift(&ekey);
        let entry = Arc::new(entry);
        if let Some(object) = &entry.object {
            let raw = encode(&Record::Entry(entry.clone()));
            self.queue(Write::Put(ekey.clone(), raw, object.id, entry.length));
        }
        self.memory.insert(ekey, Record::Entry(entry));
        generation
    }

    /// Gives an entry stored in memory by [`Store::insert`] (under
    /// `generation`) its body's object file, now written, and sends its
    /// head to disk; unless the URL was invalidated or stored anew
    /// meanwhile, in which case the file is removed: a late disk write
    /// never brings back what is gone, nor replaces what is newer.
    pub fn attach(
        &self,
        url: &str,
        vary_names: Vec<String>,
        request: &HeaderMap,
        entry: Entry,
        generation: u64,
    ) {
        let ikey = index_key(url);
        let same_index = matches!(
            self.memory.get(&ikey),
            Some(Record::Index(index)) if index.generation == generation && index.names == vary_names
        );
        let ekey = entry_key(url, &vary::secondary_key(&vary_names, request));
        let same_entry = match self.memory.get(&ekey) {
            Some(Record::Entry(stored)) => {
                stored.generation == generation && stored.times == entry.times
            }
            Some(Record::Index(_)) => false,
            None => true,
        };
        if same_index && same_entry {
            self.insert(url, vary_names, request, entry);
        } else if let Some(object) = &entry.object {
            self.discard(&Write::Put(ekey, Vec::new(), object.id, entry.length));
        }
    }

    /// The stored pieces of `url`'s partial object (read from disk, where
    /// alone they are kept), each with its key.
    pub async fn pieces(&self, url: &str) -> Vec<(String, Arc<Entry>)> {
        let Some(disk) = self.disk.clone() else {
            return Vec::new();
        };
        if self.removed.contains(&index_key(url)) {
            return Vec::new();
        }
        let prefix = format!("P{url}\n");
        let found = blocking(self.config.disk_io, move || disk.with_prefix(&prefix)).await;
        let Some(Ok(records)) = found else {
            return Vec::new();
        };
        records
            .into_iter()
            .filter_map(|(key, record)| match record {
                Record::Entry(entry) if entry.part.is_some() && !self.removed.contains(&key) => {
                    Some((key, entry))
                }
                _ => None,
            })
            .collect()
    }

    /// Stores a piece of `url`'s partial object (on disk only).
    pub fn insert_piece(&self, url: &str, entry: Entry) {
        let (Some(part), Some(object)) = (entry.part, entry.object.clone()) else {
            return;
        };
        let key = format!("P{url}\n{:020}", part.start);
        self.removed.lift(&key);
        let raw = encode(&Record::Entry(Arc::new(entry.clone())));
        self.queue(Write::Put(key, raw, object.id, entry.length));
    }

    /// Removes pieces (by key) of a partial object.
    pub fn forget_pieces(&self, keys: &[String]) {
        for key in keys {
            let seq = self.removed.bury(key);
            self.queue(Write::Remove(key.clone(), seq));
        }
    }

    /// Joins the pieces of a partial object, in order, into one new object
    /// (on the blocking pool); its chunk map, or None when a piece could
    /// not be read or the disk takes no writes.
    pub async fn join_pieces(
        &self,
        pieces: Vec<(Arc<File>, Arc<record::Chunks>, u64)>,
    ) -> Option<record::Chunks> {
        let disk = self.disk.clone()?;
        if !self.health.writable() {
            return None;
        }
        let id = self.next_object.fetch_add(1, Ordering::Relaxed);
        let joined = blocking(self.config.disk_io * 4, move || {
            let joined = object::join(&disk.objects, id, &pieces);
            if joined.is_err() {
                let _ = disk.objects.remove(id);
            }
            joined
        })
        .await?;
        match joined {
            Ok(chunks) => Some(chunks),
            Err(e) => {
                tracing::warn!("disk cache: joining a partial object failed: {e}");
                None
            }
        }
    }

    /// Makes every stored variant of `url` unreachable (RFC 9111 §4.4); on
    /// disk they are removed, their files with them.
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
        let disk = self.disk.as_deref();
        StoreStats {
            memory_entries: self.memory.entry_count(),
            memory_bytes: self.memory.weighted_size(),
            memory_evictions: self.memory.evictions(),
            disk_entries: disk.map_or(0, |d| d.len() as u64),
            disk_bytes: disk.map_or(0, DiskTier::bytes),
            disk_evictions: disk.map_or(0, DiskTier::evictions),
            disk_corrupt: disk.map_or(0, DiskTier::corrupt),
            disk_writes_dropped: self.queue.dropped.load(Ordering::Relaxed),
            disk_write_errors: self.health.errors(),
            disk_writable: self.disk_writable(),
        }
    }

    /// The disk tier itself (for tools and tests).
    pub fn disk(&self) -> Option<&DiskTier> {
        self.disk.as_deref()
    }

    /// Finishes queued disk writes and flushes, waiting at most a few
    /// seconds (a disk that hangs does not hold the exit); later writes
    /// are dropped.
    pub fn close(&self) {
        let tx = match self.queue.tx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(tx);
        let finished = match self.finished.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(finished) = finished {
            if finished.recv_timeout(CLOSE_WAIT).is_err() {
                tracing::warn!(
                    "disk cache: queued writes not finished within {CLOSE_WAIT:?}; \
                     leaving them (unfinished entries are dropped at the next start)"
                );
            }
        }
    }
}

/// Reads a record from disk; an entry comes with its whole body (checked)
/// when it is at most `small` bytes. A small body that is gone or fails its
/// check drops the entry.
fn read_record(disk: &DiskTier, key: &str, small: u64) -> Result<Option<Record>, DiskError> {
    let Some(record) = disk.get(key)? else {
        return Ok(None);
    };
    let Record::Entry(entry) = &record else {
        return Ok(Some(record));
    };
    let Some(object) = entry.object.clone() else {
        return Ok(None);
    };
    if entry.length == 0 {
        let mut whole = (**entry).clone();
        whole.body = Some(bytes::Bytes::new());
        return Ok(Some(Record::Entry(Arc::new(whole))));
    }
    if entry.length > small {
        // Streamed from its file, which the hit opens (and a file gone
        // meanwhile is found there).
        return Ok(Some(record));
    }
    let file = match disk.objects.open_file(object.id) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(key, "dropping a cache entry whose body file is gone: {e}");
            disk.drop_damaged(key)?;
            return Ok(None);
        }
    };
    match read_all(&file, &object, entry.length) {
        Ok(body) => {
            let mut whole = (**entry).clone();
            whole.body = Some(body);
            Ok(Some(Record::Entry(Arc::new(whole))))
        }
        Err(e) => {
            tracing::warn!(key, "dropping an unreadable cache entry: {e}");
            disk.drop_damaged(key)?;
            Ok(None)
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

    fn config() -> StoreConfig {
        StoreConfig {
            memory_size: 1 << 20,
            disk_size: 1 << 24,
            memory_object_size: 1 << 16,
            disk_io: Duration::from_secs(5),
        }
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
            length: 1,
            body: Some(bytes::Bytes::from_static(b"x")),
            object: None,
            part: None,
        }
    }

    #[tokio::test]
    async fn a_url_without_vary_whose_entry_is_gone_is_a_plain_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config()).unwrap();
        store.insert("http://a/", vec![], &HeaderMap::new(), entry_x());
        store.close();
        // The entry goes (evicted, dropped as corrupt); its index stays.
        let ekey = entry_key("http://a/", "");
        store.memory.remove(&ekey);
        store.disk().unwrap().remove(&ekey).unwrap();
        assert!(matches!(
            store.lookup("http://a/", &HeaderMap::new()).await,
            Lookup::Miss
        ));
    }

    #[test]
    fn removing_a_url_on_disk_removes_its_variants_and_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskTier::open(dir.path(), 1 << 30).unwrap();
        let index = encode(&Record::Index(Arc::new(VaryIndex {
            names: vec!["accept".into()],
            generation: 1,
        })));
        disk.put("Ihttp://a/", &index, 0, 0).unwrap();
        for (i, variant) in ["text", "json"].iter().enumerate() {
            let id = 0x100 + i as u64;
            let mut writer = object::ObjectWriter::new(disk.objects.create(id).unwrap(), id);
            writer
                .append(&[bytes::Bytes::from_static(b"body")])
                .unwrap();
            let mut entry = entry_x();
            entry.length = 4;
            entry.object = Some(Arc::new(writer.chunks()));
            let raw = encode(&Record::Entry(Arc::new(entry)));
            disk.put(&format!("Ehttp://a/\n{variant}"), &raw, id, 4)
                .unwrap();
        }
        disk.put("Ehttp://ab/\n", &index, 0, 0).unwrap();
        assert_eq!(disk.remove_url("Ihttp://a/").unwrap(), 2);
        assert!(
            disk.objects.list().is_empty(),
            "the variants' files are gone"
        );
        assert_eq!(disk.len(), 1, "another URL sharing the prefix stays");
    }

    #[tokio::test]
    async fn a_late_disk_write_never_brings_back_an_invalidated_or_replaced_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config()).unwrap();
        let with_object = |e: Entry| Entry {
            object: Some(Arc::new(record::Chunks {
                id: 77,
                chunk_size: object::CHUNK,
                crcs: vec![0],
            })),
            ..e
        };
        let generation = store.insert("http://a/", vec![], &HeaderMap::new(), entry_x());
        store.invalidate("http://a/");
        store.attach(
            "http://a/",
            vec![],
            &HeaderMap::new(),
            with_object(entry_x()),
            generation,
        );
        assert!(
            matches!(
                store.lookup("http://a/", &HeaderMap::new()).await,
                Lookup::Miss
            ),
            "an invalidated URL stays gone"
        );
        // Stored anew meanwhile: the late write does not replace it.
        let generation = store.insert("http://a/", vec![], &HeaderMap::new(), entry_x());
        let mut newer = entry_x();
        newer.times.response_time += Duration::from_secs(1);
        newer.body = Some(bytes::Bytes::from_static(b"y"));
        store.insert("http://a/", vec![], &HeaderMap::new(), newer);
        store.attach(
            "http://a/",
            vec![],
            &HeaderMap::new(),
            with_object(entry_x()),
            generation,
        );
        let Lookup::Hit(found) = store.lookup("http://a/", &HeaderMap::new()).await else {
            panic!("stored")
        };
        assert_eq!(found.entry.body.as_deref(), Some(&b"y"[..]));
        assert!(found.entry.object.is_none(), "the newer entry is untouched");
    }

    #[tokio::test]
    async fn invalidated_url_is_gone_at_once_and_after_the_disk_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), config()).unwrap();
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
            store.disk().unwrap().get("Ihttp://a/").unwrap().is_none(),
            "removed on disk too"
        );
        assert!(
            !store.removed.contains("Ihttp://a/"),
            "tombstone lifted once done"
        );
    }
}
