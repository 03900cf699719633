//! Who is using the bandwidth now: bytes per client and per domain over the
//! last 10 seconds and the last 5 minutes, and the hit ratio over the last 5
//! minutes. Time slots in two rings (ten of 1 s, thirty of 10 s); a slot
//! tracks at most [`MAX_KEYS`] clients and as many domains, bytes of others
//! are added up as "other", so memory stays bounded whatever the traffic.
//! Time is passed in (seconds since the process started).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

/// Clients (and domains) tracked per time slot.
pub const MAX_KEYS: usize = 512;
/// Entries shown in a top list.
pub const TOP: usize = 20;

/// Bytes per key in one slot, at most [`MAX_KEYS`] keys.
#[derive(Debug)]
struct Tally<K> {
    bytes: HashMap<K, u64>,
    other: u64,
}

impl<K: Hash + Eq> Default for Tally<K> {
    fn default() -> Self {
        Tally {
            bytes: HashMap::new(),
            other: 0,
        }
    }
}

impl<K: Hash + Eq> Tally<K> {
    fn clear(&mut self) {
        self.bytes.clear();
        self.other = 0;
    }
}

/// One time slot.
#[derive(Debug, Default)]
struct Slot {
    /// Which slot of time this is (seconds / width); `None` while unused.
    index: Option<u64>,
    clients: Tally<IpAddr>,
    domains: Tally<Box<str>>,
    bytes: u64,
    /// Requests whose result counts in the hit ratio, hits among them, and
    /// their bytes.
    requests: u64,
    hits: u64,
    request_bytes: u64,
    hit_bytes: u64,
}

impl Slot {
    fn reset(&mut self, index: u64) {
        self.index = Some(index);
        self.clients.clear();
        self.domains.clear();
        self.bytes = 0;
        self.requests = 0;
        self.hits = 0;
        self.request_bytes = 0;
        self.hit_bytes = 0;
    }
}

/// A request that finished, for the hit ratio.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub hit: bool,
    /// Bytes sent to the client for it.
    pub bytes: u64,
}

/// A ring of `len` slots of `width` seconds.
#[derive(Debug)]
struct Ring {
    width: u64,
    slots: Vec<Slot>,
}

impl Ring {
    fn new(width: u64, len: usize) -> Ring {
        Ring {
            width,
            slots: (0..len).map(|_| Slot::default()).collect(),
        }
    }

    fn slot(&mut self, now: u64) -> Option<&mut Slot> {
        let index = now / self.width;
        let len = self.slots.len() as u64;
        let slot = self.slots.get_mut(usize::try_from(index % len).ok()?)?;
        if slot.index != Some(index) {
            slot.reset(index);
        }
        Some(slot)
    }

    /// Slots within the last `len × width` seconds.
    fn live(&self, now: u64) -> impl Iterator<Item = &Slot> {
        let current = now / self.width;
        let oldest = current.saturating_sub(self.slots.len() as u64 - 1);
        self.slots
            .iter()
            .filter(move |s| s.index.is_some_and(|i| i >= oldest && i <= current))
    }

    fn span(&self) -> u64 {
        self.width * self.slots.len() as u64
    }
}

fn add_client(tally: &mut Tally<IpAddr>, client: IpAddr, bytes: u64) {
    if let Some(n) = tally.bytes.get_mut(&client) {
        *n += bytes;
    } else if tally.bytes.len() < MAX_KEYS {
        tally.bytes.insert(client, bytes);
    } else {
        tally.other += bytes;
    }
}

/// Longest domain tracked (a DNS name's limit); a longer "host" from a
/// malformed target counts as other, so a key never costs more than this.
const MAX_DOMAIN: usize = 253;

fn add_domain(tally: &mut Tally<Box<str>>, domain: &str, bytes: u64) {
    if domain.len() > MAX_DOMAIN {
        tally.other += bytes;
    } else if let Some(n) = tally.bytes.get_mut(domain) {
        *n += bytes;
    } else if tally.bytes.len() < MAX_KEYS {
        tally.bytes.insert(domain.into(), bytes);
    } else {
        tally.other += bytes;
    }
}

/// Both rings.
#[derive(Debug)]
pub struct Windows {
    short: Ring,
    long: Ring,
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            short: Ring::new(1, 10),
            long: Ring::new(10, 30),
        }
    }
}

/// The top users of one window.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Top {
    /// The window's length.
    pub seconds: u64,
    /// Bytes in the window, every client included.
    pub bytes: u64,
    pub clients: Vec<Entry>,
    /// Bytes of the clients past the top list (and untracked ones).
    pub other_clients_bytes: u64,
    pub domains: Vec<Entry>,
    pub other_domains_bytes: u64,
}

/// One line of a top list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub key: String,
    pub bytes: u64,
}

/// The hit ratio over the long window.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Ratio {
    pub seconds: u64,
    /// Requests that count (cacheable traffic, as `cachalot stats` counts it).
    pub requests: u64,
    pub hits: u64,
    pub bytes: u64,
    pub hit_bytes: u64,
}

