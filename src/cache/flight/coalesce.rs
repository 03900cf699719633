//! Request coalescing: for one URL that is missing or stale, the first
//! request (the leader) goes to the origin and the concurrent ones (the
//! followers) wait for what it publishes: a shareable response whose body
//! they read as it arrives (late joiners from byte 0), a refreshed entry, or
//! word that the response may not be shared, in which case each follower
//! goes to the origin on its own. A follower whose request selects another
//! variant than the leader's (Vary) waits once more, on its variant's own
//! flight ([`variant_key`]). A leader dropped before publishing tells its
//! followers it is gone (they join again, once: one of them leads); they
//! never hang (see [`wait`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use tokio::sync::watch;

use crate::cache::flight::tee::Fill;
use crate::cache::policy::vary;
use crate::cache::store::record::Entry;

/// A response the leader may share, as the client sees its head.
pub struct SharedResponse {
    pub status: StatusCode,
    /// Client-facing header fields (hop-by-hop removed, Via added).
    pub headers: HeaderMap,
    pub fill: Arc<Fill>,
    /// The Vary field names of the response and the leader's secondary key:
    /// a follower whose request selects another variant may not share it.
    pub vary: Vec<String>,
    pub secondary: String,
}

/// What a leader has made known to its followers.
#[derive(Clone)]
pub enum Published {
    /// Nothing yet.
    Pending,
    /// A shareable response, its body still arriving.
    Shared(Arc<SharedResponse>),
    /// The origin confirmed the stored entry (304); here it is, refreshed,
    /// with the secondary key of the leader's request: it is that variant.
    Refreshed {
        entry: Arc<Entry>,
        secondary: String,
    },
    /// The response may not be shared (private, no-store, too large...).
    NotShareable,
    /// The leader failed or went away before it had a response.
    Abandoned,
}

impl Published {
    /// A refreshed entry, the variant selected by `request` (the leader's).
    pub fn refreshed(entry: Arc<Entry>, request: &HeaderMap) -> Published {
        let names = vary::vary_names(&entry.headers).unwrap_or_default();
        Published::Refreshed {
            secondary: vary::secondary_key(&names, request),
            entry,
        }
    }
}

/// The flight key of one variant of `url`: followers whose request selects
/// another variant than the leader's wait there for their own leader.
/// (A URL key never holds a newline, so the two kinds never collide.)
pub fn variant_key(url: &str, secondary: &str) -> String {
    format!("{url}\n{secondary}")
}

struct Flight {
    tx: watch::Sender<Published>,
}

/// The flights in progress, by cache key.
#[derive(Default)]
pub struct Coalescer {
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    coalesced: AtomicU64,
}

/// A request's part in a flight.
pub enum Role {
    /// Go to the origin and publish what came of it.
    Leader(LeaderGuard),
    /// Wait for the leader.
    Follower(watch::Receiver<Published>),
}

impl Coalescer {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        match self.flights.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Joins the flight for `key`, starting one when there is none.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut flights = self.lock();
        if let Some(flight) = flights.get(key) {
            return Role::Follower(flight.tx.subscribe());
        }
        let (tx, _) = watch::channel(Published::Pending);
        let flight = Arc::new(Flight { tx });
        flights.insert(key.to_owned(), flight.clone());
        Role::Leader(LeaderGuard {
            coalescer: self.clone(),
            key: key.to_owned(),
            flight,
            published: false,
        })
    }

    /// Counts a request served from another's origin fetch.
    pub fn count_follower(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests served from another request's origin fetch so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    /// Flights in progress.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }
}

/// Held by the leader; the flight ends when it drops (after the body is
/// complete, for a shared response, so that late joiners can still join).
pub struct LeaderGuard {
    coalescer: Arc<Coalescer>,
    key: String,
    flight: Arc<Flight>,
    published: bool,
}

impl LeaderGuard {
    /// Tells the followers what came of the origin request.
    pub fn publish(&mut self, what: Published) {
        self.published = true;
        self.flight.tx.send_replace(what);
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        {
            let mut flights = self.coalescer.lock();
            if flights
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        // Only now: a follower told the leader is gone joins again, and must
        // find a new flight, not this one.
        if !self.published {
            self.flight.tx.send_replace(Published::Abandoned);
        }
    }
}

/// Waits for the leader's word, at most `limit`: a leader that is gone
/// counts as [`Published::Abandoned`], one still without an answer after
/// `limit` as [`Published::Pending`].
pub async fn wait(mut rx: watch::Receiver<Published>, limit: Duration) -> Published {
    let waited =
        tokio::time::timeout(limit, rx.wait_for(|p| !matches!(p, Published::Pending))).await;
    match waited {
        Ok(Ok(published)) => published.clone(),
        Ok(Err(_)) => Published::Abandoned,
        Err(_) => Published::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_request_follows_and_sees_what_the_leader_publishes() {
        let c = Arc::new(Coalescer::default());
        let Role::Leader(mut leader) = c.join("k") else {
            panic!("first is leader")
        };
        let Role::Follower(rx) = c.join("k") else {
            panic!("second follows")
        };
        leader.publish(Published::NotShareable);
        assert!(matches!(
            wait(rx, Duration::from_secs(1)).await,
            Published::NotShareable
        ));
        drop(leader);
        assert_eq!(c.in_flight(), 0);
        assert!(
            matches!(c.join("k"), Role::Leader(_)),
            "a new flight after the end"
        );
    }

    #[tokio::test]
    async fn dropped_leader_releases_followers() {
        let c = Arc::new(Coalescer::default());
        let leader = c.join("k");
        let Role::Follower(rx) = c.join("k") else {
            panic!("follower")
        };
        drop(leader);
        assert!(matches!(
            wait(rx, Duration::from_secs(5)).await,
            Published::Abandoned
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_leader_times_out_followers() {
        let c = Arc::new(Coalescer::default());
        let _leader = c.join("k");
        let Role::Follower(rx) = c.join("k") else {
            panic!("follower")
        };
        assert!(matches!(
            wait(rx, Duration::from_secs(5)).await,
            Published::Pending
        ));
    }

    #[test]
    fn distinct_keys_do_not_coalesce() {
        let c = Arc::new(Coalescer::default());
        let _a = c.join("a");
        assert!(matches!(c.join("b"), Role::Leader(_)));
    }
}
