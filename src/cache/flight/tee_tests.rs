//! Tests of the shared body: fan-out, late joiners, aborts, size bounds.

use super::*;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

type Chunk = Result<Frame<Bytes>, BoxError>;

/// An origin body fed by the test through a channel.
struct ChanBody(mpsc::Receiver<Chunk>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

fn channel() -> (mpsc::Sender<Chunk>, ChanBody) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ChanBody(rx))
}

fn data(b: &'static [u8]) -> Chunk {
    Ok(Frame::data(Bytes::from_static(b)))
}

async fn collect(body: FillBody) -> Result<Bytes, BoxError> {
    Ok(body.collect().await?.to_bytes())
}

/// A plan that keeps bodies up to `memory` bytes in memory, none larger
/// than `max`, with no disk.
fn plan(memory: u64, max: u64) -> Plan {
    Plan {
        object: None,
        memory_limit: memory,
        max_object: max,
        permit: None,
        disk_io: std::time::Duration::from_secs(5),
    }
}

/// A store on a temporary folder, for fills that write to disk.
fn store(dir: &tempfile::TempDir) -> crate::cache::store::Store {
    crate::cache::store::Store::open(
        dir.path(),
        crate::cache::store::StoreConfig {
            memory_size: 1 << 20,
            disk_size: 1 << 30,
            memory_object_size: 1 << 10,
            disk_io: std::time::Duration::from_secs(5),
        },
    )
    .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8).collect()
}

/// Bytes the fill holds in memory now.
fn in_memory(fill: &Fill) -> u64 {
    fill.lock().frames.iter().map(|(_, f)| f.len() as u64).sum()
}

#[tokio::test]
async fn readers_share_one_body_and_late_reader_starts_at_zero() {
    let fill = Fill::new(Some(6), &plan(100, 100));
    let first = fill.reader().unwrap();
    let body = http_body_util::Full::new(Bytes::from_static(b"abcdef"));
    let stored = fill.clone().run(body, plan(100, 100), |_| {}).await;
    assert_eq!(stored.unwrap().body.unwrap(), "abcdef");
    let late = fill.reader().unwrap();
    assert_eq!(collect(first).await.unwrap(), "abcdef");
    assert_eq!(collect(late).await.unwrap(), "abcdef");
}

#[tokio::test]
async fn reader_gets_bytes_before_the_body_ends() {
    let fill = Fill::new(None, &plan(100, 100));
    let (tx, body) = channel();
    let run = tokio::spawn(fill.clone().run(body, plan(100, 100), |_| {}));
    let mut reader = fill.reader().unwrap();
    tx.send(data(b"first")).await.unwrap();
    let frame = reader.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");
    tx.send(data(b"second")).await.unwrap();
    drop(tx);
    assert_eq!(collect(reader).await.unwrap(), "second");
    assert_eq!(run.await.unwrap().unwrap().body.unwrap(), "firstsecond");
}

#[tokio::test]
async fn aborted_origin_body_aborts_readers_and_stores_nothing() {
    let fill = Fill::new(None, &plan(100, 100));
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    let run = tokio::spawn(fill.clone().run(body, plan(100, 100), |_| {}));
    tx.send(data(b"part")).await.unwrap();
    tx.send(Err("reset".into())).await.unwrap();
    assert!(run.await.unwrap().is_none());
    assert!(collect(reader).await.is_err());
    assert!(matches!(fill.end(), Some(End::Aborted(_))));
}

#[tokio::test]
async fn truncated_body_is_not_complete() {
    let fill = Fill::new(Some(10), &plan(100, 100));
    let reader = fill.reader().unwrap();
    let body = http_body_util::Full::new(Bytes::from_static(b"short"));
    assert!(fill
        .clone()
        .run(body, plan(100, 100), |_| {})
        .await
        .is_none());
    assert!(
        collect(reader).await.is_err(),
        "short body must not look complete"
    );
}

