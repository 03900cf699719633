//! Keep-alive connections to origins and parents, pooled over hyper's
//! `client::conn::http1`: a connection is taken for one exchange and put
//! back when its response body has been read to the end (a body dropped
//! before its end takes the connection with it, as the rest of that
//! response would still be on the wire). Nothing is spawned per request:
//! one task per connection drives its socket, and the pool is split per
//! thread so that a serving thread reuses the connections its own runtime
//! drives (see `server::workers`). Idle connections close after
//! `timeouts.upstream_idle`, at most `MAX_IDLE` are kept per peer and thread.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::UpstreamPeer;
use crate::http::body::Body;

/// Idle connections kept per peer, per thread.
const MAX_IDLE: usize = 64;
/// Pool shards; a thread uses one (threads beyond this share).
const SHARDS: usize = 16;

/// Where a pooled connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// An origin's address.
    Origin(SocketAddr),
    /// The parent proxy at this index of `parents.list`.
    Parent(usize),
}

/// One connection, taken from the pool or just opened.
pub struct Conn {
    sender: SendRequest<Body>,
    pub peer: UpstreamPeer,
    key: Key,
    /// Taken from the pool: it may have been closed by the peer meanwhile,
    /// so a request it could not send is sent again on another.
    pub reused: bool,
}

impl Conn {
    /// Opens the HTTP/1.1 connection over `stream` (its task spawned).
    pub async fn handshake(
        stream: TcpStream,
        peer: UpstreamPeer,
        key: Key,
    ) -> Result<Conn, hyper::Error> {
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
        Ok(Conn {
            sender,
            peer,
            key,
            reused: false,
        })
    }

