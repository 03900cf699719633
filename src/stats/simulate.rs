//! What-if cache sizing (`cachalot stats --simulate`): the requests of a log
//! replayed, in one pass, through one least-recently-used cache per
//! simulated size, and through an unbounded one. Pure: requests in (already
//! classified by `sim_input`), predicted hit counts out.
//!
//! Memory is bounded by the number of distinct URLs, not of lines: a URL is
//! kept as a 64-bit hash with its last known size, a few flags and, per
//! simulated cache, two `u32` links of an intrusive doubly-linked list (the
//! recency order); the lists share one arena indexed by URL number.
//!
//! Cacheability is not always known when a line is replayed (a Squid log
//! says "miss", not "miss, and stored"). Such lines are stored in the
//! simulated caches anyway, and the hits they later get are held *pending*
//! on their URL until some line shows the URL cacheable (a logged hit, or a
//! JSON line saying it was stored): then they count. Pending hits never
//! confirmed make the difference between the two bounds reported: `lower`
//! counts only confirmed URLs, `upper` counts every stored line as
//! cacheable.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// At most this many simulated sizes per run (one bit each in a mask).
pub const MAX_SIZES: usize = 16;

/// No list neighbour.
const NIL: u32 = u32::MAX;

/// What a log line can do with the simulated caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Served when present, stored when not (a GET with a storable status).
    /// `confirmed`: this line shows the URL cacheable.
    Store { confirmed: bool },
    /// Served when present, never stored (HEAD, 304 and 206 answers).
    LookUp { confirmed: bool },
    /// Never served from a cache (tunnels, refusals, other methods, answers
    /// known not to be storable).
    Pass,
}

/// One line of the log, as the simulation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The cache key: the URL as logged.
    pub url: &'a str,
    /// Bytes sent to the client (the byte hit ratio's unit).
    pub bytes: u64,
    /// The object's size, when this line carried a complete response.
    pub object_size: Option<u64>,
    pub kind: Kind,
    /// The log says it was a hit.
    pub logged_hit: bool,
}

/// Hits and the bytes they served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits {
    pub requests: u64,
    pub bytes: u64,
}

impl Hits {
    fn add(&mut self, bytes: u64) {
        self.requests += 1;
        self.bytes += bytes;
    }

    fn plus(self, other: Hits) -> Hits {
        Hits {
            requests: self.requests + other.requests,
            bytes: self.bytes + other.bytes,
        }
    }

    fn minus(self, other: Hits) -> Hits {
        Hits {
            requests: self.requests.saturating_sub(other.requests),
            bytes: self.bytes.saturating_sub(other.bytes),
        }
    }
}

/// What one simulated cache predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    /// The cache's size in bytes; None for the unbounded cache.
    pub capacity: Option<u64>,
    /// Hits on URLs shown cacheable by the log.
    pub lower: Hits,
    /// Hits on every URL that was stored.
    pub upper: Hits,
    /// Objects pushed out to make room.
    pub evictions: u64,
    /// Bytes held at the end of the log.
    pub used: u64,
}

/// The whole run's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every request replayed.
    pub requests: u64,
    /// Bytes sent for them.
    pub bytes: u64,
    /// What the log itself shows.
    pub logged_hits: Hits,
    /// Requests that a cache could have served (`Store` and `LookUp`).
    pub cacheable_requests: u64,
    /// URLs ever stored.
    pub distinct_urls: u64,
    /// Of them, shown cacheable by the log.
    pub confirmed_urls: u64,
    /// One per simulated size, in the order given, then the unbounded cache.
    pub predictions: Vec<Prediction>,
}

/// A URL's state, shared by every simulated cache.
#[derive(Debug, Clone, Copy, Default)]
struct Url {
    /// Last known object size (the logged bytes of its last complete answer).
    size: u64,
    /// Bit `i` set: present in cache `i`.
    present: u16,
    /// Shown cacheable by some line.
    confirmed: bool,
    /// Stored at least once: present in the unbounded cache.
    stored: bool,
}

/// One simulated LRU cache: a doubly-linked list over URL numbers, most
/// recent at `head`.
#[derive(Debug)]
struct Lru {
    capacity: u64,
    used: u64,
    head: u32,
    tail: u32,
    /// `[previous, next]` per URL number.
    links: Vec<[u32; 2]>,
    bit: u16,
    evictions: u64,
}

