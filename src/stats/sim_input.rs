//! The log lines of `cachalot stats --simulate`, turned into the requests
//! the LRU replay (`simulate`) sees: which lines a cache could have served
//! or stored, and how big each object is. Reads Squid-native lines (through
//! `line`) and our JSON lines (one object per line, told apart by the `{`).
//! Pure.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::codes::{self, Class};
use super::line;
use super::report::{Source, TimeFilter, MALFORMED_KEPT};
use super::simulate::{Kind, Outcome, Request, Simulation};
use super::sink::Sink;

/// Statuses a cache may store without explicit freshness (RFC 9110
/// §15.1's heuristically cacheable list, 206 aside).
pub const STORABLE_STATUSES: &[u16] = &[200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// The rules, in words, printed with every simulation.
pub const ASSUMPTIONS: &[&str] = &[
    "each simulated cache is one LRU of that many bytes (no per-object limit besides the \
     cache's size, no expiry: a stored object is served until evicted); objects are keyed by \
     the URL as logged; an object's size is the bytes logged for its last complete answer \
     (headers included)",
    "a GET line stores its object when the status is storable (200, 203, 204, 300, 301, 308, \
     404, 405, 410, 414, 501); HEAD lines and 304 or 206 answers are served when the object \
     is stored but store nothing; CONNECT, tunnels, refusals, errors (the codes that are not \
     cacheable traffic in the main report) and other methods are never served from a cache",
    "cacheable URLs: a JSON line with a `reason` (why it was not stored) is not cacheable; a \
     line the log shows as a hit, or a complete JSON forward without a `reason`, shows its \
     URL cacheable; otherwise (Squid-native lines) a \
     miss may or may not have been cacheable: `lower` counts hits only on URLs the log shows \
     cacheable at some point (a URL that was ever a hit was cacheable), `upper` counts every \
     stored line as cacheable; both are ratios over all requests and all bytes",
    "unbounded: a cache with no size limit, for the misses no size can avoid (first requests \
     of each URL)",
];

/// One JSON access-log line: the fields the simulation reads.
#[derive(Debug, Deserialize)]
struct JsonLine<'a> {
    time: f64,
    #[serde(borrow)]
    result: Cow<'a, str>,
    status: u16,
    bytes: u64,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(default, borrow)]
    cache_status: Option<Cow<'a, str>>,
    /// Why the response was not stored (item "why not cached"), when logged.
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
}

/// What a JSON line says about storing, beyond its result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// It says nothing (a Squid line, or no Cache-Status).
    Unknown,
    Yes,
    No,
}

/// The simulation's side of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    pub millis: i64,
    pub code: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub method: &'a str,
    pub url: &'a str,
    stored: Stored,
}

/// Classifies one line, given its code's class (see `codes`).
pub fn request<'a>(facts: &Facts<'a>, class: Class) -> Request<'a> {
    let aborted = facts.code.ends_with("_ABORTED");
    let get = facts.method == "GET";
    let partial = matches!(facts.status, 206 | 304);
    let kind = if !class.cacheable || !(get || facts.method == "HEAD") {
        Kind::Pass
    } else if facts.stored == Stored::No && !class.hit {
        // Told not stored: served from the cache only as a HEAD would be.
        Kind::LookUp { confirmed: false }
    } else {
        let confirmed = class.hit || facts.stored == Stored::Yes;
        if get && !partial && (class.hit || STORABLE_STATUSES.contains(&facts.status)) {
            Kind::Store { confirmed }
        } else if get && !partial {
            Kind::Pass
        } else {
            Kind::LookUp { confirmed }
        }
    };
    let complete = get && !partial && !aborted;
    Request {
        url: facts.url,
        bytes: facts.bytes,
        object_size: complete.then_some(facts.bytes),
        kind,
        logged_hit: class.hit,
    }
}

/// The last member of a Cache-Status list is ours (RFC 9211 §2: each cache
/// appends its own). For a JSON line without a `reason`, a complete forward
/// was stored (older versions also said `stored`, RFC 9211 §2.5); the
/// proxy's own answers (no `fwd`) were not.
fn stored_of(cache_status: &str) -> Stored {
    let ours = cache_status.rsplit(',').next().unwrap_or("");
    let mut params = ours.split(';').skip(1).map(str::trim);
    if params.clone().any(|p| p == "hit") {
        Stored::Unknown
    } else if params.any(|p| p == "stored" || p.starts_with("stored=") || p.starts_with("fwd=")) {
        Stored::Yes
    } else {
        Stored::No
    }
}

