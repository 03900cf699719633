//! Tests of how log lines become simulated requests.

use super::*;

fn facts<'a>(code: &'a str, status: u16, method: &'a str) -> Facts<'a> {
    Facts {
        millis: 0,
        code,
        status,
        bytes: 1000,
        method,
        url: "http://a.example/x",
        stored: Stored::Unknown,
    }
}

fn kind(code: &str, status: u16, method: &str) -> Kind {
    request(&facts(code, status, method), codes::classify(code)).kind
}

#[test]
fn squid_codes_decide_what_may_be_stored() {
    let stored = |confirmed| Kind::Store { confirmed };
    assert_eq!(kind("TCP_MISS", 200, "GET"), stored(false));
    assert_eq!(kind("TCP_MEM_HIT", 200, "GET"), stored(true));
    assert_eq!(kind("TCP_CF_HIT", 200, "GET"), stored(true));
    assert_eq!(kind("TCP_MISS", 404, "GET"), stored(false));
    assert_eq!(kind("TCP_MISS", 302, "GET"), Kind::Pass);
    assert_eq!(kind("TCP_MISS", 500, "GET"), Kind::Pass);
    assert_eq!(kind("TCP_MISS", 200, "POST"), Kind::Pass);
    assert_eq!(kind("TCP_TUNNEL", 200, "CONNECT"), Kind::Pass);
    assert_eq!(kind("TCP_MISS", 200, "CONNECT"), Kind::Pass);
    assert_eq!(kind("TCP_DENIED", 403, "GET"), Kind::Pass);
    assert_eq!(kind("NONE_NONE", 400, "GET"), Kind::Pass);
    assert_eq!(
        kind("TCP_MISS", 200, "HEAD"),
        Kind::LookUp { confirmed: false }
    );
    assert_eq!(
        kind("TCP_IMS_HIT", 304, "GET"),
        Kind::LookUp { confirmed: true }
    );
    assert_eq!(
        kind("TCP_MISS", 206, "GET"),
        Kind::LookUp { confirmed: false }
    );
}

#[test]
fn only_complete_answers_give_the_object_size() {
    let size = |code, status, method| {
        request(&facts(code, status, method), codes::classify(code)).object_size
    };
    assert_eq!(size("TCP_MISS", 200, "GET"), Some(1000));
    assert_eq!(size("TCP_MISS_ABORTED", 200, "GET"), None);
    assert_eq!(size("TCP_IMS_HIT", 304, "GET"), None);
    assert_eq!(size("TCP_HIT", 200, "HEAD"), None);
}

#[test]
fn our_cache_status_says_whether_the_answer_was_stored() {
    assert_eq!(
        stored_of("cachalot; fwd=uri-miss; fwd-status=200; stored"),
        Stored::Yes
    );
    // Since `stored` is no longer sent: a forward (the line had no reason).
    assert_eq!(
        stored_of("cachalot; fwd=uri-miss; fwd-status=200"),
        Stored::Yes
    );
    assert_eq!(stored_of("cachalot; detail=denied"), Stored::No);
    assert_eq!(stored_of("cachalot; hit"), Stored::Unknown);
    // The last member is ours; an upstream cache's comes first.
    assert_eq!(
        stored_of("cachalot; hit, origin-cache; fwd=uri-miss"),
        Stored::Yes
    );
    assert_eq!(
        stored_of("origin-cache; fwd=uri-miss, cachalot; hit"),
        Stored::Unknown
    );
}

fn replay(log: &str) -> (Outcome, ReplayCounts) {
    let mut replay = Replay::new(&[1 << 20], TimeFilter::default());
    replay.begin_source("test");
    for line in log.lines() {
        replay.line(line.as_bytes());
    }
    replay.finish()
}

#[test]
fn json_lines_use_their_reason_and_cache_status() {
    let line = |result: &str, path: &str| {
        let reason = if path == "private" {
            r#","reason":"private""#
        } else {
            ""
        };
        format!(
            r#"{{"time":1732471200.5,"result":"{result}","status":200,"bytes":100,"method":"GET","url":"http://a.example/{path}","cache_status":null{reason}}}"#
        )
    };
    let stored = line("TCP_MISS", "stored").replace(
        r#""cache_status":null"#,
        r#""cache_status":"cachalot; fwd=uri-miss; stored""#,
    );
    let private = line("TCP_MISS", "private");
    let log = [
        stored.clone(),
        stored,
        private.clone(),
        private,
        "{not json".into(),
    ]
    .join("\n");
    let (out, counts) = replay(&log);
    assert_eq!(counts.json_lines, 4);
    assert_eq!(counts.malformed, 1);
    assert_eq!(counts.first_millis, Some(1_732_471_200_500));
    // The stored URL hits once, confirmed; the private one never.
    assert_eq!(out.predictions[0].lower.requests, 1);
    assert_eq!(out.predictions[0].upper.requests, 1);
    assert_eq!(out.distinct_urls, 1);
    assert_eq!(out.confirmed_urls, 1);
}

#[test]
fn squid_lines_count_a_url_cacheable_once_it_was_a_hit() {
    let log = "\
1732471200.000 1 c TCP_MISS/200 500 GET http://a.example/1 - HIER_DIRECT/1.2.3.4 text/html
1732471201.000 1 c TCP_MISS/200 500 GET http://a.example/1 - HIER_DIRECT/1.2.3.4 text/html
1732471202.000 1 c TCP_MEM_HIT/200 500 GET http://a.example/1 - HIER_NONE/- text/html
1732471203.000 1 c TCP_MISS/200 700 GET http://a.example/2 - HIER_DIRECT/1.2.3.4 text/html
1732471204.000 1 c TCP_MISS/200 700 GET http://a.example/2 - HIER_DIRECT/1.2.3.4 text/html
1732471205.000 1 c TCP_TUNNEL/200 9000 CONNECT a.example:443 - HIER_DIRECT/1.2.3.4 -
";
    let (out, counts) = replay(log);
    assert_eq!(counts.lines, 6);
    assert_eq!(out.requests, 6);
    assert_eq!(out.bytes, 11_900);
    assert_eq!(out.logged_hits.requests, 1);
    assert_eq!(out.cacheable_requests, 5);
    let p = out.predictions[0];
    assert_eq!(p.lower.requests, 2);
    assert_eq!(p.lower.bytes, 1000);
    assert_eq!(p.upper.requests, 3);
    assert_eq!(p.upper.bytes, 1700);
}

#[test]
fn the_time_filter_applies() {
    let log = "\
1732471200.000 1 c TCP_MISS/200 500 GET http://a.example/1 - HIER_DIRECT/1.2.3.4 text/html
1732471300.000 1 c TCP_HIT/200 500 GET http://a.example/1 - HIER_NONE/- text/html
";
    let mut replay = Replay::new(
        &[1000],
        TimeFilter {
            since: Some(1_732_471_250_000),
            until: None,
        },
    );
    for line in log.lines() {
        replay.line(line.as_bytes());
    }
    let (out, counts) = replay.finish();
    assert_eq!(counts.outside_time_range, 1);
    assert_eq!(out.requests, 1);
    assert_eq!(out.predictions[0].lower.requests, 0);
}
