//! The one body type that flows out of the proxy, whatever produced it
//! (origin stream, cached bytes, error page), and the wrapper a client's
//! request body is forwarded in. Pure.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

use crate::error::ProxyError;

/// Error carried by bodies: an aborted stream must reach the client as an
/// aborted transfer, never as a short body that looks complete.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body of any origin.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of known bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Bodies one after another, as one body.
pub fn concat(parts: Vec<Body>) -> Body {
    Concat {
        parts: parts.into(),
    }
    .boxed_unsync()
}

struct Concat {
    parts: std::collections::VecDeque<Body>,
}

impl http_body::Body for Concat {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            let Some(first) = self.parts.front_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(first).poll_frame(cx) {
                Poll::Ready(None) => {
                    self.parts.pop_front();
                }
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.parts.iter().all(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = SizeHint::new();
        let (mut lower, mut upper) = (0u64, Some(0u64));
        for part in &self.parts {
            let h = part.size_hint();
            lower += h.lower();
            upper = upper.zip(h.upper()).map(|(a, b)| a + b);
        }
        hint.set_lower(lower);
        if let Some(upper) = upper {
            hint.set_upper(upper);
        }
        hint
    }
}

/// Boxes any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A client's request body on its way to the origin: the frame already read
/// before forwarding (if any), then the rest of the stream. When the
/// client's stream fails (a malformed chunk, RFC 9112 §7.1, or a client that
/// went away) the failure is recorded, so that the request is classified as
/// the client's fault by what happened, not by the upstream error it causes.
pub struct ClientBody<B> {
    first: Option<Frame<Bytes>>,
    rest: B,
    failed: Arc<AtomicBool>,
}

/// Tells whether a [`ClientBody`] saw its client's stream fail.
#[derive(Debug, Clone, Default)]
pub struct ClientBodyWatch(Arc<AtomicBool>);

impl ClientBodyWatch {
    /// True once reading the client's body has failed.
    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The failure a request really had: when the client's body failed, the
    /// upstream error it caused is the client's fault (400, RFC 9112 §7.1).
    pub fn blame(&self, error: ProxyError) -> ProxyError {
        if self.failed() {
            ProxyError::BadRequest(MALFORMED_BODY.to_owned())
        } else {
            error
        }
    }
}

/// The explanation of a request whose body could not be read.
pub const MALFORMED_BODY: &str =
    "the request body is malformed (bad chunk framing), was cut short, or stalled for longer than timeouts.client_body";

impl<B> ClientBody<B> {
    /// `first` (already read from `rest`) followed by `rest`.
    pub fn new(first: Option<Frame<Bytes>>, rest: B) -> (Self, ClientBodyWatch) {
        let watch = ClientBodyWatch::default();
        let body = ClientBody {
            first,
            rest,
            failed: watch.0.clone(),
        };
        (body, watch)
    }
}

impl<B> http_body::Body for ClientBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match Pin::new(&mut self.rest).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                self.failed.store(true, Ordering::Release);
                Poll::Ready(Some(Err(e.into())))
            }
            other => other.map(|frame| frame.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let first = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.remaining() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(first));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that yields its frames, then fails when `fail` is set.
    struct Script {
        frames: Vec<Bytes>,
        fail: bool,
    }

    impl http_body::Body for Script {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if !self.frames.is_empty() {
                let data = self.frames.remove(0);
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if self.fail {
                self.fail = false;
                let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk");
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Ready(None)
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.frames.iter().map(|f| f.len() as u64).sum())
        }
    }

    #[tokio::test]
    async fn first_frame_then_the_rest_and_an_exact_size_hint() {
        let rest = Script {
            frames: vec![Bytes::from_static(b"world")],
            fail: false,
        };
        let (body, watch) = ClientBody::new(Some(Frame::data(Bytes::from_static(b"hello "))), rest);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(11));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello world");
        assert!(!watch.failed());
    }

    // RFC 9112 §7.1: a malformed chunk is the client's failure, recorded.
    #[tokio::test]
    async fn a_failing_client_stream_is_recorded() {
        let rest = Script {
            frames: vec![Bytes::from_static(b"part")],
            fail: true,
        };
        let (body, watch) = ClientBody::new(None, rest);
        assert!(body.collect().await.is_err());
        assert!(watch.failed());
        let blamed = watch.blame(ProxyError::UpstreamReset("origin".into()));
        assert_eq!(blamed.status(), 400);
        let fine = ClientBodyWatch::default();
        let kept = fine.blame(ProxyError::UpstreamReset("origin".into()));
        assert_eq!(kept.status(), 502);
    }
}
