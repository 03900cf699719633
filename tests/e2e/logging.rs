//! Access logs written by real traffic, read back as Squid's tools read
//! them (calamaris and GoAccess when installed); live metrics; PURGE; and
//! the `cachalot cache` tool on a stopped proxy's disk cache.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::scripted::{date_ago, respond, Scripted};
use crate::support::*;

fn code(line: &str) -> String {
    line.split_whitespace().nth(3).unwrap().to_owned()
}

/// An origin with one route per behaviour the log must show.
async fn origin() -> Scripted {
    Scripted::start(|parts, n| {
        let inm = parts.headers.get("if-none-match").is_some();
        match parts.uri.path() {
            "/fresh" => respond(
                200,
                &[
                    ("cache-control", "max-age=600".into()),
                    ("content-type", "text/plain; charset=utf-8".into()),
                ],
                "fresh",
            ),
            "/stale304" if inm => respond(304, &[("etag", "\"s\"".into())], ""),
            "/stale304" => respond(
                200,
                &[
                    ("cache-control", "max-age=1".into()),
                    ("etag", "\"s\"".into()),
                    ("date", date_ago(60)),
                ],
                "stale",
            ),
            "/modified" => respond(
                200,
                &[
                    ("cache-control", "max-age=1".into()),
                    ("etag", format!("\"m{n}\"")),
                    ("date", date_ago(60)),
                ],
                &format!("m{n}"),
            ),
            "/missing" => respond(
                404,
                &[("cache-control", "max-age=600".into())],
                "no such thing",
            ),
            "/sie" if n > 1 && inm => respond(500, &[], "boom"),
            "/sie" => respond(
                200,
                &[
                    ("cache-control", "max-age=1, stale-if-error=600".into()),
                    ("etag", "\"e\"".into()),
                    ("date", date_ago(60)),
                ],
                "kept",
            ),
            _ => respond(200, &[], "other"),
        }
    })
    .await
}

#[tokio::test]
async fn every_result_code_is_logged_from_real_requests() {
    let origin = origin().await;
    let (echo, _, _echo_task) = echo_server().await;
    let proxy = start_proxy(&connect_ports(echo.port())).await;
    let url = |p: &str| origin.url(p);
    let get_url = |p: &str| get(&url(p));
    let mut expected: Vec<&str> = Vec::new();

    fetch(proxy.addr, get_url("/fresh")).await;
    expected.push("TCP_MISS/200");
    tokio::time::sleep(Duration::from_millis(100)).await;
    fetch(proxy.addr, get_url("/fresh")).await;
    expected.push("TCP_MEM_HIT/200");
    let mut ims = get_url("/fresh");
    ims.headers_mut().insert(
        "if-modified-since",
        httpdate::fmt_http_date(std::time::SystemTime::now())
            .parse()
            .unwrap(),
    );
    let (status, _, _) = fetch(proxy.addr, ims).await;
    assert_eq!(
        status,
        StatusCode::NOT_MODIFIED,
        "IMS compared with the stored Date"
    );
    expected.push("TCP_IMS_HIT/304");
    let mut nc = get_url("/fresh");
    nc.headers_mut()
        .insert("cache-control", "no-cache".parse().unwrap());
    fetch(proxy.addr, nc).await;
    expected.push("TCP_CLIENT_REFRESH_MISS/200");
    for (path, code) in [
        ("/stale304", "TCP_MISS/200"),
        ("/modified", "TCP_MISS/200"),
        ("/missing", "TCP_MISS/404"),
        ("/sie", "TCP_MISS/200"),
    ] {
        fetch(proxy.addr, get_url(path)).await;
        expected.push(code);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    fetch(proxy.addr, get_url("/stale304")).await;
    expected.push("TCP_REFRESH_UNMODIFIED/200");
    let mut inm = get_url("/stale304");
    // Fresh again after the 304: the client's own conditional is answered here.
    inm.headers_mut()
        .insert("if-none-match", "\"s\"".parse().unwrap());
    fetch(proxy.addr, inm).await;
    expected.push("TCP_IMS_HIT/304");
    fetch(proxy.addr, get_url("/modified")).await;
    expected.push("TCP_REFRESH_MODIFIED/200");
    fetch(proxy.addr, get_url("/missing")).await;
    expected.push("TCP_NEGATIVE_HIT/404");
    fetch(proxy.addr, get_url("/sie")).await;
    expected.push("TCP_REFRESH_FAIL_OLD/200");
    let denied = raw_exchange(
        proxy.addr,
        b"CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(denied.status, 403);
    expected.push("TCP_DENIED/403");
    let bad = raw_exchange(
        proxy.addr,
        b"GET /origin-form HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(bad.status, 400);
    expected.push("NONE_NONE/400");
    {
        let mut tunnel = connect(proxy.addr).await;
        tunnel
            .write_all(format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        tunnel.write_all(b"ping").await.unwrap();
        tunnel.shutdown().await.unwrap();
        read_to_end(&mut tunnel).await;
    }
    expected.push("TCP_TUNNEL/200");

    finished(&proxy, expected.len() as u64).await;
    let lines = log_lines(&proxy);
    for line in &lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 10, "exactly 10 fields: {line}");
        let (secs, millis) = fields[0].split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok() && millis.len() == 3, "{line}");
    }
    let codes: Vec<String> = lines.iter().map(|l| code(l)).collect();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    let mut got = codes.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "log:\n{}", lines.join("\n"));
    let miss = lines.iter().find(|l| code(l) == "TCP_MISS/200").unwrap();
    assert!(
        miss.contains(&format!("HIER_DIRECT/{}", origin.addr.ip())),
        "{miss}"
    );
    let hit = lines.iter().find(|l| code(l) == "TCP_MEM_HIT/200").unwrap();
    assert!(hit.ends_with("HIER_NONE/- text/plain"), "{hit}");
}

