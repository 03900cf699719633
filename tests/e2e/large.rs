//! Large objects: bodies larger than the memory tier stored on disk and
//! streamed from there, the fill budget, Range misses that fetch the whole
//! object, and a damaged chunk met in the middle of a disk hit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, RANGE};
use http_body::Frame;
use http_body_util::BodyExt;

use crate::scripted::Scripted;
use crate::support::*;

/// Byte `i` of every test object.
fn byte(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

fn pattern(start: u64, end: u64) -> Vec<u8> {
    (start..end).map(byte).collect()
}

/// A body of `len` pattern bytes sent in `piece`-byte frames, `delay`
/// apart.
struct Trickle {
    pos: u64,
    len: u64,
    piece: u64,
    delay: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Trickle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pos >= self.len {
            return Poll::Ready(None);
        }
        if !self.delay.is_zero() {
            let delay = self.delay;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
        }
        let end = (self.pos + self.piece).min(self.len);
        let data = Bytes::from(pattern(self.pos, end));
        self.pos = end;
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An origin serving `len`-byte cacheable pattern objects at every path,
/// `piece` bytes every `delay`; `chunked` leaves out Content-Length.
async fn origin(len: u64, piece: u64, delay: Duration, chunked: bool) -> Scripted {
    Scripted::start(move |_, _| {
        let body = Trickle {
            pos: 0,
            len,
            piece,
            delay,
            timer: None,
        };
        let mut response = http::Response::new(body.boxed());
        response.headers_mut().insert(
            "cache-control",
            http::HeaderValue::from_static("max-age=3600"),
        );
        if !chunked {
            response
                .headers_mut()
                .insert(CONTENT_LENGTH, http::HeaderValue::from(len));
        }
        response
    })
    .await
}

async fn get_with(
    proxy: &RunningProxy,
    url: &str,
    range: Option<&str>,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let mut request = get(url);
    if let Some(range) = range {
        request
            .headers_mut()
            .insert(RANGE, http::HeaderValue::from_str(range).unwrap());
    }
    let mut client = Client::connect(proxy.addr).await;
    let response = client.send(request).await;
    let (status, headers) = (response.status(), response.headers().clone());
    let body = within("a large body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, body)
}

fn cache_status(headers: &http::HeaderMap) -> String {
    joined(headers, "cache-status").unwrap_or_default()
}

#[tokio::test]
async fn an_object_larger_than_the_memory_tier_is_stored_on_disk_and_served_from_there() {
    const LEN: u64 = 5 * 1024 * 1024 + 17;
    let origin = origin(LEN, 64 * 1024, Duration::ZERO, false).await;
    let proxy =
        start_proxy("[cache]\nmemory_size = \"1MiB\"\nmemory_object_size = \"256KiB\"\n").await;
    let url = origin.url("/big.bin");
    let (status, _, body) = get_with(&proxy, &url, None).await;
    assert_eq!(status, 200);
    assert!(body == pattern(0, LEN), "the miss is byte-exact");
    stored(&proxy, &url).await;
    let (status, headers, body) = get_with(&proxy, &url, None).await;
    assert_eq!(status, 200);
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(body == pattern(0, LEN), "the disk hit is byte-exact");
    // A range from the middle of the object, across a chunk boundary.
    let (start, end) = (256 * 1024 - 100, 256 * 1024 + 99);
    let (status, headers, body) =
        get_with(&proxy, &url, Some(&format!("bytes={start}-{end}"))).await;
    assert_eq!(status, 206, "{headers:?}");
    assert!(body == pattern(start, end + 1));
    // Two ranges from the disk-only object: one multipart answer.
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=0-9,5000000-5000009")).await;
    assert_eq!(status, 206);
    let ct = joined(&headers, "content-type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(find(&pattern(0, 10)) && find(&pattern(5_000_000, 5_000_010)));
    assert!(find(b"content-range: bytes 5000000-5000009/5242897"));
    assert_eq!(origin.requests(), 1);
    // Its head is in memory, its body came from the file: disk hits.
    let metrics = proxy.proxy.metrics.clone();
    wait_until("three disk hits logged", move || {
        cachalot::metrics::encode::render(&metrics, None, Default::default())
            .contains("cachalot_requests_total{code=\"TCP_HIT\"} 3")
    })
    .await;
    let stats = proxy.proxy.cache.store.stats();
    assert!(
        stats.memory_bytes < 64 * 1024,
        "only the head is in memory: {stats:?}"
    );
    assert!(stats.disk_bytes >= LEN, "{stats:?}");
}

#[tokio::test]
async fn a_large_object_of_unknown_length_moves_from_memory_to_disk_as_it_grows() {
    const LEN: u64 = 3 * 1024 * 1024;
    let origin = origin(LEN, 32 * 1024, Duration::ZERO, true).await;
    let proxy = start_proxy("[cache]\nmemory_object_size = \"256KiB\"\n").await;
    let url = origin.url("/chunked.bin");
    let (_, _, body) = get_with(&proxy, &url, None).await;
    assert!(body == pattern(0, LEN));
    stored(&proxy, &url).await;
    let (_, headers, body) = get_with(&proxy, &url, None).await;
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(body == pattern(0, LEN));
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn a_fill_that_finds_the_budget_spent_streams_through_unstored() {
    // A body of unknown length takes memory_object_size of the budget;
    // the first one, trickling, holds all of it.
    let origin = origin(2 * 1024 * 1024, 16 * 1024, Duration::from_millis(20), true).await;
    let proxy =
        start_proxy("[cache]\nmemory_object_size = \"1MiB\"\nfill_budget = \"1MiB\"\n").await;
    let mut first = Client::connect(proxy.addr).await;
    let holding = first.send(get(&origin.url("/one"))).await;
    let (status, headers, _) = within("a second fill", async {
        let fast = crate::large::origin(1000, 1000, Duration::ZERO, true).await;
        let answer = get_with(&proxy, &fast.url("/two"), None).await;
        drop(fast);
        answer
    })
    .await;
    assert_eq!(status, 200);
    assert!(
        cache_status(&headers).contains("detail=fill-budget"),
        "{headers:?}"
    );
    drop(holding);
}

#[tokio::test]
async fn a_range_miss_fetches_the_whole_object_and_later_ranges_are_hits() {
    const LEN: u64 = 1024 * 1024;
    let origin = origin(LEN, 64 * 1024, Duration::ZERO, false).await;
    let proxy = start_proxy("").await;
    let url = origin.url("/update.bin");
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=1000-1999")).await;
    assert_eq!(status, 206, "{headers:?}");
    assert_eq!(
        joined(&headers, "content-range").as_deref(),
        Some("bytes 1000-1999/1048576")
    );
    assert!(body == pattern(1000, 2000));
    assert!(
        origin.heads()[0].get(RANGE).is_none(),
        "the origin is asked for the whole object"
    );
    stored(&proxy, &url).await;
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=-10")).await;
    assert_eq!(status, 206);
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(body == pattern(LEN - 10, LEN));
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn ranges_asked_while_the_object_downloads_join_its_fill() {
    const LEN: u64 = 2 * 1024 * 1024;
    // 32 KiB every 10 ms: about 0.6 s for the object.
    let origin = origin(LEN, 32 * 1024, Duration::from_millis(10), false).await;
    let proxy = start_proxy("[cache]\nmemory_object_size = \"256KiB\"\n").await;
    let url = origin.url("/game.pak");
    let ranges: Vec<(u64, u64)> = vec![(0, 99), (LEN - 100, LEN - 1), (300_000, 900_000)];
    let mut tasks = Vec::new();
    for (i, (start, end)) in ranges.iter().copied().enumerate() {
        let url = url.clone();
        let addr = proxy.addr;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30 * i as u64)).await;
            let mut request = get(&url);
            request.headers_mut().insert(
                RANGE,
                http::HeaderValue::from_str(&format!("bytes={start}-{end}")).unwrap(),
            );
            let mut client = Client::connect(addr).await;
            let response = client.send(request).await;
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body, start, end)
        }));
    }
    for task in tasks {
        let (status, body, start, end) = within("a range", task).await.unwrap();
        assert_eq!(status, 206);
        assert!(body == pattern(start, end + 1), "range {start}-{end}");
    }
    assert_eq!(origin.requests(), 1, "one fill for every range");
}