impl Lru {
    fn new(capacity: u64, index: usize) -> Lru {
        Lru {
            capacity,
            used: 0,
            head: NIL,
            tail: NIL,
            links: Vec::new(),
            bit: 1 << index,
            evictions: 0,
        }
    }

    fn link(&mut self, id: u32) -> &mut [u32; 2] {
        let index = id as usize;
        if self.links.len() <= index {
            self.links.resize(index + 1, [NIL, NIL]);
        }
        &mut self.links[index]
    }

    fn unlink(&mut self, id: u32) {
        let [prev, next] = *self.link(id);
        if prev == NIL {
            self.head = next;
        } else {
            self.link(prev)[1] = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.link(next)[0] = prev;
        }
        *self.link(id) = [NIL, NIL];
    }

    fn push_front(&mut self, id: u32) {
        let old = self.head;
        *self.link(id) = [NIL, old];
        if old == NIL {
            self.tail = id;
        } else {
            self.link(old)[0] = id;
        }
        self.head = id;
    }

    fn touch(&mut self, id: u32) {
        if self.head != id {
            self.unlink(id);
            self.push_front(id);
        }
    }

    fn remove(&mut self, id: u32, urls: &mut [Url]) {
        self.unlink(id);
        if let Some(url) = urls.get_mut(id as usize) {
            url.present &= !self.bit;
            self.used = self.used.saturating_sub(url.size);
        }
    }

    /// Stores `id` (its size already set) unless it is larger than the
    /// whole cache, then evicts from the cold end until it fits.
    fn insert(&mut self, id: u32, urls: &mut [Url]) {
        let Some(url) = urls.get_mut(id as usize) else {
            return;
        };
        if url.size > self.capacity {
            return;
        }
        url.present |= self.bit;
        self.used += url.size;
        self.push_front(id);
        self.shrink(urls);
    }

    /// Evicts least recently used objects while over capacity.
    fn shrink(&mut self, urls: &mut [Url]) {
        while self.used > self.capacity && self.tail != NIL {
            let cold = self.tail;
            self.remove(cold, urls);
            self.evictions += 1;
        }
    }
}

/// Keys are already hashes: the map uses them as they are.
#[derive(Debug, Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// URLs are told apart by this 64-bit hash (SipHash with fixed keys, so a
/// run is reproducible). Among ten million URLs, the chance that two share
/// a hash is about 3 in a million.
fn url_hash(url: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(url.as_bytes());
    hasher.finish()
}

/// The replay: feed requests in log order, then [`Simulation::finish`].
#[derive(Debug)]
pub struct Simulation {
    caches: Vec<Lru>,
    ids: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    urls: Vec<Url>,
    /// Per URL not yet confirmed that got hits: its hits per cache (the
    /// unbounded one last).
    pending: HashMap<u32, Box<[Hits]>, BuildHasherDefault<Identity>>,
    confirmed: Vec<Hits>,
    pending_total: Vec<Hits>,
    requests: u64,
    bytes: u64,
    logged_hits: Hits,
    cacheable_requests: u64,
    confirmed_urls: u64,
}

impl Simulation {
    /// Caches of these sizes in bytes (at most [`MAX_SIZES`]; more are
    /// ignored), plus an unbounded one.
    pub fn new(capacities: &[u64]) -> Simulation {
        let caches: Vec<Lru> = capacities
            .iter()
            .take(MAX_SIZES)
            .enumerate()
            .map(|(i, &c)| Lru::new(c, i))
            .collect();
        let slots = caches.len() + 1;
        Simulation {
            caches,
            ids: HashMap::default(),
            urls: Vec::new(),
            pending: HashMap::default(),
            confirmed: vec![Hits::default(); slots],
            pending_total: vec![Hits::default(); slots],
            requests: 0,
            bytes: 0,
            logged_hits: Hits::default(),
            cacheable_requests: 0,
            confirmed_urls: 0,
        }
    }

