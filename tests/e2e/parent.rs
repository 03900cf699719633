//! Parent proxies: a child cachalot sends misses and CONNECT tunnels through
//! parent cachalots, each URL always to the same parent (rendezvous
//! hashing), a dead parent's share moving to the others (and only its
//! share), the direct rules, credentials for the parent, and Via between
//! chained proxies.

use std::collections::HashMap;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn parent_table(name: &str, port: u16) -> String {
    format!("[[parent]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n")
}

fn named(name: &str) -> String {
    format!("[server]\nname = \"{name}\"\n")
}

/// The parent that served `path` through `child`, read off the origin's
/// echo of the Via the request arrived with.
async fn served_by(child: &RunningProxy, origin: &Origin, path: &str) -> String {
    let (status, headers, _) = fetch(child.addr, get(&origin.url(path))).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    let via = headers
        .get("x-echo-via")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(via.starts_with("1.1 child"), "{via}");
    via.split(", ").nth(1).unwrap_or("direct").to_owned()
}

#[tokio::test]
async fn a_miss_goes_through_the_parent_and_via_names_both() {
    let origin = Origin::start().await;
    let parent = start_proxy(&named("parent")).await;
    let child = start_proxy(&format!(
        "{}{}",
        named("child"),
        parent_table("p", parent.addr.port())
    ))
    .await;
    assert_eq!(served_by(&child, &origin, "/echo").await, "1.1 parent");
    assert_eq!(parent.proxy.metrics.requests(), 1);
}

#[tokio::test]
async fn chained_proxies_with_the_same_name_see_a_loop() {
    let origin = Origin::start().await;
    let parent = start_proxy("").await;
    let child = start_proxy(&parent_table("p", parent.addr.port())).await;
    let (status, _, _) = fetch(child.addr, get(&origin.url("/echo"))).await;
    assert_eq!(status, StatusCode::LOOP_DETECTED);
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn urls_keep_their_parent_and_only_a_dead_parents_share_moves() {
    let origin = Origin::start().await;
    let a = start_proxy(&named("pa")).await;
    let b = start_proxy(&named("pb")).await;
    let child = start_proxy(&format!(
        "{}[parents]\ndown_for = \"1h\"\n{}{}",
        named("child"),
        parent_table("a", a.addr.port()),
        parent_table("b", b.addr.port())
    ))
    .await;
    let paths: Vec<String> = (0..40).map(|i| format!("/echo?object={i}")).collect();
    let mut first = HashMap::new();
    for p in &paths {
        first.insert(p.clone(), served_by(&child, &origin, p).await);
    }
    let on_a = first.values().filter(|v| *v == "1.1 pa").count();
    assert!(
        (5..35).contains(&on_a),
        "both parents get a share: {on_a} of 40 on a"
    );
    for p in &paths {
        assert_eq!(
            served_by(&child, &origin, p).await,
            first[p],
            "{p} keeps its parent"
        );
    }
    // Parent a goes away: its URLs move to b, b's stay on b.
    let RunningProxy { shutdown, task, .. } = a;
    drop(shutdown);
    within("parent a stops", task).await.unwrap();
    for p in &paths {
        assert_eq!(served_by(&child, &origin, p).await, "1.1 pb", "{p}");
    }
    let b_before = b.proxy.metrics.requests();
    assert!(b_before >= 40);
}

#[tokio::test]
async fn a_tunnel_goes_through_the_parent() {
    let (echo, accepted, _task) = echo_server().await;
    let parent = start_proxy(&connect_ports(echo.port())).await;
    let child = start_proxy(&format!(
        "[server]\nname = \"child\"\nconnect_ports = [443, {}]\n{}",
        echo.port(),
        parent_table("p", parent.addr.port())
    ))
    .await;
    let (mut stream, head) = open_tunnel(child.addr, echo).await;
    assert_eq!(head.status, 200, "{}", head.status_line);
    stream.write_all(b"through two proxies").await.unwrap();
    let mut back = [0u8; 19];
    within("echo", stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, b"through two proxies");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    wait_until("the parent counts its tunnel", || {
        parent
            .proxy
            .metrics
            .tunnels
            .load(std::sync::atomic::Ordering::SeqCst)
            == 1
    })
    .await;
}

#[tokio::test]
async fn never_direct_without_a_parent_is_a_502_and_always_direct_skips_parents() {
    let origin = Origin::start().await;
    let dead = refused_addr();
    let child = start_proxy(&format!(
        "{}[parents]\nnever_direct = [\"*\"]\n{}",
        named("child"),
        parent_table("dead", dead.port())
    ))
    .await;
    let (status, _, page) = fetch(child.addr, get(&origin.url("/echo"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        String::from_utf8_lossy(&page).contains("no parent proxy could be reached"),
        "{}",
        String::from_utf8_lossy(&page)
    );
    assert_eq!(origin.requests(), 0);

    let child = start_proxy(&format!(
        "{}[parents]\nalways_direct = [\"127.0.0.1\"]\n{}",
        named("child"),
        parent_table("dead", dead.port())
    ))
    .await;
    assert_eq!(served_by(&child, &origin, "/echo").await, "direct");

    // Neither list: the dead parent is skipped and the request goes direct.
    let child = start_proxy(&format!(
        "{}{}",
        named("child"),
        parent_table("dead", dead.port())
    ))
    .await;
    assert_eq!(served_by(&child, &origin, "/echo").await, "direct");
}

#[tokio::test]
async fn the_parent_gets_an_absolute_target_and_its_credentials() {
    // A plain origin stands in for the parent: it records what it got.
    let fake_parent = Origin::start().await;
    let child = start_proxy(&format!(
        "{}[[parent]]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"child\"\npassword = \"s3cret\"\n",
        named("child"),
        fake_parent.addr.port()
    ))
    .await;
    let (status, _, _) = fetch(child.addr, get("http://origin.example:8080/fixed?x=1")).await;
    assert_eq!(status, StatusCode::OK);
    let seen = fake_parent.last();
    assert_eq!(seen.target, "http://origin.example:8080/fixed?x=1");
    assert_eq!(
        seen.header("proxy-authorization").as_deref(),
        Some("Basic Y2hpbGQ6czNjcmV0")
    );
    assert_eq!(seen.header("host").as_deref(), Some("origin.example:8080"));
}

#[tokio::test]
async fn the_access_log_names_the_parent_with_squids_carp_code() {
    let origin = Origin::start().await;
    let parent = start_proxy(&named("parent")).await;
    let child = start_proxy(&format!(
        "{}{}",
        named("child"),
        parent_table("p", parent.addr.port())
    ))
    .await;
    fetch(child.addr, get(&origin.url("/echo"))).await;
    let metrics = child.proxy.metrics.clone();
    wait_until("logged", move || metrics.requests() >= 1).await;
    child.proxy.log.as_ref().unwrap().close();
    let text = std::fs::read_to_string(child.dir.path().join("logs/access.log")).unwrap();
    let line = text.lines().next().unwrap();
    let hier = line.split_whitespace().nth(8).unwrap();
    assert_eq!(hier, "CARP/127.0.0.1", "{line}");
}
