//! Bodies on disk: one file per stored body, `<dir>/objects/<xx>/<id>`
//! (as Squid's ufs and nginx keep theirs), written in chunks of [`CHUNK`]
//! bytes whose CRC-32s the entry's head holds. A file no head names (a
//! fill cut short, a crash before the head was written) is reclaimed when
//! the cache opens. All functions here block; [`ChunkBody`] runs them on
//! the blocking pool, a few chunks ahead of the client.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

use crate::cache::store::record::Chunks;
use crate::http::body::BoxError;

/// Bytes per chunk of a new body (a head records its own chunk size).
pub const CHUNK: u32 = 256 * 1024;

/// Chunks a disk reader reads ahead of the one it is sending.
pub const READ_AHEAD: usize = 1;

/// Space a body of `length` bytes takes on disk, in file-system blocks.
pub fn disk_bytes(length: u64) -> u64 {
    length.div_ceil(4096) * 4096
}

/// The folder of object files.
#[derive(Debug)]
pub struct Objects {
    root: PathBuf,
}

impl Objects {
    /// The object folder under the cache folder `dir` (created if missing).
    pub fn open(dir: &Path) -> io::Result<Objects> {
        let root = dir.join("objects");
        fs::create_dir_all(&root)?;
        Ok(Objects { root })
    }

    /// Where object `id` lives.
    pub fn path(&self, id: u64) -> PathBuf {
        self.root
            .join(format!("{:02x}", id & 0xff))
            .join(format!("{id:016x}"))
    }

    /// Creates the file of a new object.
    pub fn create(&self, id: u64) -> io::Result<File> {
        let path = self.path(id);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// Opens an object for reading.
    pub fn open_file(&self, id: u64) -> io::Result<File> {
        File::open(self.path(id))
    }

    /// Removes an object's file (one already gone is no error).
    pub fn remove(&self, id: u64) -> io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every object file present: its id and its size on disk.
    pub fn list(&self) -> Vec<(u64, u64)> {
        let mut found = Vec::new();
        let Ok(dirs) = fs::read_dir(&self.root) else {
            return found;
        };
        for dir in dirs.flatten() {
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let Some(id) = name.to_str().and_then(|n| u64::from_str_radix(n, 16).ok()) else {
                    continue;
                };
                let size = file.metadata().map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    m.blocks() * 512
                });
                found.push((id, size.unwrap_or(0)));
            }
        }
        found
    }
}

/// Appends chunks to a new object's file, keeping their CRC-32s; the file
/// is shared with the readers of the bytes already written.
pub struct ObjectWriter {
    pub file: Arc<File>,
    pub id: u64,
    pub crcs: Vec<u32>,
    pub written: u64,
}

impl ObjectWriter {
    pub fn new(file: File, id: u64) -> ObjectWriter {
        ObjectWriter {
            file: Arc::new(file),
            id,
            crcs: Vec::new(),
            written: 0,
        }
    }

    /// Writes one chunk given as consecutive pieces.
    pub fn append(&mut self, pieces: &[Bytes]) -> io::Result<()> {
        let mut crc = crc32fast::Hasher::new();
        for piece in pieces {
            (&*self.file).write_all(piece)?;
            crc.update(piece);
            self.written += piece.len() as u64;
        }
        self.crcs.push(crc.finalize());
        Ok(())
    }

    /// The chunk map of what was written.
    pub fn chunks(&self) -> Chunks {
        Chunks {
            id: self.id,
            chunk_size: CHUNK,
            crcs: self.crcs.clone(),
        }
    }
}

/// Why a chunk could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("cache file: {0}")]
    Io(#[from] io::Error),
    #[error("cache file: chunk {0} fails its checksum")]
    Checksum(usize),
    #[error("cache file: no chunk {0}")]
    Missing(usize),
}

/// Reads chunk `index` of a body of `length` bytes and checks its CRC.
pub fn read_chunk(
    file: &File,
    chunks: &Chunks,
    length: u64,
    index: usize,
) -> Result<Bytes, ChunkError> {
    let size = u64::from(chunks.chunk_size);
    let start = index as u64 * size;
    let expected = chunks.crcs.get(index).ok_or(ChunkError::Missing(index))?;
    let len = size.min(length.saturating_sub(start)) as usize;
    // Filled with zeros by hand, not allocated zeroed: a zeroed allocation
    // of this size is handed out as fresh pages that fault in on first
    // touch (a third of a disk hit's CPU, measured), a plain one reuses
    // memory already mapped.
    let mut buf = bytes::BytesMut::with_capacity(len);
    buf.resize(len, 0);
    file.read_exact_at(&mut buf, start)?;
    if crc32fast::hash(&buf) != *expected {
        return Err(ChunkError::Checksum(index));
    }
    Ok(buf.freeze())
}

