//! A body being written to disk by its fill: chunks are appended on the
//! blocking pool, each within `timeouts.disk_io`; disk space is promised
//! before it is used (evicting older records to make room), so the disk
//! tier stays within `cache.disk_size` while large objects download. A
//! write that fails or stalls gives the object up and turns disk writes
//! off for a while (see `health`); an object never finished is removed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::store::disk::DiskTier;
use crate::cache::store::health::DiskHealth;
use crate::cache::store::object::{disk_bytes, ObjectWriter, CHUNK};
use crate::cache::store::record::Chunks;

/// An object file being written, not yet named by any head.
pub struct NewObject {
    id: u64,
    disk: Arc<DiskTier>,
    health: Arc<DiskHealth>,
    writer: Option<ObjectWriter>,
    reserved: u64,
    deadline: Duration,
    done: bool,
}

impl NewObject {
    /// None when the space cannot be promised (downloads in progress hold
    /// the whole disk tier).
    pub(super) fn new(
        id: u64,
        disk: Arc<DiskTier>,
        health: Arc<DiskHealth>,
        expected: Option<u64>,
        deadline: Duration,
    ) -> Option<NewObject> {
        let reserved = disk_bytes(expected.unwrap_or(0));
        if !disk.reserve(reserved) {
            return None;
        }
        Some(NewObject {
            id,
            disk,
            health,
            writer: None,
            reserved,
            deadline,
            done: false,
        })
    }

    /// The object's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Appends one chunk (at most [`CHUNK`] bytes, given as pieces); false
    /// when it could not be written (the object is then given up).
    pub async fn append(&mut self, pieces: Vec<Bytes>) -> bool {
        let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        let written = self.writer.as_ref().map_or(0, |w| w.written);
        let need = disk_bytes(written + len);
        let mut room = false;
        if need > self.reserved {
            // A body of unknown length: promise space chunk by chunk.
            let more = need - self.reserved;
            if !self.disk.reserve(more) {
                return false;
            }
            self.reserved = need;
            room = true;
        }
        let writer = self.writer.take();
        let (id, disk) = (self.id, self.disk.clone());
        let job = tokio::task::spawn_blocking(move || {
            if room {
                disk.make_room()?;
            }
            let mut writer = match writer {
                Some(w) => w,
                None => ObjectWriter::new(disk.objects.create(id)?, id),
            };
            writer.append(&pieces)?;
            Ok::<_, crate::cache::store::disk::DiskError>(writer)
        });
        match tokio::time::timeout(self.deadline, job).await {
            Ok(Ok(Ok(writer))) => {
                self.writer = Some(writer);
                true
            }
            Ok(Ok(Err(e))) => {
                self.health.failed(&e);
                false
            }
            Ok(Err(e)) => {
                self.health.failed(&e);
                false
            }
            Err(_) => {
                self.health.failed(&format!(
                    "a chunk write took longer than {:?} (timeouts.disk_io)",
                    self.deadline
                ));
                false
            }
        }
    }

    /// The last chunk's CRC-32, and the file to read the written bytes from.
    pub fn last_chunk(&self) -> (u32, Option<Arc<std::fs::File>>) {
        match &self.writer {
            Some(w) => (w.crcs.last().copied().unwrap_or(0), Some(w.file.clone())),
            None => (0, None),
        }
    }

    /// The object is complete: its chunk map, for the head that commits it.
    pub fn finish(mut self, length: u64) -> Option<Chunks> {
        let chunks = match &self.writer {
            Some(w) if w.written == length => w.chunks(),
            None if length == 0 => Chunks {
                id: self.id,
                chunk_size: CHUNK,
                crcs: Vec::new(),
            },
            _ => return None,
        };
        // (An empty body has no file: nothing is ever read from it.)
        self.done = true;
        Some(chunks)
    }
}

impl Drop for NewObject {
    fn drop(&mut self) {
        self.disk.release(self.reserved);
        if self.done {
            return;
        }
        let (disk, id) = (self.disk.clone(), self.id);
        let remove = move || {
            let _ = disk.objects.remove(id);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(remove);
            }
            Err(_) => remove(),
        }
    }
}
