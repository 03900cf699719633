//! Test support: a counting origin (hyper on port 0) with routes, raw-TCP
//! origins for malformed and reset behaviour, a TCP echo server for tunnels,
//! the proxy started in-process, and two small clients (raw TCP, and hyper
//! over one TcpStream sending absolute-form targets). Every wait has a
//! deadline and every loop is bounded.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cachalot::config::Config;
use cachalot::server;
use cachalot::shared::Proxy;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest any single step of a test may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Body of the origin's `/fixed` route.
pub const FIXED_BODY: &str = "hello from the origin\n";

/// Body of the origin's `/chunked` route, sent as these three chunks.
pub const CHUNKS: [&str; 3] = ["alpha-", "beta-", "gamma"];

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request the test client sends and every response
/// the origin sends.
pub type TestBody = BoxBody<Bytes, BoxError>;

/// Awaits `future`, failing the test with `what` after [`DEADLINE`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {DEADLINE:?}: {what}"),
    }
}

/// Polls `condition` every 10 ms until it holds, failing after [`DEADLINE`].
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------- bodies

pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub fn empty() -> TestBody {
    Empty::<Bytes>::new()
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A body of several frames with no announced length: hyper sends it chunked.
pub fn chunks(parts: &[&'static str]) -> TestBody {
    Chunks(
        parts
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect(),
    )
    .boxed()
}

struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

/// `remaining` bytes generated on the fly by repeating one shared chunk:
/// however large the body, only the chunk is ever allocated.
struct Repeat {
    chunk: Bytes,
    remaining: u64,
}

impl http_body::Body for Repeat {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

// ---------------------------------------------------------------- origin

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// The request target as written on the wire (origin-form expected).
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    /// Every value of `name`, joined with ", " (None when absent).
    pub fn header(&self, name: &str) -> Option<String> {
        joined(&self.headers, name)
    }
}

/// Every value of `name` in `headers`, joined with ", " (None when absent).
pub fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("<binary>"))
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[derive(Default)]
struct OriginState {
    requests: AtomicUsize,
    connections: AtomicUsize,
    last: Mutex<Option<Seen>>,
}

/// A real HTTP/1.1 origin on 127.0.0.1:0 that counts what it receives.
///
/// Routes (any method):
/// - `/echo`: 200; `x-echo-method`, `x-echo-target`, `x-echo-host`,
///   `x-echo-max-forwards` and `x-echo-via` describe the request; the body is
///   the request body.
/// - `/fixed`: 200 with [`FIXED_BODY`] and an explicit Content-Length.
/// - `/large/<n>`: 200 with `n` bytes generated on the fly in 1 MiB frames.
/// - `/slow/<ms>`: sleeps `ms` milliseconds, then 200 "slow done".
/// - `/chunked`: 200 with [`CHUNKS`], chunked.
/// - `/hop`: 200 "hop" carrying hop-by-hop fields (Connection naming
///   `X-Origin-Private`, `X-Origin-Private`, Keep-Alive, Proxy-Authenticate).
/// - anything else: 404.
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
    accept: JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState::default());
        let accept_state = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accept_state.connections.fetch_add(1, Ordering::SeqCst);
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| route(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin {
            addr,
            state,
            accept,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far (counted when the head arrives).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The last request whose body was fully received.
    pub fn last(&self) -> Seen {
        self.state
            .last
            .lock()
            .unwrap()
            .clone()
            .expect("the origin has seen no request")
    }
}

async fn route(
    state: Arc<OriginState>,
    request: Request<Incoming>,
) -> Result<Response<TestBody>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.clone(),
        target: parts.uri.to_string(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    *state.last.lock().unwrap() = Some(seen.clone());

    let path = parts.uri.path();
    let mut response = Response::new(empty());
    if path == "/echo" {
        let h = response.headers_mut();
        h.insert("x-echo-method", value(seen.method.as_str()));
        h.insert("x-echo-target", value(&seen.target));
        for (name, echo) in [
            ("host", "x-echo-host"),
            ("max-forwards", "x-echo-max-forwards"),
            ("via", "x-echo-via"),
        ] {
            if let Some(v) = seen.header(name) {
                h.insert(echo, value(&v));
            }
        }
        *response.body_mut() = full(body);
    } else if path == "/fixed" {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(FIXED_BODY.len()));
        *response.body_mut() = full(FIXED_BODY);
    } else if let Some(n) = path.strip_prefix("/large/") {
        let remaining: u64 = n.parse().unwrap();
        let chunk = Bytes::from(vec![b'x'; 1 << 20]);
        *response.body_mut() = Repeat { chunk, remaining }.boxed();
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        *response.body_mut() = full("slow done");
    } else if path == "/chunked" {
        *response.body_mut() = chunks(&CHUNKS);
    } else if path == "/hop" {
        let h = response.headers_mut();
        h.insert("connection", value("X-Origin-Private"));
        h.insert("x-origin-private", value("secret"));
        h.insert("keep-alive", value("timeout=5"));
        h.insert("proxy-authenticate", value("Basic realm=\"origin\""));
        h.insert("x-origin-kept", value("yes"));
        *response.body_mut() = full("hop");
    } else {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap()
}

// ---------------------------------------------------------------- raw origins

/// How a [`RawOrigin`] misbehaves once it has read a request head.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Resets the connection (RST) without answering.
    ResetBeforeHead,
    /// Declares Content-Length 1000, sends 100 bytes, waits a moment, then
    /// closes (FIN) or resets (RST).
    ShortBody { reset: bool },
    /// Starts a chunked body, sends one chunk, waits a moment, then closes
    /// without the last chunk.
    ShortChunked,
}