#[tokio::test]
async fn a_range_of_an_object_too_large_to_store_is_passed_on_as_asked() {
    let origin = origin(64 * 1024, 64 * 1024, Duration::ZERO, false).await;
    let proxy = start_proxy("[cache]\nmax_object_size = \"16KiB\"\n").await;
    let url = origin.url("/huge.iso");
    let (status, _, _) = get_with(&proxy, &url, Some("bytes=0-9")).await;
    // The scripted origin ignores Range (a 200 is a valid answer to it).
    assert_eq!(status, 200);
    let heads = origin.heads();
    assert_eq!(heads.len(), 2, "once whole, then as the client asked");
    assert_eq!(heads[1].get(RANGE).unwrap(), "bytes=0-9");
}

#[tokio::test]
async fn a_damaged_chunk_cuts_a_disk_hit_that_has_already_begun() {
    const LEN: u64 = 4 * 1024 * 1024;
    let origin = origin(LEN, 64 * 1024, Duration::ZERO, false).await;
    let proxy = start_proxy("[cache]\nmemory_object_size = \"256KiB\"\n").await;
    let url = origin.url("/disk.bin");
    get_with(&proxy, &url, None).await;
    stored(&proxy, &url).await;
    // Flip a byte in the object's last chunk, on disk.
    let objects = proxy.dir.path().join("cache").join("objects");
    let file = std::fs::read_dir(&objects)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() == LEN)
        .expect("the object file");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.write_all_at(&[0x55 ^ byte(LEN - 10)], LEN - 10).unwrap();
    }
    let mut client = Client::connect(proxy.addr).await;
    let response = client.send(get(&url)).await;
    assert_eq!(
        response.status(),
        200,
        "the hit began before the bad chunk was read"
    );
    let mut body = response.into_body();
    let mut got = 0u64;
    let mut failed = false;
    while let Some(frame) = within("a frame", body.frame()).await {
        match frame {
            Ok(frame) => got += frame.into_data().map_or(0, |d| d.len() as u64),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed && got < LEN,
        "the transfer is cut ({got} bytes), never completed with bad bytes"
    );
    wait_until("the damaged entry dropped", || {
        proxy.proxy.cache.store.stats().disk_corrupt >= 1
    })
    .await;
    // The next request goes to the origin again.
    let (_, _, body) = get_with(&proxy, &url, None).await;
    assert!(body == pattern(0, LEN));
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn many_clients_sharing_one_large_download_hold_little_memory() {
    const LEN: u64 = 16 * 1024 * 1024;
    let origin = origin(LEN, 256 * 1024, Duration::ZERO, false).await;
    let proxy = start_proxy("[cache]\nmemory_object_size = \"1MiB\"\n").await;
    let url = Arc::new(origin.url("/shared.bin"));
    let whole = Arc::new(pattern(0, LEN));
    let before = rss_bytes();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (url, addr, whole) = (url.clone(), proxy.addr, whole.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            let response = client.send(get(&url)).await;
            let mut body = response.into_body();
            let (mut n, mut peak) = (0u64, 0u64);
            while let Some(frame) = body.frame().await {
                let data = frame.unwrap().into_data().unwrap();
                assert!(data[..] == whole[n as usize..n as usize + data.len()]);
                n += data.len() as u64;
                peak = peak.max(rss_bytes());
            }
            (n, peak)
        }));
    }
    let mut peak = 0;
    for task in tasks {
        let (n, p) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a shared download finishes")
            .unwrap();
        assert_eq!(n, LEN);
        peak = peak.max(p);
    }
    assert_eq!(origin.requests(), 1);
    // The test process holds the proxy and the 20 clients; a body held in
    // memory per client would be 640 MiB.
    let grown = peak.saturating_sub(before);
    assert!(grown < 200 * 1024 * 1024, "RSS grew by {grown} bytes");
}

