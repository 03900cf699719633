//! Access control, Basic proxy authentication and anonymization, end to
//! end: rules as written in config.toml, real clients from chosen source
//! addresses, and a counting origin that shows what reached it.

use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::support::*;

/// Sends a raw request from `source` (a loopback address) to the proxy.
async fn from_source(source: &str, proxy: std::net::SocketAddr, request: &str) -> RawResponse {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = within("connect", socket.connect(proxy)).await.unwrap();
    within("write", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    let (bytes, _) = read_to_end(&mut stream).await;
    parse_response(&bytes)
}

/// Sends a raw request and reads one response, leaving the connection open
/// (error answers to CONNECT keep the connection alive).
async fn one_response(proxy: std::net::SocketAddr, request: &str) -> RawResponse {
    let mut stream = connect(proxy).await;
    within("write", stream.write_all(request.as_bytes()))
        .await
        .unwrap();
    read_one_response(&mut stream).await
}

fn get_close(url: &str) -> String {
    format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn default_rules_let_a_loopback_client_in() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let r = from_source("127.0.0.1", proxy.addr, &get_close(&origin.url("/fixed"))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn src_rule_keeps_other_clients_out_with_a_page_naming_the_rule() {
    let origin = Origin::start().await;
    let proxy = start_proxy(
        "[[acl]]\nname = \"only-dot-one\"\naction = \"allow\"\nsrc = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let url = origin.url("/fixed");
    assert_eq!(
        from_source("127.0.0.1", proxy.addr, &get_close(&url))
            .await
            .status,
        200
    );
    let denied = from_source("127.0.0.2", proxy.addr, &get_close(&url)).await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.text().contains("implicit final deny"),
        "{}",
        denied.text()
    );
    assert_eq!(
        origin.requests(),
        1,
        "a denied request never reaches the origin"
    );
}

#[tokio::test]
async fn deny_rules_by_domain_port_method_and_destination() {
    let origin = Origin::start().await;
    let port = origin.addr.port();
    let config = format!(
        "[[acl]]\nname = \"no-localhost-name\"\naction = \"deny\"\ndst_domain = [\".localhost\"]\n\
         [[acl]]\nname = \"no-delete\"\naction = \"deny\"\nmethod = [\"DELETE\"]\n\
         [[acl]]\nname = \"no-odd-port\"\naction = \"deny\"\nport = [{}]\n\
         [[acl]]\naction = \"allow\"\nport = [{port}]\n",
        port + 1
    );
    let proxy = start_proxy(&config).await;
    let url = origin.url("/fixed");
    let (status, _, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, 200, "{body:?}");
    let (status, _, body) = fetch(proxy.addr, request(http::Method::DELETE, &url, empty())).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("no-delete"));
    let by_name = format!("http://LocalHost.:{port}/fixed");
    let (status, _, body) = fetch(proxy.addr, get(&by_name)).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("no-localhost-name"));
    let other_port = format!("http://127.0.0.1:{}/fixed", port + 1);
    let (status, _, _) = fetch(proxy.addr, get(&other_port)).await;
    assert_eq!(status, 403);
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn dst_rule_catches_names_and_every_ip_spelling_of_an_internal_address() {
    let origin = Origin::start().await;
    let port = origin.addr.port();
    let proxy = start_proxy(
        "[[acl]]\nname = \"no-loopback-dst\"\naction = \"deny\"\ndst = [\"127.0.0.0/8\", \"::1\"]\n\
         [[acl]]\naction = \"allow\"\n",
    )
    .await;
    for host in [
        "localhost",
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
    ] {
        let url = format!("http://{host}:{port}/fixed");
        let (status, _, body) = fetch(proxy.addr, get(&url)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}: {body:?}");
    }
    let r = raw_exchange(
        proxy.addr,
        format!("GET http://user:pw@127.0.0.1:{port}/fixed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400, "userinfo in the URI is refused");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn connect_can_be_denied_by_method() {
    let (echo, _, _task) = echo_server().await;
    let proxy = start_proxy(&format!(
        "{}[[acl]]\naction = \"deny\"\nmethod = [\"CONNECT\"]\n[[acl]]\naction = \"allow\"\n",
        connect_ports(echo.port())
    ))
    .await;
    let r = one_response(
        proxy.addr,
        &format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\n"),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn destination_that_is_the_proxy_itself_is_refused_as_a_loop() {
    let proxy = start_proxy("[privacy]\nmode = \"standard\"\n").await;
    let url = format!("http://{}/loop", proxy.addr);
    let (status, _, _) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::LOOP_DETECTED);
}

fn users_file(dir: &tempfile::TempDir, user: &str, password: &str) {
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(dir.path().join("users"), format!("{user}:{hash}\n")).unwrap();
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

async fn auth_proxy(extra: &str) -> RunningProxy {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    users_file(&dir, "alice", "wonder land");
    start_proxy_in(
        &format!("[auth]\nrealm = \"test realm\"\nusers_file = \"users\"\n{extra}"),
        dir,
    )
    .await
}

#[tokio::test]
async fn missing_wrong_unknown_or_malformed_credentials_get_407() {
    let origin = Origin::start().await;
    let proxy = auth_proxy("").await;
    let url = origin.url("/fixed");
    let (status, headers, _) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    assert_eq!(
        headers["proxy-authenticate"],
        "Basic realm=\"test realm\", charset=\"UTF-8\""
    );
    for credentials in [
        basic("alice:wrong"),
        basic("bob:wonder land"),
        "Basic ###".to_owned(),
        "Bearer abc".to_owned(),
        basic("no-colon"),
    ] {
        let mut r = get(&url);
        r.headers_mut()
            .insert("proxy-authorization", credentials.parse().unwrap());
        let (status, _, _) = fetch(proxy.addr, r).await;
        assert_eq!(status, 407, "{credentials}");
    }
    let r = one_response(
        proxy.addr,
        "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 407, "CONNECT needs credentials too");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn valid_credentials_pass_and_never_reach_the_origin() {
    let origin = Origin::start().await;
    let proxy = auth_proxy("").await;
    let mut r = get(&origin.url("/echo"));
    r.headers_mut().insert(
        "proxy-authorization",
        basic("alice:wonder land").parse().unwrap(),
    );
    let (status, _, _) = fetch(proxy.addr, r).await;
    assert_eq!(status, 200);
    assert!(origin.last().header("proxy-authorization").is_none());
}

#[tokio::test]
async fn curl_gets_407_then_200_with_proxy_user() {
    if !curl_available("curl_gets_407_then_200_with_proxy_user").await {
        return;
    }
    let origin = Origin::start().await;
    let proxy = auth_proxy("").await;
    let curl = |user: Option<&str>| {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(["-x", &format!("http://{}", proxy.addr)]);
        if let Some(user) = user {
            cmd.args(["--proxy-user", user]);
        }
        cmd.arg(origin.url("/fixed"));
        cmd
    };
    let out = within("curl", curl(None).output()).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "407");
    let out = within("curl", curl(Some("alice:wonder land")).output())
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

#[tokio::test]
async fn user_rules_allow_only_named_users() {
    let origin = Origin::start().await;
    let proxy = auth_proxy("[[acl]]\naction = \"allow\"\nuser = [\"carol\"]\n").await;
    let mut r = get(&origin.url("/fixed"));
    r.headers_mut().insert(
        "proxy-authorization",
        basic("alice:wonder land").parse().unwrap(),
    );
    let (status, _, _) = fetch(proxy.addr, r).await;
    assert_eq!(status, 403, "alice is authenticated but not allowed");
}

#[tokio::test]
async fn plain_text_users_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice:plain\n").unwrap();
    let config =
        cachalot::config::Config::from_toml_str("[auth]\nusers_file = \"users\"\n", dir.path())
            .unwrap();
    let err = match cachalot::shared::Proxy::new(config, "127.0.0.1:1".parse().unwrap()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a plain-text users file must be refused"),
    };
    assert!(
        err.contains("auth.users_file") && err.contains("htpasswd -B"),
        "{err}"
    );
}

fn identifying(url: &str) -> http::Request<TestBody> {
    let mut r = get(url);
    for (k, v) in [
        ("x-forwarded-for", "10.9.9.9"),
        ("forwarded", "for=10.9.9.9"),
        ("via", "1.1 inner-proxy"),
        ("x-real-ip", "10.9.9.9"),
        ("client-ip", "10.9.9.9"),
        ("from", "me@example.com"),
        ("referer", "http://private.example/"),
        ("accept-language", "fr"),
        ("user-agent", "MyBrowser/1"),
        ("cookie", "session=1"),
    ] {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

#[tokio::test]
async fn privacy_off_adds_x_forwarded_for_and_via() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    fetch(proxy.addr, identifying(&origin.url("/echo"))).await;
    let seen = origin.last();
    assert_eq!(
        seen.header("x-forwarded-for").unwrap(),
        "10.9.9.9, 127.0.0.1"
    );
    assert_eq!(seen.header("via").unwrap(), "1.1 inner-proxy, 1.1 cachalot");
    assert_eq!(seen.header("referer").unwrap(), "http://private.example/");
}

#[tokio::test]
async fn privacy_standard_strips_identifying_fields_and_adds_none() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[privacy]\nmode = \"standard\"\n").await;
    let (_, headers, _) = fetch(proxy.addr, identifying(&origin.url("/echo"))).await;
    let seen = origin.last();
    for gone in [
        "x-forwarded-for",
        "forwarded",
        "via",
        "x-real-ip",
        "client-ip",
        "from",
    ] {
        assert!(seen.header(gone).is_none(), "{gone} reached the origin");
    }
    assert_eq!(seen.header("referer").unwrap(), "http://private.example/");
    assert_eq!(seen.header("user-agent").unwrap(), "MyBrowser/1");
    assert!(
        headers.get("via").is_none(),
        "no Via on the response either"
    );
}

#[tokio::test]
async fn privacy_paranoid_also_hides_referer_language_and_agent() {
    let origin = Origin::start().await;
    let proxy = start_proxy(
        "[privacy]\nmode = \"paranoid\"\nstrip_response_headers = [\"x-echo-method\"]\n",
    )
    .await;
    let (_, headers, _) = fetch(proxy.addr, identifying(&origin.url("/echo"))).await;
    let seen = origin.last();
    assert!(seen.header("referer").is_none());
    assert!(seen.header("accept-language").is_none());
    assert_eq!(
        seen.header("user-agent").unwrap(),
        cachalot::anonymize::GENERIC_USER_AGENT
    );
    assert_eq!(
        seen.header("cookie").unwrap(),
        "session=1",
        "Cookie only when listed"
    );
    assert!(
        headers.get("x-echo-method").is_none(),
        "response field stripped"
    );
}
