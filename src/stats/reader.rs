//! Reading access logs for `cachalot stats`: a file or stdin, plain or gzip
//! (told apart by the gzip magic bytes, never by the name), line by line
//! into one reused buffer, fed to a pure `sink::Sink` (the report's
//! `Aggregator`, or the `--simulate` replay). Draws a
//! progress line on stderr when it is a terminal.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;

use super::sink::Sink;

/// Read buffer: large, so that the per-line cost is the parsing.
const BUFFER: usize = 256 * 1024;
/// The first two bytes of every gzip member (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The progress line is considered every this many lines (a power of two).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Reads every line of `raw` into `aggregator`. `size` is the length of
/// the raw input when known, for the progress percentage. On an error the
/// lines read until then stay counted.
pub fn read_into<R: Read, S: Sink + ?Sized>(
    raw: R,
    size: Option<u64>,
    name: &str,
    aggregator: &mut S,
    progress: &mut Progress,
) -> io::Result<()> {
    let consumed = Rc::new(Cell::new(0));
    let mut input = open(Counting {
        inner: raw,
        count: Rc::clone(&consumed),
    })?;
    let mut line = Vec::with_capacity(4096);
    let mut lines: u64 = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        aggregator.line(&line);
        lines += 1;
        if lines % PROGRESS_EVERY == 0 {
            progress.update(name, lines, consumed.get(), size);
        }
    }
}

/// Plain or gunzipped, by the first two bytes. Concatenated gzip members
/// (as `cat a.gz b.gz` makes) are read through.
fn open<'a, R: Read + 'a>(mut raw: R) -> io::Result<Box<dyn BufRead + 'a>> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match raw.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(magic).take(got as u64).chain(raw);
    if got == magic.len() && magic == GZIP_MAGIC {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(whole),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(BUFFER, whole)))
    }
}

/// Counts the raw bytes read, for the progress percentage of gzip files.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A one-line progress report on stderr, redrawn at most five times a
/// second; off unless stderr is a terminal, so pipes and logs stay clean.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    /// On when stderr is a terminal.
    pub fn on_terminal() -> Self {
        Progress::new(io::stderr().is_terminal())
    }

    pub fn new(enabled: bool) -> Self {
        let now = Instant::now();
        // The first draw waits like the others: a quick run draws nothing.
        Progress {
            enabled,
            started: now,
            last: now,
            drawn: false,
        }
    }

    fn update(&mut self, name: &str, lines: u64, consumed: u64, size: Option<u64>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last) < Duration::from_millis(200) {
            return;
        }
        self.last = now;
        let share = match size {
            Some(size) if size > 0 => format!(" {:>3}%", consumed.saturating_mul(100) / size),
            _ => String::new(),
        };
        let mut stderr = io::stderr().lock();
        // A lost progress line is not worth an error.
        let _ = write!(
            stderr,
            "\r\x1b[2K{name}{share}  {lines} lines  {} MiB read  {:.0?}",
            consumed >> 20,
            self.started.elapsed(),
        );
        let _ = stderr.flush();
        self.drawn = true;
    }

    /// Erases the progress line, if one was drawn.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut stderr = io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::report::{Aggregator, TimeFilter};
    use flate2::write::GzEncoder;
    use flate2::Compression;

    const LOG: &str = "\
1732471200.000 1 c TCP_MEM_HIT/200 300 GET http://a.example/x - HIER_NONE/- text/html
1732471201.000 1 c TCP_MISS/200 100 GET http://b.example/y - HIER_DIRECT/1.2.3.4 text/html
garbage
";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn read(input: &[u8]) -> (io::Result<()>, crate::stats::report::Report) {
        let mut aggregator = Aggregator::new(TimeFilter::default());
        aggregator.begin_source("test");
        let result = read_into(
            input,
            None,
            "test",
            &mut aggregator,
            &mut Progress::new(false),
        );
        (result, aggregator.finish(10))
    }

    #[test]
    fn plain_and_gzip_give_the_same_report() {
        let (plain_result, plain) = read(LOG.as_bytes());
        let (gzip_result, gzipped) = read(&gzip(LOG.as_bytes()));
        assert!(plain_result.is_ok() && gzip_result.is_ok());
        assert_eq!(plain.requests, 2);
        assert_eq!(plain.malformed_lines, 1);
        assert_eq!(plain.first_malformed_line_numbers, vec![3]);
        assert_eq!(plain.request_hit_ratio, 0.5);
        assert_eq!(plain.byte_hit_ratio, 0.75);
        assert_eq!(plain, gzipped);
    }

    #[test]
    fn concatenated_gzip_members_are_all_read() {
        let mut data = gzip(LOG.as_bytes());
        data.extend(gzip(LOG.as_bytes()));
        let (result, report) = read(&data);
        assert!(result.is_ok());
        assert_eq!(report.requests, 4);
        assert_eq!(report.first_malformed_line_numbers, vec![3, 6]);
    }

    #[test]
    fn a_last_line_without_newline_counts_and_tiny_inputs_are_plain() {
        let (_, report) = read(LOG.trim_end().as_bytes());
        assert_eq!(report.lines, 3);
        let (result, report) = read(b"\x1f");
        assert!(result.is_ok());
        assert_eq!(report.malformed_lines, 1);
        let (result, report) = read(b"");
        assert!(result.is_ok());
        assert_eq!(report.lines, 0);
    }

    #[test]
    fn truncated_gzip_is_an_error_after_counting_what_was_read() {
        let big = LOG.repeat(2000);
        let data = gzip(big.as_bytes());
        let (result, report) = read(&data[..data.len() / 2]);
        assert!(result.is_err());
        assert!(report.lines > 0 && report.lines < 6000);
    }
}
