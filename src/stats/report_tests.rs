//! Tests of the aggregation: known lines in, exact numbers out.

use super::*;
use crate::stats::render;

/// 8 lines over two UTC hours (2024-11-24 18:00 and 19:00):
/// all traffic 8 requests, 2 hits, 16000 bytes of which 2000 from hits;
/// cacheable 4 requests (the first four), 2 hits, 8000 bytes, 2000 from hits.
const LOG: &str = "\
1732471200.000      5 10.0.0.1 TCP_MEM_HIT/200 1000 GET http://a.example/1 - HIER_NONE/- image/png
1732471201.250      5 10.0.0.1 TCP_HIT/200 1000 GET http://A.Example/2 - HIER_NONE/- image/png
1732471202.000     80 10.0.0.2 TCP_MISS/200 2000 GET http://b.example/3 - HIER_DIRECT/192.0.2.1 text/html;charset=utf-8
1732471203.000     90 10.0.0.2 TCP_REFRESH_MODIFIED/200 4000 GET http://b.example/4 - HIER_DIRECT/192.0.2.1 text/html
1732474800.000   1500 10.0.0.3 TCP_TUNNEL/200 5000 CONNECT c.example:443 - HIER_DIRECT/192.0.2.2 -
1732474801.000      0 10.0.0.3 NONE_NONE/400 0 NONE error:invalid-request - HIER_NONE/- -
1732474802.000      0 10.0.0.4 TCP_DENIED/403 0 GET http://d.example/ - HIER_NONE/- text/html
1732474803.000    700 10.0.0.4 TCP_MISS/200 3000 CONNECT c.example:443 - HIER_DIRECT/192.0.2.2 -
";

fn report_of(text: &str, filter: TimeFilter, top: usize) -> Report {
    let mut aggregator = Aggregator::new(filter);
    aggregator.begin_source("test.log");
    for line in text.lines() {
        aggregator.line(line.as_bytes());
    }
    aggregator.finish(top)
}

#[test]
fn known_lines_give_exact_ratios() {
    let r = report_of(LOG, TimeFilter::default(), 10);
    assert_eq!((r.lines, r.requests, r.malformed_lines), (8, 8, 0));
    assert_eq!(
        (r.hits, r.bytes, r.bandwidth_saved_bytes),
        (2, 16_000, 2_000)
    );
    assert_eq!(r.request_hit_ratio, 0.25);
    assert_eq!(r.byte_hit_ratio, 0.125);
    assert_eq!(
        r.cacheable.counts,
        Counts {
            requests: 4,
            hits: 2,
            bytes: 8_000,
            hit_bytes: 2_000
        }
    );
    assert_eq!(r.cacheable.request_hit_ratio, 0.5);
    assert_eq!(r.cacheable.byte_hit_ratio, 0.25);
    assert_eq!(r.first_time.as_deref(), Some("2024-11-24T18:00:00.000Z"));
    assert_eq!(r.last_time.as_deref(), Some("2024-11-24T19:00:03.000Z"));
}

#[test]
fn breakdowns_by_code_type_domain_and_hour() {
    let r = report_of(LOG, TimeFilter::default(), 2);
    let codes: Vec<(&str, u64, bool, bool)> = r
        .by_code
        .iter()
        .map(|c| (c.code.as_str(), c.requests, c.hit, c.cacheable))
        .collect();
    assert_eq!(
        codes,
        [
            ("TCP_MISS", 2, false, true),
            ("NONE_NONE", 1, false, false),
            ("TCP_DENIED", 1, false, false),
            ("TCP_HIT", 1, true, true),
            ("TCP_MEM_HIT", 1, true, true),
            ("TCP_REFRESH_MODIFIED", 1, false, true),
            ("TCP_TUNNEL", 1, false, false),
        ]
    );
    assert_eq!(r.by_code[0].share_of_requests, 0.25);

    let types: Vec<(&str, u64, f64)> = r
        .by_type
        .iter()
        .map(|t| {
            (
                t.key.as_str(),
                t.ratios.counts.requests,
                t.ratios.request_hit_ratio,
            )
        })
        .collect();
    assert_eq!(
        types,
        [("-", 3, 0.0), ("text/html", 3, 0.0), ("image/png", 2, 1.0)]
    );

    assert_eq!(r.domains, 5);
    let by_requests: Vec<(&str, u64)> = r
        .top_domains_by_requests
        .iter()
        .map(|d| (d.key.as_str(), d.ratios.counts.requests))
        .collect();
    assert_eq!(by_requests, [("a.example", 2), ("b.example", 2)]);
    assert_eq!(r.top_domains_by_requests[0].ratios.request_hit_ratio, 1.0);
    let by_bytes: Vec<(&str, u64)> = r
        .top_domains_by_bytes
        .iter()
        .map(|d| (d.key.as_str(), d.ratios.counts.bytes))
        .collect();
    assert_eq!(by_bytes, [("c.example", 8_000), ("b.example", 6_000)]);

    let hours: Vec<(&str, i64, u64, f64, u64)> = r
        .per_hour
        .iter()
        .map(|h| {
            (
                h.hour.as_str(),
                h.start,
                h.all.counts.requests,
                h.all.request_hit_ratio,
                h.cacheable.counts.requests,
            )
        })
        .collect();
    assert_eq!(
        hours,
        [
            ("2024-11-24T18:00:00Z", 1_732_471_200, 4, 0.5, 4),
            ("2024-11-24T19:00:00Z", 1_732_474_800, 4, 0.0, 0),
        ]
    );
}

