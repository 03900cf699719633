//! Building a client's answer from a stored entry: 304 for a matching
//! conditional, 206/416 for byte ranges (several: multipart/byteranges),
//! else the whole response;
//! always with a recomputed Age. Pure.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::cache::policy::age_header_value;
use crate::cache::policy::range::{
    closing, content_range_value, evaluate_range, multi_ranges, multipart_type, part_head,
    unsatisfied_range_value, RangeVerdict,
};
use crate::cache::policy::validation::{client_conditional, last_modified_stand_in, Conditional};
use crate::cache::store::record::Entry;
use crate::http::body::{concat, empty, full, Body};

/// The answer built from a stored entry.
pub enum Served {
    /// A complete answer; `not_modified` when it is a 304 to a conditional.
    Response {
        response: Response<Body>,
        not_modified: bool,
    },
    /// The request needs something the cache does not serve (multiple ranges).
    PassThrough,
}

/// Answers `method` + `request` headers from `entry`, which is `age` old;
/// `content(start, end)` gives the body's bytes `[start, end)` (from memory
/// or from disk: the caller's business).
///
/// A client's conditional is evaluated against the entry (RFC 9111 §4.3.2):
/// `If-None-Match` against its `ETag`; `If-Modified-Since` against its
/// `Last-Modified`, or without one against its `Date` (or the time it was
/// received), so a fresh entry not modified since answers 304.
pub fn from_entry(
    entry: &Entry,
    method: &Method,
    request: &HeaderMap,
    age: Duration,
    mut content: impl FnMut(u64, u64) -> Body,
) -> Served {
    let len = entry.length;
    let stand_in = last_modified_stand_in(&entry.headers, entry.times.response_time);
    if client_conditional(method, request, &entry.headers, Some(stand_in))
        == Conditional::NotModified
    {
        // RFC 9110 §15.4.5: a 304 carries the fields a 200 would, minus content.
        let mut headers = entry.headers.clone();
        headers.remove(CONTENT_LENGTH);
        headers.remove(CONTENT_RANGE);
        return Served::Response {
            response: build(StatusCode::NOT_MODIFIED, headers, age, empty()),
            not_modified: true,
        };
    }
    let mut headers = entry.headers.clone();
    let (status, range) = match evaluate_range(method, request, &entry.headers, len) {
        RangeVerdict::PassThrough => return Served::PassThrough,
        RangeVerdict::Single { start, end } if entry.status == StatusCode::OK => {
            headers.insert(CONTENT_RANGE, content_range_value(start, end, len));
            (
                StatusCode::PARTIAL_CONTENT,
                (start, end.saturating_add(1).min(len)),
            )
        }
        RangeVerdict::Multi if entry.status == StatusCode::OK => {
            let ranges = multi_ranges(request, len);
            let stamp = entry
                .times
                .response_time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let boundary = format!("cachalot-{:016x}", stamp ^ len.rotate_left(32));
            let content_type = entry
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            headers.insert(CONTENT_TYPE, multipart_type(&boundary));
            headers.remove(CONTENT_RANGE);
            let mut parts = Vec::new();
            let mut length = 0u64;
            for (start, end) in &ranges {
                let head = part_head(&boundary, content_type.as_deref(), *start, *end, len);
                length += head.len() as u64 + (end - start + 1);
                parts.push((head, *start, end + 1));
            }
            let close = closing(&boundary);
            length += close.len() as u64;
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            let body = if method == Method::HEAD {
                empty()
            } else {
                let mut pieces = Vec::with_capacity(parts.len() * 2 + 1);
                for (head, start, end) in parts {
                    pieces.push(full(head));
                    pieces.push(content(start, end));
                }
                pieces.push(full(close));
                concat(pieces)
            };
            return Served::Response {
                response: build(StatusCode::PARTIAL_CONTENT, headers, age, body),
                not_modified: false,
            };
        }
        RangeVerdict::Unsatisfiable if entry.status == StatusCode::OK => {
            headers.insert(CONTENT_RANGE, unsatisfied_range_value(len));
            (StatusCode::RANGE_NOT_SATISFIABLE, (0, 0))
        }
        _ => (entry.status, (0, len)),
    };
    headers.insert(CONTENT_LENGTH, HeaderValue::from(range.1 - range.0));
    let body = if method == Method::HEAD || range.1 == range.0 {
        empty()
    } else {
        content(range.0, range.1)
    };
    Served::Response {
        response: build(status, headers, age, body),
        not_modified: false,
    }
}

fn build(status: StatusCode, mut headers: HeaderMap, age: Duration, body: Body) -> Response<Body> {
    // RFC 9111 §5.1: a cached response carries its current age.
    headers.insert(http::header::AGE, age_header_value(age));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
