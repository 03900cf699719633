//! `cachalot stats`, the real binary on known logs: plain, gzip and stdin
//! give exactly the expected JSON numbers; unreadable files and bad
//! arguments give the documented exit codes.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cachalot");

/// All traffic: 8 requests, 2 hits, 16000 bytes, 2000 from hits.
/// Cacheable: the first four lines, 2 hits, 8000 bytes, 2000 from hits.
/// Line 6 is malformed (9 fields).
const LOG: &str = "\
1732471200.000      5 10.0.0.1 TCP_MEM_HIT/200 1000 GET http://a.example/1 - HIER_NONE/- image/png
1732471201.250      5 10.0.0.1 TCP_HIT/200 1000 GET http://a.example/2 - HIER_NONE/- image/png
1732471202.000     80 10.0.0.2 TCP_MISS/200 2000 GET http://b.example/3 - HIER_DIRECT/192.0.2.1 text/html;charset=utf-8
1732471203.000     90 10.0.0.2 TCP_REFRESH_MODIFIED/200 4000 GET http://b.example/4 - HIER_DIRECT/192.0.2.1 text/html
1732474800.000   1500 10.0.0.3 TCP_TUNNEL/200 5000 CONNECT c.example:443 - HIER_DIRECT/192.0.2.2 -
1732474800.500      1 10.0.0.3 TCP_MISS/200 1 GET http://broken.example/ - HIER_DIRECT/192.0.2.2
1732474801.000      0 10.0.0.3 NONE_NONE/400 0 NONE error:invalid-request - HIER_NONE/- -
1732474802.000      0 10.0.0.4 TCP_DENIED/403 0 GET http://d.example/ - HIER_NONE/- text/html
1732474803.000    700 10.0.0.4 TCP_MISS/200 3000 CONNECT c.example:443 - HIER_DIRECT/192.0.2.2 -
";

fn stats(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .arg("stats")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The numbers LOG must give, exactly.
fn assert_known_numbers(report: &Value) {
    assert_eq!(report["requests"], 8);
    assert_eq!(report["hits"], 2);
    assert_eq!(report["request_hit_ratio"], 0.25);
    assert_eq!(report["byte_hit_ratio"], 0.125);
    assert_eq!(report["bytes"], 16_000);
    assert_eq!(report["bandwidth_saved_bytes"], 2_000);
    assert_eq!(report["cacheable"]["requests"], 4);
    assert_eq!(report["cacheable"]["request_hit_ratio"], 0.5);
    assert_eq!(report["cacheable"]["byte_hit_ratio"], 0.25);
    assert_eq!(report["malformed_lines"], 1);
    assert_eq!(
        report["first_malformed_line_numbers"],
        serde_json::json!([6])
    );
    assert_eq!(report["top_domains_by_requests"][0]["name"], "a.example");
    assert_eq!(
        report["top_domains_by_requests"][0]["request_hit_ratio"],
        1.0
    );
    assert_eq!(report["top_domains_by_bytes"][0]["name"], "c.example");
    assert_eq!(report["top_domains_by_bytes"][0]["bytes"], 8_000);
    assert_eq!(report["by_type"][2]["name"], "image/png");
    assert_eq!(report["per_hour"][0]["hour"], "2024-11-24T18:00:00Z");
    assert_eq!(report["per_hour"][0]["request_hit_ratio"], 0.5);
    assert_eq!(report["per_hour"][1]["requests"], 4);
    assert_eq!(report["hit_codes"][1], "TCP_MEM_HIT");
}

#[test]
fn json_numbers_from_a_plain_log_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "access.log", LOG.as_bytes());
    let output = stats(&["--format", "json", &file], None);
    assert!(output.status.success(), "{output:?}");
    let report = json_of(&output);
    assert_known_numbers(&report);
    assert_eq!(
        report["top_domains_by_requests"].as_array().unwrap().len(),
        5
    );
    let output = stats(&["--format", "json", "--top", "1", &file], None);
    assert_eq!(
        json_of(&output)["top_domains_by_requests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "access.log.1", &gzip(LOG.as_bytes()));
    let output = stats(&["--format", "json", &file], None);
    assert!(output.status.success(), "{output:?}");
    assert_known_numbers(&json_of(&output));
}

#[test]
fn stdin_is_read_with_no_file_or_a_dash() {
    let output = stats(&["--format", "json"], Some(LOG.as_bytes()));
    assert!(output.status.success(), "{output:?}");
    assert_known_numbers(&json_of(&output));
    let output = stats(&["--format", "json", "-"], Some(&gzip(LOG.as_bytes())));
    assert!(output.status.success(), "{output:?}");
    assert_known_numbers(&json_of(&output));
}

#[test]
fn an_unreadable_file_fails_the_run_but_the_others_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "access.log", LOG.as_bytes());
    let missing = dir.path().join("missing.log");
    let missing = missing.to_str().unwrap();
    let output = stats(&["--format", "json", missing, &good], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.log"));
    let report = json_of(&output);
    assert_known_numbers(&report);
    assert!(report["sources"][0]["error"].is_string());
    assert!(report["sources"][1]["error"].is_null());
}

#[test]
fn since_and_until_accept_dates_and_unix_seconds() {
    // 18:00:01.250 inclusive to 19:00 exclusive: lines 2 to 4.
    let output = stats(
        &[
            "--format",
            "json",
            "--since",
            "1732471201.25",
            "--until",
            "2024-11-24T19:00",
        ],
        Some(LOG.as_bytes()),
    );
    assert!(output.status.success(), "{output:?}");
    let report = json_of(&output);
    assert_eq!(report["requests"], 3);
    assert_eq!(report["hits"], 1);
    assert_eq!(report["bytes"], 7_000);
    assert_eq!(report["outside_time_range"], 5);

    let output = stats(&["--since", "last tuesday"], Some(b""));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a time"));
}

#[test]
fn text_report_states_the_hit_definition_and_ratios() {
    let output = stats(&[], Some(LOG.as_bytes()));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "TCP_REFRESH_UNMODIFIED",
        "cacheable traffic:",
        "request hit ratio",
        "25.00%",
        "50.00%",
        "malformed lines skipped: 1 (first: -:6)",
        "2024-11-24T18:00:00Z",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
