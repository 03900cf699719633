//! Request coalescing end to end: many real clients, each on its own
//! connection, ask the proxy for one URL at once, and an origin that takes
//! its time counts how often it is asked. One leader fetches; its followers
//! share the response as it arrives, unless they may not (private,
//! no-store, another variant), and never hang when the leader fails.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{request, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Barrier};
use tokio::task::JoinHandle;

use crate::scripted::{date_ago, respond};
use crate::support::{
    body_bytes, fetch, get, refused_addr, start_proxy, wait_until, within, BoxError, Client,
    TestBody,
};

// ---------------------------------------------------------------- origins

type Reply = Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>;
type Script = dyn Fn(request::Parts, usize) -> Reply + Send + Sync;

/// A hyper origin on 127.0.0.1:0 whose answers are futures (so they can
/// wait before the head, or stream their body), counting requests.
struct SlowOrigin {
    addr: SocketAddr,
    count: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for SlowOrigin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SlowOrigin {
    async fn start<F, R>(script: F) -> SlowOrigin
    where
        F: Fn(request::Parts, usize) -> R + Send + Sync + 'static,
        R: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(move |parts, n| Box::pin(script(parts, n)));
        let counter = count.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, script) = (counter.clone(), script.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        let reply = script(req.into_parts().0, n);
                        async move { Ok::<_, Infallible>(reply.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        SlowOrigin {
            addr,
            count,
            accept,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// A response body fed by a channel: the origin decides when each chunk goes.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

/// 16 chunks of 64 KiB, chunk `i` filled with the letter `a + i`.
fn chunk(i: usize) -> Bytes {
    Bytes::from(vec![b'a' + i as u8; 64 * 1024])
}

fn whole_body(chunks: usize) -> Bytes {
    (0..chunks).flat_map(|i| chunk(i).to_vec()).collect()
}

/// A 200 with `Cache-Control: max-age=60` and an explicit Content-Length
/// whose `chunks` chunks are sent `gap` apart; `done` receives the moment
/// the last one was handed over.
fn streamed(chunks: usize, gap: Duration, done: Arc<Mutex<Option<Instant>>>) -> Response<TestBody> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0..chunks {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if tx.send(chunk(i)).await.is_err() {
                return;
            }
        }
        *done.lock().unwrap() = Some(Instant::now());
    });
    let mut response = Response::new(ChannelBody(rx).boxed());
    let h = response.headers_mut();
    h.insert("cache-control", "max-age=60".parse().unwrap());
    h.insert("content-length", (chunks * 64 * 1024).into());
    response
}

// ---------------------------------------------------------------- clients

/// Awaits every task, within the deadline.
async fn all<T: Send + 'static>(what: &str, tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    within(what, async {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    })
    .await
}

/// Opens `n` client connections to the proxy, 50 at a time: the proxy's
/// listen backlog (128, tokio's default) drops the SYNs of a larger burst,
/// and each dropped SYN costs its client a 1 s retransmission.
async fn connect_all(proxy: SocketAddr, n: usize) -> Vec<Client> {
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = (clients.len()..n.min(clients.len() + 50))
            .map(|_| tokio::spawn(Client::connect(proxy)))
            .collect();
        clients.extend(all("a batch of connections", batch).await);
    }
    clients
}