/// A TCP origin that answers every request with a [`Misbehaviour`].
pub struct RawOrigin {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RawOrigin {
    pub async fn start(misbehaviour: Misbehaviour) -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(DEADLINE, misbehave(&mut stream, misbehaviour)).await;
                });
            }
        });
        RawOrigin {
            addr,
            accepted,
            accept,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn misbehave(stream: &mut TcpStream, misbehaviour: Misbehaviour) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&head, b"\r\n\r\n").is_none() {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    match misbehaviour {
        Misbehaviour::ResetBeforeHead => {
            let _ = stream.set_zero_linger();
        }
        Misbehaviour::ShortBody { reset } => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
            out.extend_from_slice(&[b'y'; 100]);
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if reset {
                let _ = stream.set_zero_linger();
            }
        }
        Misbehaviour::ShortChunked => {
            let out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
            let _ = stream.write_all(out).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------- other peers

/// A TCP echo server for tunnels: echoes every byte; when the client
/// half-closes it sends `bye` and closes its side too. Returns the address
/// and a count of accepted connections.
pub async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let echo = async {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) => break,
                            Ok(n) => stream.write_all(&buf[..n]).await?,
                            Err(e) => return Err(e),
                        }
                    }
                    stream.write_all(b"bye").await?;
                    stream.shutdown().await
                };
                let _ = tokio::time::timeout(DEADLINE, echo).await;
            });
        }
    });
    (addr, accepted, task)
}

/// An address on 127.0.0.1 where nothing listens (bound, then released).
pub fn refused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    refused_addr().port()
}

/// This process's resident set size in bytes, from /proc/self/status.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

// ---------------------------------------------------------------- proxy

