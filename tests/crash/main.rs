//! kill -9 in the middle of heavy cache writes, in rounds: the real binary
//! is started on one cache folder, loaded with concurrent downloads of
//! objects small and large (some on disk only), killed with SIGKILL at a
//! random moment, and started again. After every crash `cachalot cache
//! verify` must find nothing to drop and no record that cannot be evicted,
//! and every body the restarted proxy serves must be byte-exact. Its own
//! test binary: it starts processes and kills them.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test-only crate: failing fast is the point"
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_cachalot");
const OBJECTS: u64 = 40;
/// Rounds of kill -9 (`CACHALOT_CRASH_ROUNDS` overrides, for a longer run).
fn rounds() -> u64 {
    std::env::var("CACHALOT_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// Object `n`'s length: from a few KiB to 3 MiB (the memory tier holds up to 256 KiB).
fn length(n: u64) -> u64 {
    [3_000, 90_000, 400_000, 1_300_000, 3_000_000][(n % 5) as usize] + n
}

fn body(n: u64) -> Vec<u8> {
    (0..length(n))
        .map(|i| (i.wrapping_mul(31).wrapping_add(n * 7919) >> 3) as u8)
        .collect()
}

/// An origin serving `/obj/<n>`, cacheable for an hour, in 64 KiB frames.
async fn origin(requests: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let requests = requests.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    requests.fetch_add(1, Ordering::Relaxed);
                    let n: u64 = req
                        .uri()
                        .path()
                        .trim_start_matches("/obj/")
                        .parse()
                        .unwrap_or(0);
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(body(n))));
                        response.headers_mut().insert(
                            "cache-control",
                            http::HeaderValue::from_static("max-age=3600"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(config: &Path, dir: &Path, listen: &str) -> Child {
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--listen", listen])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("cachalot exited early: {status}");
        }
        if TcpStream::connect(listen).await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cachalot did not listen on {listen}");
}

/// GETs object `n` through the proxy: its status, Cache-Status and body
/// (None when the transfer was cut).
async fn fetch(proxy: &str, origin: SocketAddr, n: u64) -> Option<(u16, String, Bytes)> {
    let stream = TcpStream::connect(proxy).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let url = format!("http://{origin}/obj/{n}");
    let request = Request::builder()
        .uri(&url)
        .header("host", origin.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let cache_status = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, cache_status, body))
}

/// A small deterministic generator (xorshift), so a failing round repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_heavy_writes_never_leaves_a_bad_body_or_an_unevictable_entry() {
    let requests = Arc::new(AtomicUsize::new(0));
    let origin = origin(requests.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cachalot.toml");
    std::fs::write(
        &config,
        "[cache]\nmemory_object_size = \"256KiB\"\ndisk_size = \"48MiB\"\nmax_object_size = \"8MiB\"\n\
         [log]\nlevel = \"error\"\n\
         [[acl]]\nname = \"test-loopback\"\naction = \"allow\"\nsrc = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut hits_after_restart = 0;
    for round in 0..rounds() {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut child = start(&config, dir.path(), &listen).await;
        // Heavy writes: 12 clients fetching random objects without pause.
        let mut load = Vec::new();
        for client in 0..12u64 {
            let listen = listen.clone();
            let mut rng = Rng(rng.next() | client | 1);
            load.push(tokio::spawn(async move {
                for _ in 0..400 {
                    let n = rng.next() % OBJECTS;
                    if let Some((200, _, got)) = fetch(&listen, origin, n).await {
                        assert!(got[..] == body(n)[..], "round {round}: object {n} differs");
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(400 + rng.next() % 1200)).await;
        child.start_kill().unwrap(); // SIGKILL
        child.wait().await.unwrap();
        for task in load {
            // Transfers cut by the kill are fine; a wrong body panics.
            if let Err(e) = task.await {
                assert!(
                    !e.is_panic(),
                    "round {round}: a body served before the kill was wrong"
                );
            }
        }
        // The folder as the crash left it: nothing to drop, nothing stuck.
        let verify = Command::new(BIN)
            .args(["--config", config.to_str().unwrap(), "cache", "verify"])
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        let report = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success(),
            "round {round}: verify failed: {report}"
        );
        assert!(
            report.lines().any(|l| l.starts_with(
                "0 dropped; 0 records without an LRU position, 0 LRU positions without a record"
            )),
            "round {round}: {report}"
        );
        // Every object, served by the restarted proxy, is byte-exact.
        let listen = format!("127.0.0.1:{}", free_port());
        let mut child = start(&config, dir.path(), &listen).await;
        for n in 0..OBJECTS {
            let (status, cache_status, got) = fetch(&listen, origin, n)
                .await
                .unwrap_or_else(|| panic!("round {round}: object {n} not served"));
            assert_eq!(status, 200);
            assert!(
                got[..] == body(n)[..],
                "round {round}: object {n} differs after restart"
            );
            if cache_status.contains("hit") {
                hits_after_restart += 1;
            }
        }
        // Killed too (and waited for: the next start needs the folder's lock).
        child.kill().await.unwrap();
    }
    assert!(
        hits_after_restart > 0,
        "some objects must have survived the crashes on disk"
    );
}
