//! A counter split in stripes, one per serving thread (`thread_slot`): the
//! request path adds to its own thread's cache line instead of every core
//! pulling one shared line for each of a request's dozen counts. Reading
//! sums the stripes (a scrape, a status page). Same calls as `AtomicU64`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes per counter; threads beyond this share.
const STRIPES: usize = 8;

/// One stripe on its own cache line pair (adjacent-line prefetch).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A `u64` counter that only grows, striped by thread.
#[derive(Debug, Default)]
pub struct Striped {
    stripes: [Stripe; STRIPES],
}

impl Striped {
    /// Adds `n` on this thread's stripe.
    pub fn fetch_add(&self, n: u64, order: Ordering) {
        let i = crate::thread_slot::this_thread() % STRIPES;
        if let Some(s) = self.stripes.get(i) {
            s.0.fetch_add(n, order);
        }
    }

    /// The total over the stripes.
    pub fn load(&self, order: Ordering) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(order)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn adds_from_many_threads_sum_exactly() {
        let c = Arc::new(Striped::default());
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(t, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.load(Ordering::Relaxed), (0..12).sum::<u64>() * 1000);
    }
}
