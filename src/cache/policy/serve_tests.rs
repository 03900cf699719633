//! Tests for answers built from a stored entry (RFC 9111 §4.3.2, RFC 9110
//! §13.1.2, §13.1.3, §15.4.5).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderName};

use super::*;
use crate::cache::policy::StoredTimes;

/// Sun, 09 Sep 2001 01:46:40 GMT.
const STORED_SECS: u64 = 1_000_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn entry(headers: &[(&str, &str)]) -> Entry {
    Entry {
        status: StatusCode::OK,
        headers: map(headers),
        times: StoredTimes {
            request_time: at(STORED_SECS),
            response_time: at(STORED_SECS),
        },
        generation: 0,
        length: 11,
        body: Some(Bytes::from_static(b"stored body")),
        object: None,
        part: None,
    }
}

/// The body maker a caller passes: slices of the entry's in-memory body.
fn content(entry: &Entry) -> impl FnMut(u64, u64) -> Body + '_ {
    |start, end| {
        let body = entry.body.clone().unwrap_or_default();
        crate::http::body::full(body.slice(start as usize..end as usize))
    }
}

fn status(entry: &Entry, request: &[(&str, &str)]) -> StatusCode {
    match from_entry(
        entry,
        &Method::GET,
        &map(request),
        Duration::from_secs(5),
        content(entry),
    ) {
        Served::Response { response, .. } => response.status(),
        Served::PassThrough => panic!("passed through"),
    }
}

// RFC 9111 §4.3.2: without Last-Modified, If-Modified-Since is evaluated
// against the stored Date; 304 when not modified since, 200 otherwise.
#[test]
fn rfc9111_4_3_2_ims_without_last_modified_uses_date() {
    let fresh = entry(&[
        ("cache-control", "max-age=3600"),
        ("date", "Sun, 09 Sep 2001 01:46:40 GMT"),
    ]);
    for ims in [
        "Sun, 09 Sep 2001 01:46:40 GMT",
        "Sun, 09 Sep 2001 02:00:00 GMT",
        // RFC 9110 §5.6.7: the obsolete forms, in any case, mean the same.
        "Sunday, 09-Sep-01 01:46:40 GMT",
        "sunday, 09-sep-01 01:46:40 gmt",
        "Sun Sep  9 01:46:40 2001",
    ] {
        assert_eq!(
            status(&fresh, &[("if-modified-since", ims)]),
            StatusCode::NOT_MODIFIED,
            "{ims}"
        );
    }
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Sun, 09 Sep 2001 01:46:39 GMT")]
        ),
        StatusCode::OK
    );
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Sunday, 09-Sep-01 01:00:00 GMT")]
        ),
        StatusCode::OK
    );
}

// RFC 9111 §4.3.2: with no Date either, the time the response was received.
#[test]
fn rfc9111_4_3_2_ims_without_date_uses_the_time_received() {
    let fresh = entry(&[("cache-control", "max-age=3600")]);
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Sun, 09 Sep 2001 01:46:40 GMT")]
        ),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Sun, 09 Sep 2001 01:46:00 GMT")]
        ),
        StatusCode::OK
    );
    let bad_date = entry(&[("cache-control", "max-age=3600"), ("date", "garbage")]);
    assert_eq!(
        status(
            &bad_date,
            &[("if-modified-since", "Sun, 09 Sep 2001 01:46:40 GMT")]
        ),
        StatusCode::NOT_MODIFIED
    );
}

// RFC 9110 §13.1.3: Last-Modified, when present, is what counts; §13.1.2:
// If-None-Match wins over If-Modified-Since; §15.4.5: a 304 carries no body
// length.
#[test]
fn rfc9110_13_1_conditionals_on_a_fresh_entry() {
    let fresh = entry(&[
        ("cache-control", "max-age=3600"),
        ("date", "Sun, 09 Sep 2001 01:46:40 GMT"),
        ("last-modified", "Sat, 08 Sep 2001 00:00:00 GMT"),
        ("etag", "\"v1\""),
    ]);
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Sat, 08 Sep 2001 00:00:00 GMT")]
        ),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        status(
            &fresh,
            &[("if-modified-since", "Fri, 07 Sep 2001 00:00:00 GMT")]
        ),
        StatusCode::OK
    );
    assert_eq!(
        status(&fresh, &[("if-none-match", "W/\"v1\", \"v0\"")]),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        status(
            &fresh,
            &[
                ("if-none-match", "\"v2\""),
                ("if-modified-since", "Sun, 09 Sep 2001 01:46:40 GMT")
            ]
        ),
        StatusCode::OK
    );
    let Served::Response {
        response,
        not_modified,
    } = from_entry(
        &fresh,
        &Method::GET,
        &map(&[("if-none-match", "*")]),
        Duration::from_secs(5),
        content(&fresh),
    )
    else {
        panic!("passed through");
    };
    assert!(not_modified);
    assert!(response.headers().get(header::CONTENT_LENGTH).is_none());
    assert_eq!(response.headers().get(header::ETAG).unwrap(), "\"v1\"");
    assert_eq!(response.headers().get(header::AGE).unwrap(), "5");
}

// RFC 9110 §14.6: several ranges are answered as multipart/byteranges, each
// part with the representation's Content-Type and its Content-Range, and a
// Content-Length that counts the whole multipart body.
#[tokio::test]
async fn rfc9110_14_6_several_ranges_are_a_multipart_answer() {
    use http_body_util::BodyExt;
    let stored = entry(&[
        ("cache-control", "max-age=3600"),
        ("content-type", "text/plain"),
    ]);
    let Served::Response { response, .. } = from_entry(
        &stored,
        &Method::GET,
        &map(&[("range", "bytes=0-1, 7-")]),
        Duration::from_secs(5),
        content(&stored),
    ) else {
        panic!("passed through");
    };
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    let ct = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_owned();
    let length: usize = response.headers()[header::CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body.len(),
        length,
        "Content-Length counts the multipart body"
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(
        text,
        format!(
            "\r\n--{boundary}\r\ncontent-type: text/plain\r\ncontent-range: bytes 0-1/11\r\n\r\nst\
             \r\n--{boundary}\r\ncontent-type: text/plain\r\ncontent-range: bytes 7-10/11\r\n\r\nbody\
             \r\n--{boundary}--\r\n"
        )
    );
}