#[tokio::test]
async fn client_abort_mid_body_is_logged_as_aborted() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    {
        let mut client = Client::connect(proxy.addr).await;
        let response = client.send(get(&origin.url("/large/67108864"))).await;
        let mut body = response.into_body();
        use http_body_util::BodyExt;
        let _ = body.frame().await;
    }
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    assert_eq!(code(&lines[0]), "TCP_MISS_ABORTED/200", "{}", lines[0]);
}

#[tokio::test]
async fn json_and_combined_formats_carry_the_fields() {
    let origin = origin().await;
    let proxy = start_proxy("[log]\nformat = \"json\"\n").await;
    fetch(proxy.addr, get(&origin.url("/fresh"))).await;
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["result"], "TCP_MISS");
    assert_eq!(v["coalesced"], false);
    assert!(v["cache_status"].as_str().unwrap().contains("fwd=uri-miss"));
    assert!(v["upstream_ms"].is_u64());
    assert_eq!(v["bytes_from_origin"], 5);

    let proxy = start_proxy("[log]\nformat = \"combined\"\n").await;
    let mut r = get(&origin.url("/fresh"));
    r.headers_mut()
        .insert("user-agent", "tester/1".parse().unwrap());
    fetch(proxy.addr, r).await;
    finished(&proxy, 1).await;
    let lines = log_lines(&proxy);
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(lines[0].ends_with("\"-\" \"tester/1\""), "{}", lines[0]);
}

#[tokio::test]
async fn calamaris_and_goaccess_read_our_log_and_agree_on_the_figures() {
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--help")
            .output()
            .is_ok()
    };
    if !have("calamaris") {
        tool_missing("calamaris", "the calamaris check");
        return;
    }
    let origin = origin().await;
    let proxy = start_proxy("").await;
    for path in [
        "/fresh", "/fresh", "/fresh", "/missing", "/missing", "/other",
    ] {
        fetch(proxy.addr, get(&origin.url(path))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    finished(&proxy, 6).await;
    let lines = log_lines(&proxy);
    let (mut hits, mut hit_bytes, mut all_bytes) = (0u64, 0u64, 0u64);
    for line in &lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let bytes: u64 = f[4].parse().unwrap();
        all_bytes += bytes;
        if cachalot::stats::codes::is_hit(f[3].split('/').next().unwrap()) {
            hits += 1;
            hit_bytes += bytes;
        }
    }
    assert_eq!(
        hits,
        3,
        "2 memory hits and 1 negative hit:\n{}",
        lines.join("\n")
    );
    let path = proxy.dir.path().join("logs/access.log");
    let out = std::process::Command::new("calamaris")
        .arg("-a")
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let figure = |label: &str| -> f64 {
        let line = report
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} in\n{report}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(figure("Total amount:") as u64, 6);
    assert_eq!(figure("invalid lines:") as u64, 0);
    let ours = 100.0 * hits as f64 / 6.0;
    assert!(
        (figure("Request hit rate:") - ours).abs() < 0.01,
        "calamaris vs ours {ours}\n{report}"
    );
    let ours = 100.0 * hit_bytes as f64 / all_bytes as f64;
    assert!(
        (figure("Bandwidth savings in Percent") - ours).abs() < 0.01,
        "{report}"
    );

    if !have("goaccess") {
        tool_missing("goaccess", "the goaccess check");
    } else {
        let json = proxy.dir.path().join("goaccess.json");
        let status = std::process::Command::new("goaccess")
            .arg(&path)
            .args([
                "--log-format=%x.%^ %~%L %h %^/%s %b %m %U",
                "--date-format=%s",
                "--time-format=%s",
            ])
            .arg("-o")
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["general"]["valid_requests"], 6);
        assert_eq!(v["general"]["failed_requests"], 0);
        assert_eq!(v["general"]["bandwidth"], all_bytes);
    }
}

async fn admin(proxy: &RunningProxy) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(cachalot::server::admin::run(
        listener,
        proxy.proxy.clone(),
        std::future::pending(),
    ));
    addr
}

