//! The `cachalot stats` report: lines in, counts aggregated, a [`Report`]
//! out. Pure: the caller reads the sources (see `reader`) and feeds lines;
//! `render` turns the report into text or JSON.
//!
//! Per line, nothing is allocated once its result code, content type and
//! domain have been seen: the maps are looked up by `&str` first and only a
//! new key is boxed.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::codes::{self, Class};
use super::line::{self, Entry};
use super::not_stored::{JsonLine, NotStored, Tally};
use super::when;

/// How many malformed line numbers are kept, per source and overall.
pub const MALFORMED_KEPT: usize = 10;

/// Requests and bytes, all and from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub hits: u64,
    pub bytes: u64,
    pub hit_bytes: u64,
}

impl Counts {
    fn add(&mut self, bytes: u64, hit: bool) {
        self.requests += 1;
        self.bytes += bytes;
        if hit {
            self.hits += 1;
            self.hit_bytes += bytes;
        }
    }

    /// Hits / requests; 0 when there are no requests.
    pub fn request_hit_ratio(&self) -> f64 {
        ratio(self.hits, self.requests)
    }

    /// Bytes served from hits / all bytes served; 0 when none were.
    pub fn byte_hit_ratio(&self) -> f64 {
        ratio(self.hit_bytes, self.bytes)
    }
}

/// A fraction in 0..=1, never NaN.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Unix-millisecond bounds: `since` inclusive, `until` exclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeFilter {
    fn keeps(&self, millis: i64) -> bool {
        self.since.is_none_or(|since| millis >= since)
            && self.until.is_none_or(|until| millis < until)
    }
}

/// What was read from one source (a file or stdin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Source {
    pub name: String,
    pub lines: u64,
    pub malformed_lines: u64,
    /// 1-based line numbers in this source, the first [`MALFORMED_KEPT`].
    pub first_malformed_line_numbers: Vec<u64>,
    /// Why the source could not be read to its end; its lines until then
    /// are counted.
    pub error: Option<String>,
}

/// A code's class, decided on its first line, and its counts.
#[derive(Debug, Default)]
struct CodeTally {
    class: Class,
    counts: Counts,
}

/// Per hour: all traffic and cacheable traffic.
#[derive(Debug, Clone, Copy, Default)]
struct HourTally {
    all: Counts,
    cacheable: Counts,
}

/// Feeds on lines; [`Aggregator::finish`] makes the report.
#[derive(Debug, Default)]
pub struct Aggregator {
    filter: TimeFilter,
    sources: Vec<Source>,
    malformed: u64,
    first_malformed: Vec<u64>,
    outside_time_range: u64,
    first_millis: Option<i64>,
    last_millis: Option<i64>,
    all: Counts,
    cacheable: Counts,
    by_code: HashMap<Box<str>, CodeTally>,
    by_type: HashMap<Box<str>, Counts>,
    by_domain: HashMap<Box<str>, Counts>,
    by_hour: BTreeMap<i64, HourTally>,
    /// What JSON lines say was not stored, and why.
    not_stored: Tally,
    /// Reused to lowercase the rare host written with capitals.
    lowercase: String,
}

/// Adds to the value under `key`, boxing the key only when it is new.
pub(super) fn tally<V: Default>(
    map: &mut HashMap<Box<str>, V>,
    key: &str,
    add: impl FnOnce(&mut V),
) {
    if let Some(value) = map.get_mut(key) {
        add(value);
        return;
    }
    let mut value = V::default();
    add(&mut value);
    map.insert(key.into(), value);
}

impl Aggregator {
    pub fn new(filter: TimeFilter) -> Self {
        Aggregator {
            filter,
            ..Aggregator::default()
        }
    }

    /// Starts a new source; line numbers restart at 1.
    pub fn begin_source(&mut self, name: &str) {
        self.sources.push(Source {
            name: name.to_owned(),
            ..Source::default()
        });
    }

    /// Records why the current source stopped early.
    pub fn source_failed(&mut self, error: String) {
        if let Some(source) = self.sources.last_mut() {
            source.error = Some(error);
        }
    }

