//! What the client socket really took: one `Wire` per client connection
//! counts the bytes written to the socket, and a response whose body is done
//! waits on it until those bytes are out (its log line is written then, as
//! Squid does) or the client went away (`_ABORTED`, with what it got).
//!
//! hyper writes an HTTP/1 connection's responses one after the other and
//! calls the socket's flush only once its own write buffer is empty, so the
//! first successful flush after a body has ended is the moment that
//! response's last byte was written; the bytes written since the previous
//! response was delivered are this response's, head and framing included.
//! The socket wrapper (`server::conn::ClientIo`) feeds it; no tokio here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How one response went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Bytes written to the client socket for this response.
    pub bytes: u64,
    /// The whole response reached the socket.
    pub complete: bool,
}

/// Called once, when a response has been delivered or given up on.
pub type Report = Box<dyn FnOnce(Delivered) + Send>;

/// The write side of one client connection.
#[derive(Default)]
pub struct Wire {
    /// Bytes written to the socket since the connection opened.
    written: AtomicU64,
    /// `written` when the current response began (the previous one was delivered).
    mark: AtomicU64,
    /// A response whose body is done, waiting for its bytes to be flushed.
    pending: Mutex<Option<(Report, bool)>>,
    /// `pending` is set: lets a flush skip the lock in the common case.
    has_pending: AtomicBool,
    /// The socket is gone: a body finishing now was not delivered.
    closed: AtomicBool,
}

impl Wire {
    pub fn new() -> Arc<Wire> {
        Arc::new(Wire::default())
    }

    fn slot(&self) -> MutexGuard<'_, Option<(Report, bool)>> {
        match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The socket accepted `n` bytes.
    pub fn wrote(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes written to the socket so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Takes the bytes written since the last delivery.
    fn take_bytes(&self) -> u64 {
        let now = self.written.load(Ordering::Relaxed);
        now.saturating_sub(self.mark.swap(now, Ordering::Relaxed))
    }

    /// A response's body has been handed over completely (`complete`) or
    /// abandoned; `report` runs once its bytes are out or the client left.
    pub fn body_done(&self, complete: bool, report: Report) {
        if self.closed.load(Ordering::Relaxed) {
            report(Delivered {
                bytes: self.take_bytes(),
                complete: false,
            });
            return;
        }
        let earlier = {
            let mut slot = self.slot();
            let earlier = slot.take();
            *slot = Some((report, complete));
            self.has_pending.store(true, Ordering::Release);
            earlier
        };
        // Two bodiless pipelined answers done before one flush: the bytes
        // cannot be told apart, the first gets what was written so far.
        if let Some((report, complete)) = earlier {
            report(Delivered {
                bytes: self.take_bytes(),
                complete,
            });
        }
    }

    /// The socket was flushed with nothing left in hyper's buffer: a
    /// response waiting for that is delivered.
    pub fn flushed(&self) {
        if !self.has_pending.load(Ordering::Acquire) {
            return;
        }
        self.finish_pending(None);
    }

    /// The socket is closed (or handed back while idle): a response still
    /// waiting did not reach the client whole.
    pub fn closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.finish_pending(Some(false));
    }

    /// A new stretch of serving on the same socket (after parking).
    pub fn reopened(&self) {
        self.closed.store(false, Ordering::Relaxed);
    }

    fn finish_pending(&self, complete: Option<bool>) {
        let taken = {
            let mut slot = self.slot();
            self.has_pending.store(false, Ordering::Release);
            slot.take()
        };
        if let Some((report, done)) = taken {
            report(Delivered {
                bytes: self.take_bytes(),
                complete: complete.unwrap_or(done),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Arc<Mutex<Vec<Delivered>>>, impl Fn() -> Report) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let make = move || -> Report {
            let s = s.clone();
            Box::new(move |d| s.lock().unwrap().push(d))
        };
        (seen, make)
    }

    #[test]
    fn a_response_is_delivered_at_the_flush_after_its_body() {
        let (seen, report) = recorder();
        let wire = Wire::new();
        wire.wrote(100);
        wire.flushed();
        wire.body_done(true, report());
        assert!(seen.lock().unwrap().is_empty(), "not out yet");
        wire.wrote(50);
        wire.flushed();
        wire.wrote(30);
        wire.body_done(true, report());
        wire.flushed();
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Delivered {
                    bytes: 150,
                    complete: true
                },
                Delivered {
                    bytes: 30,
                    complete: true
                }
            ]
        );
    }

    #[test]
    fn a_close_before_the_flush_is_an_abort_with_what_was_written() {
        let (seen, report) = recorder();
        let wire = Wire::new();
        wire.wrote(1000);
        wire.body_done(true, report());
        wire.closed();
        wire.body_done(true, report());
        assert_eq!(
            *seen.lock().unwrap(),
            [
                Delivered {
                    bytes: 1000,
                    complete: false
                },
                Delivered {
                    bytes: 0,
                    complete: false
                }
            ]
        );
    }
}
