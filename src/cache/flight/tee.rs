//! One origin body, many readers: the body is read by its own task, which
//! keeps it in memory (a body small enough for the memory tier), writes it
//! to its object file chunk by chunk as it arrives (a body headed for the
//! disk tier), or only passes it on (a body that is not stored). Any number
//! of client bodies read it as it arrives, each over its own byte range (a
//! late reader may start at byte 0, or wherever its Range asks): from the
//! bytes in memory, or from the object file for the bytes already written
//! and no longer in memory, so a reader far behind costs a few chunks of
//! read-ahead, not the object. The fill runs to the end of the body whether
//! readers stay or not (a background fill), except a body that is not
//! stored, which ends with its last reader. When it ends complete and
//! length-checked, what was kept is handed over for storage; an aborted or
//! truncated body is never stored and aborts every reader.
//!
//! Memory: a kept-in-memory body up to `cache.memory_object_size`; a body
//! written to disk, the chunk being written plus the frames not yet read
//! (at most [`WINDOW`] past the slowest reader when nothing is kept).

use std::collections::VecDeque;
use std::fs::File;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::cache::store::object::{ChunkBody, CHUNK};
use crate::cache::store::record::Chunks;
use crate::cache::store::writing::NewObject;
use crate::http::body::BoxError;

/// How far a body that is not stored may run ahead of its slowest reader.
const WINDOW: u64 = 1024 * 1024;

/// How a body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Complete,
    Aborted(String),
}

/// What the fill does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keeps the whole body in memory (and writes it to disk, if it has a file).
    Memory,
    /// Writes it to disk, keeping in memory only what is not written yet.
    Disk,
    /// Stores nothing: passes it to its readers, at the slowest one's pace.
    Stream,
}

/// How a fill may keep its body.
pub struct Plan {
    /// The object file to write it to, if the disk tier takes writes.
    pub object: Option<NewObject>,
    /// The largest body kept in memory.
    pub memory_limit: u64,
    /// The largest body stored at all.
    pub max_object: u64,
    /// The fill's share of `cache.fill_budget`.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The longest a disk read may take.
    pub disk_io: Duration,
}

/// What a complete fill kept.
#[derive(Debug)]
pub struct Kept {
    pub length: u64,
    pub body: Option<Bytes>,
    pub object: Option<Chunks>,
}

struct State {
    /// Frames covering `[mem_start, received)`, with their start offsets.
    frames: VecDeque<(u64, Bytes)>,
    mem_start: u64,
    received: u64,
    /// Bytes in the object file, readable through `file`.
    written: u64,
    crcs: Vec<u32>,
    file: Option<Arc<File>>,
    end: Option<End>,
    mode: Mode,
    /// Per reader: its next byte, and a waker when waiting.
    readers: Vec<Option<(u64, Option<Waker>)>>,
}

/// A body being received from the origin, shared by its readers.
pub struct Fill {
    state: Mutex<State>,
    progress: Notify,
    expected: Option<u64>,
    disk_io: Duration,
}