    /// Counts one line of the current source (line ending optional).
    pub fn line(&mut self, text: &[u8]) {
        if self.sources.is_empty() {
            self.begin_source("-");
        }
        let Some(source) = self.sources.last_mut() else {
            return;
        };
        source.lines += 1;
        let trimmed = text.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            // One of our JSON lines: the same counts, and its `reason`.
            match JsonLine::parse(trimmed) {
                Some(json) => {
                    let entry = json.entry();
                    if self.entry(&entry) {
                        let host = if entry.host.bytes().any(|b| b.is_ascii_uppercase()) {
                            std::borrow::Cow::Owned(entry.host.to_ascii_lowercase())
                        } else {
                            std::borrow::Cow::Borrowed(entry.host)
                        };
                        self.not_stored
                            .line(&host, entry.bytes, json.reason.as_deref());
                    }
                }
                None => self.malformed_line(),
            }
            return;
        }
        match line::parse(text) {
            Some(entry) => {
                self.entry(&entry);
            }
            None => self.malformed_line(),
        }
    }

    fn malformed_line(&mut self) {
        let Some(source) = self.sources.last_mut() else {
            return;
        };
        source.malformed_lines += 1;
        if source.first_malformed_line_numbers.len() < MALFORMED_KEPT {
            source.first_malformed_line_numbers.push(source.lines);
        }
        if self.first_malformed.len() < MALFORMED_KEPT {
            self.first_malformed.push(source.lines);
        }
        self.malformed += 1;
    }

    /// Counts one parsed line; false when it is outside the time filter.
    fn entry(&mut self, entry: &Entry<'_>) -> bool {
        if !self.filter.keeps(entry.millis) {
            self.outside_time_range += 1;
            return false;
        }
        self.first_millis = Some(
            self.first_millis
                .map_or(entry.millis, |t| t.min(entry.millis)),
        );
        self.last_millis = Some(
            self.last_millis
                .map_or(entry.millis, |t| t.max(entry.millis)),
        );

        let mut class = Class::default();
        tally(&mut self.by_code, entry.code, |code| {
            if code.counts.requests == 0 {
                code.class = codes::classify(entry.code);
            }
            class = code.class;
            code.counts.add(entry.bytes, class.hit);
        });
        let (hit, bytes) = (class.hit, entry.bytes);
        let cacheable = class.cacheable && !entry.connect;
        self.all.add(bytes, hit);
        if cacheable {
            self.cacheable.add(bytes, hit);
        }
        tally(&mut self.by_type, entry.content_type, |c| c.add(bytes, hit));
        let host = if entry.host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lowercase.clear();
            self.lowercase.push_str(entry.host);
            self.lowercase.make_ascii_lowercase();
            self.lowercase.as_str()
        } else {
            entry.host
        };
        tally(&mut self.by_domain, host, |c| c.add(bytes, hit));
        let hour = self
            .by_hour
            .entry(entry.millis.div_euclid(3_600_000) * 3600)
            .or_default();
        hour.all.add(bytes, hit);
        if cacheable {
            hour.cacheable.add(bytes, hit);
        }
        true
    }

    /// The report, with the `top` busiest domains by requests and by bytes.
    pub fn finish(self, top: usize) -> Report {
        let mut by_code: Vec<CodeRow> = self
            .by_code
            .into_iter()
            .map(|(code, tally)| CodeRow {
                code: code.into(),
                hit: tally.class.hit,
                cacheable: tally.class.cacheable,
                requests: tally.counts.requests,
                bytes: tally.counts.bytes,
                share_of_requests: ratio(tally.counts.requests, self.all.requests),
            })
            .collect();
        by_code.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.code.cmp(&b.code))
        });
        let rows = |map: HashMap<Box<str>, Counts>| -> Vec<Row> {
            map.into_iter()
                .map(|(key, counts)| Row::new(key.into(), counts))
                .collect()
        };
        let mut by_type = rows(self.by_type);
        by_type.sort_by(|a, b| {
            b.requests()
                .cmp(&a.requests())
                .then_with(|| a.key.cmp(&b.key))
        });
        let mut domains = rows(self.by_domain);
        let domain_count = domains.len();
        domains.sort_by(|a, b| {
            b.requests()
                .cmp(&a.requests())
                .then_with(|| a.key.cmp(&b.key))
        });
        let top_domains_by_requests = domains.iter().take(top).cloned().collect();
        domains.sort_by(|a, b| b.bytes().cmp(&a.bytes()).then_with(|| a.key.cmp(&b.key)));
        domains.truncate(top);
        let per_hour = self
            .by_hour
            .into_iter()
            .map(|(start, tally)| HourRow {
                hour: when::format_hour(start),
                start,
                all: Ratios::new(tally.all),
                cacheable: Ratios::new(tally.cacheable),
            })
            .collect();
        Report {
            requests: self.all.requests,
            request_hit_ratio: self.all.request_hit_ratio(),
            byte_hit_ratio: self.all.byte_hit_ratio(),
            bytes: self.all.bytes,
            bandwidth_saved_bytes: self.all.hit_bytes,
            hits: self.all.hits,
            cacheable: Ratios::new(self.cacheable),
            lines: self.sources.iter().map(|s| s.lines).sum(),
            malformed_lines: self.malformed,
            first_malformed_line_numbers: self.first_malformed,
            outside_time_range: self.outside_time_range,
            since: self.filter.since.map(when::format_millis),
            until: self.filter.until.map(when::format_millis),
            first_time: self.first_millis.map(when::format_millis),
            last_time: self.last_millis.map(when::format_millis),
            hit_codes: codes::HIT_CODES.to_vec(),
            ignored_code_modifiers: codes::IGNORED_MODIFIERS.to_vec(),
            not_cacheable_codes: codes::NOT_CACHEABLE_CODES.to_vec(),
            denominators: Denominators {
                all: codes::ALL_TRAFFIC,
                cacheable: codes::CACHEABLE_TRAFFIC,
            },
            by_code,
            by_type,
            domains: domain_count,
            top_domains_by_requests,
            top_domains_by_bytes: domains,
            per_hour,
            not_stored: self.not_stored.finish(top),
            sources: self.sources,
        }
    }
}

