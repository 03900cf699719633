//! The origin of the benchmark (`bench/run.sh`): fixed, cacheable bodies on
//! one port and a slow, counting route on another, both on 127.0.0.1 only.
//!
//! ```text
//! cargo run --release --example bench_origin -- --port 31080 --slow-port 31081
//! ```
//!
//! Main port (answers at once):
//! - `/1k`, `/1m`: 1 KiB and 1 MiB fixed bodies, `Cache-Control: max-age=3600`;
//! - `/nostore/1k` (any query string): 1 KiB, `Cache-Control: no-store`;
//! - `/obj/<n>`: 64 KiB, `max-age=3600`, a different body for every `n`
//!   (it starts with `obj <n>\n`), for the disk-tier scenario;
//! - `/count`: what each route has served, as one JSON object.
//!
//! Slow port:
//! - `/slow/<anything>`: counted on arrival, answered after `--slow-ms`
//!   (1 s) with `max-age=3600`;
//! - `/count`: `{"slow": <requests so far>}`.
//!
//! With `--dns ADDR` (e.g. `127.0.0.153:53`), also a DNS server on UDP that
//! answers every A query with 127.0.0.1 (TTL `--dns-ttl`, after
//! `--dns-delay-ms`, like a LAN resolver's cached answer) and every other
//! query with no record; the queries it got are `dns` in `/count`.
//!
//! Bodies are a fixed byte pattern, so the harness can check that a proxy
//! returns exactly what the origin sent by comparing with a direct request.

use std::convert::Infallible;
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};

/// Size of every `/obj/<n>` body.
const OBJ_SIZE: usize = 64 * 1024;

#[derive(Parser)]
#[command(about = "Benchmark origin for cachalot (see bench/README.md)")]
struct Args {
    /// Port of the fast routes (/1k, /1m, /nostore/1k, /obj/<n>, /count).
    #[arg(long, default_value_t = 31080)]
    port: u16,
    /// Port of the slow route (/slow/<anything>, /count).
    #[arg(long, default_value_t = 31081)]
    slow_port: u16,
    /// How long /slow/<anything> waits before answering, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// Also answer DNS queries on this UDP address.
    #[arg(long)]
    dns: Option<SocketAddr>,
    /// Delay of every DNS answer, in milliseconds.
    #[arg(long, default_value_t = 5)]
    dns_delay_ms: u64,
    /// TTL of the DNS answers, in seconds.
    #[arg(long, default_value_t = 60)]
    dns_ttl: u32,
}

/// Requests served per route (`/count` itself is not counted).
#[derive(Default)]
struct Counts {
    one_k: AtomicU64,
    one_m: AtomicU64,
    nostore: AtomicU64,
    obj: AtomicU64,
    slow: AtomicU64,
    other: AtomicU64,
    dns: AtomicU64,
}

/// Everything a request handler reads: the fixed bodies and the counters.
struct State {
    one_k: Bytes,
    one_m: Bytes,
    pattern: Bytes,
    slow_delay: Duration,
    counts: Counts,
}

/// `len` bytes of a fixed pattern that does not compress to nothing.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| ((i * 7919 + i / 4093) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// The body of `/obj/<n>`: `obj <n>\n`, then the pattern up to 64 KiB.
fn object(n: u64, pattern: &Bytes) -> Bytes {
    let mut body = BytesMut::with_capacity(OBJ_SIZE);
    body.extend_from_slice(format!("obj {n}\n").as_bytes());
    let rest = OBJ_SIZE.saturating_sub(body.len());
    body.extend_from_slice(&pattern[..rest]);
    body.freeze()
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, cache_control: &'static str, body: Bytes) -> Answer {
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_LENGTH, length);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if !cache_control.is_empty() {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    }
    response
}

