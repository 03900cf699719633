//! Range requests when the whole object is not fetched (`cache.range_fill`
//! off): single-range 206 answers are stored as pieces of a partial object
//! (RFC 9111 §3.3); a later range inside a piece is answered from it; one
//! that runs past a piece sends the origin a Range for the missing part
//! only, with `If-Range`, and combines the two (§3.4); once the pieces hold
//! every byte they are joined into one whole stored response.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{CONTENT_LENGTH, CONTENT_RANGE, IF_RANGE, RANGE};
use http::{request, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::cache::flight::tee::{Fill, Kept};
use crate::cache::miss::{upstream_copy, upstream_copy_with_range};
use crate::cache::outcome::Outcome;
use crate::cache::policy::partial::{self, Cover, Span};
use crate::cache::policy::range::{self, RangeVerdict};
use crate::cache::policy::{self, vary, NotStorable, StoredTimes, Verdict};
use crate::cache::store::object::ChunkBody;
use crate::cache::store::record::{Entry, Part};
use crate::cache::Ctx;
use crate::error::ProxyError;
use crate::exchange::{Disposition, Exchange};
use crate::forward;
use crate::http::body::{self, concat, empty, Body};
use crate::upstream::OriginBody;

/// The usable pieces of a partial object: fresh, of one representation.
struct Pieces {
    list: Vec<(String, Arc<Entry>)>,
    validator: Option<String>,
    total: u64,
}

impl Pieces {
    fn spans(&self) -> Vec<Span> {
        spans(&self.list)
    }
}

/// Where each piece's bytes lie.
fn spans(pieces: &[(String, Arc<Entry>)]) -> Vec<Span> {
    pieces
        .iter()
        .filter_map(|(_, e)| {
            e.part.map(|p| Span {
                start: p.start,
                len: e.length,
            })
        })
        .collect()
}

impl Ctx<'_> {
    /// Answers a GET with Range from the pieces of a partial object, the
    /// origin, or both.
    pub(super) async fn partial(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let pieces = self.usable_pieces(&parts).await;
        if let Some(first) = pieces.list.first() {
            let verdict =
                range::evaluate_range(&Method::GET, &parts.headers, &first.1.headers, pieces.total);
            if let RangeVerdict::Single { start, end } = verdict {
                match partial::cover(&pieces.spans(), start, end) {
                    Cover::Whole { piece } => {
                        if let Some(answer) = self
                            .serve_piece(&pieces.list[piece].1, start, end, exchange)
                            .await
                        {
                            return Ok(answer);
                        }
                    }
                    Cover::Prefix { piece, have } => {
                        return self
                            .extend_piece(
                                parts,
                                &pieces,
                                piece,
                                (start, have, end),
                                outcome,
                                exchange,
                            )
                            .await;
                    }
                    Cover::None => {}
                }
            }
        }
        self.fetch_piece(parts, outcome, &pieces, exchange).await
    }

    /// The stored pieces still fresh and of the first one's representation;
    /// the others are removed.
    async fn usable_pieces(&self, parts: &request::Parts) -> Pieces {
        let stored = self.cache.store.pieces(&self.url).await;
        let now = SystemTime::now();
        let reference = stored.first().map(|(_, e)| {
            (
                partial::validator(&e.headers),
                e.part.map_or(0, |p| p.total),
            )
        });
        let (mut list, mut gone) = (Vec::new(), Vec::new());
        for (key, entry) in stored {
            let fresh = matches!(
                policy::evaluate(
                    &parts.headers,
                    StatusCode::OK,
                    &entry.headers,
                    &entry.times,
                    now,
                    &self.policy
                ),
                Verdict::Fresh
            );
            let same = reference.as_ref().is_some_and(|(v, total)| {
                v.is_some()
                    && *v == partial::validator(&entry.headers)
                    && Some(*total) == entry.part.map(|p| p.total)
            });
            if fresh && same {
                list.push((key, entry));
            } else {
                gone.push(key);
            }
        }
        self.cache.store.forget_pieces(&gone);
        let (validator, total) = reference.unwrap_or((None, 0));
        Pieces {
            list,
            validator,
            total,
        }
    }

    /// Bytes `[start, end]` from one stored piece; None when its file is gone.
    async fn serve_piece(
        &self,
        piece: &Arc<Entry>,
        start: u64,
        end: u64,
        exchange: &mut Exchange,
    ) -> Option<Response<Body>> {
        let (part, object) = (piece.part?, piece.object.clone()?);
        let file = self.cache.store.open_object(piece).await?;
        let body = ChunkBody::new(
            file,
            object,
            piece.length,
            start - part.start,
            end + 1 - part.start,
            self.cache.store.disk_io(),
        );
        let mut response = Response::new(body::boxed(body));
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        *response.headers_mut() = piece_headers(piece, start, end, part.total);
        exchange.result = Disposition::Cache(Outcome::DiskHit);
        if self.shared.forwarding.privacy.via() {
            response
                .headers_mut()
                .append(http::header::VIA, self.shared.forwarding.via.clone());
        }
        self.mark(&mut response, Outcome::DiskHit, None);
        Some(response)
    }

    /// `[start, have)` from a stored piece and `[have, end]` from the
    /// origin (asked with `If-Range`), as one answer (RFC 9111 §3.4).
    async fn extend_piece(
        &self,
        parts: request::Parts,
        pieces: &Pieces,
        piece: usize,
        (start, have, end): (u64, u64, u64),
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let (Some(validator), Some((_, stored))) = (&pieces.validator, pieces.list.get(piece))
        else {
            return self.fetch_piece(parts, outcome, pieces, exchange).await;
        };
        let mut upstream = upstream_copy(&parts, Method::GET);
        let asked = format!("bytes={have}-{end}");
        for (name, value) in [(RANGE, asked.as_str()), (IF_RANGE, validator.as_str())] {
            if let Ok(value) = HeaderValue::from_str(value) {
                upstream.headers.insert(name, value);
            }
        }
        exchange.result = Disposition::Cache(outcome);
        let request_time = SystemTime::now();
        let response = forward::send(
            &self.shared.forwarding,
            &self.route,
            upstream,
            empty(),
            exchange,
        )
        .await?;
        let matches = response.status() == StatusCode::PARTIAL_CONTENT
            && partial::content_range(response.headers()) == Some((have, end, pieces.total))
            && partial::validator(response.headers()).as_ref() == Some(validator);
        if !matches {
            if response.status() == StatusCode::OK {
                // If-Range failed: the representation changed. The new
                // one answers (and is stored whole, when it may be).
                let keys: Vec<String> = pieces.list.iter().map(|(k, _)| k.clone()).collect();
                self.cache.store.forget_pieces(&keys);
                return self.answer_from_origin(
                    parts,
                    response,
                    request_time,
                    outcome,
                    None,
                    exchange,
                );
            }
            drop(response);
            return self.fetch_piece(parts, outcome, pieces, exchange).await;
        }
        let (Some(part), Some(object), Some(file)) = (
            stored.part,
            stored.object.clone(),
            self.cache.store.open_object(stored).await,
        ) else {
            drop(response);
            return self.fetch_piece(parts, outcome, pieces, exchange).await;
        };
        let head = ChunkBody::new(
            file,
            object,
            stored.length,
            start - part.start,
            have - part.start,
            self.cache.store.disk_io(),
        );
        let (head_parts, incoming) = response.into_parts();
        let rest = self.keep_piece(
            &parts,
            &head_parts.headers,
            incoming,
            request_time,
            pieces,
            exchange,
        );
        let mut answer = Response::new(concat(vec![body::boxed(head), rest]));
        *answer.status_mut() = StatusCode::PARTIAL_CONTENT;
        *answer.headers_mut() = piece_headers(stored, start, end, pieces.total);
        self.mark(&mut answer, outcome, Some(206));
        Ok(answer)
    }

    /// Forwards the Range request as asked, keeping a single-range 206 that
    /// may join the stored pieces.
    async fn fetch_piece(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        pieces: &Pieces,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        exchange.result = Disposition::Cache(outcome);
        let request_time = SystemTime::now();
        let copy = upstream_copy_with_range(&parts);
        let response = forward::send(
            &self.shared.forwarding,
            &self.route,
            copy,
            empty(),
            exchange,
        )
        .await?;
        let status = response.status();
        let (mut head, incoming) = response.into_parts();
        let body = if status == StatusCode::PARTIAL_CONTENT {
            self.keep_piece(
                &parts,
                &head.headers,
                incoming,
                request_time,
                pieces,
                exchange,
            )
        } else {
            exchange.not_stored = Some(NotStorable::Range);
            body::boxed(incoming)
        };
        forward::finish(&self.shared.forwarding, &mut head);
        let mut response = Response::from_parts(head, body);
        let detail = exchange.not_stored.map(NotStorable::as_str);
        self.mark_with_detail(&mut response, outcome, Some(status.as_u16()), detail);
        Ok(response)
    }

    /// The body of a 206 from the origin, stored as a new piece when it may
    /// be (and the pieces joined once they hold every byte).
    fn keep_piece(
        &self,
        parts: &request::Parts,
        headers: &HeaderMap,
        incoming: OriginBody,
        request_time: SystemTime,
        pieces: &Pieces,
        exchange: &mut Exchange,
    ) -> Body {
        let Some((first, last, total)) = partial::content_range(headers) else {
            exchange.not_stored = Some(NotStorable::Partial);
            return body::boxed(incoming);
        };
        let new = Span {
            start: first,
            len: last - first + 1,
        };
        let same = pieces.list.is_empty()
            || (pieces.total == total && pieces.validator == partial::validator(headers));
        let storable = policy::storability(
            &Method::GET,
            &parts.headers,
            StatusCode::OK,
            headers,
            &self.policy,
        )
        .is_ok()
            && vary::vary_names(headers).is_some_and(|v| v.is_empty())
            && partial::validator(headers).is_some()
            && total <= self.shared.config.cache.max_object_size.as_u64()
            && same
            && partial::fits(&pieces.spans(), new);
        let plan = if storable {
            self.plan(Some(new.len)).ok()
        } else {
            None
        };
        let Some(plan) = plan.filter(|p| p.object.is_some()) else {
            exchange.not_stored = Some(NotStorable::Partial);
            return body::boxed(incoming);
        };
        exchange.not_stored = None;
        let fill = Fill::new(Some(new.len), &plan);
        let Some(reader) = fill.reader() else {
            return body::boxed(incoming);
        };
        let mut stored_headers = policy::headers_to_store(headers);
        stored_headers.remove(CONTENT_RANGE);
        stored_headers.remove(CONTENT_LENGTH);
        let times = StoredTimes {
            request_time,
            response_time: SystemTime::now(),
        };
        let (cache, url) = (self.cache.clone(), self.url.clone());
        let mut known: Vec<(String, Arc<Entry>)> = pieces.list.clone();
        self.tasks.spawn(async move {
            let Some(Kept {
                length,
                object: Some(object),
                ..
            }) = fill.run(incoming, plan, |_| {}).await
            else {
                return;
            };
            let piece = Entry {
                status: StatusCode::OK,
                headers: stored_headers,
                times,
                generation: 0,
                length,
                body: None,
                object: Some(Arc::new(object)),
                part: Some(Part {
                    start: first,
                    total,
                }),
            };
            cache.store.insert_piece(&url, piece.clone());
            known.push((format!("P{url}\n{first:020}"), Arc::new(piece)));
            join_when_complete(&cache, &url, known, total).await;
        });
        body::boxed(reader)
    }
}

