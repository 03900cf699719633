//! Tests of the log line formats against what Squid's tools expect.

use super::*;

fn record() -> LogRecord {
    LogRecord {
        time: UNIX_EPOCH + Duration::from_millis(1_732_471_234_567),
        elapsed: Duration::from_millis(12),
        client: "192.168.1.10".parse().unwrap(),
        result: "TCP_MEM_HIT",
        aborted: false,
        status: 200,
        bytes: 1534,
        method: http::Method::GET,
        url: "http://example.com/a b.png".into(),
        version: "HTTP/1.1",
        user: None,
        peer: None,
        via_parent: false,
        content_type: Some(http::HeaderValue::from_static("image/png; charset=binary")),
        cache_status: Some(http::HeaderValue::from_static("cachalot; hit")),
        coalesced: false,
        upstream_time: None,
        dns_time: None,
        bytes_from_origin: 0,
        referer: None,
        user_agent: Some("curl/8".into()),
        error: None,
        tunnel: None,
        reason: None,
    }
}

#[test]
fn squid_line_has_exactly_ten_fields_and_three_decimals() {
    let line = squid(&record());
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 10, "{line}");
    assert_eq!(fields[0], "1732471234.567");
    assert_eq!(fields[3], "TCP_MEM_HIT/200");
    assert_eq!(
        fields[6], "http://example.com/a%20b.png",
        "no space inside the URL"
    );
    assert_eq!(fields[7], "-");
    assert_eq!(fields[8], "HIER_NONE/-");
    assert_eq!(fields[9], "image/png", "content type cut at ';'");
}

#[test]
fn miss_names_the_peer_and_aborts_are_marked() {
    let mut r = record();
    r.result = "TCP_MISS";
    r.aborted = true;
    r.peer = Some("93.184.216.34:80".parse().unwrap());
    r.user = Some("alice".into());
    r.content_type = None;
    let line = squid(&r);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], "TCP_MISS_ABORTED/200");
    assert_eq!(fields[7], "alice");
    assert_eq!(fields[8], "HIER_DIRECT/93.184.216.34");
    assert_eq!(fields[9], "-");
}

#[test]
fn combined_line_is_apache_shaped() {
    let line = combined(&record());
    assert!(line.starts_with("192.168.1.10 - - [24/Nov/2024:18:00:34 +0000] \"GET http://example.com/a%20b.png HTTP/1.1\" 200 1534 \"-\" \"curl/8\""), "{line}");
}

#[test]
fn json_line_has_every_field() {
    let v: serde_json::Value = serde_json::from_str(&json(&record())).unwrap();
    assert_eq!(v["result"], "TCP_MEM_HIT");
    assert_eq!(v["cache_status"], "cachalot; hit");
    assert_eq!(v["coalesced"], false);
    assert_eq!(v["bytes"], 1534);
}

#[test]
fn the_reason_is_in_json_only_and_squid_keeps_ten_fields() {
    let mut r = record();
    r.result = "TCP_MISS";
    r.reason = Some("private");
    let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
    assert_eq!(v["reason"], "private");
    assert_eq!(squid(&r).split_whitespace().count(), 10);
    assert!(!squid(&r).contains("private"));
    let v: serde_json::Value = serde_json::from_str(&json(&record())).unwrap();
    assert!(v["reason"].is_null());
}