fn json(text: String) -> Answer {
    let mut response = answer(StatusCode::OK, "no-store", Bytes::from(text));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn not_found() -> Answer {
    answer(
        StatusCode::NOT_FOUND,
        "no-store",
        Bytes::from_static(b"not found\n"),
    )
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

async fn fast_route(state: Arc<State>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let c = &state.counts;
    let path = request.uri().path();
    let response = match path {
        "/1k" => {
            bump(&c.one_k);
            answer(StatusCode::OK, "max-age=3600", state.one_k.clone())
        }
        "/1m" => {
            bump(&c.one_m);
            answer(StatusCode::OK, "max-age=3600", state.one_m.clone())
        }
        "/nostore/1k" => {
            bump(&c.nostore);
            answer(StatusCode::OK, "no-store", state.one_k.clone())
        }
        "/count" => {
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            json(format!(
                "{{\"1k\": {}, \"1m\": {}, \"nostore\": {}, \"obj\": {}, \"other\": {}, \"dns\": {}}}\n",
                load(&c.one_k),
                load(&c.one_m),
                load(&c.nostore),
                load(&c.obj),
                load(&c.other),
                load(&c.dns),
            ))
        }
        _ => match path.strip_prefix("/obj/").map(str::parse::<u64>) {
            Some(Ok(n)) => {
                bump(&c.obj);
                answer(StatusCode::OK, "max-age=3600", object(n, &state.pattern))
            }
            _ => {
                bump(&c.other);
                not_found()
            }
        },
    };
    Ok(response)
}

async fn slow_route(state: Arc<State>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let path = request.uri().path();
    if path == "/count" {
        let n = state.counts.slow.load(Ordering::Relaxed);
        return Ok(json(format!("{{\"slow\": {n}}}\n")));
    }
    if !path.starts_with("/slow/") {
        return Ok(not_found());
    }
    // Counted on arrival, so a harness reading /count after its clients are
    // done sees every request the proxy made, answered or not.
    bump(&state.counts.slow);
    tokio::time::sleep(state.slow_delay).await;
    let body = Bytes::from(format!("slow answer for {path}\n"));
    Ok(answer(StatusCode::OK, "max-age=3600", body))
}

#[derive(Clone, Copy)]
enum Port {
    Fast,
    Slow,
}

/// Accepts connections on `listener` until the process is killed.
async fn serve(listener: TcpListener, state: Arc<State>, port: Port) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                eprintln!("bench_origin: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move {
                    match port {
                        Port::Fast => fast_route(state, request).await,
                        Port::Slow => slow_route(state, request).await,
                    }
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A listener on 127.0.0.1:`port`. SO_REUSEADDR lets it start while
/// connections of an earlier run linger in TIME_WAIT; the deep backlog keeps
/// bursts of new connections (a proxy without upstream keep-alive) from
/// being dropped.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(4096)
}

/// Answers DNS queries on `socket`: A → 127.0.0.1, anything else → no record.
async fn serve_dns(socket: tokio::net::UdpSocket, state: Arc<State>, delay: Duration, ttl: u32) {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        bump(&state.counts.dns);
        let mut reply = Message::new();
        reply
            .set_id(query.id())
            .set_message_type(MessageType::Response)
            .set_op_code(query.op_code())
            .set_recursion_desired(query.recursion_desired())
            .set_recursion_available(true)
            .set_authoritative(true);
        for q in query.queries() {
            reply.add_query(q.clone());
            if q.query_type() == RecordType::A {
                let a = RData::A(A(Ipv4Addr::LOCALHOST));
                reply.add_answer(Record::from_rdata(q.name().clone(), ttl, a));
            }
        }
        let Ok(bytes) = reply.to_vec() else {
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&bytes, from).await;
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let one_m = pattern(1 << 20);
    let state = Arc::new(State {
        one_k: one_m.slice(..1024),
        pattern: one_m.slice(..OBJ_SIZE),
        one_m,
        slow_delay: Duration::from_millis(args.slow_ms),
        counts: Counts::default(),
    });
    let fast = bind(args.port)?;
    let slow = bind(args.slow_port)?;
    eprintln!(
        "bench_origin: listening on {} and {} (slow, {} ms)",
        fast.local_addr()?,
        slow.local_addr()?,
        args.slow_ms
    );
    if let Some(addr) = args.dns {
        let socket = tokio::net::UdpSocket::bind(addr).await?;
        eprintln!(
            "bench_origin: DNS on {addr} ({} ms, TTL {} s)",
            args.dns_delay_ms, args.dns_ttl
        );
        tokio::spawn(serve_dns(
            socket,
            state.clone(),
            Duration::from_millis(args.dns_delay_ms),
            args.dns_ttl,
        ));
    }
    tokio::join!(
        serve(fast, state.clone(), Port::Fast),
        serve(slow, state, Port::Slow)
    );
    Ok(())
}