/// Once `pieces` hold every byte of the representation, joins them into
/// one whole stored response and removes them.
async fn join_when_complete(
    cache: &Arc<crate::cache::Cache>,
    url: &str,
    pieces: Vec<(String, Arc<Entry>)>,
    total: u64,
) {
    let Some(order) = partial::complete(&spans(&pieces), total) else {
        return;
    };
    let mut files = Vec::with_capacity(order.len());
    for &i in &order {
        let entry = &pieces[i].1;
        let (Some(object), Some(file)) =
            (entry.object.clone(), cache.store.open_object(entry).await)
        else {
            return;
        };
        files.push((file, object, entry.length));
    }
    let Some(chunks) = cache.store.join_pieces(files).await else {
        return;
    };
    let Some((_, first)) = pieces.first() else {
        return;
    };
    let mut headers = first.headers.clone();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(total));
    let whole = Entry {
        status: StatusCode::OK,
        headers,
        times: first.times,
        generation: 0,
        length: total,
        body: None,
        object: Some(Arc::new(chunks)),
        part: None,
    };
    cache
        .store
        .insert(url, Vec::new(), &HeaderMap::new(), whole);
    let keys: Vec<String> = pieces.into_iter().map(|(k, _)| k).collect();
    cache.store.forget_pieces(&keys);
}

/// The head of a 206 answered from a piece: its stored fields, the range
/// sent, its length and the piece's age.
fn piece_headers(piece: &Entry, start: u64, end: u64, total: u64) -> HeaderMap {
    let mut headers = piece.headers.clone();
    headers.insert(CONTENT_RANGE, range::content_range_value(start, end, total));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start + 1));
    let age = policy::current_age(&piece.headers, &piece.times, SystemTime::now());
    headers.insert(http::header::AGE, policy::age_header_value(age));
    headers
}
