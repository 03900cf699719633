//! Stored records and their on-disk format. Every record starts with a
//! magic and a format version and ends with a CRC-32 of all that precedes
//! it; a record failing either check is refused, never served. An entry's
//! record is its head: status, header fields, times, the body's length and
//! where its chunks lie ([`Chunks`]: the object file's id, the chunk size
//! and one CRC-32 per chunk). Bodies are never in a record. Pure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::cache::policy::StoredTimes;

/// Bytes every record starts with.
const MAGIC: &[u8; 4] = b"CHLT";
/// Current format version; older or newer versions are dropped.
/// (Version 1 held the whole body in the record.)
pub const FORMAT_VERSION: u8 = 2;
const KIND_ENTRY: u8 = 1;
const KIND_INDEX: u8 = 2;

/// A stored response: head, timing for age calculation, and its body: in
/// memory (`body`), on disk (`object`), or both.
#[derive(Debug, Clone)]
pub struct Entry {
    pub status: StatusCode,
    /// Header fields as stored (`policy::headers_to_store` applied).
    pub headers: HeaderMap,
    pub times: StoredTimes,
    /// Generation of the variant index this entry belongs to.
    pub generation: u64,
    /// The body's length in bytes.
    pub length: u64,
    /// The whole body, when it is held in memory.
    pub body: Option<Bytes>,
    /// Where the body lies on disk, once written there.
    pub object: Option<std::sync::Arc<Chunks>>,
    /// For a piece of a partial object: where its bytes lie in the whole.
    pub part: Option<Part>,
}

/// A piece of a partial object (from a 206): its `length` bytes are bytes
/// `[start, start + length)` of a representation of `total` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub start: u64,
    pub total: u64,
}

/// A body on disk: the object file `id`, cut in chunks of `chunk_size`
/// bytes (the last one shorter), each with its CRC-32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    pub id: u64,
    pub chunk_size: u32,
    pub crcs: Vec<u32>,
}

impl Chunks {
    /// The number of chunks a body of `length` bytes has.
    pub fn count(length: u64, chunk_size: u32) -> usize {
        length.div_ceil(u64::from(chunk_size.max(1))) as usize
    }
}

impl Entry {
    /// An entry whose body is held in memory only.
    pub fn in_memory(
        status: StatusCode,
        headers: HeaderMap,
        times: StoredTimes,
        body: Bytes,
    ) -> Entry {
        Entry {
            status,
            headers,
            times,
            generation: 0,
            length: body.len() as u64,
            body: Some(body),
            object: None,
            part: None,
        }
    }

    /// Approximate memory footprint, for the memory tier's weigher: the
    /// head, and the body when it is held in memory.
    pub fn weight(&self) -> u32 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        let body = self.body.as_ref().map_or(0, Bytes::len);
        let chunks = self.object.as_ref().map_or(0, |c| c.crcs.len() * 4);
        u32::try_from(body + chunks + headers + 256).unwrap_or(u32::MAX)
    }
}

/// Which request fields select among a URL's variants (RFC 9111 §4.1), and
/// the generation those variants were stored under: invalidating a URL drops
/// its index, so older variants can never become reachable again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaryIndex {
    pub names: Vec<String>,
    pub generation: u64,
}

/// A record as kept in a tier.
#[derive(Debug, Clone)]
pub enum Record {
    Entry(std::sync::Arc<Entry>),
    Index(std::sync::Arc<VaryIndex>),
}

impl Record {
    /// Approximate memory footprint.
    pub fn weight(&self) -> u32 {
        match self {
            Record::Entry(e) => e.weight(),
            Record::Index(i) => 64 + i.names.iter().map(|n| n.len() as u32 + 24).sum::<u32>(),
        }
    }
}

/// Why a stored record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a cachalot record")]
    Magic,
    #[error("format version {0} is not {FORMAT_VERSION}")]
    Version(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("record truncated or malformed")]
    Malformed,
}

