//! The admin listener's live views against known traffic: `/status.json`
//! shows an open tunnel, a request in flight, the hits and misses of the
//! last minutes and the cache's fill; `/status` is an HTML page; `/metrics`
//! is a well-formed Prometheus exposition (checked line by line here, and
//! by `promtool check metrics` when Prometheus's tool is installed).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::scripted::{respond, Scripted};
use crate::support::*;

async fn admin(proxy: &RunningProxy) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(cachalot::server::admin::run(
        listener,
        proxy.proxy.clone(),
        std::future::pending(),
    ));
    addr
}

async fn admin_get(admin: SocketAddr, path: &str) -> (String, String) {
    let (status, headers, body) = fetch(
        admin,
        request(Method::GET, &format!("http://{admin}{path}"), empty()),
    )
    .await;
    assert_eq!(status, 200, "{path}");
    let kind = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (kind, String::from_utf8(body.to_vec()).unwrap())
}

/// Reads a response head (a tunnel's `200` has no body to frame).
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within("head", stream.read_exact(&mut byte)).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

async fn status_json(admin: SocketAddr) -> serde_json::Value {
    let (kind, body) = admin_get(admin, "/status.json").await;
    assert!(kind.starts_with("application/json"), "{kind}");
    serde_json::from_str(&body).unwrap()
}

/// An origin of a cacheable 1000-byte answer (`/cached`) and an uncacheable
/// one (`/private`).
async fn origin() -> Scripted {
    Scripted::start(|parts, _| match parts.uri.path() {
        "/cached" => respond(
            200,
            &[("cache-control", "max-age=600".into())],
            &"c".repeat(1000),
        ),
        _ => respond(
            200,
            &[("cache-control", "no-store".into())],
            &"p".repeat(500),
        ),
    })
    .await
}

#[tokio::test]
async fn status_json_shows_the_tunnel_the_hits_and_misses_and_the_cache_fill() {
    let origin = origin().await;
    let (echo, _, _echo_task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let admin = admin(&proxy).await;
    let cached = origin.url("/cached");
    fetch(proxy.addr, get(&cached)).await;
    let store = proxy.proxy.clone();
    wait_until("stored", move || {
        store.cache.store.stats().memory_entries >= 1
    })
    .await;
    fetch(proxy.addr, get(&cached)).await;
    fetch(proxy.addr, get(&cached)).await;
    fetch(proxy.addr, get(&origin.url("/private"))).await;
    let metrics = proxy.proxy.metrics.clone();
    wait_until("four requests logged", move || metrics.requests() >= 4).await;

    // A tunnel, open while the page is read.
    let mut tunnel = connect(proxy.addr).await;
    tunnel
        .write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut tunnel).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tunnel.write_all(&[b'u'; 3000]).await.unwrap();
    let mut back = vec![0u8; 3000];
    within("echo", tunnel.read_exact(&mut back)).await.unwrap();

    let s = status_json(admin).await;
    assert_eq!(s["tunnels"]["count"], 1, "{s:#}");
    let t = &s["tunnels"]["list"][0];
    assert_eq!(t["destination"], echo.to_string());
    assert_eq!(t["client"], "127.0.0.1");
    assert_eq!(t["bytes_up"], 3000);
    assert_eq!(t["bytes_down"], 3000);
    assert!(t["age_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        s["in_flight"]["count"], 0,
        "the tunnel is listed as a tunnel"
    );

    let h = &s["hit_ratio"];
    assert_eq!(
        (h["requests"].as_u64(), h["hits"].as_u64()),
        (Some(4), Some(2)),
        "{h}"
    );
    assert_eq!(h["ratio"], 0.5);
    assert_eq!(h["seconds"], 300);

    // Bytes of the last 5 minutes: 3 × 1000 + 500 of bodies, and the tunnel's
    // 3000 each way (credited while it is open).
    let long = &s["bandwidth"]["last_5m"];
    let bytes = long["bytes"].as_u64().unwrap();
    assert_eq!(bytes, 3 * 1000 + 500 + 6000, "{long}");
    assert_eq!(long["clients"][0]["key"], "127.0.0.1");
    assert_eq!(long["clients"][0]["bytes"], bytes);
    assert_eq!(long["domains"][0]["key"], "127.0.0.1");
    let short = &s["bandwidth"]["last_10s"];
    assert_eq!(short["seconds"], 10);
    assert!(short["bytes"].as_u64().unwrap() <= bytes);

    let memory = &s["cache"]["memory"];
    assert!(memory["entries"].as_u64().unwrap() >= 1, "{memory}");
    assert!(memory["bytes"].as_u64().unwrap() >= 1000);
    assert_eq!(memory["capacity_bytes"], 256 * 1024 * 1024);
    assert!(s["cache"]["disk"]["capacity_bytes"].as_u64().unwrap() > 0);

    let (kind, page) = admin_get(admin, "/status").await;
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("http-equiv=refresh"));
    assert!(page.contains("Open tunnels (1)"));
    assert!(page.contains(&echo.to_string()));
    assert!(
        !page.contains("src=") && !page.contains("<link"),
        "no external assets"
    );

    tunnel.shutdown().await.unwrap();
    read_to_end(&mut tunnel).await;
    let live = proxy.proxy.metrics.live.clone();
    wait_until("tunnel closed", move || live.count() == 0).await;
    let s = status_json(admin).await;
    assert_eq!(s["tunnels"]["count"], 0);
}