#[tokio::test]
async fn a_full_disk_turns_disk_writes_off_and_everything_else_goes_on() {
    // The cache folder on an 8 MiB tmpfs (needs root and mount; skipped otherwise).
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&cache)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED a_full_disk_turns_disk_writes_off: cannot mount a tmpfs");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(cache.clone());
    const BIG: u64 = 1024 * 1024;
    let big = origin(BIG, 64 * 1024, Duration::ZERO, false).await;
    let small = origin(1000, 1000, Duration::ZERO, false).await;
    let other = crate::support::Origin::start().await;
    let proxy = start_proxy_in(
        "[cache]\ndisk_size = \"256MiB\"\nmax_object_size = \"8MiB\"\n\
         memory_object_size = \"64KiB\"\n[timeouts]\ndrain = \"2s\"\n",
        dir.clone(),
    )
    .await;
    let hit_url = small.url("/small");
    get_with(&proxy, &hit_url, None).await;
    stored(&proxy, &hit_url).await;
    // 24 MiB of disk-only objects through an 8 MiB file system.
    for i in 0..24 {
        let (status, _, body) = get_with(&proxy, &big.url(&format!("/big/{i}")), None).await;
        assert_eq!(status, 200, "download {i}");
        assert!(body == pattern(0, BIG), "download {i} is byte-exact");
        let (status, headers, body) = get_with(&proxy, &hit_url, None).await;
        assert_eq!(status, 200, "memory hit after download {i}");
        assert!(cache_status(&headers).contains("hit"), "{headers:?}");
        assert!(body == pattern(0, 1000));
        let (status, _, _) = get_with(&proxy, &other.url(&format!("/fixed?pass-{i}")), None).await;
        assert_eq!(status, 200, "another origin after download {i}");
    }
    let stats = proxy.proxy.cache.store.stats();
    assert!(
        stats.disk_write_errors >= 1,
        "the disk filled up: {stats:?}"
    );
    assert!(!stats.disk_writable, "{stats:?}");
    let RunningProxy { shutdown, task, .. } = proxy;
    let started = std::time::Instant::now();
    drop(shutdown);
    within("the proxy stops on a full disk", task)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_cache_folder_that_cannot_be_opened_leaves_the_memory_tier_working() {
    // A folder below a regular file can never be created.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(dir.path().join("file"), b"not a folder").unwrap();
    let origin = origin(1000, 1000, Duration::ZERO, false).await;
    let proxy = start_proxy_in("[cache]\ndir = \"file/cache\"\n", dir.clone()).await;
    let url = origin.url("/mem");
    let (status, _, body) = get_with(&proxy, &url, None).await;
    assert_eq!(status, 200);
    assert!(body == pattern(0, 1000));
    stored(&proxy, &url).await;
    let (_, headers, _) = get_with(&proxy, &url, None).await;
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert_eq!(origin.requests(), 1);
    assert!(!proxy.proxy.cache.store.stats().disk_writable);
}

