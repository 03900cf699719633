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

#[tokio::test]
async fn readers_share_one_body_and_late_reader_starts_at_zero() {
    let fill = Fill::new(Some(6));
    let first = fill.reader().unwrap();
    let body = http_body_util::Full::new(Bytes::from_static(b"abcdef"));
    let stored = fill.clone().run(body, 100).await;
    assert_eq!(stored.unwrap(), "abcdef");
    let late = fill.reader().unwrap();
    assert_eq!(collect(first).await.unwrap(), "abcdef");
    assert_eq!(collect(late).await.unwrap(), "abcdef");
}

#[tokio::test]
async fn reader_gets_bytes_before_the_body_ends() {
    let fill = Fill::new(None);
    let (tx, body) = channel();
    let run = tokio::spawn(fill.clone().run(body, 100));
    let mut reader = fill.reader().unwrap();
    tx.send(data(b"first")).await.unwrap();
    let frame = reader.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");
    tx.send(data(b"second")).await.unwrap();
    drop(tx);
    assert_eq!(collect(reader).await.unwrap(), "second");
    assert_eq!(run.await.unwrap().unwrap(), "firstsecond");
}

#[tokio::test]
async fn aborted_origin_body_aborts_readers_and_stores_nothing() {
    let fill = Fill::new(None);
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    let run = tokio::spawn(fill.clone().run(body, 100));
    tx.send(data(b"part")).await.unwrap();
    tx.send(Err("reset".into())).await.unwrap();
    assert!(run.await.unwrap().is_none());
    assert!(collect(reader).await.is_err());
    assert!(matches!(fill.end(), Some(End::Aborted(_))));
}

#[tokio::test]
async fn truncated_body_is_not_complete() {
    let fill = Fill::new(Some(10));
    let reader = fill.reader().unwrap();
    let body = http_body_util::Full::new(Bytes::from_static(b"short"));
    assert!(fill.clone().run(body, 100).await.is_none());
    assert!(
        collect(reader).await.is_err(),
        "short body must not look complete"
    );
}

#[tokio::test]
async fn oversize_body_streams_to_reader_but_is_not_stored() {
    let fill = Fill::new(None);
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    let run = tokio::spawn(fill.clone().run(body, 8));
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
    let fill = Fill::new(None);
    let (tx, body) = channel();
    let reader = fill.reader().unwrap();
    drop(reader);
    let run = tokio::spawn(fill.clone().run(body, 4));
    tx.send(data(b"0123456789")).await.unwrap();
    let stored = tokio::time::timeout(std::time::Duration::from_secs(5), run)
        .await
        .expect("run must stop once nobody reads an oversize body");
    assert!(stored.unwrap().is_none());
}