    /// Sends `request`. A connection from the pool is first waited on
    /// until it can take one (it may still be finishing the last response);
    /// `Err(Some(request))` gives back a request that was not sent.
    pub async fn send(
        &mut self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, (hyper::Error, Option<http::Request<Body>>)> {
        if self.reused && !self.sender.is_ready() {
            if let Err(e) = self.sender.ready().await {
                return Err((e, Some(request)));
            }
        }
        self.sender
            .try_send_request(request)
            .await
            .map_err(|mut e| {
                let request = e.take_message();
                (e.into_error(), request)
            })
    }
}

/// The pool, shared by every thread.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// One thread's idle connections, by peer.
type Shard = HashMap<Key, Vec<Idle>>;

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    idle_timeout: Duration,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Idle {
    /// Still open, and idle for less than `timeout` at `now`.
    fn usable(&self, now: Instant, timeout: Duration) -> bool {
        !self.conn.sender.is_closed() && now.duration_since(self.since) < timeout
    }
}

impl Pool {
    /// An empty pool; idle connections older than `idle_timeout` are
    /// closed by a sweep that ends when the pool is dropped.
    pub fn new(idle_timeout: Duration) -> Pool {
        let inner = Arc::new(Inner {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            idle_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&inner), idle_timeout));
        }
        Pool { inner }
    }

    /// The most recently used open idle connection to `key`, if any.
    pub fn take(&self, key: Key) -> Option<Conn> {
        let now = Instant::now();
        let mut shard = self.inner.shard();
        let idle = shard.get_mut(&key)?;
        while let Some(entry) = idle.pop() {
            if entry.usable(now, self.inner.idle_timeout) {
                let mut conn = entry.conn;
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to its peer (unless it closed).
    fn put(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut shard = self.inner.shard();
        let idle = shard.entry(conn.key).or_default();
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// `response`'s body, which puts `conn` back when it has been read to
    /// the end (at once when it is empty).
    pub fn on_end(
        &self,
        conn: Conn,
        response: http::Response<Incoming>,
    ) -> http::Response<PooledBody> {
        let back = if http_body::Body::is_end_stream(response.body()) {
            self.put(conn);
            None
        } else {
            Some((self.clone(), conn))
        };
        response.map(|inner| PooledBody { inner, back })
    }

    /// Idle connections held (all threads), for tests.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| lock(s).values().map(Vec::len).sum::<usize>())
            .sum()
    }
}

impl Inner {
    fn shard(&self) -> MutexGuard<'_, Shard> {
        lock(&self.shards[crate::thread_slot::this_thread() % self.shards.len()])
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Closes idle connections past their time, every half `idle_timeout`.
async fn sweep(pool: Weak<Inner>, idle_timeout: Duration) {
    let every = (idle_timeout / 2).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = pool.upgrade() else { return };
        let now = Instant::now();
        for shard in inner.shards.iter() {
            lock(shard).retain(|_, idle| {
                idle.retain(|i| i.usable(now, idle_timeout));
                !idle.is_empty()
            });
        }
    }
}

/// An origin response's body that returns its connection to the pool at
/// its end.
pub struct PooledBody {
    inner: Incoming,
    back: Option<(Pool, Conn)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((pool, conn)) = self.back.take() {
            pool.put(conn);
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            // A failed body: the connection is not reusable.
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An origin that answers every request on a connection with `body`,
    /// counting connections; `close` makes it close after each response.
    async fn origin(body: &'static str, close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let extra = if close { "Connection: close\r\n" } else { "" };
                            let head = format!(
                                "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if s.write_all(head.as_bytes()).await.is_err() || close {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn peer(addr: SocketAddr) -> UpstreamPeer {
        UpstreamPeer {
            addr,
            parent: false,
        }
    }

    fn get() -> http::Request<Body> {
        http::Request::builder()
            .uri("/")
            .header("host", "origin")
            .body(crate::http::body::empty())
            .unwrap()
    }

    /// One exchange through `pool`: a pooled connection or a new one.
    async fn exchange(pool: &Pool, addr: SocketAddr) -> (String, bool) {
        let key = Key::Origin(addr);
        let mut conn = match pool.take(key) {
            Some(c) => c,
            None => {
                let s = TcpStream::connect(addr).await.unwrap();
                Conn::handshake(s, peer(addr), key).await.unwrap()
            }
        };
        let reused = conn.reused;
        let response = conn.send(get()).await.map_err(|(e, _)| e).unwrap();
        let body = pool.on_end(conn, response).into_body();
        let bytes = body.collect().await.unwrap().to_bytes();
        (String::from_utf8(bytes.to_vec()).unwrap(), reused)
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_reused() {
        let (addr, accepted) = origin("hello", false).await;
        let pool = Pool::new(Duration::from_secs(30));
        for i in 0..5 {
            let (body, reused) = exchange(&pool, addr).await;
            assert_eq!(body, "hello");
            assert_eq!(reused, i > 0, "exchange {i}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(pool.idle(), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_takes_its_connection() {
        let (addr, accepted) = origin("a body of some length", false).await;
        let pool = Pool::new(Duration::from_secs(30));
        let key = Key::Origin(addr);
        let s = TcpStream::connect(addr).await.unwrap();
        let mut conn = Conn::handshake(s, peer(addr), key).await.unwrap();
        let response = conn.send(get()).await.map_err(|(e, _)| e).unwrap();
        drop(pool.on_end(conn, response));
        assert_eq!(pool.idle(), 0);
        let (body, reused) = exchange(&pool, addr).await;
        assert_eq!((body.as_str(), reused), ("a body of some length", false));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_origin_closed_is_not_handed_out() {
        let (addr, accepted) = origin("bye", true).await;
        let pool = Pool::new(Duration::from_secs(30));
        for _ in 0..3 {
            let (body, _) = exchange(&pool, addr).await;
            assert_eq!(body, "bye");
            // The close is seen by the connection's task, then by the pool.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(pool.take(Key::Origin(addr)).is_none());
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_connections_expire() {
        let (addr, _) = origin("x", false).await;
        let pool = Pool::new(Duration::from_millis(200));
        exchange(&pool, addr).await;
        assert_eq!(pool.idle(), 1);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(pool.idle(), 0, "swept");
        assert!(pool.take(Key::Origin(addr)).is_none());
    }
}
