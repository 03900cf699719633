//! Forwarding absolute-form `http://` requests: methods and bodies, framing
//! (chunked, HTTP/1.0, keep-alive), header rewriting (hop-by-hop, Via,
//! Host), Max-Forwards, and what the client sees when the target or the
//! origin fails.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test]
async fn get_reaches_origin_in_origin_form_and_answer_comes_back() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let (status, headers, body) = fetch(proxy.addr, get(&origin.url("/echo?q=1"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-echo-method"], "GET");
    assert_eq!(headers["x-echo-target"], "/echo?q=1");
    assert!(body.is_empty());
    assert_eq!(origin.requests(), 1);
    assert_eq!(origin.last().target, "/echo?q=1");
}

#[tokio::test]
async fn head_keeps_content_length_and_has_no_body() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let (status, headers, body) = fetch(
        proxy.addr,
        request(Method::HEAD, &origin.url("/fixed"), empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(origin.last().method, Method::HEAD);
    assert_eq!(
        headers.get("content-length").map(|v| v.to_str().unwrap()),
        Some(FIXED_BODY.len().to_string().as_str()),
        "HEAD must announce the length GET would have"
    );
    assert!(body.is_empty());
}

#[tokio::test]
async fn post_and_put_bodies_reach_origin_and_echo_back() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut client = Client::connect(proxy.addr).await;
    for (method, payload) in [
        (Method::POST, "name=cachalot&kind=whale".to_owned()),
        (Method::PUT, "p".repeat(100_000)),
    ] {
        let response = client
            .send(request(
                method.clone(),
                &origin.url("/echo"),
                full(payload.clone()),
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-echo-method"], method.as_str());
        let body = body_bytes(response).await.unwrap();
        assert_eq!(body, payload.as_bytes(), "{method} body echoed");
        let seen = origin.last();
        assert_eq!(seen.method, method);
        assert_eq!(seen.body, payload.as_bytes());
    }
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn chunked_upload_reaches_origin_intact() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let parts = ["first chunk|", "second chunk|", "", "third"];
    let (status, _, body) = fetch(
        proxy.addr,
        request(Method::POST, &origin.url("/echo"), chunks(&parts)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, parts.concat().as_bytes());
    assert_eq!(origin.last().body, parts.concat().as_bytes());
}

#[tokio::test]
async fn raw_chunked_upload_is_dechunked_and_reframed_for_origin() {
    // Written by hand so the chunk framing (with an extension and a trailer)
    // is exactly what a client might send.
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        origin.url("/echo"),
        origin.addr
    );
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert_eq!(response.status, 200);
    assert_eq!(origin.last().body, "hello world".as_bytes());
}

#[tokio::test]
async fn chunked_response_reaches_client_intact() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let (status, _, body) = fetch(proxy.addr, get(&origin.url("/chunked"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, CHUNKS.concat().as_bytes());
}

#[tokio::test]
async fn http_1_0_client_gets_complete_response_and_via_says_1_0() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let request = format!("GET {} HTTP/1.0\r\n\r\n", origin.url("/fixed"));
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    assert_eq!(response.text(), FIXED_BODY);
    // RFC 9110 §7.6.3: Via names the protocol the request arrived with.
    assert_eq!(origin.last().header("via").as_deref(), Some("1.0 cachalot"));
    assert_eq!(origin.last().header("host"), Some(origin.addr.to_string()));
    // The upstream hop is our own HTTP/1.1 connection.
    assert_eq!(origin.last().version, http::Version::HTTP_11);
}

#[tokio::test]
async fn http_1_0_client_gets_chunked_origin_body_without_chunk_framing() {
    // An HTTP/1.0 client cannot read chunked framing (RFC 9112 §6.1).
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let request = format!("GET {} HTTP/1.0\r\n\r\n", origin.url("/chunked"));
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(response.text(), CHUNKS.concat());
}

#[tokio::test]
async fn two_requests_share_one_client_connection() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut client = Client::connect(proxy.addr).await;
    for path in ["/fixed", "/echo"] {
        let response = client.send(get(&origin.url(path))).await;
        assert_eq!(response.status(), StatusCode::OK);
        body_bytes(response).await.unwrap();
    }
    assert!(
        !client.conn.is_finished(),
        "the client connection stayed open"
    );
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn pipelined_requests_on_one_raw_connection_are_answered_in_order() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut stream = connect(proxy.addr).await;
    let host = origin.addr;
    let both = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\n\r\nPOST {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n\r\nabc",
        origin.url("/fixed"),
        origin.url("/echo"),
    );
    stream.write_all(both.as_bytes()).await.unwrap();
    let first = read_one_response(&mut stream).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), FIXED_BODY);
    let second = read_one_response(&mut stream).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "abc");
}