    /// Replays one request.
    pub fn request(&mut self, r: &Request<'_>) {
        self.requests += 1;
        self.bytes += r.bytes;
        if r.logged_hit {
            self.logged_hits.add(r.bytes);
        }
        let (store, confirms) = match r.kind {
            Kind::Pass => return,
            Kind::Store { confirmed } => (true, confirmed),
            Kind::LookUp { confirmed } => (false, confirmed),
        };
        self.cacheable_requests += 1;
        let key = url_hash(r.url);
        let id = match self.ids.get(&key) {
            Some(&id) => id,
            // Never stored: a miss everywhere, and nothing to remember.
            None if !store => return,
            None => {
                let Ok(id) = u32::try_from(self.urls.len()) else {
                    return;
                };
                if id == NIL {
                    return;
                }
                self.ids.insert(key, id);
                self.urls.push(Url {
                    size: r.object_size.unwrap_or(r.bytes),
                    ..Url::default()
                });
                id
            }
        };
        let index = id as usize;
        let Some(&url) = self.urls.get(index) else {
            return;
        };
        if confirms && !url.confirmed {
            self.confirm(id);
        }
        let confirmed = confirms || url.confirmed;
        let new_size = match r.object_size {
            Some(size) if store => size,
            _ => url.size,
        };
        // A new size of a stored object counts in every cache holding it;
        // whether this request hits is decided by `url.present`, from before.
        if new_size != url.size {
            if let Some(u) = self.urls.get_mut(index) {
                u.size = new_size;
            }
            for cache in &mut self.caches {
                if url.present & cache.bit != 0 {
                    cache.used = cache.used.saturating_sub(url.size) + new_size;
                }
            }
        }
        let unbounded = self.caches.len();
        for i in 0..unbounded {
            let Some(cache) = self.caches.get_mut(i) else {
                continue;
            };
            if url.present & cache.bit != 0 {
                cache.touch(id);
                if new_size > cache.capacity {
                    cache.remove(id, &mut self.urls);
                } else {
                    cache.shrink(&mut self.urls);
                }
                self.credit(i, id, r.bytes, confirmed);
            } else if store {
                cache.insert(id, &mut self.urls);
            }
        }
        if url.stored {
            self.credit(unbounded, id, r.bytes, confirmed);
        }
        if store {
            if let Some(u) = self.urls.get_mut(index) {
                u.stored = true;
            }
        }
    }

    /// Counts a hit in cache `slot`, now or pending confirmation.
    fn credit(&mut self, slot: usize, id: u32, bytes: u64, confirmed: bool) {
        if confirmed {
            if let Some(hits) = self.confirmed.get_mut(slot) {
                hits.add(bytes);
            }
            return;
        }
        let slots = self.confirmed.len();
        let pending = self
            .pending
            .entry(id)
            .or_insert_with(|| vec![Hits::default(); slots].into_boxed_slice());
        if let Some(hits) = pending.get_mut(slot) {
            hits.add(bytes);
        }
        if let Some(hits) = self.pending_total.get_mut(slot) {
            hits.add(bytes);
        }
    }

    /// The URL is cacheable after all: its pending hits count.
    fn confirm(&mut self, id: u32) {
        if let Some(url) = self.urls.get_mut(id as usize) {
            url.confirmed = true;
        }
        self.confirmed_urls += 1;
        if let Some(pending) = self.pending.remove(&id) {
            for (slot, hits) in pending.iter().enumerate() {
                if let Some(c) = self.confirmed.get_mut(slot) {
                    *c = c.plus(*hits);
                }
                if let Some(p) = self.pending_total.get_mut(slot) {
                    *p = p.minus(*hits);
                }
            }
        }
    }

    /// The predictions, and what the log itself showed.
    pub fn finish(self) -> Outcome {
        let mut predictions: Vec<Prediction> = self
            .caches
            .iter()
            .enumerate()
            .map(|(i, cache)| {
                let lower = self.confirmed.get(i).copied().unwrap_or_default();
                let pending = self.pending_total.get(i).copied().unwrap_or_default();
                Prediction {
                    capacity: Some(cache.capacity),
                    lower,
                    upper: lower.plus(pending),
                    evictions: cache.evictions,
                    used: cache.used,
                }
            })
            .collect();
        let unbounded = self.caches.len();
        let lower = self.confirmed.get(unbounded).copied().unwrap_or_default();
        let pending = self
            .pending_total
            .get(unbounded)
            .copied()
            .unwrap_or_default();
        predictions.push(Prediction {
            capacity: None,
            lower,
            upper: lower.plus(pending),
            evictions: 0,
            used: self.urls.iter().map(|u| u.size).sum(),
        });
        Outcome {
            requests: self.requests,
            bytes: self.bytes,
            logged_hits: self.logged_hits,
            cacheable_requests: self.cacheable_requests,
            distinct_urls: self.urls.len() as u64,
            confirmed_urls: self.confirmed_urls,
            predictions,
        }
    }
}

#[cfg(test)]
#[path = "simulate_tests.rs"]
mod tests;
