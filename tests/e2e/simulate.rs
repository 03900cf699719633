//! `cachalot stats --simulate`, the real binary on generated logs: a
//! round-robin over ten URLs misses in an LRU one object too small and hits
//! in one big enough, the same in Squid-native, JSON and gzip form.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cachalot");

/// Ten URLs of 1000 bytes, asked for ten times each in turn; the last
/// round is logged as hits (so every URL is shown cacheable), the others
/// as misses; one CONNECT tunnel on top.
fn squid_log() -> String {
    let mut log = String::new();
    for round in 0..10 {
        for url in 0..10 {
            let code = if round == 9 {
                "TCP_MEM_HIT"
            } else {
                "TCP_MISS"
            };
            let t = 1_732_471_200 + round * 10 + url;
            log.push_str(&format!(
                "{t}.000 5 10.0.0.1 {code}/200 1000 GET http://a.example/{url} - HIER_DIRECT/192.0.2.1 text/html\n"
            ));
        }
    }
    log.push_str(
        "1732471300.000 900 10.0.0.1 TCP_TUNNEL/200 50000 CONNECT a.example:443 - HIER_DIRECT/192.0.2.1 -\n",
    );
    log
}

/// The same requests as our JSON access log writes them.
fn json_log() -> String {
    let mut log = String::new();
    for round in 0..10 {
        for url in 0..10 {
            let (code, status) = if round == 9 {
                ("TCP_MEM_HIT", "cachalot; hit")
            } else {
                ("TCP_MISS", "cachalot; fwd=uri-miss; fwd-status=200; stored")
            };
            let t = 1_732_471_200 + round * 10 + url;
            log.push_str(&format!(
                r#"{{"time":{t}.0,"elapsed_ms":5,"client":"10.0.0.1","result":"{code}","status":200,"bytes":1000,"method":"GET","url":"http://a.example/{url}","user":null,"cache_status":"{status}","coalesced":false}}"#
            ));
            log.push('\n');
        }
    }
    log.push_str(r#"{"time":1732471300.0,"result":"TCP_TUNNEL","status":200,"bytes":50000,"method":"CONNECT","url":"a.example:443","cache_status":null}"#);
    log.push('\n');
    log
}

fn simulate(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(["stats", "--simulate", "5000,10KiB"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn assert_round_robin_numbers(output: &Output) {
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["requests"], 101);
    assert_eq!(report["cacheable_requests"], 100);
    assert_eq!(report["distinct_urls"], 10);
    assert_eq!(report["confirmed_urls"], 10);
    assert_eq!(report["logged"]["hits"], 10);
    let sims = report["simulated"].as_array().unwrap();
    assert_eq!(sims.len(), 3);
    // 5000 bytes hold five of the ten: LRU evicts each just before its turn.
    assert_eq!(sims[0]["size"], 5000);
    assert_eq!(sims[0]["lower"]["hits"], 0);
    assert_eq!(sims[0]["evictions"], 95);
    // 10 KiB holds them all: every round after the first hits.
    assert_eq!(sims[1]["size"], 10240);
    for bound in ["lower", "upper"] {
        assert_eq!(sims[1][bound]["hits"], 90, "{bound}");
        assert_eq!(sims[1][bound]["hit_bytes"], 90_000, "{bound}");
    }
    assert_eq!(sims[1]["lower"]["byte_hit_ratio"], 90_000.0 / 150_000.0);
    assert_eq!(sims[2]["size"], Value::Null);
    assert_eq!(sims[2]["lower"]["hits"], 90);
    assert!(report["assumptions"].as_array().unwrap().len() >= 3);
}

#[test]
fn an_lru_big_enough_for_the_working_set_hits_and_one_too_small_does_not() {
    let log = squid_log();
    assert_round_robin_numbers(&simulate(&["--format", "json"], log.as_bytes()));
    assert_round_robin_numbers(&simulate(&["--format", "json", "-"], &gzip(log.as_bytes())));
}

#[test]
fn json_logs_give_the_same_prediction() {
    let output = simulate(&["--format", "json"], json_log().as_bytes());
    assert_round_robin_numbers(&output);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["json_lines"], 101);
}

#[test]
fn the_text_table_shows_each_size_and_states_its_assumptions() {
    let output = simulate(&[], squid_log().as_bytes());
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "request hit ratio",
        "in the log",
        "4.9 KiB",
        "10.0 KiB",
        "unbounded",
        "89.11%",
        "assumptions:",
        "ever a hit",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn a_bad_size_is_a_usage_error() {
    let output = Command::new(BIN)
        .args(["stats", "--simulate", "lots"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a size"));
}
