//! Tests of partial objects: coverage, joining pieces, completion,
//! Content-Range and the validator (RFC 9111 §3.3–3.4, RFC 9110 §14.4).

use http::HeaderValue;

use super::*;

fn span(start: u64, len: u64) -> Span {
    Span { start, len }
}

#[test]
fn a_range_inside_a_piece_is_whole_and_one_running_past_it_is_a_prefix() {
    let pieces = [span(0, 100), span(200, 50)];
    assert_eq!(cover(&pieces, 10, 99), Cover::Whole { piece: 0 });
    assert_eq!(cover(&pieces, 210, 249), Cover::Whole { piece: 1 });
    assert_eq!(
        cover(&pieces, 50, 150),
        Cover::Prefix {
            piece: 0,
            have: 100
        }
    );
    assert_eq!(cover(&pieces, 100, 150), Cover::None, "starts in a gap");
    assert_eq!(cover(&[], 0, 0), Cover::None);
}

#[test]
fn a_new_piece_must_not_overlap_and_pieces_complete_in_order() {
    let pieces = [span(0, 100), span(200, 50)];
    assert!(fits(&pieces, span(100, 100)));
    assert!(!fits(&pieces, span(99, 2)));
    assert!(!fits(&pieces, span(240, 20)));
    assert!(!fits(&pieces, span(120, 0)), "an empty piece is no piece");
    assert_eq!(complete(&pieces, 250), None, "a gap at 100");
    let all = [span(200, 50), span(0, 100), span(100, 100)];
    assert_eq!(complete(&all, 250), Some(vec![1, 2, 0]));
    assert_eq!(complete(&all, 300), None, "short of the total");
}

#[test]
fn content_range_is_read_only_when_well_formed_with_a_total() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_RANGE,
        HeaderValue::from_static("bytes 10-19/100"),
    );
    assert_eq!(content_range(&h), Some((10, 19, 100)));
    for bad in [
        "bytes 10-19/*",
        "bytes 19-10/100",
        "bytes 10-100/100",
        "items 1-2/3",
        "bytes */100",
    ] {
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static(bad));
        assert_eq!(content_range(&h), None, "{bad}");
    }
}

#[test]
fn pieces_are_matched_by_a_strong_etag_or_last_modified() {
    let mut h = HeaderMap::new();
    assert_eq!(validator(&h), None);
    h.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_static("Sun, 09 Sep 2001 01:46:40 GMT"),
    );
    assert_eq!(
        validator(&h).as_deref(),
        Some("Sun, 09 Sep 2001 01:46:40 GMT")
    );
    h.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
    assert_eq!(validator(&h).as_deref(), Some("\"v1\""));
    h.insert(header::ETAG, HeaderValue::from_static("W/\"v1\""));
    assert_eq!(validator(&h), None, "a weak tag cannot combine ranges");
}