#[tokio::test]
async fn hop_by_hop_request_fields_are_removed_and_via_added() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close, X-Private\r\nX-Private: secret\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         Upgrade: websocket\r\nProxy-Authorization: Basic dXNlcjpwdw==\r\nX-Kept: yes\r\n\r\n",
        origin.url("/echo"),
        origin.addr
    );
    let response = raw_exchange(proxy.addr, request.as_bytes()).await;
    assert_eq!(response.status, 200, "{}", response.status_line);
    let seen = origin.last();
    for name in [
        "x-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "proxy-authorization",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the origin");
    }
    // hyper may add its own Connection for the upstream hop, never ours.
    let connection = seen.header("connection").unwrap_or_default();
    assert!(
        !connection.to_ascii_lowercase().contains("x-private"),
        "{connection}"
    );
    assert_eq!(seen.header("x-kept").as_deref(), Some("yes"));
    assert_eq!(seen.header("via").as_deref(), Some("1.1 cachalot"));
}

#[tokio::test]
async fn hop_by_hop_response_fields_are_removed_and_via_added() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let (status, headers, body) = fetch(proxy.addr, get(&origin.url("/hop"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "hop");
    for name in ["x-origin-private", "keep-alive", "proxy-authenticate"] {
        assert!(!headers.contains_key(name), "{name} reached the client");
    }
    let connection = joined(&headers, "connection").unwrap_or_default();
    assert!(
        !connection.to_ascii_lowercase().contains("x-origin-private"),
        "{connection}"
    );
    assert_eq!(headers["x-origin-kept"], "yes");
    assert_eq!(joined(&headers, "via").as_deref(), Some("1.1 cachalot"));
}

#[tokio::test]
async fn foreign_via_is_kept_and_ours_appended() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = get(&origin.url("/echo"));
    request
        .headers_mut()
        .insert("via", "1.0 fred".parse().unwrap());
    let (status, _, _) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        origin.last().header("via").as_deref(),
        Some("1.0 fred, 1.1 cachalot")
    );
}

#[tokio::test]
async fn absolute_uri_wins_over_conflicting_host_field() {
    // RFC 9112 §3.2.2: a proxy replaces Host with the URI's authority.
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = get(&origin.url("/echo"));
    request
        .headers_mut()
        .insert("host", "evil.example:8080".parse().unwrap());
    let (status, headers, _) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-echo-host"], origin.addr.to_string().as_str());
    assert_eq!(origin.last().header("host"), Some(origin.addr.to_string()));
}

#[tokio::test]
async fn request_already_via_cachalot_is_refused_as_a_loop() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = get(&origin.url("/echo"));
    request
        .headers_mut()
        .insert("via", "1.0 fred, 1.1 cachalot".parse().unwrap());
    let (status, _, body) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::LOOP_DETECTED);
    assert!(String::from_utf8_lossy(&body).contains("loop"));
    assert_eq!(origin.requests(), 0);
    assert_eq!(origin.connections(), 0);
}

#[tokio::test]
async fn origin_form_request_gets_400_page_mentioning_proxy() {
    let proxy = start_proxy("").await;
    let response = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(response.status, 400);
    assert!(response.text().contains("proxy"), "{}", response.text());
}

#[tokio::test]
async fn https_absolute_form_gets_501() {
    let proxy = start_proxy("").await;
    let (status, _, body) = fetch(proxy.addr, get("https://127.0.0.1:1/")).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(String::from_utf8_lossy(&body).contains("CONNECT"));
}

#[tokio::test]
async fn unknown_host_gets_502() {
    let proxy = start_proxy("[timeouts]\nupstream_connect = \"5s\"\n").await;
    let (status, _, body) = fetch(proxy.addr, get("http://nonexistent.invalid/")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("nonexistent.invalid"));
}