/// An origin that honours single ranges of a `total`-byte pattern object
/// (ETag "v1"; an If-Range naming another tag gets the whole object).
async fn ranged_origin(total: u64) -> Scripted {
    Scripted::start(move |parts, _| {
        let asked = parts
            .headers
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.split_once('-'))
            .and_then(|(a, b)| {
                let a: u64 = a.parse().ok()?;
                let b: u64 = if b.is_empty() {
                    total - 1
                } else {
                    b.parse().ok()?
                };
                Some((a, b.min(total - 1)))
            });
        let if_range_ok = parts.headers.get("if-range").is_none_or(|v| v == "\"v1\"");
        let (status, start, end) = match asked {
            Some((a, b)) if if_range_ok && a <= b => (206, a, b + 1),
            _ => (200, 0, total),
        };
        let mut response = http::Response::new(crate::support::full(pattern(start, end)));
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        let h = response.headers_mut();
        h.insert(
            "cache-control",
            http::HeaderValue::from_static("max-age=3600"),
        );
        h.insert("etag", http::HeaderValue::from_static("\"v1\""));
        if status == 206 {
            h.insert(
                "content-range",
                http::HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1)).unwrap(),
            );
        }
        response
    })
    .await
}

/// Waits until `n` pieces of `url`'s partial object are stored.
async fn pieces_stored(proxy: &RunningProxy, url: &str, n: usize) {
    let key = cachalot::cache::policy::key::cache_key(&url.parse().unwrap()).unwrap();
    for _ in 0..500 {
        if proxy.proxy.cache.store.pieces(&key).await.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} pieces of {url} never stored");
}

