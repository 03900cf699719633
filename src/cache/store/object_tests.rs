//! Tests of object files: chunks written and read back by range, damage
//! detected, files listed and removed.

use http_body_util::BodyExt;

use super::*;

/// A body of `len` bytes where byte i is `i % 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Writes `body` as object `id` in chunks of [`CHUNK`].
fn write(objects: &Objects, id: u64, body: &[u8]) -> Chunks {
    let mut writer = ObjectWriter::new(objects.create(id).unwrap(), id);
    for chunk in body.chunks(CHUNK as usize) {
        writer.append(&[Bytes::copy_from_slice(chunk)]).unwrap();
    }
    writer.chunks()
}

async fn read(body: ChunkBody) -> Result<Vec<u8>, BoxError> {
    Ok(body.collect().await?.to_bytes().to_vec())
}

#[tokio::test]
async fn any_range_of_a_multi_chunk_body_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::open(dir.path()).unwrap();
    let len = CHUNK as usize * 3 + 1234;
    let body = pattern(len);
    let chunks = Arc::new(write(&objects, 7, &body));
    assert_eq!(chunks.crcs.len(), 4);
    let file = Arc::new(objects.open_file(7).unwrap());
    for (start, end) in [
        (0, len),
        (1, 2),
        (CHUNK as usize - 1, CHUNK as usize + 1),
        (len - 1, len),
        (CHUNK as usize * 2, len),
    ] {
        let got = read(ChunkBody::new(
            file.clone(),
            chunks.clone(),
            len as u64,
            start as u64,
            end as u64,
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
        assert!(got == body[start..end], "range {start}..{end}");
    }
    assert_eq!(read_all(&file, &chunks, len as u64).unwrap(), body);
}

#[tokio::test]
async fn a_damaged_chunk_ends_the_body_with_an_error_not_bad_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::open(dir.path()).unwrap();
    let len = CHUNK as usize * 2;
    let chunks = Arc::new(write(&objects, 9, &pattern(len)));
    // Flip one byte of the second chunk.
    let file = File::options().write(true).open(objects.path(9)).unwrap();
    file.write_all_at(&[0xff], CHUNK as u64 + 10).unwrap();
    let file = Arc::new(objects.open_file(9).unwrap());
    let mut body = ChunkBody::new(
        file.clone(),
        chunks.clone(),
        len as u64,
        0,
        len as u64,
        Duration::from_secs(5),
    );
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first.len(), CHUNK as usize, "the good chunk is served");
    let second = body.frame().await.unwrap();
    assert!(second.is_err(), "the damaged chunk is an error");
    assert!(matches!(
        read_all(&file, &chunks, len as u64),
        Err(ChunkError::Checksum(1))
    ));
}

#[test]
fn files_are_listed_and_removed_and_a_missing_one_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let objects = Objects::open(dir.path()).unwrap();
    write(&objects, 0x1_0000_0001, b"abc");
    write(&objects, 0x2_0000_0102, b"defg");
    let mut ids: Vec<u64> = objects.list().into_iter().map(|(id, _)| id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0x1_0000_0001, 0x2_0000_0102]);
    objects.remove(0x1_0000_0001).unwrap();
    objects.remove(0x1_0000_0001).unwrap();
    assert_eq!(objects.list().len(), 1);
    assert_eq!(disk_bytes(1), 4096);
    assert_eq!(disk_bytes(4096), 4096);
    assert_eq!(disk_bytes(0), 0);
}
