//! "Why wasn't it cached?": a scripted origin answers `no-store`,
//! `private`, `Vary: *`, an uncacheable status and a POST; each answer's
//! reason shows in the JSON access log (`reason`), in `Cache-Status`
//! (`detail`) and in `/metrics`; `cachalot stats` on the log the proxy wrote
//! prints the reasons table and the domains behind them.

use std::net::SocketAddr;
use std::process::Command;

use http::Method;

use crate::scripted::{respond, Scripted};
use crate::support::*;

/// One route per reason, and a cacheable control.
async fn origin_at(bind: &str) -> Scripted {
    Scripted::start_at(bind, |parts, _| {
        let cc = |v: &str| ("cache-control", v.to_owned());
        if parts.method == Method::POST {
            return respond(200, &[], "posted");
        }
        match parts.uri.path() {
            "/no-store" => respond(200, &[cc("no-store")], "no-store"),
            "/private" => respond(200, &[cc("private, max-age=60")], &"p".repeat(6000)),
            "/vary-star" => respond(200, &[cc("max-age=60"), ("vary", "*".into())], "vary"),
            "/found" => respond(302, &[("location", "/ok".into())], "moved"),
            _ => respond(200, &[cc("max-age=60")], "ok"),
        }
    })
    .await
}

fn json_lines(proxy: &RunningProxy) -> Vec<serde_json::Value> {
    proxy.proxy.log.as_ref().unwrap().close();
    let text = std::fs::read_to_string(proxy.dir.path().join("logs/access.log")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn scrape(proxy: &RunningProxy) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(cachalot::server::admin::run(
        listener,
        proxy.proxy.clone(),
        std::future::pending(),
    ));
    let url = format!("http://{admin}/metrics");
    let (status, _, body) = fetch(admin, request(Method::GET, &url, empty())).await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

fn cache_status(headers: &http::HeaderMap) -> String {
    joined(headers, "cache-status").unwrap_or_default()
}

#[tokio::test]
async fn each_answer_not_stored_names_its_reason_in_log_header_and_metrics() {
    let origin = origin_at("127.0.0.1:0").await;
    let proxy = start_proxy("[log]\nformat = \"json\"\n").await;
    let cases = [
        ("/no-store", "no-store"),
        ("/private", "private"),
        ("/vary-star", "vary-star"),
        ("/found", "status"),
    ];
    for (path, reason) in cases {
        let (status, headers, _) = fetch(proxy.addr, get(&origin.url(path))).await;
        assert!(status.is_success() || status.is_redirection(), "{path}");
        let value = cache_status(&headers);
        assert!(
            value.ends_with(&format!("; detail={reason}")),
            "{path}: {value}"
        );
        assert!(!value.contains("stored"), "{path}: {value}");
    }
    let post = request(Method::POST, &origin.url("/form"), full("a=1"));
    let (_, headers, _) = fetch(proxy.addr, post).await;
    assert!(
        cache_status(&headers).ends_with("; detail=method"),
        "{headers:?}"
    );
    // The control: stored, then a hit; neither has a reason.
    let (_, headers, _) = fetch(proxy.addr, get(&origin.url("/ok"))).await;
    assert!(!cache_status(&headers).contains("detail="), "{headers:?}");
    let (_, headers, _) = fetch(proxy.addr, get(&origin.url("/ok"))).await;
    assert!(cache_status(&headers).contains("; hit"), "{headers:?}");
    finished(&proxy, 7).await;

    let metrics = scrape(&proxy).await;
    for reason in ["no-store", "private", "vary-star", "status", "method"] {
        let line = format!("cachalot_not_stored_total{{reason=\"{reason}\"}} 1\n");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.contains("# TYPE cachalot_not_stored_bytes_total counter\n")
            || metrics.contains("# TYPE cachalot_not_stored_bytes counter\n"),
        "{metrics}"
    );
    let private_bytes = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cachalot_not_stored_bytes_total{reason=\"private\"} "))
        .unwrap();
    assert!(
        private_bytes.parse::<u64>().unwrap() > 6000,
        "{private_bytes}"
    );

    let lines = json_lines(&proxy);
    assert_eq!(lines.len(), 7);
    let reasons: Vec<(String, serde_json::Value)> = lines
        .iter()
        .map(|v| {
            let url = v["url"].as_str().unwrap();
            let path = url.rsplit('/').next().unwrap().to_owned();
            (path, v["reason"].clone())
        })
        .collect();
    let expected = [
        ("no-store", "no-store"),
        ("private", "private"),
        ("vary-star", "vary-star"),
        ("found", "status"),
        ("form", "method"),
    ];
    for (path, reason) in expected {
        assert!(
            reasons.iter().any(|(p, r)| p == path && r == reason),
            "{path}: {reasons:?}"
        );
    }
    let ok: Vec<&serde_json::Value> = reasons
        .iter()
        .filter(|(p, _)| p == "ok")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(ok, [&serde_json::Value::Null, &serde_json::Value::Null]);
}

#[tokio::test]
async fn stats_on_our_json_log_tables_the_bytes_not_cached_by_reason_and_domain() {
    let a = origin_at("127.0.0.1:0").await;
    let b = origin_at("127.0.0.2:0").await;
    let proxy = start_proxy("[log]\nformat = \"json\"\n").await;
    let mut sent = 0;
    for origin in [&a, &b] {
        for path in ["/private", "/private", "/no-store", "/ok", "/ok"] {
            fetch(proxy.addr, get(&origin.url(path))).await;
            sent += 1;
        }
    }
    fetch(proxy.addr, get(&a.url("/found"))).await;
    sent += 1;
    finished(&proxy, sent).await;
    proxy.proxy.log.as_ref().unwrap().close();
    let log = proxy.dir.path().join("logs/access.log");

    let run = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_cachalot"))
            .args(["stats", "--format", format, "--top", "5"])
            .arg(&log)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert_eq!(report["malformed_lines"], 0, "{report}");
    assert_eq!(report["requests"], sent);
    let n = &report["not_stored"];
    assert_eq!(n["json_lines"], sent);
    assert_eq!(n["requests"], 7, "{n}");
    assert_eq!(n["domains"], 2);
    let top = &n["by_reason"][0];
    assert_eq!(top["reason"], "private");
    assert_eq!(top["requests"], 4);
    assert_eq!(top["domains"], 2);
    assert!(top["share_of_bytes"].as_f64().unwrap() > 0.9, "{top}");
    let reasons: Vec<&str> = n["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.contains(&"no-store") && reasons.contains(&"status"));
    assert_eq!(n["top_domains"][0]["domain"], "127.0.0.1");
    assert_eq!(n["top_domains"][0]["main_reason"], "private");

    let text = run("text");
    assert!(text.contains("not cached, by reason"), "{text}");
    assert!(
        text.contains("of the bytes we could not cache were `private` answers from two domains"),
        "{text}"
    );
    assert!(
        text.contains("top 2 domains by bytes not cached (of 2)"),
        "{text}"
    );
    // For the note: the table as printed.
    let start = text.find("not cached, by reason").unwrap_or(0);
    eprintln!("{}", &text[start..]);
}
