//! "Why wasn't it cached?" in `cachalot stats`: our JSON access-log lines
//! (one object per line, told apart by the `{`) read into the report's
//! `line::Entry`, and the requests and bytes whose `reason` says they were
//! not stored, tallied per reason and per domain. Squid-native lines carry
//! no reason and are not counted here. Pure.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::line::{self, Entry};
use super::report::{ratio, tally};

/// One JSON access-log line: the fields the report reads.
#[derive(Debug, Deserialize)]
pub struct JsonLine<'a> {
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
    content_type: Option<Cow<'a, str>>,
    /// Why the response was not stored (`NotStorable::as_str`), when it was not.
    #[serde(default, borrow)]
    pub reason: Option<Cow<'a, str>>,
}

impl<'a> JsonLine<'a> {
    /// Parses a line that starts with `{`. None: not one of our JSON lines.
    pub fn parse(text: &'a [u8]) -> Option<JsonLine<'a>> {
        serde_json::from_slice(text).ok()
    }

    /// The line as the report's entry, borrowing from `self`.
    pub fn entry(&self) -> Entry<'_> {
        let connect = self.method == "CONNECT";
        let content_type = self.content_type.as_deref().unwrap_or("-");
        Entry {
            millis: (self.time * 1000.0) as i64,
            code: &self.result,
            status: self.status,
            bytes: self.bytes,
            connect,
            method: &self.method,
            url: &self.url,
            host: line::host_of_str(&self.url, connect),
            content_type: line::media_type_str(content_type),
        }
    }
}

/// Requests and bytes not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lost {
    pub requests: u64,
    pub bytes: u64,
}

impl Lost {
    fn add(&mut self, bytes: u64) {
        self.requests += 1;
        self.bytes += bytes;
    }
}

/// The tallies, fed one line at a time.
#[derive(Debug, Default)]
pub struct Tally {
    /// JSON lines seen (whether they had a reason or not).
    json_lines: u64,
    all: Lost,
    by_reason: HashMap<Box<str>, Lost>,
    /// Per domain, per reason.
    by_domain: HashMap<Box<str>, HashMap<Box<str>, Lost>>,
}

impl Tally {
    /// Counts one JSON line of `host` (lowercased) with its `reason`.
    pub fn line(&mut self, host: &str, bytes: u64, reason: Option<&str>) {
        self.json_lines += 1;
        let Some(reason) = reason else {
            return;
        };
        self.all.add(bytes);
        tally(&mut self.by_reason, reason, |l| l.add(bytes));
        tally(&mut self.by_domain, host, |reasons| {
            tally(reasons, reason, |l| l.add(bytes));
        });
    }

    /// The report's section, with the `top` domains by bytes not stored.
    pub fn finish(self, top: usize) -> NotStored {
        let total = self.all;
        let mut domains_of: HashMap<&str, usize> = HashMap::new();
        for reasons in self.by_domain.values() {
            for reason in reasons.keys() {
                *domains_of.entry(reason).or_default() += 1;
            }
        }
        let mut by_reason: Vec<ReasonRow> = self
            .by_reason
            .iter()
            .map(|(reason, lost)| ReasonRow {
                reason: reason.to_string(),
                requests: lost.requests,
                bytes: lost.bytes,
                share_of_bytes: ratio(lost.bytes, total.bytes),
                share_of_requests: ratio(lost.requests, total.requests),
                domains: domains_of.get(&**reason).copied().unwrap_or(0),
            })
            .collect();
        by_reason.sort_by(|a, b| {
            (b.bytes, b.requests)
                .cmp(&(a.bytes, a.requests))
                .then_with(|| a.reason.cmp(&b.reason))
        });
        let domain_count = self.by_domain.len();
        let mut domains: Vec<DomainRow> = self
            .by_domain
            .iter()
            .map(|(domain, reasons)| {
                let mut lost = Lost::default();
                for l in reasons.values() {
                    lost.requests += l.requests;
                    lost.bytes += l.bytes;
                }
                let (main_reason, main) = reasons
                    .iter()
                    .max_by(|a, b| (a.1.bytes, b.0).cmp(&(b.1.bytes, a.0)))
                    .map(|(r, l)| (r.to_string(), *l))
                    .unwrap_or_default();
                DomainRow {
                    domain: domain.to_string(),
                    requests: lost.requests,
                    bytes: lost.bytes,
                    share_of_bytes: ratio(lost.bytes, total.bytes),
                    main_reason,
                    main_reason_bytes: main.bytes,
                }
            })
            .collect();
        domains.sort_by(|a, b| {
            (b.bytes, b.requests)
                .cmp(&(a.bytes, a.requests))
                .then_with(|| a.domain.cmp(&b.domain))
        });
        domains.truncate(top);
        NotStored {
            json_lines: self.json_lines,
            requests: total.requests,
            bytes: total.bytes,
            domains: domain_count,
            by_reason,
            top_domains: domains,
        }
    }
}