#[tokio::test]
async fn oversize_body_streams_to_reader_but_is_not_stored() {
    let fill = Fill::new(None, &plan(8, 8));
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    let run = tokio::spawn(fill.clone().run(body, plan(8, 8), |_| {}));
    let feed = tokio::spawn(async move {
        for _ in 0..64 {
            tx.send(Ok(Frame::data(Bytes::from(vec![7u8; 64 * 1024]))))
                .await
                .unwrap();
        }
    });
    let all = collect(reader).await.unwrap();
    feed.await.unwrap();
    assert_eq!(all.len(), 64 * 64 * 1024);
    assert!(run.await.unwrap().is_none());
    assert!(!fill.joinable());
}

#[tokio::test]
async fn oversize_body_with_no_reader_stops_reading() {
    let fill = Fill::new(None, &plan(4, 4));
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    drop(reader);
    let run = tokio::spawn(fill.clone().run(body, plan(4, 4), |_| {}));
    tx.send(data(b"0123456789")).await.unwrap();
    let stored = tokio::time::timeout(std::time::Duration::from_secs(5), run)
        .await
        .expect("run must stop once nobody reads an oversize body");
    assert!(stored.unwrap().is_none());
}

#[tokio::test]
async fn a_body_larger_than_memory_goes_to_disk_and_a_late_reader_reads_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let len = CHUNK as usize * 3 + 5;
    let whole = pattern(len);
    let mut p = plan(1024, 1 << 30);
    p.object = store.new_object(Some(len as u64)).ok();
    let fill = Fill::new(Some(len as u64), &p);
    let (tx, body) = channel();
    let first = fill.reader().unwrap();
    let run = tokio::spawn(fill.clone().run(body, p, |_| {}));
    let feed = {
        let whole = whole.clone();
        tokio::spawn(async move {
            for piece in whole.chunks(64 * 1024) {
                tx.send(Ok(Frame::data(Bytes::copy_from_slice(piece))))
                    .await
                    .unwrap();
            }
        })
    };
    let got = collect(first).await.unwrap();
    feed.await.unwrap();
    assert!(got == whole[..], "the live reader gets every byte");
    let kept = run.await.unwrap().unwrap();
    assert!(kept.body.is_none(), "too large for memory");
    assert_eq!(kept.object.as_ref().unwrap().crcs.len(), 4);
    assert!(
        in_memory(&fill) <= 64 * 1024,
        "written bytes leave memory: {} held",
        in_memory(&fill)
    );
    // A reader joining now reads from the file, whatever its range.
    let late = fill.reader().unwrap();
    assert!(collect(late).await.unwrap() == whole[..]);
    let start = CHUNK as u64 - 3;
    let ranged = fill.reader_of(start, Some(start + 10)).unwrap();
    assert!(collect(ranged).await.unwrap() == whole[start as usize..start as usize + 10]);
}

#[tokio::test]
async fn a_disk_fill_holds_at_most_about_a_chunk_in_memory_and_runs_on_without_readers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let len = CHUNK as usize * 8;
    let mut p = plan(1024, 1 << 30);
    p.object = store.new_object(Some(len as u64)).ok();
    let fill = Fill::new(Some(len as u64), &p);
    let (tx, body) = channel();
    drop(fill.reader().unwrap());
    let run = tokio::spawn(fill.clone().run(body, p, |_| {}));
    let mut peak = 0;
    for _ in 0..len / (16 * 1024) {
        tx.send(Ok(Frame::data(Bytes::from(vec![1u8; 16 * 1024]))))
            .await
            .unwrap();
        peak = peak.max(in_memory(&fill));
    }
    drop(tx);
    let kept = run.await.unwrap().expect("a background fill completes");
    assert_eq!(kept.length, len as u64);
    assert!(
        peak <= u64::from(CHUNK) + 4 * 16 * 1024,
        "peak in memory {peak}"
    );
}

#[tokio::test]
async fn a_range_reader_gets_its_bytes_as_they_arrive() {
    let fill = Fill::new(Some(12), &plan(100, 100));
    let (tx, body) = channel();
    let ranged = fill.reader_of(4, Some(9)).unwrap();
    let run = tokio::spawn(fill.clone().run(body, plan(100, 100), |_| {}));
    tx.send(data(b"0123")).await.unwrap();
    tx.send(data(b"456789ab")).await.unwrap();
    assert_eq!(collect(ranged).await.unwrap(), "45678");
    drop(tx);
    assert_eq!(run.await.unwrap().unwrap().body.unwrap(), "0123456789ab");
}