impl Fill {
    /// A new fill for a body of `expected` bytes (when known), kept as
    /// `plan` allows.
    pub fn new(expected: Option<u64>, plan: &Plan) -> Arc<Fill> {
        let mode = if expected.is_some_and(|n| n > plan.memory_limit) {
            if plan.object.is_some() {
                Mode::Disk
            } else {
                Mode::Stream
            }
        } else {
            Mode::Memory
        };
        Arc::new(Fill {
            state: Mutex::new(State {
                frames: VecDeque::new(),
                mem_start: 0,
                received: 0,
                written: 0,
                crcs: Vec::new(),
                file: None,
                end: None,
                mode,
                readers: Vec::new(),
            }),
            progress: Notify::new(),
            expected,
            disk_io: plan.disk_io,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The body's length, when the origin said it.
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// A new reader of the whole body.
    pub fn reader(self: &Arc<Self>) -> Option<FillBody> {
        self.reader_of(0, None)
    }

    /// A new reader of bytes `[start, end)` (`end` None: to the end of the
    /// body), or None when those bytes can no longer be read (a body that
    /// is not stored, whose start was passed on and dropped).
    pub fn reader_of(self: &Arc<Self>, start: u64, end: Option<u64>) -> Option<FillBody> {
        let mut state = self.lock();
        let readable = start >= state.mem_start || start < state.written;
        if !readable || matches!(state.end, Some(End::Aborted(_))) {
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
            *slot = Some((start, None));
        }
        Some(FillBody {
            fill: self.clone(),
            id,
            pos: start,
            end,
            disk: None,
        })
    }

    /// True while a late reader can still join from byte 0.
    pub fn joinable(&self) -> bool {
        let state = self.lock();
        (state.mem_start == 0 || state.written > 0)
            && state.mode != Mode::Stream
            && !matches!(state.end, Some(End::Aborted(_)))
    }

    /// How the body ended, if it has.
    pub fn end(&self) -> Option<End> {
        self.lock().end.clone()
    }

    /// Takes one frame in; returns what the fill does with the bytes now.
    fn push(&self, chunk: Bytes, plan: &Plan, has_object: bool) -> Mode {
        let mut state = self.lock();
        let len = chunk.len() as u64;
        let at = state.received;
        state.received += len;
        state.frames.push_back((at, chunk));
        if state.received > plan.max_object {
            state.mode = Mode::Stream;
        }
        if state.mode == Mode::Memory && state.received > plan.memory_limit {
            state.mode = if has_object { Mode::Disk } else { Mode::Stream };
        }
        trim(&mut state);
        wake_all(&mut state);
        state.mode
    }

    /// A chunk is in the file: readers may read it there.
    fn wrote(&self, len: u64, crc: u32, file: Option<Arc<File>>) {
        let mut state = self.lock();
        state.written += len;
        state.crcs.push(crc);
        if state.file.is_none() {
            state.file = file;
        }
        trim(&mut state);
    }

    /// The disk write failed: keep the body in memory if it fits, else
    /// stop storing it.
    fn disk_failed(&self, plan: &Plan) {
        let mut state = self.lock();
        state.written = 0;
        state.crcs.clear();
        state.file = None;
        if state.mode == Mode::Disk || state.received > plan.memory_limit {
            state.mode = Mode::Stream;
        }
        trim(&mut state);
    }

    fn finish(&self, end: End) {
        let mut state = self.lock();
        state.end = Some(end);
        wake_all(&mut state);
    }

    /// Not stored and too far ahead of the slowest reader? None when
    /// nobody is left to read a body that is not stored.
    fn must_wait(&self) -> Option<bool> {
        let state = self.lock();
        if state.mode != Mode::Stream {
            return Some(false);
        }
        if state.readers.iter().all(Option::is_none) {
            return None;
        }
        Some(state.received - state.mem_start > WINDOW)
    }

    /// Reads `body` to its end, sharing it with the readers and keeping it
    /// as `plan` allows. Returns what was kept when the body is complete
    /// and length-checked. A body kept in memory is also handed to
    /// `in_memory` as soon as its last byte is in, before its disk write
    /// is done, so that it is served from memory at once.
    pub async fn run<B>(
        self: Arc<Self>,
        mut body: B,
        mut plan: Plan,
        in_memory: impl FnOnce(Bytes),
    ) -> Option<Kept>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut object = plan.object.take();
        // Bytes received and not yet written, as pieces of frames.
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0u64;
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
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if self.push(data.clone(), &plan, object.is_some()) == Mode::Stream {
                        // Nothing is stored any more: the file goes.
                        object = None;
                        pending.clear();
                        pending_len = 0;
                        continue;
                    }
                    if object.is_none() {
                        continue;
                    }
                    pending_len += data.len() as u64;
                    pending.push(data);
                    while pending_len >= u64::from(CHUNK) {
                        let chunk = take_chunk(&mut pending, &mut pending_len);
                        if !self.write(&mut object, chunk, &plan).await {
                            pending.clear();
                            pending_len = 0;
                            break;
                        }
                    }
                }
            }
        }
        let received = self.lock().received;
        if let Some(expected) = self.expected {
            if received != expected {
                let why = format!("origin body truncated: {received} of {expected} bytes");
                self.finish(End::Aborted(why));
                return None;
            }
        }
        // Every byte is here: readers need not wait for the last write.
        self.finish(End::Complete);
        let whole = {
            let state = self.lock();
            (state.mode == Mode::Memory).then(|| concat(&state.frames, received))
        };
        if let Some(whole) = &whole {
            in_memory(whole.clone());
        }
        if pending_len > 0 {
            let chunk = std::mem::take(&mut pending);
            self.write(&mut object, chunk, &plan).await;
        }
        let kept = {
            let state = self.lock();
            match state.mode {
                Mode::Stream => None,
                Mode::Memory => Some(Kept {
                    length: received,
                    body: whole,
                    object: object.take().and_then(|o| o.finish(received)),
                }),
                Mode::Disk => object
                    .take()
                    .and_then(|o| o.finish(received))
                    .map(|c| Kept {
                        length: received,
                        body: None,
                        object: Some(c),
                    }),
            }
        };
        drop(plan.permit.take());
        kept
    }

    /// Writes one chunk; false (and the file given up) when it failed.
    async fn write(&self, object: &mut Option<NewObject>, chunk: Vec<Bytes>, plan: &Plan) -> bool {
        let Some(file) = object.as_mut() else {
            return false;
        };
        let len: u64 = chunk.iter().map(|c| c.len() as u64).sum();
        if file.append(chunk).await {
            let (crc, handle) = file.last_chunk();
            self.wrote(len, crc, handle);
            true
        } else {
            *object = None;
            self.disk_failed(plan);
            false
        }
    }
}

/// Cuts the first [`CHUNK`] bytes off `pending`.
fn take_chunk(pending: &mut Vec<Bytes>, pending_len: &mut u64) -> Vec<Bytes> {
    let mut chunk = Vec::new();
    let mut need = CHUNK as usize;
    while need > 0 && !pending.is_empty() {
        let first = &mut pending[0];
        if first.len() <= need {
            need -= first.len();
            chunk.push(pending.remove(0));
        } else {
            chunk.push(first.split_to(need));
            need = 0;
        }
    }
    *pending_len -= u64::from(CHUNK) - need as u64;
    chunk
}

