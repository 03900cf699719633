//! One origin body, many readers: the body is read by its own task into a
//! shared buffer that any number of client bodies read from as it arrives
//! (a late reader starts at byte 0). When it ends complete and
//! length-checked, the whole body is handed over for storage; an aborted or
//! truncated body is never stored and aborts every reader.
//!
//! Bodies larger than the object limit stop being collected: the buffer then
//! keeps only what some reader still needs and the origin is read at the
//! pace of the slowest reader, so memory stays bounded.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::Notify;

use crate::http::body::BoxError;

/// How much an over-limit body may run ahead of its slowest reader.
const WINDOW: u64 = 1024 * 1024;

/// How a body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Complete,
    Aborted(String),
}

#[derive(Default)]
struct State {
    /// Chunks from absolute index `base` on.
    chunks: Vec<Bytes>,
    base: usize,
    buffered: u64,
    received: u64,
    end: Option<End>,
    /// Stopped collecting for storage; trimming what all readers have read.
    oversize: bool,
    /// Per reader: its next absolute chunk index, and a waker when waiting.
    readers: Vec<Option<(usize, Option<Waker>)>>,
}

/// A body being received from the origin, shared by its readers.
pub struct Fill {
    state: Mutex<State>,
    progress: Notify,
    expected: Option<u64>,
}

impl Fill {
    /// A new fill for a body of `expected` bytes (when known).
    pub fn new(expected: Option<u64>) -> Arc<Fill> {
        Arc::new(Fill {
            state: Mutex::new(State::default()),
            progress: Notify::new(),
            expected,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A new reader from byte 0, or None once the start has been discarded.
    pub fn reader(self: &Arc<Self>) -> Option<FillBody> {
        let mut state = self.lock();
        if state.base != 0 {
            return None;
        }
        let id = match state.readers.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                state.readers.push(None);
                state.readers.len() - 1
            }
        };
        if let Some(slot) = state.readers.get_mut(id) {
            *slot = Some((0, None));
        }
        Some(FillBody {
            fill: self.clone(),
            id,
            pos: 0,
        })
    }

    /// True while a late reader can still join from byte 0.
    pub fn joinable(&self) -> bool {
        let state = self.lock();
        state.base == 0 && !state.oversize && !matches!(state.end, Some(End::Aborted(_)))
    }

    /// How the body ended, if it has.
    pub fn end(&self) -> Option<End> {
        self.lock().end.clone()
    }

    fn push(&self, chunk: Bytes, limit: u64) {
        let mut state = self.lock();
        let len = chunk.len() as u64;
        state.received += len;
        state.buffered += len;
        state.chunks.push(chunk);
        if state.received > limit {
            state.oversize = true;
        }
        if state.oversize {
            trim(&mut state);
        }
        wake_all(&mut state);
    }

    fn finish(&self, end: End) {
        let mut state = self.lock();
        state.end = Some(end);
        wake_all(&mut state);
    }

    /// Over the limit and too far ahead of the slowest reader?
    fn must_wait(&self) -> Option<bool> {
        let state = self.lock();
        if !state.oversize {
            return Some(false);
        }
        if state.readers.iter().all(Option::is_none) {
            return None; // nobody left to read and nothing to store
        }
        Some(state.buffered > WINDOW)
    }

    /// Reads `body` to its end, sharing it with the readers. Returns the
    /// whole body when it is complete, length-checked and within `limit`.
    pub async fn run<B>(self: Arc<Self>, mut body: B, limit: u64) -> Option<Bytes>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        loop {
            loop {
                let notified = self.progress.notified();
                match self.must_wait() {
                    None => {
                        self.finish(End::Aborted("no reader left".into()));
                        return None;
                    }
                    Some(false) => break,
                    Some(true) => notified.await,
                }
            }
            match body.frame().await {
                None => break,
                Some(Err(e)) => {
                    let e: BoxError = e.into();
                    self.finish(End::Aborted(format!("origin body aborted: {e}")));
                    return None;
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            self.push(data, limit);
                        }
                    }
                }
            }
        }
        let mut state = self.lock();
        if let Some(expected) = self.expected {
            if state.received != expected {
                let why = format!(
                    "origin body truncated: {} of {expected} bytes",
                    state.received
                );
                state.end = Some(End::Aborted(why));
                wake_all(&mut state);
                return None;
            }
        }
        state.end = Some(End::Complete);
        wake_all(&mut state);
        if state.oversize {
            return None;
        }
        Some(concat(&state.chunks, state.received))
    }
}

fn concat(chunks: &[Bytes], len: u64) -> Bytes {
    match chunks {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut all = BytesMut::with_capacity(len as usize);
            for c in many {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    }
}

fn wake_all(state: &mut State) {
    for (_, waker) in state.readers.iter_mut().flatten() {
        if let Some(w) = waker.take() {
            w.wake();
        }
    }
}

/// Drops chunks every reader has read (only once over the limit).
fn trim(state: &mut State) {
    let min = state
        .readers
        .iter()
        .flatten()
        .map(|(pos, _)| *pos)
        .min()
        .unwrap_or(state.base + state.chunks.len());
    let drop = min.saturating_sub(state.base).min(state.chunks.len());
    if drop > 0 {
        let freed: u64 = state.chunks.drain(..drop).map(|c| c.len() as u64).sum();
        state.buffered -= freed.min(state.buffered);
        state.base += drop;
    }
}

/// One reader's view of a [`Fill`], as a response body.
pub struct FillBody {
    fill: Arc<Fill>,
    id: usize,
    pos: usize,
}

impl http_body::Body for FillBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let fill = self.fill.clone();
        let mut state = fill.lock();
        let index = self.pos.saturating_sub(state.base);
        if let Some(chunk) = state.chunks.get(index).cloned() {
            self.pos += 1;
            let (id, pos, oversize) = (self.id, self.pos, state.oversize);
            if let Some(Some(slot)) = state.readers.get_mut(id) {
                slot.0 = pos;
            }
            if oversize {
                trim(&mut state);
                drop(state);
                fill.progress.notify_one();
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        match &state.end {
            Some(End::Complete) => Poll::Ready(None),
            Some(End::Aborted(why)) => Poll::Ready(Some(Err(why.clone().into()))),
            None => {
                if let Some(Some(slot)) = state.readers.get_mut(self.id) {
                    slot.1 = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = self.fill.lock();
        state.end == Some(End::Complete) && self.pos >= state.base + state.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        match self.fill.expected {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for FillBody {
    fn drop(&mut self) {
        let mut state = self.fill.lock();
        if let Some(slot) = state.readers.get_mut(self.id) {
            *slot = None;
        }
        if state.oversize {
            trim(&mut state);
        }
        drop(state);
        self.fill.progress.notify_one();
    }
}

#[cfg(test)]
#[path = "tee_tests.rs"]
mod tests;