async fn metrics_text(admin: std::net::SocketAddr) -> String {
    let (status, _, body) = fetch(
        admin,
        request(Method::GET, &format!("http://{admin}/metrics"), empty()),
    )
    .await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_counters_move_with_real_traffic() {
    let origin = origin().await;
    let proxy = start_proxy("").await;
    let admin = admin(&proxy).await;
    let (status, _, body) = fetch(
        admin,
        request(Method::GET, &format!("http://{admin}/health"), empty()),
    )
    .await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let before = metrics_text(admin).await;
    assert_eq!(
        sample(&before, "cachalot_requests_total{code=\"TCP_MISS\"}"),
        0.0
    );
    fetch(proxy.addr, get(&origin.url("/fresh"))).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    fetch(proxy.addr, get(&origin.url("/fresh"))).await;
    fetch(proxy.addr, get("http://127.0.0.1:1/refused")).await;
    finished(&proxy, 3).await;
    let after = metrics_text(admin).await;
    assert_eq!(
        sample(&after, "cachalot_requests_total{code=\"TCP_MISS\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "cachalot_requests_total{code=\"TCP_MEM_HIT\"}"),
        1.0
    );
    assert_eq!(
        sample(&after, "cachalot_upstream_errors_total{kind=\"refused\"}"),
        1.0
    );
    assert_eq!(sample(&after, "cachalot_hits_total"), 1.0);
    assert!(
        !after.contains("hit_ratio"),
        "ratios are Prometheus's to compute"
    );
    assert!(sample(&after, "cachalot_cache_entries{tier=\"memory\"}") >= 1.0);
    assert!(sample(&after, "cachalot_bytes_out_total") > 0.0);
}

#[tokio::test]
async fn purge_from_an_admin_source_removes_the_entry_and_others_are_refused() {
    let origin = Scripted::start(|_, n| {
        respond(
            200,
            &[("cache-control", "max-age=600".into())],
            &format!("v{n}"),
        )
    })
    .await;
    let proxy = start_proxy("[admin]\npurge_from = [\"127.0.0.1/32\"]\n").await;
    let url = origin.url("/p");
    fetch(proxy.addr, get(&url)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(proxy.addr).await.unwrap();
        s.write_all(
            format!("PURGE {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        parse_response(&read_to_end(&mut s).await.0)
    };
    assert_eq!(refused.status, 403);
    let (_, _, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(body, "v1", "still cached after a refused PURGE");
    let (status, _, _) = fetch(
        proxy.addr,
        request(Method::from_bytes(b"PURGE").unwrap(), &url, empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(body, "v2", "the next request after PURGE is a miss");
    let (status, _, _) = fetch(
        proxy.addr,
        request(
            Method::from_bytes(b"PURGE").unwrap(),
            &origin.url("/never"),
            empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cache_tool_purges_counts_and_clears_a_stopped_proxys_cache() {
    let origin = Scripted::start(|parts, _| {
        respond(
            200,
            &[("cache-control", "max-age=600".into())],
            parts.uri.path(),
        )
    })
    .await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let proxy = start_proxy_in("", dir.clone()).await;
    for p in ["/a", "/b"] {
        fetch(proxy.addr, get(&origin.url(p))).await;
        stored(&proxy, &origin.url(p)).await;
    }
    let RunningProxy {
        shutdown,
        task,
        proxy: running,
        ..
    } = proxy;
    let _ = shutdown.send(());
    within("drain", task).await.unwrap();
    running.close();
    drop(running);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let tool = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cachalot"))
            .arg("--config")
            .arg(&config)
            .arg("cache")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        tool(&["stats"]).contains("objects:       2 responses under 2 URLs"),
        "{}",
        tool(&["stats"])
    );
    assert!(tool(&["purge", &origin.url("/a")]).starts_with("purged"));
    assert!(tool(&["stats"]).contains("objects:       1 responses under 1 URLs"));
    let verify = tool(&["verify"]);
    assert!(
        verify.contains("checked 1 responses") && verify.contains("\n0 dropped; 0 records"),
        "{verify}"
    );
    tool(&["clear"]);
    assert!(tool(&["stats"]).contains("objects:       0 responses"));
}

#[tokio::test]
async fn a_failed_revalidation_is_logged_as_refresh_fail_err() {
    // RFC 9111 §5.2.2.2: must-revalidate and the origin gone → 504, and the
    // log keeps the cache's own code, not the error's TCP_MISS.
    let origin = Scripted::start(|_, _| {
        respond(
            200,
            &[
                ("cache-control", "max-age=1, must-revalidate".into()),
                ("etag", "\"e\"".into()),
                ("date", date_ago(30)),
            ],
            "kept",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/must-revalidate");
    fetch(proxy.addr, get(&url)).await;
    let key = cachalot::cache::policy::key::cache_key(&url.parse().unwrap()).unwrap();
    within("stored", async {
        while !matches!(
            proxy
                .proxy
                .cache
                .store
                .lookup(&key, &http::HeaderMap::new())
                .await,
            cachalot::cache::store::Lookup::Hit(_)
        ) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    origin.stop();
    let (status, _, _) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    finished(&proxy, 2).await;
    let lines = log_lines(&proxy);
    assert_eq!(code(&lines[1]), "TCP_REFRESH_FAIL_ERR/504", "{}", lines[1]);
}
