//! Named origins through the tests' own DNS server: cache hits make no
//! query, one query per name per TTL, negative answers and a dead resolver
//! (serve-stale, stale-if-error, a prompt 502), access rules decided without
//! DNS where they can be, pinned addresses, CONNECT by name, /etc/hosts.

use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::dns_server::DnsServer;
use crate::scripted::{date_ago, respond, Scripted};
use crate::support::*;

/// An origin whose every answer is cacheable for `max_age` seconds.
async fn cacheable_origin(max_age: u64, extra: &'static str) -> Scripted {
    Scripted::start(move |_, n| {
        respond(
            200,
            &[
                ("cache-control", format!("max-age={max_age}{extra}")),
                ("date", date_ago(0)),
            ],
            &format!("body {n}"),
        )
    })
    .await
}

/// Access rules like the shipped ones, with a `dst` rule that needs the
/// address (loopback allowed for the tests' origins).
const DST_RULES: &str =
    "[[acl]]\nname = \"test-origins\"\naction = \"allow\"\ndst = [\"127.0.0.0/8\"]\n\
     [[acl]]\nname = \"to_localhost\"\naction = \"deny\"\ndst = [\"to_localhost\"]\n\
     [[acl]]\naction = \"allow\"\nsrc = [\"127.0.0.0/8\"]\n";

/// An origin answering `body` on 127.0.0.2 at `port` (the port of an origin
/// on 127.0.0.1, so that only the DNS answer tells them apart); `None`, with
/// a visible skip, when that port is taken there.
async fn origin_on_127_0_0_2(port: u16, body: &'static str) -> Option<Scripted> {
    if tokio::net::TcpListener::bind(("127.0.0.2", port))
        .await
        .is_err()
    {
        eprintln!("SKIPPED: 127.0.0.2:{port} is taken");
        return None;
    }
    Some(
        Scripted::start_at(&format!("127.0.0.2:{port}"), move |_, _| {
            respond(200, &[], body)
        })
        .await,
    )
}