#[tokio::test]
async fn a_request_waiting_on_its_origin_is_listed_in_flight() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let (stream, _) = silent.accept().await.unwrap();
        stream
    });
    let proxy = start_proxy("").await;
    let admin = admin(&proxy).await;
    let url = format!("http://127.0.0.1:{port}/slow/download");
    let addr = proxy.addr;
    let client = tokio::spawn(async move { fetch(addr, get(&url)).await });
    let live = proxy.proxy.metrics.live.clone();
    wait_until("in flight", move || live.count() == 1).await;
    let s = status_json(admin).await;
    assert_eq!(s["in_flight"]["count"], 1, "{s:#}");
    let r = &s["in_flight"]["list"][0];
    assert_eq!(r["method"], "GET");
    assert_eq!(r["url"], format!("http://127.0.0.1:{port}/slow/download"));
    assert_eq!(r["client"], "127.0.0.1");
    // The origin hangs up: the request ends (502) and leaves the list.
    drop(within("origin accepted", holder).await.unwrap());
    let (status, _, _) = within("answer", client).await.unwrap();
    assert_eq!(status, 502);
    let live = proxy.proxy.metrics.live.clone();
    wait_until("finished", move || live.count() == 0).await;
}

/// A metric or label name (the exposition format's grammar).
fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn is_value(s: &str) -> bool {
    matches!(s, "+Inf" | "-Inf" | "NaN") || s.parse::<f64>().is_ok()
}

/// Parses a sample line: (name, labels, value). Panics on a malformed one.
fn sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let b = line.as_bytes();
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(is_name(name, true), "bad metric name in {line}");
    let mut labels = Vec::new();
    let mut i = name_end;
    if b[i] == b'{' {
        i += 1;
        while b.get(i) != Some(&b'}') {
            let eq = i + line[i..]
                .find('=')
                .unwrap_or_else(|| panic!("label without = in {line}"));
            let key = &line[i..eq];
            assert!(is_name(key, false), "bad label name {key:?} in {line}");
            assert_eq!(b.get(eq + 1), Some(&b'"'), "unquoted label value in {line}");
            i = eq + 2;
            let mut value = String::new();
            loop {
                match b.get(i) {
                    Some(b'\\') => {
                        match b.get(i + 1) {
                            Some(b'\\') => value.push('\\'),
                            Some(b'"') => value.push('"'),
                            Some(b'n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line}"),
                        }
                        i += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => {
                        let c = line[i..].chars().next().unwrap();
                        value.push(c);
                        i += c.len_utf8();
                    }
                    None => panic!("unterminated label value in {line}"),
                }
            }
            labels.push((key.to_owned(), value));
            i += 1;
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                other => panic!("expected , or }} after a label, got {other:?} in {line}"),
            }
        }
        i += 1;
    }
    let rest = line[i..]
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    let mut parts = rest.split(' ');
    let value = parts.next().unwrap();
    assert!(is_value(value), "bad value {value:?} in {line}");
    if let Some(ts) = parts.next() {
        assert!(ts.parse::<i64>().is_ok(), "bad timestamp in {line}");
    }
    assert!(parts.next().is_none(), "trailing text in {line}");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or(f64::NAN),
    };
    (name.to_owned(), labels, value)
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    if types.contains_key(name) {
        return name;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types
                .get(base)
                .is_some_and(|t| t == "histogram" || t == "summary")
            {
                return base;
            }
        }
    }
    panic!("sample {name} has no # TYPE line before it");
}