#[tokio::test]
async fn with_range_fill_off_a_206_is_stored_and_a_range_inside_it_is_a_hit() {
    let origin = ranged_origin(10_000).await;
    let proxy = start_proxy("[cache]\nrange_fill = false\n").await;
    let url = origin.url("/parts.bin");
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=0-999")).await;
    assert_eq!(status, 206, "{headers:?}");
    assert!(body == pattern(0, 1000));
    pieces_stored(&proxy, &url, 1).await;
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=100-199")).await;
    assert_eq!(status, 206);
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert_eq!(
        joined(&headers, "content-range").as_deref(),
        Some("bytes 100-199/10000")
    );
    assert!(body == pattern(100, 200));
    assert_eq!(origin.requests(), 1);
}

#[tokio::test]
async fn a_range_running_past_a_piece_asks_the_origin_for_the_rest_only_and_combines() {
    let origin = ranged_origin(10_000).await;
    let proxy = start_proxy("[cache]\nrange_fill = false\n").await;
    let url = origin.url("/parts.bin");
    get_with(&proxy, &url, Some("bytes=0-999")).await;
    pieces_stored(&proxy, &url, 1).await;
    let (status, headers, body) = get_with(&proxy, &url, Some("bytes=500-1499")).await;
    assert_eq!(status, 206, "{headers:?}");
    assert_eq!(
        joined(&headers, "content-range").as_deref(),
        Some("bytes 500-1499/10000")
    );
    assert!(
        body == pattern(500, 1500),
        "stored bytes and the origin's, combined"
    );
    let heads = origin.heads();
    assert_eq!(heads.len(), 2);
    assert_eq!(
        heads[1].get(RANGE).unwrap(),
        "bytes=1000-1499",
        "the missing part only"
    );
    assert_eq!(heads[1].get("if-range").unwrap(), "\"v1\"");
    // The rest is a piece too: the combined range is now a hit.
    pieces_stored(&proxy, &url, 2).await;
    let (_, headers, body) = get_with(&proxy, &url, Some("bytes=1000-1499")).await;
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(body == pattern(1000, 1500));
    assert_eq!(origin.requests(), 2);
}

#[tokio::test]
async fn pieces_that_cover_the_object_are_joined_into_a_whole_stored_response() {
    const TOTAL: u64 = 600_000; // more than two chunks
    let origin = ranged_origin(TOTAL).await;
    let proxy = start_proxy("[cache]\nrange_fill = false\n").await;
    let url = origin.url("/whole.bin");
    get_with(&proxy, &url, Some("bytes=0-299999")).await;
    pieces_stored(&proxy, &url, 1).await;
    get_with(&proxy, &url, Some("bytes=300000-")).await;
    stored(&proxy, &url).await;
    let (status, headers, body) = get_with(&proxy, &url, None).await;
    assert_eq!(status, 200);
    assert!(cache_status(&headers).contains("hit"), "{headers:?}");
    assert!(body == pattern(0, TOTAL), "the joined object is byte-exact");
    assert_eq!(origin.requests(), 2);
    let key = cachalot::cache::policy::key::cache_key(&url.parse().unwrap()).unwrap();
    wait_until_async_pieces_gone(&proxy, &key).await;
}

async fn wait_until_async_pieces_gone(proxy: &RunningProxy, key: &str) {
    for _ in 0..500 {
        if proxy.proxy.cache.store.pieces(key).await.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the joined pieces were never removed");
}