/// Serializes a record for the disk tier.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(match record {
        Record::Entry(e) => 512 + e.object.as_ref().map_or(0, |c| c.crcs.len() * 4),
        Record::Index(_) => 128,
    });
    out.put_slice(MAGIC);
    out.put_u8(FORMAT_VERSION);
    match record {
        Record::Entry(e) => {
            out.put_u8(KIND_ENTRY);
            out.put_u16(e.status.as_u16());
            put_time(&mut out, e.times.request_time);
            put_time(&mut out, e.times.response_time);
            out.put_u64(e.generation);
            out.put_u32(e.headers.len() as u32);
            for (name, value) in &e.headers {
                put_bytes16(&mut out, name.as_str().as_bytes());
                out.put_u32(value.len() as u32);
                out.put_slice(value.as_bytes());
            }
            out.put_u64(e.length);
            let (id, chunk_size, crcs) = match &e.object {
                Some(c) => (c.id, c.chunk_size, c.crcs.as_slice()),
                None => (0, 0, &[][..]),
            };
            out.put_u64(id);
            out.put_u32(chunk_size);
            out.put_u32(crcs.len() as u32);
            for crc in crcs {
                out.put_u32(*crc);
            }
            match e.part {
                Some(part) => {
                    out.put_u8(1);
                    out.put_u64(part.start);
                    out.put_u64(part.total);
                }
                None => out.put_u8(0),
            }
        }
        Record::Index(i) => {
            out.put_u8(KIND_INDEX);
            out.put_u64(i.generation);
            out.put_u32(i.names.len() as u32);
            for name in &i.names {
                put_bytes16(&mut out, name.as_bytes());
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out.to_vec()
}

/// Parses a record written by [`encode`], checking version, checksum and
/// that an entry's chunks add up to its length.
pub fn decode(raw: &[u8]) -> Result<Record, DecodeError> {
    if raw.len() < MAGIC.len() + 2 + 4 || &raw[..4] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if raw[4] != FORMAT_VERSION {
        return Err(DecodeError::Version(raw[4]));
    }
    let (payload, crc) = raw.split_at(raw.len() - 4);
    let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(payload) != expected {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader(&payload[6..]);
    match payload[5] {
        KIND_ENTRY => {
            let status = StatusCode::from_u16(r.u16()?).map_err(|_| DecodeError::Malformed)?;
            let request_time = r.time()?;
            let response_time = r.time()?;
            let generation = r.u64()?;
            let count = r.u32()? as usize;
            let mut headers = HeaderMap::with_capacity(count.min(256));
            for _ in 0..count {
                let len = r.u16()? as usize;
                let name =
                    HeaderName::from_bytes(r.take(len)?).map_err(|_| DecodeError::Malformed)?;
                let len = r.u32()? as usize;
                let value =
                    HeaderValue::from_bytes(r.take(len)?).map_err(|_| DecodeError::Malformed)?;
                headers.append(name, value);
            }
            let length = r.u64()?;
            let id = r.u64()?;
            let chunk_size = r.u32()?;
            let count = r.u32()? as usize;
            if id == 0 || chunk_size == 0 || count != Chunks::count(length, chunk_size) {
                return Err(DecodeError::Malformed);
            }
            let mut crcs = Vec::with_capacity(count.min(r.0.len() / 4));
            for _ in 0..count {
                crcs.push(r.u32()?);
            }
            let part = match r.take(1)? {
                [0] => None,
                [1] => {
                    let (start, total) = (r.u64()?, r.u64()?);
                    if start.checked_add(length).is_none_or(|end| end > total) {
                        return Err(DecodeError::Malformed);
                    }
                    Some(Part { start, total })
                }
                _ => return Err(DecodeError::Malformed),
            };
            if !r.0.is_empty() {
                return Err(DecodeError::Malformed);
            }
            Ok(Record::Entry(std::sync::Arc::new(Entry {
                status,
                headers,
                times: StoredTimes {
                    request_time,
                    response_time,
                },
                generation,
                length,
                body: None,
                object: Some(std::sync::Arc::new(Chunks {
                    id,
                    chunk_size,
                    crcs,
                })),
                part,
            })))
        }
        KIND_INDEX => {
            let generation = r.u64()?;
            let count = r.u32()? as usize;
            let mut names = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                let len = r.u16()? as usize;
                let name = std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::Malformed)?;
                names.push(name.to_owned());
            }
            Ok(Record::Index(std::sync::Arc::new(VaryIndex {
                names,
                generation,
            })))
        }
        _ => Err(DecodeError::Malformed),
    }
}

fn put_time(out: &mut BytesMut, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.put_u64(d.as_secs());
    out.put_u32(d.subsec_nanos());
}

fn put_bytes16(out: &mut BytesMut, bytes: &[u8]) {
    let len = bytes.len().min(u16::MAX as usize);
    out.put_u16(len as u16);
    out.put_slice(&bytes[..len]);
}

/// A bounds-checked cursor: malformed input is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn time(&mut self) -> Result<SystemTime, DecodeError> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        UNIX_EPOCH
            .checked_add(Duration::new(secs, nanos.min(999_999_999)))
            .ok_or(DecodeError::Malformed)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