/// Feeds a [`Simulation`] from log lines, keeping the report's accounting
/// of sources, malformed lines and the time filter.
#[derive(Debug)]
pub struct Replay {
    simulation: Simulation,
    filter: TimeFilter,
    /// Result code classes, decided once per code.
    classes: HashMap<Box<str>, Class>,
    pub sources: Vec<Source>,
    pub malformed: u64,
    pub outside_time_range: u64,
    pub json_lines: u64,
    pub first_millis: Option<i64>,
    pub last_millis: Option<i64>,
}

impl Replay {
    pub fn new(capacities: &[u64], filter: TimeFilter) -> Replay {
        Replay {
            simulation: Simulation::new(capacities),
            filter,
            classes: HashMap::new(),
            sources: Vec::new(),
            malformed: 0,
            outside_time_range: 0,
            json_lines: 0,
            first_millis: None,
            last_millis: None,
        }
    }

    pub fn finish(self) -> (Outcome, ReplayCounts) {
        let counts = ReplayCounts {
            lines: self.sources.iter().map(|s| s.lines).sum(),
            malformed: self.malformed,
            outside_time_range: self.outside_time_range,
            json_lines: self.json_lines,
            first_millis: self.first_millis,
            last_millis: self.last_millis,
            sources: self.sources,
        };
        (self.simulation.finish(), counts)
    }

    fn class(&mut self, code: &str) -> Class {
        if let Some(class) = self.classes.get(code) {
            return *class;
        }
        let class = codes::classify(code);
        self.classes.insert(code.into(), class);
        class
    }

    fn replay(&mut self, facts: &Facts<'_>) {
        if !(self.filter.since.is_none_or(|s| facts.millis >= s)
            && self.filter.until.is_none_or(|u| facts.millis < u))
        {
            self.outside_time_range += 1;
            return;
        }
        self.first_millis = Some(
            self.first_millis
                .map_or(facts.millis, |t| t.min(facts.millis)),
        );
        self.last_millis = Some(
            self.last_millis
                .map_or(facts.millis, |t| t.max(facts.millis)),
        );
        let class = self.class(facts.code);
        self.simulation.request(&request(facts, class));
    }

    fn malformed_line(&mut self) {
        if let Some(source) = self.sources.last_mut() {
            source.malformed_lines += 1;
            if source.first_malformed_line_numbers.len() < MALFORMED_KEPT {
                source.first_malformed_line_numbers.push(source.lines);
            }
        }
        self.malformed += 1;
    }
}

/// The reading side of a replay, for the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayCounts {
    pub lines: u64,
    pub malformed: u64,
    pub outside_time_range: u64,
    pub json_lines: u64,
    pub first_millis: Option<i64>,
    pub last_millis: Option<i64>,
    pub sources: Vec<Source>,
}

impl Sink for Replay {
    fn begin_source(&mut self, name: &str) {
        self.sources.push(Source {
            name: name.to_owned(),
            ..Source::default()
        });
    }

    fn line(&mut self, text: &[u8]) {
        if self.sources.is_empty() {
            self.begin_source("-");
        }
        if let Some(source) = self.sources.last_mut() {
            source.lines += 1;
        }
        let trimmed = text.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            let Ok(json) = serde_json::from_slice::<JsonLine<'_>>(trimmed) else {
                self.malformed_line();
                return;
            };
            self.json_lines += 1;
            let stored = if json.reason.is_some() {
                Stored::No
            } else if json.result.ends_with("_ABORTED") {
                Stored::Unknown
            } else {
                json.cache_status
                    .as_deref()
                    .map_or(Stored::Unknown, stored_of)
            };
            let facts = Facts {
                millis: (json.time * 1000.0) as i64,
                code: &json.result,
                status: json.status,
                bytes: json.bytes,
                method: &json.method,
                url: &json.url,
                stored,
            };
            self.replay(&facts);
            return;
        }
        let Some(entry) = line::parse(text) else {
            self.malformed_line();
            return;
        };
        let facts = Facts {
            millis: entry.millis,
            code: entry.code,
            status: entry.status,
            bytes: entry.bytes,
            method: entry.method,
            url: entry.url,
            stored: Stored::Unknown,
        };
        self.replay(&facts);
    }

    fn source_failed(&mut self, error: String) {
        if let Some(source) = self.sources.last_mut() {
            source.error = Some(error);
        }
    }
}

#[cfg(test)]
#[path = "sim_input_tests.rs"]
mod tests;