#[tokio::test]
async fn refused_connection_gets_502() {
    let proxy = start_proxy("").await;
    let dead = refused_addr();
    let (status, _, body) = fetch(proxy.addr, get(&format!("http://{dead}/"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("refused"));
}

#[tokio::test]
async fn unanswered_connect_times_out_with_504() {
    // On loopback a connect never hangs unless the listener's accept queue
    // is full: then Linux drops further SYNs and the connect waits. Fill a
    // backlog-0 listener that never accepts until a connect stalls.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let mut stalled = false;
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(e)) => panic!("filler connect failed: {e}"),
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(stalled, "could not fill the accept queue");
    let proxy = start_proxy("[timeouts]\nupstream_connect = \"500ms\"\n").await;
    let started = Instant::now();
    let (status, _, _) = fetch(proxy.addr, get(&format!("http://{addr}/"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_millis(450));
    drop(listener);
}

#[tokio::test]
async fn slow_origin_response_times_out_with_504() {
    let origin = Origin::start().await;
    let proxy = start_proxy("[timeouts]\nupstream_response = \"500ms\"\n").await;
    let started = Instant::now();
    let (status, _, _) = fetch(proxy.addr, get(&origin.url("/slow/3000"))).await;
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(elapsed >= Duration::from_millis(450), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn origin_resetting_before_headers_gets_502() {
    let origin = RawOrigin::start(Misbehaviour::ResetBeforeHead).await;
    let proxy = start_proxy("").await;
    let (status, _, _) = fetch(proxy.addr, get(&origin.url("/"))).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(origin.accepted() >= 1);
}

#[tokio::test]
async fn origin_closing_mid_body_aborts_the_raw_client_transfer() {
    let origin = RawOrigin::start(Misbehaviour::ShortBody { reset: false }).await;
    let proxy = start_proxy("").await;
    let mut stream = connect(proxy.addr).await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        origin.url("/"),
        origin.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Keep-alive request: only an aborted transfer ends in EOF here.
    let (bytes, _) = read_to_end(&mut stream).await;
    let response = parse_response(&bytes);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length").as_deref(), Some("1000"));
    assert!(
        response.body.len() < 1000,
        "got {} bytes",
        response.body.len()
    );
}

#[tokio::test]
async fn origin_failing_mid_body_is_a_body_error_for_a_hyper_client() {
    for misbehaviour in [
        Misbehaviour::ShortBody { reset: false },
        Misbehaviour::ShortBody { reset: true },
        Misbehaviour::ShortChunked,
    ] {
        let origin = RawOrigin::start(misbehaviour).await;
        let proxy = start_proxy("").await;
        let mut client = Client::connect(proxy.addr).await;
        let response = client.send(get(&origin.url("/"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut received = 0;
        let outcome = within("short body", async {
            loop {
                match body.frame().await {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(frame)) => {
                        received += frame.data_ref().map_or(0, |d| d.len());
                    }
                }
            }
        })
        .await;
        assert!(
            outcome.is_err(),
            "{misbehaviour:?}: a short body ({received} bytes) looked complete"
        );
        assert!(received < 1000);
    }
}

#[tokio::test]
async fn max_forwards_zero_trace_is_answered_by_the_proxy() {
    // RFC 9110 §7.6.2: with Max-Forwards 0 the proxy is the final recipient.
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = request(Method::TRACE, &origin.url("/echo"), empty());
    request
        .headers_mut()
        .insert("max-forwards", "0".parse().unwrap());
    request
        .headers_mut()
        .insert("x-probe", "traced".parse().unwrap());
    let (status, headers, body) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "message/http");
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("TRACE "), "{text}");
    assert!(text.contains("x-probe: traced"), "{text}");
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn max_forwards_zero_options_is_answered_by_the_proxy() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = request(Method::OPTIONS, &origin.url("/echo"), empty());
    request
        .headers_mut()
        .insert("max-forwards", "0".parse().unwrap());
    let (status, headers, _) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["allow"].to_str().unwrap().contains("GET"));
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn max_forwards_five_reaches_origin_as_four() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let mut request = request(Method::OPTIONS, &origin.url("/echo"), empty());
    request
        .headers_mut()
        .insert("max-forwards", "5".parse().unwrap());
    let (status, headers, _) = fetch(proxy.addr, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-echo-method"], "OPTIONS");
    assert_eq!(origin.requests(), 1);
    assert_eq!(origin.last().header("max-forwards").as_deref(), Some("4"));
}

#[tokio::test]
async fn a_request_followed_by_a_half_close_is_answered() {
    let origin = Origin::start().await;
    let proxy = start_proxy("").await;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        origin.url("/slow/20"),
        origin.addr
    );
    for _ in 0..100 {
        let mut stream = connect(proxy.addr).await;
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let (bytes, _) = read_to_end(&mut stream).await;
        let response = parse_response(&bytes);
        assert_eq!(response.status, 200, "{}", response.status_line);
        assert!(
            response.text().ends_with("slow done"),
            "{}",
            response.text()
        );
    }
}
