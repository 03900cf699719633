//! The access-log writer: records are appended to a bounded in-memory batch
//! (a short uncontended lock, no wake-up per line) that one thread swaps
//! out, formats and writes through a buffered file at least every 200 ms, so
//! a request never waits on the disk. A full queue or a failing disk drops
//! lines and counts them; the proxy goes on. SIGUSR1 asks for the file to
//! be reopened (logrotate's convention).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::format::{line, Format, LogRecord};

/// Records waiting for the writer beyond this many are dropped and counted.
const CAPACITY: usize = 64 * 1024;
/// The writer is woken early once this many records wait.
const WAKE_AT: usize = 4096;
/// The writer wakes at least this often.
const PERIOD: Duration = Duration::from_millis(200);

/// The batch and the counters shared with the writer thread.
#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    reopen: AtomicBool,
    closed: AtomicBool,
    batch: Mutex<Vec<LogRecord>>,
    wake: Condvar,
}

impl Counters {
    fn batch(&self) -> MutexGuard<'_, Vec<LogRecord>> {
        match self.batch.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Handle to the access log; cheap to share.
pub struct AccessLog {
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(Lines, PathBuf),
    Broken(PathBuf),
}

/// Lines gathered for one write to the file. A write that fails part way
/// (a full disk) is cut back to where the file ended, so the log only ever
/// holds whole lines, and the lines lost are exactly those gathered.
struct Lines {
    file: File,
    buf: Vec<u8>,
}

/// Gathered lines are written once they reach this many bytes.
const GATHER: usize = 64 * 1024;

impl Lines {
    fn push(&mut self, line: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(line);
        if self.buf.len() >= GATHER {
            return self.write_out();
        }
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let before = self.file.metadata().map(|m| m.len());
        let result = self.file.write_all(&self.buf);
        self.buf.clear();
        if result.is_err() {
            if let Ok(len) = before {
                // Appends go to the end: cut the torn tail off.
                let _ = self.file.set_len(len);
            }
        }
        result
    }
}

fn open(path: &Path) -> io::Result<Lines> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Lines {
        file,
        buf: Vec::with_capacity(GATHER),
    })
}