#[test]
fn malformed_lines_are_counted_not_fatal() {
    let mut text = String::from("not a log line\n");
    text.push_str(LOG);
    for _ in 0..12 {
        text.push_str("1732471200.000 1 c TCP_MISS/200\n");
    }
    let r = report_of(&text, TimeFilter::default(), 10);
    assert_eq!(r.requests, 8);
    assert_eq!(r.request_hit_ratio, 0.25);
    assert_eq!(r.lines, 21);
    assert_eq!(r.malformed_lines, 13);
    assert_eq!(
        r.first_malformed_line_numbers,
        [1, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    );
    assert_eq!(r.sources[0].malformed_lines, 13);
}

#[test]
fn line_numbers_restart_with_each_source() {
    let mut aggregator = Aggregator::new(TimeFilter::default());
    aggregator.begin_source("a.log");
    aggregator.line(b"bad");
    aggregator.begin_source("b.log");
    aggregator.line(LOG.lines().next().unwrap_or_default().as_bytes());
    aggregator.line(b"bad");
    aggregator.source_failed("boom".to_owned());
    let r = aggregator.finish(10);
    assert_eq!(r.first_malformed_line_numbers, [1, 2]);
    assert_eq!(r.sources[0].first_malformed_line_numbers, [1]);
    assert_eq!(r.sources[1].first_malformed_line_numbers, [2]);
    assert_eq!(r.sources[1].error.as_deref(), Some("boom"));
    assert_eq!(r.requests, 1);
    assert!(render::text(&r).contains("NOT COMPLETE: b.log"));
}

#[test]
fn since_is_inclusive_and_until_exclusive() {
    let filter = TimeFilter {
        since: Some(1_732_471_201_250),
        until: Some(1_732_474_801_000),
    };
    let r = report_of(LOG, filter, 10);
    // Lines 2 to 5 are kept.
    assert_eq!(r.requests, 4);
    assert_eq!(r.outside_time_range, 4);
    assert_eq!(r.hits, 1);
    assert_eq!(r.bytes, 12_000);
    assert_eq!(r.since.as_deref(), Some("2024-11-24T18:00:01.250Z"));
}

#[test]
fn no_requests_means_zero_ratios_never_nan() {
    let r = report_of("", TimeFilter::default(), 10);
    assert_eq!(r.requests, 0);
    assert_eq!(r.request_hit_ratio, 0.0);
    assert_eq!(r.byte_hit_ratio, 0.0);
    assert_eq!(r.cacheable.request_hit_ratio, 0.0);
    let json = render::json(&r).unwrap();
    assert!(!json.contains("NaN"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["request_hit_ratio"], 0.0);
}

#[test]
fn the_report_states_its_hit_definition() {
    let r = report_of(LOG, TimeFilter::default(), 10);
    assert_eq!(r.hit_codes, codes::HIT_CODES);
    let text = render::text(&r);
    for code in codes::HIT_CODES {
        assert!(text.contains(code), "{code} missing from:\n{text}");
    }
    assert!(text.contains("cacheable traffic:"));
    let value: serde_json::Value = serde_json::from_str(&render::json(&r).unwrap()).unwrap();
    for key in [
        "requests",
        "request_hit_ratio",
        "byte_hit_ratio",
        "malformed_lines",
        "first_malformed_line_numbers",
        "hit_codes",
        "cacheable",
        "by_code",
        "by_type",
        "top_domains_by_requests",
        "top_domains_by_bytes",
        "per_hour",
        "denominators",
    ] {
        assert!(value.get(key).is_some(), "{key}");
    }
    assert_eq!(value["cacheable"]["request_hit_ratio"], 0.5);
    assert_eq!(value["top_domains_by_bytes"][0]["name"], "c.example");
    assert_eq!(value["hit_codes"][0], "TCP_HIT");
}
