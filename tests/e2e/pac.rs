//! The proxy's own PAC file: fetched from a running proxy in origin form,
//! then its FindProxyForURL evaluated in node (tests/pac/harness.js gives it
//! the browsers' helper functions) for URLs that must go DIRECT or through
//! the proxy. Other origin-form requests keep the "this is a proxy" 400.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::*;

const CONFIG: &str = r#"
[pac]
direct = [".corp.example", "intranet.example"]

[[acl]]
name = "lan"
action = "allow"
src = ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]

[[acl]]
name = "elsewhere"
action = "deny"
src = ["172.16.0.0/12"]
"#;

fn get(path: &str, method: &str, host: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn proxy_pac_and_wpad_dat_are_served_in_origin_form() {
    let proxy = start_proxy(CONFIG).await;
    let host = format!("proxy.lan:{}", proxy.addr.port());
    let pac = raw_exchange(proxy.addr, &get("/proxy.pac", "GET", &host)).await;
    assert_eq!(pac.status, 200, "{}", pac.text());
    assert_eq!(
        pac.header("content-type").as_deref(),
        Some("application/x-ns-proxy-autoconfig")
    );
    let text = pac.text();
    assert!(
        text.contains("function FindProxyForURL(url, host)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("PROXY proxy.lan:{}", proxy.addr.port())),
        "{text}"
    );
    assert!(
        !text.contains("172.16.0.0"),
        "deny rules are no LAN: {text}"
    );

    let wpad = raw_exchange(proxy.addr, &get("/wpad.dat", "GET", &host)).await;
    assert_eq!(wpad.status, 200);
    assert_eq!(wpad.body, pac.body);

    let head = raw_exchange(proxy.addr, &get("/wpad.dat", "HEAD", &host)).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(pac.body.len().to_string())
    );
    assert!(head.body.is_empty());

    for (path, method) in [("/", "GET"), ("/proxy.pac", "POST"), ("/other.pac", "GET")] {
        let other = raw_exchange(proxy.addr, &get(path, method, &host)).await;
        assert_eq!(other.status, 400, "{method} {path}");
        assert!(other.text().contains("this is a proxy"), "{method} {path}");
    }
}

#[tokio::test]
async fn the_configured_proxy_host_wins_and_pac_can_be_turned_off() {
    let proxy = start_proxy("[pac]\nproxy_host = \"gw.example\"\n").await;
    let pac = raw_exchange(proxy.addr, &get("/proxy.pac", "GET", "127.0.0.1")).await;
    assert_eq!(pac.status, 200);
    assert!(pac
        .text()
        .contains(&format!("\"PROXY gw.example:{}\"", proxy.addr.port())));
    let off = start_proxy("[pac]\nenabled = false\n").await;
    let pac = raw_exchange(off.addr, &get("/proxy.pac", "GET", "127.0.0.1")).await;
    assert_eq!(pac.status, 400);
}

/// Runs tests/pac/harness.js on `pac`; None when node is missing.
fn evaluate(dir: &Path, pac: &[u8], urls: &[&str]) -> Option<BTreeMap<String, String>> {
    if Command::new("node").arg("--version").output().is_err() {
        return None;
    }
    let pac_path = dir.join("proxy.pac");
    std::fs::write(&pac_path, pac).unwrap();
    let input = serde_json::json!({
        "pac": pac_path,
        "my_ip": "192.168.1.20",
        "dns": {
            "www.example.com": "93.184.216.34",
            "printer.lan": "192.168.1.5",
            "wiki.corp.example": "10.9.9.9",
            "nowhere.example": null,
        },
        "urls": urls,
    });
    let input_path = dir.join("input.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pac/harness.js");
    let output = Command::new("node")
        .arg(harness)
        .arg(&input_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[tokio::test]
async fn find_proxy_for_url_sends_lan_and_direct_domains_direct_in_node() {
    let proxy = start_proxy(CONFIG).await;
    let port = proxy.addr.port();
    let pac = raw_exchange(
        proxy.addr,
        &get("/proxy.pac", "GET", &format!("proxy.lan:{port}")),
    )
    .await;
    assert_eq!(pac.status, 200);
    let via = format!("PROXY proxy.lan:{port}");
    let expected: &[(&str, &str)] = &[
        ("http://www.example.com/index.html", &via),
        ("http://intranet/", "DIRECT"),
        ("http://localhost:8080/", "DIRECT"),
        ("http://127.0.0.1/", "DIRECT"),
        ("http://intranet.example/", "DIRECT"),
        ("http://x.intranet.example/", &via),
        ("http://corp.example/", "DIRECT"),
        ("http://wiki.corp.example/", "DIRECT"),
        ("http://printer.lan/status", "DIRECT"),
        ("http://10.1.2.3/", "DIRECT"),
        ("http://172.16.0.1/", &via),
        ("http://8.8.8.8/", &via),
        ("http://nowhere.example/", &via),
        ("http://[::1]:8080/", "DIRECT"),
        ("http://[fd00::5]/", "DIRECT"),
        ("http://[2001:db8::1]/", &via),
    ];
    let urls: Vec<&str> = expected.iter().map(|(u, _)| *u).collect();
    let dir = tempfile::tempdir().unwrap();
    let Some(results) = evaluate(dir.path(), &pac.body, &urls) else {
        tool_missing("node", "the PAC evaluation");
        return;
    };
    for (url, _) in expected {
        println!("FindProxyForURL({url}) = {}", results[*url]);
    }
    for (url, want) in expected {
        assert_eq!(results[*url], *want, "{url}\n{}", pac.text());
    }
}
