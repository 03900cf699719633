//! Whether the disk tier takes writes. A failed write (a full disk, an I/O
//! error) turns writing off: it is said once in the log, shown in
//! `/metrics`, and tried again after [`RETRY`]; reads, memory hits and
//! pass-through go on meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long writing stays off after a failure before it is tried again.
pub const RETRY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct DiskHealth {
    off: AtomicBool,
    since: Mutex<Option<Instant>>,
    errors: AtomicU64,
    retry: Duration,
}

impl Default for DiskHealth {
    fn default() -> DiskHealth {
        DiskHealth::with_retry(RETRY)
    }
}

impl DiskHealth {
    /// A health that retries after `retry` (tests shorten it).
    pub fn with_retry(retry: Duration) -> DiskHealth {
        DiskHealth {
            off: AtomicBool::new(false),
            since: Mutex::new(None),
            errors: AtomicU64::new(0),
            retry,
        }
    }

    /// A tier that is off from the start (it could not be opened).
    pub fn failed_at_start() -> DiskHealth {
        let health = DiskHealth::default();
        health.off.store(true, Ordering::Relaxed);
        health
    }

    /// May a new write be started now? After [`RETRY`], one is let through.
    pub fn writable(&self) -> bool {
        if !self.off.load(Ordering::Relaxed) {
            return true;
        }
        let mut since = match self.since.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match *since {
            Some(at) if at.elapsed() >= self.retry => {
                // Let writes through again; the next failure turns them off.
                *since = None;
                self.off.store(false, Ordering::Relaxed);
                tracing::info!("disk cache: trying writes again");
                true
            }
            _ => false,
        }
    }

    /// True while writes are off.
    pub fn is_off(&self) -> bool {
        self.off.load(Ordering::Relaxed)
    }

    /// A write failed: writing goes off (said once per outage).
    pub fn failed(&self, what: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut since = match self.since.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if !self.off.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "disk cache write failed: {what}; writes to the disk tier are off for {:?} \
                 (reads, memory hits and pass-through go on; failures are counted in \
                 cachalot_cache_disk_write_errors_total)",
                self.retry
            );
        }
        *since = Some(Instant::now());
    }

    /// Writes that failed so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_turns_writes_off_until_the_retry_time() {
        let health = DiskHealth::with_retry(Duration::from_millis(50));
        assert!(health.writable());
        health.failed(&"no space left on device");
        health.failed(&"no space left on device");
        assert!(!health.writable());
        assert_eq!(health.errors(), 2);
        std::thread::sleep(Duration::from_millis(60));
        assert!(health.writable(), "tried again after the retry time");
        assert!(!health.is_off());
    }
}