fn concat(frames: &VecDeque<(u64, Bytes)>, len: u64) -> Bytes {
    if frames.len() == 1 {
        if let Some((_, one)) = frames.front() {
            return one.clone();
        }
    }
    let mut all = BytesMut::with_capacity(len as usize);
    for (_, f) in frames {
        all.extend_from_slice(f);
    }
    all.freeze()
}

fn wake_all(state: &mut State) {
    for (_, waker) in state.readers.iter_mut().flatten() {
        if let Some(w) = waker.take() {
            w.wake();
        }
    }
}

/// Drops the frames no longer needed in memory: in disk mode those
/// written to the file; when nothing is stored those every reader has read.
fn trim(state: &mut State) {
    let keep_from = match state.mode {
        Mode::Memory => return,
        Mode::Disk => state.written,
        Mode::Stream => state
            .readers
            .iter()
            .flatten()
            .map(|(pos, _)| *pos)
            .min()
            .unwrap_or(state.received),
    };
    while let Some((at, frame)) = state.frames.front() {
        if at + frame.len() as u64 > keep_from {
            break;
        }
        state.frames.pop_front();
    }
    state.mem_start = state.frames.front().map_or(state.received, |(at, _)| *at);
}

/// One reader's view of a [`Fill`], as a response body.
pub struct FillBody {
    fill: Arc<Fill>,
    id: usize,
    pos: u64,
    end: Option<u64>,
    /// Reading bytes already written and gone from memory.
    disk: Option<ChunkBody>,
}

impl FillBody {
    fn set_pos(&mut self, state: &mut State, pos: u64) {
        self.pos = pos;
        if let Some(Some(slot)) = state.readers.get_mut(self.id) {
            slot.0 = pos;
        }
    }
}

impl http_body::Body for FillBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            // Done at the range's end, or at the announced length (the
            // origin cannot send more; its end need not be awaited).
            if this
                .end
                .or(this.fill.expected)
                .is_some_and(|end| this.pos >= end)
            {
                return Poll::Ready(None);
            }
            if let Some(disk) = this.disk.as_mut() {
                match Pin::new(disk).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) => {
                        let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                        let fill = this.fill.clone();
                        let mut state = fill.lock();
                        let pos = this.pos + n;
                        this.set_pos(&mut state, pos);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        this.disk = None;
                        continue;
                    }
                }
            }
            let fill = this.fill.clone();
            let mut state = fill.lock();
            let pos = this.pos;
            if pos >= state.mem_start && pos < state.received {
                let i = state
                    .frames
                    .partition_point(|(at, f)| at + f.len() as u64 <= pos);
                if let Some((at, frame)) = state.frames.get(i) {
                    let from = (pos - at) as usize;
                    let mut to = frame.len();
                    if let Some(end) = this.end {
                        to = to.min((end - at) as usize);
                    }
                    let piece = frame.slice(from..to);
                    let stream = state.mode == Mode::Stream;
                    this.set_pos(&mut state, pos + piece.len() as u64);
                    if stream {
                        trim(&mut state);
                        drop(state);
                        fill.progress.notify_one();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
            }
            if pos < state.mem_start {
                let (Some(file), true) = (state.file.clone(), pos < state.written) else {
                    return Poll::Ready(Some(Err(
                        "the shared body moved on without this reader".into()
                    )));
                };
                let chunks = Arc::new(Chunks {
                    id: 0,
                    chunk_size: CHUNK,
                    crcs: state.crcs.clone(),
                });
                let end = this.end.map_or(state.written, |e| e.min(state.written));
                this.disk = Some(ChunkBody::new(
                    file,
                    chunks,
                    state.written,
                    pos,
                    end,
                    fill.disk_io,
                ));
                continue;
            }
            return match &state.end {
                Some(End::Complete) => Poll::Ready(None),
                Some(End::Aborted(why)) => Poll::Ready(Some(Err(why.clone().into()))),
                None => {
                    if let Some(Some(slot)) = state.readers.get_mut(this.id) {
                        slot.1 = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        if self
            .end
            .or(self.fill.expected)
            .is_some_and(|end| self.pos >= end)
        {
            return true;
        }
        let state = self.fill.lock();
        state.end == Some(End::Complete) && self.pos >= state.received
    }

    fn size_hint(&self) -> SizeHint {
        match (self.end, self.fill.expected) {
            (Some(end), _) => SizeHint::with_exact(end.saturating_sub(self.pos)),
            (None, Some(n)) => SizeHint::with_exact(n.saturating_sub(self.pos)),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for FillBody {
    fn drop(&mut self) {
        let mut state = self.fill.lock();
        if let Some(slot) = state.readers.get_mut(self.id) {
            *slot = None;
        }
        trim(&mut state);
        drop(state);
        self.fill.progress.notify_one();
    }
}

#[cfg(test)]
#[path = "tee_tests.rs"]
mod tests;