/// A GET for `url` carrying one extra header field.
fn get_with(url: &str, name: &'static str, value: &str) -> Request<TestBody> {
    let mut request = get(url);
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

fn cache_status(headers: &http::HeaderMap) -> String {
    headers
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Waits until the tee has stored what it fetched (storage is asynchronous).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_make_one_origin_request() {
    let origin = SlowOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("the one answer #{n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/popular");
    let clients = connect_all(proxy.addr, 200).await;
    let go = Arc::new(Barrier::new(clients.len() + 1));
    let tasks = clients
        .into_iter()
        .map(|mut client| {
            let (url, go) = (url.clone(), go.clone());
            tokio::spawn(async move {
                go.wait().await;
                let response = client.send(get(&url)).await;
                let status = response.status();
                let body = body_bytes(response).await.unwrap();
                (status, body, Instant::now())
            })
        })
        .collect();
    go.wait().await;
    let start = Instant::now();
    let results = all("200 clients", tasks).await;
    let total = start.elapsed();
    for (status, body, _) in &results {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(&body[..], b"the one answer #1");
    }
    assert_eq!(origin.requests(), 1);
    let mut done: Vec<Duration> = results
        .iter()
        .map(|r| r.2.saturating_duration_since(start))
        .collect();
    done.sort();
    eprintln!(
        "200 clients: origin requests {}, first completion {} ms, last {} ms, coalesced {}",
        origin.requests(),
        done[0].as_millis(),
        done[done.len() - 1].as_millis(),
        proxy.proxy.cache.coalescer.coalesced()
    );
    assert!(total < Duration::from_secs(3), "batch took {total:?}");
}

/// Reads a response to its end, noting when its first body byte came.
async fn read_timed(addr: SocketAddr, url: String) -> (Bytes, Option<Instant>) {
    let mut client = Client::connect(addr).await;
    let response = client.send(get(&url)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let mut first = None;
    within("streamed body", async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                if !data.is_empty() && first.is_none() {
                    first = Some(Instant::now());
                }
                bytes.extend_from_slice(&data);
            }
        }
    })
    .await;
    (Bytes::from(bytes), first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_get_first_bytes_before_the_origin_finishes() {
    let done = Arc::new(Mutex::new(None));
    let origin_done = done.clone();
    let origin = SlowOrigin::start(move |_, _| {
        let done = origin_done.clone();
        async move { streamed(16, Duration::from_millis(125), done) }
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/mib");
    let start = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(read_timed(proxy.addr, url.clone())))
        .collect();
    let late = {
        let (addr, url) = (proxy.addr, url.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            read_timed(addr, url).await
        })
    };
    let results = all("20 streamed clients", tasks).await;
    let (late_body, late_first) = all("late joiner", vec![late]).await.remove(0);
    let finished = done
        .lock()
        .unwrap()
        .expect("the origin sent its last chunk");
    let expected = whole_body(16);
    for (i, (body, first)) in results.iter().enumerate() {
        assert!(body[..] == expected[..], "client {i}: body differs");
        let first = first.expect("a first byte");
        assert!(
            first < finished,
            "client {i}: first byte at {:?}, origin done at {:?}",
            first - start,
            finished - start
        );
    }
    assert!(late_body[..] == expected[..], "late joiner: body differs");
    eprintln!(
        "streamed: origin done at {} ms; late joiner's first byte at {} ms",
        (finished - start).as_millis(),
        late_first.map_or(0, |f| (f - start).as_millis())
    );
    assert_eq!(origin.requests(), 1);
}

/// 20 clients with distinct `x-client` values against an origin answering
/// each after 300 ms with `cache_control` and a body naming its client.
async fn each_client_gets_its_own(cache_control: &'static str) {
    let origin = SlowOrigin::start(move |parts, _| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = parts.headers.get("x-client").unwrap().to_str().unwrap();
        respond(
            200,
            &[("cache-control", cache_control.into())],
            &format!("for {client}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/mine");
    let tasks = (0..20)
        .map(|i| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move {
                let (_, _, body) = fetch(addr, get_with(&url, "x-client", &format!("c{i}"))).await;
                (i, body)
            })
        })
        .collect();
    for (i, body) in all("20 clients", tasks).await {
        assert_eq!(body, format!("for c{i}").as_bytes(), "{cache_control}");
    }
    assert_eq!(origin.requests(), 20, "{cache_control}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_responses_are_not_shared() {
    each_client_gets_its_own("private, max-age=60").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_responses_are_not_shared() {
    each_client_gets_its_own("no-store").await;
}

fn language_of(parts: &request::Parts) -> String {
    parts
        .headers
        .get("accept-language")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_mismatch_followers_go_on_their_own() {
    // RFC 9111 §4.1: a response selected by another request's fields is not ours.
    let origin = SlowOrigin::start(|parts, _| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("vary", "Accept-Language".into()),
            ],
            &format!("lang={}", language_of(&parts)),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/greeting");
    let tasks = (0..20)
        .map(|i| {
            let lang = if i % 2 == 0 { "en" } else { "fr" };
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move {
                let (_, _, body) = fetch(addr, get_with(&url, "accept-language", lang)).await;
                (lang, body)
            })
        })
        .collect();
    for (lang, body) in all("20 clients, two languages", tasks).await {
        assert_eq!(body, format!("lang={lang}").as_bytes());
    }
    assert_eq!(origin.requests(), 2, "one origin request per language");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_disconnecting_mid_body_does_not_hurt_followers() {
    let done = Arc::new(Mutex::new(None));
    let origin_done = done.clone();
    let origin = SlowOrigin::start(move |_, _| {
        let done = origin_done.clone();
        async move { streamed(16, Duration::from_millis(80), done) }
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/abandoned");
    let mut leader = Client::connect(proxy.addr).await;
    let response = leader.send(get(&url)).await;
    let mut leader_body = response.into_body();
    let first = within("leader's first bytes", leader_body.frame()).await;
    assert!(first.unwrap().is_ok());
    let followers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(read_timed(proxy.addr, url.clone())))
        .collect();
    let coalescer = proxy.proxy.cache.coalescer.clone();
    wait_until("followers joined", || coalescer.coalesced() >= 10).await;
    // The leader goes away, mid-body.
    drop(leader_body);
    leader.conn.abort();
    drop(leader);
    assert!(
        done.lock().unwrap().is_none(),
        "the origin is still sending"
    );
    let expected = whole_body(16);
    for (body, _) in all("followers", followers).await {
        assert!(body[..] == expected[..], "a follower's body differs");
    }
    settle().await;
    let (status, headers, body) = fetch(proxy.addr, get(&url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body[..] == expected[..]);
    assert_eq!(cache_status(&headers), "cachalot; hit");
    assert_eq!(origin.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_disconnecting_before_the_head_still_answers_its_followers() {
    let origin = SlowOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("answer #{n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/leader-left");
    let mut leader = Client::connect(proxy.addr).await;
    let waiting = {
        let url = url.clone();
        tokio::spawn(async move {
            let _ = leader.try_send(get(&url)).await;
        })
    };
    wait_until("the leader reached the origin", || origin.requests() >= 1).await;
    let followers: Vec<_> = (0..10)
        .map(|_| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move { fetch(addr, get(&url)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The leader's client goes away before any response head. A closed
    // client side reads the same as a half-close (RFC 9112 §9.6), which is
    // answered: the leader's request goes on, and its answer serves the
    // followers without another origin request.
    waiting.abort();
    for (status, _, body) in all("followers", followers).await {
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"answer #1"[..]));
    }
    assert_eq!(origin.requests(), 1, "only the departed leader's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_failures_release_every_follower() {
    let proxy = start_proxy("").await;

    // (a) Nothing listens: every client gets a 5xx, quickly.
    let url = format!("http://{}/refused", refused_addr());
    let start = Instant::now();
    let tasks = (0..20)
        .map(|_| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move { fetch(addr, get(&url)).await.0 })
        })
        .collect();
    for status in all("20 clients, refused", tasks).await {
        assert!(status.is_server_error(), "{status}");
    }
    let took = start.elapsed();
    eprintln!(
        "refused origin: 20 clients answered in {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // (b) A head announcing 100000 bytes, 10000 of them, then a reset.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let mut out = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\
                                Content-Length: 100000\r\n\r\n"
                    .to_vec();
                out.extend_from_slice(&[b'r'; 10000]);
                let _ = stream.write_all(&out).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = stream.set_zero_linger();
            });
        }
    });
    let url = format!("http://{addr}/reset");
    let start = Instant::now();
    let tasks = (0..20)
        .map(|_| {
            let (proxy, url) = (proxy.addr, url.clone());
            tokio::spawn(async move {
                let mut client = Client::connect(proxy).await;
                match client.try_send(get(&url)).await {
                    Err(_) => true,
                    Ok(response) if response.status().is_server_error() => true,
                    Ok(response) => body_bytes(response).await.is_err(),
                }
            })
        })
        .collect();
    for failed in all("20 clients, reset", tasks).await {
        assert!(failed, "a client saw a complete 2xx from a reset origin");
    }
    eprintln!(
        "reset origin: {} connection(s) for 20 clients, {} ms",
        accepted.load(Ordering::SeqCst),
        start.elapsed().as_millis()
    );
    settle().await;
    let before = accepted.load(Ordering::SeqCst);
    let mut client = Client::connect(proxy.addr).await;
    if let Ok(response) = client.try_send(get(&url)).await {
        let _ = body_bytes(response).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        before + 1,
        "nothing stored: the next request goes to the origin"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_requests_over_a_hundred_keys_make_a_hundred_origin_requests() {
    let origin = SlowOrigin::start(|parts, _| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            parts.uri.path(),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let clients = connect_all(proxy.addr, 1000).await;
    let barrier = Arc::new(Barrier::new(1000));
    let tasks = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let path = format!("/key/{}", i % 100);
            let url = origin.url(&path);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client.send(get(&url)).await;
                assert_eq!(response.status(), StatusCode::OK);
                (path, body_bytes(response).await.unwrap())
            })
        })
        .collect();
    for (path, body) in all("1000 requests", tasks).await {
        assert_eq!(body, path.as_bytes());
    }
    assert_eq!(origin.requests(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_revalidations_are_coalesced() {
    // RFC 9111 §4.3: one conditional request refreshes the entry for everyone.
    let origin = SlowOrigin::start(|parts, _| async move {
        if parts
            .headers
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return respond(
                304,
                &[
                    ("etag", "\"v1\"".into()),
                    ("cache-control", "max-age=60".into()),
                ],
                "",
            );
        }
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("etag", "\"v1\"".into()),
                ("date", date_ago(120)),
            ],
            "stored body",
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/stale");
    fetch(proxy.addr, get(&url)).await;
    settle().await;
    let tasks = (0..50)
        .map(|_| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move { fetch(addr, get(&url)).await })
        })
        .collect();
    for (status, _, body) in all("50 clients, stale entry", tasks).await {
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"stored body"[..]));
    }
    assert_eq!(origin.requests(), 2, "the fill and one revalidation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidating_one_variant_does_not_answer_another() {
    // RFC 9111 §4.1 and §4.3.4: a 304 refreshes the variant it was asked for.
    let origin = SlowOrigin::start(|parts, _| async move {
        let lang = language_of(&parts);
        if let Some(etag) = parts.headers.get("if-none-match") {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return respond(
                304,
                &[
                    ("etag", etag.to_str().unwrap().to_owned()),
                    ("cache-control", "max-age=60".into()),
                    ("vary", "Accept-Language".into()),
                ],
                "",
            );
        }
        respond(
            200,
            &[
                ("cache-control", "max-age=60".into()),
                ("vary", "Accept-Language".into()),
                ("etag", format!("\"{lang}\"")),
                ("date", date_ago(120)),
            ],
            &format!("lang={lang}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    let url = origin.url("/variants");
    for lang in ["en", "fr"] {
        fetch(proxy.addr, get_with(&url, "accept-language", lang)).await;
    }
    settle().await;
    // Both variants are stale; en's revalidation starts first.
    let en = {
        let (addr, url) = (proxy.addr, url.clone());
        tokio::spawn(async move { fetch(addr, get_with(&url, "accept-language", "en")).await })
    };
    wait_until("en's revalidation reached the origin", || {
        origin.requests() >= 3
    })
    .await;
    let (_, _, fr) = fetch(proxy.addr, get_with(&url, "accept-language", "fr")).await;
    let (_, _, en) = all("en", vec![en]).await.remove(0);
    assert_eq!(en, "lang=en");
    assert_eq!(fr, "lang=fr");
    assert_eq!(origin.requests(), 4, "two fills, two revalidations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_too_slow_lets_followers_go_on_their_own() {
    let origin = SlowOrigin::start(|_, n| async move {
        if n == 1 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("answer #{n}"),
        )
    })
    .await;
    let proxy = start_proxy("[cache]\nlock_timeout = \"300ms\"\n").await;
    let url = origin.url("/slow-leader");
    let leader = {
        let (addr, url) = (proxy.addr, url.clone());
        tokio::spawn(async move { fetch(addr, get(&url)).await })
    };
    wait_until("the leader reached the origin", || origin.requests() >= 1).await;
    let start = Instant::now();
    let tasks = (0..10)
        .map(|_| {
            let (addr, url) = (proxy.addr, url.clone());
            tokio::spawn(async move {
                let (status, _, _) = fetch(addr, get(&url)).await;
                (status, start.elapsed())
            })
        })
        .collect();
    let followers = all("followers", tasks).await;
    for (status, took) in &followers {
        assert_eq!(*status, StatusCode::OK);
        assert!(
            *took < Duration::from_millis(1700),
            "a follower took {took:?}"
        );
    }
    assert!(
        !leader.is_finished(),
        "the followers finished before the leader's origin answered"
    );
    let (_, _, body) = all("leader", vec![leader]).await.remove(0);
    assert_eq!(body, "answer #1");
    assert!(origin.requests() >= 2, "the followers went to the origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arriving_as_a_flight_ends_make_no_second_origin_request() {
    // A request whose lookup missed just before the response was stored,
    // and whose join came just after its flight ended, must not lead again.
    let origin = SlowOrigin::start(|_, n| async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        respond(
            200,
            &[("cache-control", "max-age=60".into())],
            &format!("#{n}"),
        )
    })
    .await;
    let proxy = start_proxy("").await;
    for round in 0..5 {
        let url = origin.url(&format!("/ending/{round}"));
        let before = origin.requests();
        // One client, then 200 more over ~100 ms around the moment it ends.
        let mut tasks = Vec::new();
        for i in 0..201 {
            let (addr, url) = (proxy.addr, url.clone());
            tasks.push(tokio::spawn(async move { fetch(addr, get(&url)).await.2 }));
            let gap = if i == 0 { 100_000 } else { 500 };
            tokio::time::sleep(Duration::from_micros(gap)).await;
        }
        let bodies = all("clients around the end of a flight", tasks).await;
        let first = format!("#{}", before + 1);
        assert!(
            bodies.iter().all(|b| *b == first.as_bytes()),
            "round {round}"
        );
        assert_eq!(origin.requests(), before + 1, "round {round}");
    }
}