async fn get_ok(client: &mut Client, url: &str) -> String {
    let response = client.send(get(url)).await;
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    String::from_utf8(body_bytes(response).await.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn a_thousand_hits_on_a_named_origin_make_no_dns_query() {
    let dns = DnsServer::start().await;
    dns.set("origin.test", &["127.0.0.1"], 300);
    let origin = cacheable_origin(300, "").await;
    for rules in ["", DST_RULES] {
        let proxy = start_proxy(&format!("{}{rules}", dns.config(""))).await;
        let before = dns.queries("origin.test");
        let url = format!(
            "http://origin.test:{}/hit-{}",
            origin.addr.port(),
            rules.len()
        );
        let mut client = Client::connect(proxy.addr).await;
        let first = get_ok(&mut client, &url).await;
        assert_eq!(dns.queries("origin.test"), before + 1, "the miss asks once");
        for _ in 0..1000 {
            assert_eq!(get_ok(&mut client, &url).await, first);
        }
        assert_eq!(
            dns.queries("origin.test"),
            before + 1,
            "hits make no query (rules {rules:?})"
        );
        let m = &proxy.proxy.dns.metrics;
        let hits = m.cache_hits.load(std::sync::atomic::Ordering::Relaxed);
        if rules.is_empty() {
            assert_eq!(hits, 0, "rules without dst never look up a hit");
        } else {
            assert!(hits >= 1000, "dst rules look up through the cache: {hits}");
        }
    }
}

#[tokio::test]
async fn a_hundred_concurrent_misses_to_one_name_make_one_query() {
    let dns = DnsServer::start().await;
    dns.set("busy.test", &["127.0.0.1"], 300);
    dns.delay(Duration::from_millis(100));
    let origin = Scripted::start(|_, n| respond(200, &[], &format!("{n}"))).await;
    let proxy = start_proxy(&format!("{}{DST_RULES}", dns.config(""))).await;
    let port = origin.addr.port();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let addr = proxy.addr;
            tokio::spawn(async move {
                let (status, _, _) =
                    fetch(addr, get(&format!("http://busy.test:{port}/miss/{i}"))).await;
                status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(origin.requests(), 100);
    assert_eq!(dns.queries("busy.test"), 1);
    assert!(dns.queries_of("busy.test", hickory_proto::rr::RecordType::AAAA) <= 1);
}

#[tokio::test]
async fn a_changed_answer_is_seen_after_the_ttl() {
    let first = Scripted::start(|_, _| respond(200, &[], "first")).await;
    let port = first.addr.port();
    let Some(second) = origin_on_127_0_0_2(port, "second").await else {
        return;
    };
    let dns = DnsServer::start().await;
    dns.set("moving.test", &["127.0.0.1"], 1);
    let proxy = start_proxy(&dns.config("")).await;
    let url = format!("http://moving.test:{port}/");
    let mut client = Client::connect(proxy.addr).await;
    assert_eq!(get_ok(&mut client, &url).await, "first");
    dns.set("moving.test", &["127.0.0.2"], 1);
    assert_eq!(get_ok(&mut client, &url).await, "first", "within the TTL");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get_ok(&mut client, &url).await, "second", "after the TTL");
    assert_eq!(dns.queries("moving.test"), 2);
    assert_eq!(second.requests(), 1);
}

#[tokio::test]
async fn no_such_host_is_remembered_for_the_negative_ttl() {
    let dns = DnsServer::start().await;
    let proxy = start_proxy(&dns.config("negative_ttl = \"1s\"")).await;
    let url = "http://missing.test/";
    for _ in 0..3 {
        let (status, _, body) = fetch(proxy.addr, get(url)).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("missing.test (no such host)"), "{body}");
    }
    assert_eq!(dns.queries("missing.test"), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, _, _) = fetch(proxy.addr, get(url)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        dns.queries("missing.test"),
        2,
        "asked again after the negative TTL"
    );
}

#[tokio::test]
async fn a_dead_resolver_still_serves_the_cache_and_fails_misses_promptly() {
    let dns = DnsServer::start().await;
    dns.set("origin.test", &["127.0.0.1"], 1);
    let origin = cacheable_origin(300, "").await;
    let proxy = start_proxy(&format!(
        "{}{DST_RULES}",
        dns.config("timeout = \"1s\"\nstale_ttl = \"1h\"")
    ))
    .await;
    let port = origin.addr.port();
    let cached = format!("http://origin.test:{port}/cached");
    let mut client = Client::connect(proxy.addr).await;
    let body = get_ok(&mut client, &cached).await;
    dns.silence(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The name's answer expired and the resolver is silent: the expired
    // answer admits the request (RFC 8767), and the cache answers it.
    for _ in 0..20 {
        assert_eq!(get_ok(&mut client, &cached).await, body);
    }
    let m = &proxy.proxy.dns.metrics;
    assert!(m.stale.load(std::sync::atomic::Ordering::Relaxed) >= 20);
    assert!(
        dns.queries("origin.test") <= 3,
        "a failed refresh is not retried per request: {}",
        dns.queries("origin.test")
    );
    // A name never resolved: the miss gets a 502 within the lookup timeout.
    let started = Instant::now();
    let (status, _, page) = fetch(proxy.addr, get(&format!("http://never.test:{port}/"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("no answer from the name servers within 1s"),
        "{page}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "502 after the lookup timeout, not the connect deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn a_stale_response_is_served_under_stale_if_error_when_the_name_does_not_resolve() {
    let dns = DnsServer::start().await;
    dns.set("sie.test", &["127.0.0.1"], 1);
    let origin = cacheable_origin(1, ", stale-if-error=600").await;
    // No serve-stale for DNS: the name fails outright once its TTL is over.
    let proxy = start_proxy(&dns.config("timeout = \"1s\"\nstale_ttl = \"0s\"")).await;
    let url = format!("http://sie.test:{}/sie", origin.addr.port());
    let mut client = Client::connect(proxy.addr).await;
    let body = get_ok(&mut client, &url).await;
    dns.silence(true);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let response = client.send(get(&url)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cache_status = response
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&body_bytes(response).await.unwrap()),
        body
    );
    assert!(cache_status.contains("hit"), "{cache_status}");
    assert_eq!(origin.requests(), 1);
    // Without stale-if-error the same failure is a 502 naming DNS.
    let (status, _, page) = fetch(
        proxy.addr,
        get(&format!("http://other.test:{}/", origin.addr.port())),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&page).contains("cannot resolve other.test"));
}

#[tokio::test]
async fn a_dst_domain_deny_answers_403_without_a_dns_query() {
    let dns = DnsServer::start().await;
    let proxy = start_proxy(&format!(
        "{}[[acl]]\nname = \"no-ads\"\naction = \"deny\"\ndst_domain = [\".ads.test\"]\n{DST_RULES}",
        dns.config("")
    ))
    .await;
    let (status, _, page) = fetch(proxy.addr, get("http://banner.ads.test/x.gif")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("no-ads"), "{page}");
    assert_eq!(dns.total_queries(), 0, "the blocked name never reaches DNS");
}

#[tokio::test]
async fn a_dst_rule_pins_the_address_it_admitted() {
    let first = Scripted::start(|_, _| respond(200, &[], "admitted")).await;
    let port = first.addr.port();
    let Some(second) = origin_on_127_0_0_2(port, "rebound").await else {
        return;
    };
    let dns = DnsServer::start().await;
    // TTL 0: each lookup asks again, and the second answer differs.
    dns.set_sequence("rebind.test", &[&["127.0.0.1"], &["127.0.0.2"]], 0);
    let proxy = start_proxy(&format!(
        "{}[[acl]]\naction = \"allow\"\ndst = [\"127.0.0.1/32\"]\n",
        dns.config("")
    ))
    .await;
    let url = format!("http://rebind.test:{port}/");
    let (status, _, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "admitted");
    assert_eq!(
        dns.queries("rebind.test"),
        1,
        "connecting did not resolve again"
    );
    assert_eq!(second.requests(), 0);
    // The next lookup gets 127.0.0.2, which no rule admits.
    let (status, _, _) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(second.requests(), 0);
}

#[tokio::test]
async fn connect_reaches_a_named_host() {
    let (echo, accepted, _task) = echo_server().await;
    let dns = DnsServer::start().await;
    dns.set("tunnel.test", &["127.0.0.1"], 300);
    let proxy = start_proxy(&format!("{}{}", connect_ports(echo.port()), dns.config(""))).await;
    let target = format!("tunnel.test:{}", echo.port());
    let (mut stream, head) = open_tunnel(proxy.addr, &target).await;
    assert_eq!(head.status, 200, "{}", head.status_line);
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    within("echo", stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"ping");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(dns.queries("tunnel.test"), 1);
}

#[tokio::test]
async fn a_hosts_file_name_resolves_without_the_name_servers() {
    let dns = DnsServer::start().await;
    let origin = Origin::start().await;
    let proxy = start_proxy(&format!("{}{DST_RULES}", dns.config(""))).await;
    let url = format!("http://localhost:{}/fixed", origin.addr.port());
    let (status, _, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, FIXED_BODY);
    assert_eq!(dns.total_queries(), 0);
}

#[tokio::test]
async fn the_json_log_has_the_dns_time_of_a_request_that_needed_one() {
    let dns = DnsServer::start().await;
    dns.set("timed.test", &["127.0.0.1"], 300);
    dns.delay(Duration::from_millis(30));
    let origin = Scripted::start(|_, _| respond(200, &[], "ok")).await;
    let proxy = start_proxy(&format!(
        "[log]\nformat = \"json\"\n{}{DST_RULES}",
        dns.config("")
    ))
    .await;
    let url = format!("http://timed.test:{}/", origin.addr.port());
    fetch(proxy.addr, get(&url)).await;
    fetch(proxy.addr, get(&origin.url("/literal"))).await;
    let metrics = proxy.proxy.metrics.clone();
    wait_until("requests finished", move || metrics.requests() >= 2).await;
    proxy.proxy.log.as_ref().unwrap().close();
    let text = std::fs::read_to_string(proxy.dir.path().join("logs/access.log")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let named = lines
        .iter()
        .find(|v| v["url"].as_str().unwrap().contains("timed.test"))
        .unwrap();
    assert!(named["dns_ms"].as_f64().unwrap() >= 25.0, "{named}");
    let literal = lines
        .iter()
        .find(|v| v["url"].as_str().unwrap().contains("/literal"))
        .unwrap();
    assert!(
        literal["dns_ms"].is_null(),
        "an IP literal needs no lookup: {literal}"
    );
}

#[tokio::test]
async fn an_address_that_refuses_is_passed_over_for_the_next() {
    let origin = Origin::start().await;
    let port = origin.addr.port();
    let (echo, accepted, _task) = echo_server().await;
    let dns = DnsServer::start().await;
    // 127.0.0.3 has nothing listening on these ports: refused at once.
    dns.set("two.test", &["127.0.0.3", "127.0.0.1"], 300);
    let proxy = start_proxy(&format!(
        "{}{}{DST_RULES}",
        connect_ports(echo.port()),
        dns.config("")
    ))
    .await;
    let (status, _, body) = fetch(proxy.addr, get(&format!("http://two.test:{port}/fixed"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, FIXED_BODY);
    // The same for a tunnel (attempts raced, RFC 8305).
    let (_stream, head) = open_tunnel(proxy.addr, format!("two.test:{}", echo.port())).await;
    assert_eq!(head.status, 200, "{}", head.status_line);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_name_that_resolves_to_the_proxy_itself_is_a_loop() {
    let dns = DnsServer::start().await;
    dns.set("self.test", &["127.0.0.1"], 300);
    // No dst rule: the name is resolved only when connecting, and the loop
    // check is made there.
    let proxy = start_proxy(&dns.config("")).await;
    let url = format!("http://self.test:{}/", proxy.addr.port());
    let (status, _, page) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(
        status,
        StatusCode::LOOP_DETECTED,
        "{}",
        String::from_utf8_lossy(&page)
    );
}
