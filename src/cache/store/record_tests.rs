//! Tests of the record format: round trip, version and checksum refusal.

use std::sync::Arc;

use super::*;

fn sample() -> Record {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.append("x-multi", HeaderValue::from_static("a"));
    headers.append("x-multi", HeaderValue::from_static("b"));
    Record::Entry(Arc::new(Entry {
        status: StatusCode::OK,
        headers,
        times: StoredTimes {
            request_time: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            response_time: UNIX_EPOCH + Duration::new(1_700_000_001, 7),
        },
        generation: 42,
        length: 11,
        body: Some(Bytes::from_static(b"hello world")),
        object: Some(Arc::new(Chunks {
            id: 0x1234,
            chunk_size: 4,
            crcs: vec![1, 2, 3],
        })),
        part: Some(Part {
            start: 5,
            total: 20,
        }),
    }))
}

#[test]
fn entry_round_trips() {
    let raw = encode(&sample());
    let Record::Entry(e) = decode(&raw).unwrap() else {
        panic!("not an entry")
    };
    assert_eq!(e.status, 200);
    assert!(e.body.is_none(), "a head never holds the body");
    assert_eq!(e.length, 11);
    assert_eq!(
        e.object.as_deref(),
        Some(&Chunks {
            id: 0x1234,
            chunk_size: 4,
            crcs: vec![1, 2, 3]
        })
    );
    assert_eq!(e.generation, 42);
    let multi: Vec<_> = e.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(
        e.times.response_time,
        UNIX_EPOCH + Duration::new(1_700_000_001, 7)
    );
}

#[test]
fn index_round_trips() {
    let idx = Record::Index(Arc::new(VaryIndex {
        names: vec!["accept-encoding".into(), "user-agent".into()],
        generation: 9,
    }));
    let Record::Index(i) = decode(&encode(&idx)).unwrap() else {
        panic!("not an index")
    };
    assert_eq!(i.names, ["accept-encoding", "user-agent"]);
    assert_eq!(i.generation, 9);
}

#[test]
fn any_flipped_byte_is_detected() {
    let raw = encode(&sample());
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x40;
        assert!(decode(&bad).is_err(), "flip at {i} went unnoticed");
    }
}

#[test]
fn older_format_version_is_refused() {
    // A record written by a (hypothetical) version 0 layout, checksum valid.
    let mut raw = encode(&sample());
    raw[4] = 0;
    let len = raw.len();
    let crc = crc32fast::hash(&raw[..len - 4]);
    raw[len - 4..].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode(&raw).unwrap_err(), DecodeError::Version(0));
}

#[test]
fn truncated_records_are_errors_not_panics() {
    let raw = encode(&sample());
    for n in 0..raw.len() {
        assert!(decode(&raw[..n]).is_err());
    }
}

#[test]
fn a_head_whose_chunks_do_not_add_up_to_its_length_is_refused() {
    let Record::Entry(e) = sample() else {
        panic!("not an entry")
    };
    let mut short = (*e).clone();
    short.length = 13; // four chunks of 4 bytes, but three CRCs
    assert_eq!(
        decode(&encode(&Record::Entry(Arc::new(short)))).unwrap_err(),
        DecodeError::Malformed
    );
}