/// The proxy running in-process on 127.0.0.1:0.
pub struct RunningProxy {
    pub addr: SocketAddr,
    /// Send (or drop) to stop accepting and start draining.
    pub shutdown: oneshot::Sender<()>,
    /// `server::run`; resolves once draining is over.
    pub task: JoinHandle<()>,
    /// The running proxy (cache handles, counters).
    pub proxy: std::sync::Arc<Proxy>,
    /// The folder relative paths (the cache) resolve against; deleted on drop
    /// unless the test passed its own.
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

/// Starts the proxy with `snippet` merged over the default configuration,
/// its cache in a fresh temporary folder.
pub async fn start_proxy(snippet: &str) -> RunningProxy {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    start_proxy_in(snippet, dir).await
}

/// The access rules of tests that name no rules of their own: the origins
/// are on loopback, which the shipped rules refuse (`to_localhost`).
pub const LOOPBACK_ORIGINS: &str =
    "\n[[acl]]\nname = \"test-loopback\"\naction = \"allow\"\nsrc = [\"127.0.0.0/8\", \"::1/128\"]\n";

/// Starts the real binary in `dir` with `snippet` (plus
/// [`LOOPBACK_ORIGINS`]) as its config on a free port; returns it once it
/// accepts connections, with its address.
pub async fn start_binary(dir: &std::path::Path, snippet: &str) -> (tokio::process::Child, String) {
    let config = dir.join("cachalot.toml");
    std::fs::write(&config, format!("{snippet}{LOOPBACK_ORIGINS}")).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cachalot"))
        .args(["--config", config.to_str().unwrap(), "--listen", &listen])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    within("the binary listens", async {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("cachalot exited early: {status}");
            }
            if TcpStream::connect(&listen).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    (child, listen)
}

/// Starts the proxy with relative paths (the cache) under `dir`, so that a
/// test can stop it and start another on the same cache. A snippet without
/// `[[acl]]` rules gets [`LOOPBACK_ORIGINS`].
pub async fn start_proxy_in(snippet: &str, dir: std::sync::Arc<tempfile::TempDir>) -> RunningProxy {
    if snippet.contains("[[acl]]") {
        start_proxy_exact(snippet, dir).await
    } else {
        start_proxy_exact(&format!("{snippet}{LOOPBACK_ORIGINS}"), dir).await
    }
}

/// Starts the proxy with exactly `snippet` over the shipped configuration
/// (the shipped access rules included, when it lists none).
pub async fn start_proxy_exact(
    snippet: &str,
    dir: std::sync::Arc<tempfile::TempDir>,
) -> RunningProxy {
    let config = Config::from_toml_str(snippet, dir.path())
        .unwrap_or_else(|e| panic!("test config refused: {e}"));
    let listener = cachalot::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Proxy::new(config, addr).unwrap_or_else(|e| panic!("cannot open cache: {e}"));
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, proxy.clone(), async move {
        let _ = stop.await;
    }));
    RunningProxy {
        addr,
        shutdown,
        task,
        proxy,
        dir,
    }
}

/// `[server] connect_ports` allowing 443 and `port`.
pub fn connect_ports(port: u16) -> String {
    format!("[server]\nconnect_ports = [443, {port}]\n")
}

// ---------------------------------------------------------------- raw client

/// A response read off a raw socket. The body is the bytes after the head,
/// exactly as received (not de-chunked).
#[derive(Debug)]
pub struct RawResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Every value of `name` (case-insensitive), joined with ", ".
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits raw bytes into a head and what follows it.
pub fn parse_response(bytes: &[u8]) -> RawResponse {
    let end = find(bytes, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no complete response head in {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status_line,
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    within("connect", TcpStream::connect(addr)).await.unwrap()
}

/// Reads until EOF (a reset counts as the end too). Returns the bytes and
/// whether the end was a clean EOF.
pub async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    within("read to EOF", async {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => return (out, false),
            }
        }
    })
    .await
}

/// Sends `request` on a new connection and reads the answer to EOF; the
/// request must make the proxy close (HTTP/1.0 or `Connection: close`).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = connect(addr).await;
    within("write request", stream.write_all(request))
        .await
        .unwrap();
    let (bytes, _) = read_to_end(&mut stream).await;
    parse_response(&bytes)
}

/// Reads exactly one response with a Content-Length body (keep-alive use).
pub async fn read_one_response(stream: &mut TcpStream) -> RawResponse {
    within("read one response", async {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = find(&bytes, b"\r\n\r\n") {
                let partial = parse_response(&bytes[..end + 4]);
                let length: usize = partial
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .expect("a Content-Length response");
                if bytes.len() >= end + 4 + length {
                    let mut response = parse_response(&bytes[..end + 4 + length]);
                    response.body.truncate(length);
                    return response;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "EOF inside a response");
            bytes.extend_from_slice(&buf[..n]);
        }
    })
    .await
}

/// Sends `CONNECT target` and reads the proxy's answer head; returns the
/// stream (positioned after the head) and the parsed head.
pub async fn open_tunnel(
    proxy: SocketAddr,
    target: impl std::fmt::Display,
) -> (TcpStream, RawResponse) {
    let mut stream = connect(proxy).await;
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = within("CONNECT answer", async {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        // Byte by byte so nothing past the head is consumed; bounded.
        while find(&head, b"\r\n\r\n").is_none() && head.len() < 16 * 1024 {
            match stream.read(&mut byte).await.unwrap() {
                0 => break,
                _ => head.push(byte[0]),
            }
        }
        head
    })
    .await;
    let response = parse_response(&head);
    (stream, response)
}