/// Reads a whole body (for bodies small enough for the memory tier).
pub fn read_all(file: &File, chunks: &Chunks, length: u64) -> Result<Bytes, ChunkError> {
    if chunks.crcs.len() == 1 {
        return read_chunk(file, chunks, length, 0);
    }
    let mut all = bytes::BytesMut::with_capacity(length as usize);
    for index in 0..chunks.crcs.len() {
        all.extend_from_slice(&read_chunk(file, chunks, length, index)?);
    }
    Ok(all.freeze())
}

/// Writes the bodies `parts` (file, chunk map, length), one after another,
/// as the new object `id`, re-cut into chunks of [`CHUNK`]: a partial
/// object's pieces made whole. Every chunk read is checked.
pub fn join(
    objects: &Objects,
    id: u64,
    parts: &[(Arc<File>, Arc<Chunks>, u64)],
) -> Result<Chunks, ChunkError> {
    let mut writer = ObjectWriter::new(objects.create(id)?, id);
    let mut pending = bytes::BytesMut::new();
    for (file, chunks, length) in parts {
        for index in 0..chunks.crcs.len() {
            pending.extend_from_slice(&read_chunk(file, chunks, *length, index)?);
            while pending.len() >= CHUNK as usize {
                let chunk = pending.split_to(CHUNK as usize).freeze();
                writer.append(&[chunk])?;
            }
        }
    }
    if !pending.is_empty() {
        writer.append(&[pending.freeze()])?;
    }
    Ok(writer.chunks())
}

/// Bytes `[start, end)` of a body on disk, as a response body: chunks are
/// read and checked on the blocking pool, [`READ_AHEAD`] ahead of the one
/// being sent, so memory is a few chunks whatever the body's size. A chunk
/// that fails its check, or a read slower than `deadline`, ends the body
/// with an error (the client sees an aborted transfer, never bad bytes).
pub struct ChunkBody {
    file: Arc<File>,
    chunks: Arc<Chunks>,
    length: u64,
    pos: u64,
    end: u64,
    next: usize,
    reads: VecDeque<JoinHandle<Result<Bytes, ChunkError>>>,
    current: Option<(u64, Bytes)>,
    deadline: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Called once when a chunk fails its check or cannot be read.
    on_damage: Option<Box<dyn FnOnce() + Send>>,
}

impl ChunkBody {
    /// Calls `f` when a chunk turns out damaged or unreadable (the stored
    /// entry should then go).
    pub fn on_damage(mut self, f: impl FnOnce() + Send + 'static) -> ChunkBody {
        self.on_damage = Some(Box::new(f));
        self
    }

    pub fn new(
        file: Arc<File>,
        chunks: Arc<Chunks>,
        length: u64,
        start: u64,
        end: u64,
        deadline: Duration,
    ) -> ChunkBody {
        let size = u64::from(chunks.chunk_size.max(1));
        ChunkBody {
            file,
            chunks,
            length,
            pos: start,
            end: end.min(length),
            next: (start / size) as usize,
            reads: VecDeque::new(),
            current: None,
            deadline,
            timer: None,
            on_damage: None,
        }
    }

    /// Where the next byte served comes from.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn chunk_start(&self, index: usize) -> u64 {
        index as u64 * u64::from(self.chunks.chunk_size.max(1))
    }

    fn start_reads(&mut self) {
        while self.reads.len() <= READ_AHEAD && self.chunk_start(self.next) < self.end {
            let (file, chunks, length, index) = (
                self.file.clone(),
                self.chunks.clone(),
                self.length,
                self.next,
            );
            self.reads.push_back(tokio::task::spawn_blocking(move || {
                read_chunk(&file, &chunks, length, index)
            }));
            self.next += 1;
        }
    }
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.pos >= this.end {
                return Poll::Ready(None);
            }
            if let Some((at, chunk)) = &this.current {
                let chunk_end = at + chunk.len() as u64;
                if this.pos >= *at && this.pos < chunk_end {
                    let from = (this.pos - at) as usize;
                    let to = (this.end.min(chunk_end) - at) as usize;
                    let piece = chunk.slice(from..to);
                    this.pos += piece.len() as u64;
                    if this.pos >= chunk_end {
                        this.current = None;
                    }
                    this.start_reads();
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                this.current = None;
            }
            this.start_reads();
            let index = this.next - this.reads.len();
            let Some(read) = this.reads.front_mut() else {
                return Poll::Ready(Some(Err("cache file: nothing left to read".into())));
            };
            match Pin::new(read).poll(cx) {
                Poll::Pending => {
                    let deadline = this.deadline;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline)));
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Some(Err(format!(
                            "cache file: a read took longer than {deadline:?}"
                        )
                        .into())));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(done) => {
                    this.reads.pop_front();
                    this.timer = None;
                    match done {
                        Ok(Ok(chunk)) => {
                            this.current = Some((this.chunk_start(index), chunk));
                        }
                        Ok(Err(e)) => {
                            if let Some(f) = this.on_damage.take() {
                                f();
                            }
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        Err(e) => return Poll::Ready(Some(Err(e.into()))),
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end.saturating_sub(self.pos))
    }
}

#[cfg(test)]
#[path = "object_tests.rs"]
mod tests;