impl Windows {
    /// Counts `bytes` moved for `client` and `domain` at `now` (seconds),
    /// and a finished request when there is one.
    pub fn credit(
        &mut self,
        now: u64,
        client: IpAddr,
        domain: &str,
        bytes: u64,
        finished: Option<Finished>,
    ) {
        for ring in [&mut self.short, &mut self.long] {
            let Some(slot) = ring.slot(now) else { continue };
            if bytes > 0 {
                slot.bytes += bytes;
                add_client(&mut slot.clients, client, bytes);
                add_domain(&mut slot.domains, domain, bytes);
            }
            if let Some(f) = finished {
                slot.requests += 1;
                slot.request_bytes += f.bytes;
                if f.hit {
                    slot.hits += 1;
                    slot.hit_bytes += f.bytes;
                }
            }
        }
    }

    /// The last 10 seconds.
    pub fn short(&self, now: u64) -> Top {
        top(&self.short, now)
    }

    /// The last 5 minutes.
    pub fn long(&self, now: u64) -> Top {
        top(&self.long, now)
    }

    /// The hit ratio over the last 5 minutes.
    pub fn ratio(&self, now: u64) -> Ratio {
        let mut r = Ratio {
            seconds: self.long.span(),
            ..Ratio::default()
        };
        for s in self.long.live(now) {
            r.requests += s.requests;
            r.hits += s.hits;
            r.bytes += s.request_bytes;
            r.hit_bytes += s.hit_bytes;
        }
        r
    }
}

fn top(ring: &Ring, now: u64) -> Top {
    let mut clients: HashMap<IpAddr, u64> = HashMap::new();
    let mut domains: HashMap<&str, u64> = HashMap::new();
    let mut t = Top {
        seconds: ring.span(),
        ..Top::default()
    };
    for s in ring.live(now) {
        t.bytes += s.bytes;
        t.other_clients_bytes += s.clients.other;
        t.other_domains_bytes += s.domains.other;
        for (k, n) in &s.clients.bytes {
            *clients.entry(*k).or_insert(0) += n;
        }
        for (k, n) in &s.domains.bytes {
            *domains.entry(k).or_insert(0) += n;
        }
    }
    let (list, rest) = ranked(clients.into_iter().map(|(k, n)| (k.to_string(), n)));
    t.clients = list;
    t.other_clients_bytes += rest;
    let (list, rest) = ranked(domains.into_iter().map(|(k, n)| (k.to_owned(), n)));
    t.domains = list;
    t.other_domains_bytes += rest;
    t
}

/// The [`TOP`] largest, largest first (ties by name), and the sum of the rest.
fn ranked(all: impl Iterator<Item = (String, u64)>) -> (Vec<Entry>, u64) {
    let mut all: Vec<(String, u64)> = all.collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rest = all.iter().skip(TOP).map(|(_, n)| n).sum();
    all.truncate(TOP);
    let list = all
        .into_iter()
        .map(|(key, bytes)| Entry { key, bytes })
        .collect();
    (list, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn bytes_leave_the_short_window_after_ten_seconds_and_the_long_after_five_minutes() {
        let mut w = Windows::default();
        w.credit(100, ip(1), "a.test", 1000, None);
        w.credit(105, ip(2), "b.test", 10, None);
        let s = w.short(109);
        assert_eq!(s.bytes, 1010);
        assert_eq!(s.clients[0].key, "10.0.0.1");
        assert_eq!(s.domains[1].key, "b.test");
        assert_eq!(w.short(110).bytes, 10, "the slot of second 100 left");
        assert_eq!(w.long(110).bytes, 1010);
        assert_eq!(w.long(399).bytes, 1010);
        assert_eq!(w.long(400).bytes, 0);
        // A slot reused after a full turn of the ring starts empty.
        w.credit(120, ip(3), "c.test", 5, None);
        assert_eq!(w.short(120).bytes, 5);
    }

    #[test]
    fn keys_past_the_cap_count_as_other_and_the_top_list_has_twenty() {
        let mut w = Windows::default();
        for i in 0..(MAX_KEYS as u32 + 10) {
            let client = IpAddr::from(std::net::Ipv4Addr::from(i));
            w.credit(7, client, &format!("d{i}.test"), 1 + u64::from(i), None);
        }
        w.credit(7, ip(1), &"x".repeat(300), 1000, None);
        let t = w.short(7);
        assert_eq!(t.clients.len(), TOP);
        assert_eq!(t.domains.len(), TOP);
        let shown: u64 = t.clients.iter().map(|e| e.bytes).sum();
        assert_eq!(shown + t.other_clients_bytes, t.bytes);
        let shown: u64 = t.domains.iter().map(|e| e.bytes).sum();
        assert_eq!(shown + t.other_domains_bytes, t.bytes);
        let long = w.long(7);
        assert_eq!(long.bytes, t.bytes);
    }

    #[test]
    fn the_ratio_counts_finished_requests_of_the_last_five_minutes() {
        let mut w = Windows::default();
        let hit = Finished {
            hit: true,
            bytes: 300,
        };
        let miss = Finished {
            hit: false,
            bytes: 100,
        };
        w.credit(0, ip(1), "a", 300, Some(hit));
        w.credit(200, ip(1), "a", 100, Some(miss));
        let r = w.ratio(250);
        assert_eq!((r.requests, r.hits, r.bytes, r.hit_bytes), (2, 1, 400, 300));
        assert_eq!(w.ratio(305).requests, 1);
    }
}