// ---------------------------------------------------------------- hyper client

/// One HTTP/1.1 client connection to the proxy. hyper's connection-level
/// client writes the request target exactly as given, so absolute-form URIs
/// go out as absolute-form.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<TestBody>,
    pub conn: JoinHandle<Result<(), hyper::Error>>,
}

impl Client {
    pub async fn connect(proxy: SocketAddr) -> Client {
        let stream = connect(proxy).await;
        let (sender, conn) = within(
            "client handshake",
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        Client { sender, conn }
    }

    pub async fn try_send(
        &mut self,
        request: Request<TestBody>,
    ) -> Result<Response<Incoming>, hyper::Error> {
        within("response head", async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        })
        .await
    }

    pub async fn send(&mut self, request: Request<TestBody>) -> Response<Incoming> {
        self.try_send(request).await.unwrap()
    }
}

/// A request for `url` (absolute) with a Host field matching it.
pub fn request(method: Method, url: &str, body: TestBody) -> Request<TestBody> {
    let uri: Uri = url.parse().unwrap();
    let mut request = Request::new(body);
    if let Some(authority) = uri.authority() {
        request
            .headers_mut()
            .insert(HOST, value(authority.as_str()));
    }
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request
}

pub fn get(url: &str) -> Request<TestBody> {
    request(Method::GET, url, empty())
}

/// Reads a whole (small) response body.
pub async fn body_bytes(response: Response<Incoming>) -> Result<Bytes, hyper::Error> {
    within("response body", response.into_body().collect())
        .await
        .map(|c| c.to_bytes())
}

/// Sends one request on a new connection and returns status, headers, body.
pub async fn fetch(
    proxy: SocketAddr,
    request: Request<TestBody>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut client = Client::connect(proxy).await;
    let response = client.send(request).await;
    let (status, headers) = (response.status(), response.headers().clone());
    let body = body_bytes(response).await.unwrap();
    (status, headers, body)
}

/// Says that `tool` is missing for `what`: a visible skip locally, a
/// failure where `CACHALOT_REQUIRE_TOOLS` is set (CI installs every tool, so
/// a test there never passes by skipping).
pub fn tool_missing(tool: &str, what: &str) {
    if std::env::var_os("CACHALOT_REQUIRE_TOOLS").is_some() {
        panic!("{what} needs {tool}, which is not installed (CACHALOT_REQUIRE_TOOLS is set)");
    }
    eprintln!("SKIPPED {what}: {tool} is not installed");
}

/// True when `curl` runs; says so otherwise (see [`tool_missing`]).
pub async fn curl_available(test: &str) -> bool {
    let ok = tokio::process::Command::new("curl")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !ok {
        tool_missing("curl", test);
    }
    ok
}

/// Waits (at most 10 s) until the cache holds a response for `url`: a fill
/// hands its body to the store a moment after the last byte went out.
pub async fn stored(proxy: &RunningProxy, url: &str) {
    let uri: http::Uri = url.parse().expect("a URL");
    let key = cachalot::cache::policy::key::cache_key(&uri).expect("a cacheable URL");
    for _ in 0..1000 {
        let found = proxy
            .proxy
            .cache
            .store
            .lookup(&key, &http::HeaderMap::new())
            .await;
        if matches!(found, cachalot::cache::store::Lookup::Hit(_)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{url} was never stored");
}

/// Waits until `n` requests have finished (their access-log lines are
/// written when they are delivered).
pub async fn finished(proxy: &RunningProxy, n: u64) {
    let metrics = proxy.proxy.metrics.clone();
    wait_until("requests finished", move || metrics.requests() >= n).await;
}

/// Stops the access-log writer and returns the log's lines.
pub fn log_lines(proxy: &RunningProxy) -> Vec<String> {
    proxy.proxy.log.as_ref().unwrap().close();
    let text = std::fs::read_to_string(proxy.dir.path().join("logs/access.log")).unwrap();
    text.lines().map(str::to_owned).collect()
}