impl AccessLog {
    /// Starts the writer for `path` (`-` for stdout); fails if the file
    /// cannot be opened at start (a clear error beats silence).
    pub fn start(path: &Path, format: Format) -> io::Result<AccessLog> {
        let sink = if path == Path::new("-") {
            Sink::Stdout(BufWriter::new(io::stdout()))
        } else {
            Sink::File(open(path)?, path.to_path_buf())
        };
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("cachalot-log".into())
            .spawn(move || run(sink, format, &thread_counters))?;
        Ok(AccessLog {
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a record; never blocks on I/O (a full batch drops it and counts it).
    pub fn log(&self, record: LogRecord) {
        if self.counters.closed.load(Ordering::Relaxed) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut batch = self.counters.batch();
        if batch.len() >= CAPACITY {
            drop(batch);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        batch.push(record);
        if batch.len() == WAKE_AT {
            self.counters.wake.notify_one();
        }
    }

    /// Asks the writer to reopen its file before the next line.
    pub fn reopen(&self) {
        self.counters.reopen.store(true, Ordering::Relaxed);
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Lines dropped (queue full or write failure).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        self.counters.closed.store(true, Ordering::Relaxed);
        self.counters.wake.notify_one();
        let thread = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(mut sink: Sink, format: Format, counters: &Counters) {
    let mut pending = 0u64;
    loop {
        let records = {
            let mut batch = counters.batch();
            if batch.is_empty() && !counters.closed.load(Ordering::Relaxed) {
                batch = match counters.wake.wait_timeout(batch, PERIOD) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            }
            std::mem::take(&mut *batch)
        };
        if counters.reopen.swap(false, Ordering::Relaxed) {
            sink = match sink {
                Sink::File(_, path) | Sink::Broken(path) => reopen(path),
                stdout => stdout,
            };
        }
        for record in &records {
            write(&mut sink, format, record, &mut pending, counters);
        }
        flush(&mut sink, &mut pending, counters);
        if counters.closed.load(Ordering::Relaxed) && counters.batch().is_empty() {
            return;
        }
    }
}

fn write(
    sink: &mut Sink,
    format: Format,
    record: &LogRecord,
    pending: &mut u64,
    counters: &Counters,
) {
    let mut text = line(format, record);
    text.push('\n');
    let ok = match sink {
        Sink::Stdout(w) => w.write_all(text.as_bytes()).is_ok(),
        // Counted as pending: written or dropped as a whole at the flush.
        Sink::File(w, _) => match w.push(text.as_bytes()) {
            Ok(()) => true,
            Err(_) => {
                // The gathered lines before this one are lost with it.
                counters.dropped.fetch_add(*pending, Ordering::Relaxed);
                *pending = 0;
                false
            }
        },
        Sink::Broken(_) => false,
    };
    if ok {
        *pending += 1;
    } else {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

fn reopen(path: PathBuf) -> Sink {
    match open(&path) {
        Ok(w) => Sink::File(w, path),
        Err(e) => {
            tracing::error!("cannot reopen access log {}: {e}", path.display());
            Sink::Broken(path)
        }
    }
}

fn flush(sink: &mut Sink, pending: &mut u64, counters: &Counters) {
    let ok = match sink {
        Sink::Stdout(w) => w.flush().is_ok(),
        Sink::File(w, _) => w.write_out().is_ok(),
        Sink::Broken(_) => true,
    };
    if ok {
        counters.written.fetch_add(*pending, Ordering::Relaxed);
    } else {
        // A full disk: these lines are lost; count them and carry on. The
        // file is reopened at the next SIGUSR1 or retry.
        counters.dropped.fetch_add(*pending, Ordering::Relaxed);
        if let Sink::File(_, path) = sink {
            tracing::warn!("access log write failed; dropping lines until it recovers");
            *sink = Sink::Broken(path.clone());
            counters.reopen.store(true, Ordering::Relaxed);
        }
    }
    *pending = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::time::SystemTime;

    fn record(url: &str) -> LogRecord {
        LogRecord {
            time: SystemTime::now(),
            elapsed: Duration::from_millis(3),
            client: IpAddr::from([127, 0, 0, 1]),
            result: "TCP_MISS",
            aborted: false,
            status: 200,
            bytes: 10,
            method: http::Method::GET,
            url: url.into(),
            version: "HTTP/1.1",
            user: None,
            peer: None,
            via_parent: false,
            content_type: None,
            cache_status: None,
            coalesced: false,
            upstream_time: None,
            dns_time: None,
            bytes_from_origin: 0,
            referer: None,
            user_agent: None,
            error: None,
            tunnel: None,
            reason: None,
        }
    }

    #[test]
    fn lines_reach_the_file_and_reopen_follows_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/access.log");
        let log = AccessLog::start(&path, Format::Squid).unwrap();
        log.log(record("http://a/1"));
        std::thread::sleep(Duration::from_millis(700));
        std::fs::rename(&path, dir.path().join("logs/access.log.1")).unwrap();
        log.reopen();
        log.log(record("http://a/2"));
        log.close();
        let old = std::fs::read_to_string(dir.path().join("logs/access.log.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains("http://a/1") && !old.contains("http://a/2"));
        assert!(new.contains("http://a/2"));
        assert_eq!(log.written(), 2);
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_failing_disk_drops_and_counts_lines() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let log = AccessLog::start(Path::new("/dev/full"), Format::Squid).unwrap();
        for i in 0..10 {
            log.log(record(&format!("http://a/{i}")));
        }
        log.close();
        assert_eq!(log.written(), 0);
        assert_eq!(log.dropped(), 10);
    }
}
