//! A small number per thread, for data split per thread (the upstream
//! pool, the in-flight list): threads that each use their own part do not
//! contend on one lock or bounce one cache line between cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// This thread's number: 0, 1, 2... in the order threads first ask.
pub fn this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SLOT.with(|s| {
        s.get().unwrap_or_else(|| {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            s.set(Some(n));
            n
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_number_and_threads_get_different_ones() {
        let mine = this_thread();
        assert_eq!(this_thread(), mine);
        let other = std::thread::spawn(this_thread).join().unwrap();
        assert_ne!(other, mine);
    }
}
