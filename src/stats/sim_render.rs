//! Renders a `cachalot stats --simulate` run as a table for people or JSON
//! for machines. Pure: the outcome in, a string out.

use std::fmt::Write;

use serde::Serialize;

use super::render::{human, pct, wrap};
use super::report::{ratio, Source};
use super::sim_input::{ReplayCounts, ASSUMPTIONS};
use super::simulate::{Hits, Outcome};
use super::when;

/// Hits with their ratios over all requests and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratios {
    pub hits: u64,
    pub hit_bytes: u64,
    pub request_hit_ratio: f64,
    pub byte_hit_ratio: f64,
}

impl Ratios {
    fn new(hits: Hits, outcome: &Outcome) -> Ratios {
        Ratios {
            hits: hits.requests,
            hit_bytes: hits.bytes,
            request_hit_ratio: ratio(hits.requests, outcome.requests),
            byte_hit_ratio: ratio(hits.bytes, outcome.bytes),
        }
    }
}

/// One simulated cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulated {
    /// Its size in bytes; null for the unbounded cache.
    pub size: Option<u64>,
    pub lower: Ratios,
    pub upper: Ratios,
    pub evictions: u64,
    /// Bytes held when the log ended.
    pub filled_bytes: u64,
}

/// Everything `--simulate` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    pub lines: u64,
    pub json_lines: u64,
    pub malformed_lines: u64,
    pub outside_time_range: u64,
    pub first_time: Option<String>,
    pub last_time: Option<String>,
    pub requests: u64,
    pub bytes: u64,
    /// Requests a cache could have served (or stored).
    pub cacheable_requests: u64,
    pub distinct_urls: u64,
    /// Of them, URLs the log shows cacheable.
    pub confirmed_urls: u64,
    /// What the log itself shows.
    pub logged: Ratios,
    /// The sizes asked for, in order, then the unbounded cache.
    pub simulated: Vec<Simulated>,
    pub assumptions: &'static [&'static str],
    pub sources: Vec<Source>,
}

impl SimReport {
    pub fn new(outcome: &Outcome, counts: ReplayCounts) -> SimReport {
        SimReport {
            lines: counts.lines,
            json_lines: counts.json_lines,
            malformed_lines: counts.malformed,
            outside_time_range: counts.outside_time_range,
            first_time: counts.first_millis.map(when::format_millis),
            last_time: counts.last_millis.map(when::format_millis),
            requests: outcome.requests,
            bytes: outcome.bytes,
            cacheable_requests: outcome.cacheable_requests,
            distinct_urls: outcome.distinct_urls,
            confirmed_urls: outcome.confirmed_urls,
            logged: Ratios::new(outcome.logged_hits, outcome),
            simulated: outcome
                .predictions
                .iter()
                .map(|p| Simulated {
                    size: p.capacity,
                    lower: Ratios::new(p.lower, outcome),
                    upper: Ratios::new(p.upper, outcome),
                    evictions: p.evictions,
                    filled_bytes: p.used,
                })
                .collect(),
            assumptions: ASSUMPTIONS,
            sources: counts.sources,
        }
    }
}

/// Pretty-printed JSON, ending with a newline.
pub fn json(report: &SimReport) -> Result<String, String> {
    serde_json::to_string_pretty(report)
        .map(|text| text + "\n")
        .map_err(|e| format!("cannot render JSON: {e}"))
}

/// The table and its assumptions.
pub fn text(report: &SimReport) -> String {
    let mut out = String::with_capacity(4096);
    // Writing to a String cannot fail.
    let _ = write_text(&mut out, report);
    out
}

fn write_text(out: &mut String, r: &SimReport) -> std::fmt::Result {
    let sources = r.sources.len();
    writeln!(
        out,
        "cachalot stats --simulate: {sources} source{}, {} lines ({} JSON), {} malformed, {} \
         outside --since/--until",
        if sources == 1 { "" } else { "s" },
        r.lines,
        r.json_lines,
        r.malformed_lines,
        r.outside_time_range,
    )?;
    if let (Some(first), Some(last)) = (&r.first_time, &r.last_time) {
        writeln!(out, "lines from {first} to {last}")?;
    }
    writeln!(
        out,
        "{} requests ({}), {} a cache could serve; {} distinct URLs stored, {} of them shown \
         cacheable by the log",
        r.requests,
        human(r.bytes),
        r.cacheable_requests,
        r.distinct_urls,
        r.confirmed_urls,
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "  {:<14} {:>21}  {:>21}",
        "", "request hit ratio", "byte hit ratio"
    )?;
    writeln!(
        out,
        "  {:<14} {:>10} {:>10}  {:>10} {:>10}  {:>10}  {:>10}",
        "cache size", "lower", "upper", "lower", "upper", "evictions", "filled"
    )?;
    writeln!(
        out,
        "  {:<14} {:>10} {:>10}  {:>10}",
        "in the log",
        pct(r.logged.request_hit_ratio),
        "",
        pct(r.logged.byte_hit_ratio),
    )?;
    for s in &r.simulated {
        let size = s.size.map_or("unbounded".to_owned(), human);
        writeln!(
            out,
            "  {:<14} {:>10} {:>10}  {:>10} {:>10}  {:>10}  {:>10}",
            size,
            pct(s.lower.request_hit_ratio),
            pct(s.upper.request_hit_ratio),
            pct(s.lower.byte_hit_ratio),
            pct(s.upper.byte_hit_ratio),
            s.evictions,
            human(s.filled_bytes),
        )?;
    }
    writeln!(out, "\nassumptions:")?;
    for assumption in r.assumptions {
        out.push_str("- ");
        wrap(out, assumption)?;
    }
    super::render::sources_footer(out, r.malformed_lines, &r.sources, "replayed")
}
