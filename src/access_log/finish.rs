//! A response body that counts what it hands out and, when it is dropped,
//! reports the count and whether the body reached its end: the moment a
//! request is really finished (or aborted), for the log and the metrics,
//! and for the connection, which is idle again from then on.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Wraps a body; calls `on_finish(bytes of body sent, ended cleanly)`
/// exactly once, when dropped.
pub struct Finish<B, F: FnOnce(u64, bool)> {
    inner: B,
    bytes: u64,
    complete: bool,
    failed: bool,
    on_finish: Option<F>,
}

impl<B: http_body::Body<Data = Bytes>, F: FnOnce(u64, bool)> Finish<B, F> {
    pub fn new(inner: B, on_finish: F) -> Self {
        let complete = inner.is_end_stream();
        Finish {
            inner,
            bytes: 0,
            complete,
            failed: false,
            on_finish: Some(on_finish),
        }
    }
}

impl<B, F> http_body::Body for Finish<B, F>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    F: FnOnce(u64, bool) + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                // hyper stops polling once a body says it has ended.
                if self.inner.is_end_stream() && !self.failed {
                    self.complete = true;
                }
            }
            Poll::Ready(None) => self.complete = !self.failed,
            Poll::Ready(Some(Err(_))) => {
                self.failed = true;
                self.complete = false;
            }
            Poll::Pending => {}
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

impl<B, F: FnOnce(u64, bool)> Drop for Finish<B, F> {
    fn drop(&mut self) {
        if let Some(f) = self.on_finish.take() {
            f(self.bytes, self.complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn reports_bytes_and_completion_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let body = Finish::new(Full::new(Bytes::from_static(b"hello")), move |n, done| {
            s.lock().unwrap().push((n, done))
        });
        let _ = body.collect().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![(5, true)]);
    }

    #[tokio::test]
    async fn dropped_early_is_incomplete() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let body = Finish::new(Full::new(Bytes::from_static(b"hello")), move |n, done| {
            s.lock().unwrap().push((n, done))
        });
        drop(body);
        assert_eq!(*seen.lock().unwrap(), vec![(0, false)]);
    }
}