/// One reason, over every JSON line that had it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonRow {
    pub reason: String,
    pub requests: u64,
    /// Bytes sent to clients for those requests.
    pub bytes: u64,
    /// Of all the bytes not stored.
    pub share_of_bytes: f64,
    pub share_of_requests: f64,
    /// How many domains answered with this reason.
    pub domains: usize,
}

/// One domain's answers that were not stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainRow {
    pub domain: String,
    pub requests: u64,
    pub bytes: u64,
    pub share_of_bytes: f64,
    /// The reason with the most bytes for this domain.
    pub main_reason: String,
    pub main_reason_bytes: u64,
}

/// What was not stored, and why (JSON lines only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotStored {
    /// JSON lines read; the section is empty without them.
    pub json_lines: u64,
    pub requests: u64,
    pub bytes: u64,
    /// Distinct domains with something not stored.
    pub domains: usize,
    /// Most bytes first.
    pub by_reason: Vec<ReasonRow>,
    /// The top domains by bytes not stored.
    pub top_domains: Vec<DomainRow>,
}

impl NotStored {
    /// The one-line summary: "62.0 % of the bytes we could not cache were
    /// `private` answers from 2 domains". None when nothing was lost.
    pub fn headline(&self) -> Option<String> {
        let top = self.by_reason.first()?;
        let domains = match top.domains {
            1 => "one domain".to_owned(),
            2 => "two domains".to_owned(),
            n => format!("{n} domains"),
        };
        Some(format!(
            "{:.1} % of the bytes we could not cache were `{}` answers from {domains}",
            top.share_of_bytes * 100.0,
            top.reason
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_domains_are_ranked_by_bytes() {
        let mut t = Tally::default();
        t.line("a.example", 600, Some("private"));
        t.line("b.example", 400, Some("private"));
        t.line("c.example", 300, Some("no-store"));
        t.line("a.example", 100, Some("status"));
        t.line("a.example", 5000, None);
        let r = t.finish(2);
        assert_eq!(r.json_lines, 5);
        assert_eq!((r.requests, r.bytes, r.domains), (4, 1400, 3));
        let reasons: Vec<(&str, u64, usize)> = r
            .by_reason
            .iter()
            .map(|row| (row.reason.as_str(), row.bytes, row.domains))
            .collect();
        assert_eq!(
            reasons,
            [
                ("private", 1000, 2),
                ("no-store", 300, 1),
                ("status", 100, 1)
            ]
        );
        assert_eq!(r.top_domains.len(), 2);
        assert_eq!(r.top_domains[0].domain, "a.example");
        assert_eq!(r.top_domains[0].bytes, 700);
        assert_eq!(r.top_domains[0].main_reason, "private");
        assert_eq!(
            r.headline().unwrap(),
            "71.4 % of the bytes we could not cache were `private` answers from two domains"
        );
    }

    #[test]
    fn a_json_line_reads_into_an_entry() {
        let text = br#"{"time":1732471200.5,"result":"TCP_MISS","status":200,"bytes":100,"method":"GET","url":"http://A.example:8080/x","content_type":"text/html; charset=utf-8","reason":"private","extra":1}"#;
        let line = JsonLine::parse(text).unwrap();
        let e = line.entry();
        assert_eq!(e.millis, 1_732_471_200_500);
        assert_eq!(e.host, "A.example");
        assert_eq!(e.content_type, "text/html");
        assert_eq!(line.reason.as_deref(), Some("private"));
        assert!(JsonLine::parse(b"{\"time\":1}").is_none());
    }
}