/// Some traffic of every kind, then the scrape.
async fn scrape_after_traffic() -> String {
    let origin = origin().await;
    let (echo, _, _echo_task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let admin = admin(&proxy).await;
    fetch(proxy.addr, get(&origin.url("/cached"))).await;
    fetch(proxy.addr, get(&origin.url("/private"))).await;
    fetch(proxy.addr, get("http://127.0.0.1:1/refused")).await;
    let mut tunnel = connect(proxy.addr).await;
    tunnel
        .write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tunnel.shutdown().await.unwrap();
    read_to_end(&mut tunnel).await;
    let metrics = proxy.proxy.metrics.clone();
    wait_until("requests logged", move || metrics.requests() >= 4).await;
    let (kind, text) = admin_get(admin, "/metrics").await;
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    text
}

#[tokio::test]
async fn metrics_are_a_well_formed_prometheus_exposition() {
    let text = scrape_after_traffic().await;
    let mut help = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen_samples = HashSet::new();
    let mut histograms: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name, true), "{line}");
            assert!(help.insert(name.to_owned()), "HELP twice for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice: {name}"
            );
        } else if line.starts_with('#') || line.is_empty() {
            panic!("unexpected line {line:?}");
        } else {
            let (name, labels, value) = sample(line);
            let family = family_of(&name, &types).to_owned();
            if types[&family] == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
                assert!(value >= 0.0);
            }
            assert!(
                seen_samples.insert(line.rsplit_once(' ').unwrap().0.to_owned()),
                "duplicate {line}"
            );
            if types[&family] == "histogram" {
                let mut series: Vec<_> =
                    labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                series.sort();
                let key = format!("{family}{series:?}");
                if name.ends_with("_bucket") {
                    let le = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .expect("le label")
                        .1
                        .clone();
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    histograms.entry(key).or_default().push((le, value));
                } else if name.ends_with("_count") {
                    counts.insert(key, value);
                }
            }
        }
    }
    for name in [
        "cachalot_requests_total",
        "cachalot_request_duration_seconds",
        "cachalot_dns_lookups_total",
        "cachalot_tunnel_bytes_total",
        "cachalot_cache_bytes",
    ] {
        assert!(types.contains_key(name), "{name} missing:\n{text}");
    }
    assert!(!text.contains("_ratio"), "no computed ratios");
    assert!(
        text.contains("cachalot_request_duration_seconds_count{outcome=\"tunnel\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("cachalot_request_duration_seconds_count{outcome=\"error\"} 1\n"));
    assert!(text.contains("cachalot_request_duration_seconds_count{outcome=\"miss\"} 2\n"));
    for (key, buckets) in &histograms {
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{key} not cumulative"
        );
        let last = buckets.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{key} has no +Inf bucket");
        assert_eq!(
            Some(&last.1),
            counts.get(key),
            "{key}: +Inf differs from _count"
        );
    }
}

#[tokio::test]
async fn promtool_accepts_the_metrics() {
    let Ok(version) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        tool_missing("promtool", "promtool_accepts_the_metrics");
        return;
    };
    assert!(version.status.success());
    let text = scrape_after_traffic().await;
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = within("promtool", child.wait_with_output()).await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