/// Counts with their two ratios, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratios {
    #[serde(flatten)]
    pub counts: Counts,
    pub request_hit_ratio: f64,
    pub byte_hit_ratio: f64,
}

impl Ratios {
    fn new(counts: Counts) -> Self {
        Ratios {
            counts,
            request_hit_ratio: counts.request_hit_ratio(),
            byte_hit_ratio: counts.byte_hit_ratio(),
        }
    }
}

/// One content type or domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    #[serde(rename = "name")]
    pub key: String,
    #[serde(flatten)]
    pub ratios: Ratios,
}

impl Row {
    fn new(key: String, counts: Counts) -> Self {
        Row {
            key,
            ratios: Ratios::new(counts),
        }
    }

    fn requests(&self) -> u64 {
        self.ratios.counts.requests
    }

    fn bytes(&self) -> u64 {
        self.ratios.counts.bytes
    }
}

/// One result code as logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeRow {
    pub code: String,
    pub hit: bool,
    pub cacheable: bool,
    pub requests: u64,
    pub bytes: u64,
    pub share_of_requests: f64,
}

/// One UTC hour that has lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    /// `2024-11-24T18:00:00Z`
    pub hour: String,
    /// The same, in Unix seconds.
    pub start: i64,
    #[serde(flatten)]
    pub all: Ratios,
    pub cacheable: Ratios,
}

/// Which lines each ratio is over, in words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denominators {
    pub all: &'static str,
    pub cacheable: &'static str,
}

/// Everything `cachalot stats` prints. Ratios are fractions in 0..=1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub requests: u64,
    pub request_hit_ratio: f64,
    pub byte_hit_ratio: f64,
    pub bytes: u64,
    /// Bytes served from hits.
    pub bandwidth_saved_bytes: u64,
    pub hits: u64,
    pub cacheable: Ratios,
    pub lines: u64,
    pub malformed_lines: u64,
    /// 1-based, each in its own source (see `sources` when there are several).
    pub first_malformed_line_numbers: Vec<u64>,
    pub outside_time_range: u64,
    pub since: Option<String>,
    pub until: Option<String>,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub hit_codes: Vec<&'static str>,
    pub ignored_code_modifiers: Vec<&'static str>,
    pub not_cacheable_codes: Vec<&'static str>,
    pub denominators: Denominators,
    pub by_code: Vec<CodeRow>,
    pub by_type: Vec<Row>,
    /// How many distinct domains there were.
    pub domains: usize,
    pub top_domains_by_requests: Vec<Row>,
    pub top_domains_by_bytes: Vec<Row>,
    pub per_hour: Vec<HourRow>,
    /// Why responses were not stored, from JSON lines' `reason`.
    pub not_stored: NotStored,
    pub sources: Vec<Source>,
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
