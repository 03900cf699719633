//! Going to the origin for the cache: misses (coalesced per URL: one
//! leader fetches, followers share its response when they may), conditional
//! revalidation requests, and unsafe methods with their invalidations.

use std::sync::Arc;
use std::time::SystemTime;

use http::header::{
    CONTENT_LENGTH, CONTENT_RANGE, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE, RANGE,
};
use http::{request, HeaderValue, Method, Request, Response, StatusCode};
use tokio::sync::watch;

use crate::cache::flight::coalesce::{self, LeaderGuard, Published, Role, SharedResponse};
use crate::cache::flight::tee::{Fill, Kept, Plan};
use crate::cache::outcome::Outcome;
use crate::cache::policy::range::{self, RangeVerdict};
use crate::cache::policy::{self, NotStorable, StoredTimes, Verdict};
use crate::cache::store::object::CHUNK;
use crate::cache::store::record::Entry;
use crate::cache::store::{Found, Lookup, NoObject};
use crate::cache::{policy::key, policy::vary, Ctx, CACHE_STATUS};
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::forward::{self, Route};
use crate::http::body::{self, empty, Body};
use crate::shared::Shared;
use crate::upstream::OriginBody;

/// Forwards without the cache (no usable key).
pub(super) async fn pass_through(
    shared: &Shared,
    route: &Route,
    parts: request::Parts,
    body: Body,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let response = forward::send(&shared.forwarding, route, parts, body, exchange).await?;
    exchange.not_stored = Some(NotStorable::NoKey);
    let (mut parts, incoming) = response.into_parts();
    forward::finish(&shared.forwarding, &mut parts);
    Ok(Response::from_parts(parts, body::boxed(incoming)))
}

/// A copy of a request head for the origin, without the client's
/// conditionals and ranges (the cache wants whole, storable answers).
pub(super) fn upstream_copy(parts: &request::Parts, method: Method) -> request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = method;
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
        RANGE,
    ] {
        copy.headers_mut().remove(name);
    }
    copy.into_parts().0
}

/// A copy of a request head for the origin that keeps the client's Range
/// (and If-Range), without its other conditionals.
pub(super) fn upstream_copy_with_range(parts: &request::Parts) -> request::Parts {
    let mut copy = upstream_copy(parts, parts.method.clone());
    for name in [RANGE, IF_RANGE] {
        for value in parts.headers.get_all(&name) {
            copy.headers.append(name.clone(), value.clone());
        }
    }
    copy
}

/// The client's answer from a shared body: the whole response, or the
/// single range its request asks for (RFC 9110 §14.2), served as those
/// bytes arrive; None when the bytes can no longer be read from the start.
fn ranged(
    parts: &request::Parts,
    status: StatusCode,
    headers: &http::HeaderMap,
    fill: &Arc<Fill>,
) -> Option<Response<Body>> {
    let mut headers = headers.clone();
    let verdict = match (status, fill.expected()) {
        (StatusCode::OK, Some(len)) => Some((
            len,
            range::evaluate_range(&parts.method, &parts.headers, &headers, len),
        )),
        _ => None,
    };
    let (status, body) = match verdict {
        Some((len, RangeVerdict::Single { start, end })) => {
            headers.insert(CONTENT_RANGE, range::content_range_value(start, end, len));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            let reader = fill.reader_of(start, Some(end + 1))?;
            (StatusCode::PARTIAL_CONTENT, body::boxed(reader))
        }
        Some((len, RangeVerdict::Unsatisfiable)) => {
            headers.insert(CONTENT_RANGE, range::unsatisfied_range_value(len));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
            (StatusCode::RANGE_NOT_SATISFIABLE, empty())
        }
        _ => (status, body::boxed(fill.reader()?)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Some(response)
}

/// What joining a URL's flight came to.
pub(super) enum Joined {
    /// The request was answered (from the store or the leader's response).
    Answered(Result<Response<Body>, ProxyError>),
    /// Go to the origin: as the flight's leader, or alone.
    Go(request::Parts, Option<LeaderGuard>),
}

/// What became of a follower.
pub(super) enum Followed {
    /// Served from the leader's response as it arrives.
    Shared(Response<Body>),
    /// The leader refreshed this request's variant: serve it.
    Refreshed(Arc<Entry>),
    /// Now the leader of its variant's flight.
    Leader(LeaderGuard),
    /// Goes to the origin on its own.
    Alone,
}

/// What a revalidation with the origin came to.
pub(super) enum Revalidated {
    /// 304: the stored entry, refreshed and stored again.
    NotModified(Arc<Entry>),
    /// A new response (status, head and streaming body).
    Modified(Box<Response<OriginBody>>, SystemTime),
}

impl Ctx<'_> {
    /// Fetches from the origin for a miss and answers (storing when
    /// allowed), as the leader of the URL's flight or as a follower of it.
    pub(super) async fn fetch(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        // A Range miss fetches the whole object (when `cache.range_fill`),
        // answering the range as its bytes arrive; otherwise, and for
        // header-only requests, the request is passed through as is.
        if parts.headers.contains_key(RANGE) && parts.method != Method::GET {
            return self
                .respond(parts, outcome, NotStorable::Range, empty(), exchange)
                .await;
        }
        if parts.headers.contains_key(RANGE) && !self.shared.config.cache.range_fill {
            // Ranges as asked, their 206s kept as partial objects.
            return self.partial(parts, outcome, exchange).await;
        }
        if parts.method == Method::HEAD {
            return self
                .respond(parts, outcome, NotStorable::Method, empty(), exchange)
                .await;
        }
        match self.join_flight(parts, outcome, exchange).await {
            Joined::Answered(answer) => answer,
            Joined::Go(parts, leader) => {
                self.fetch_from_origin(parts, outcome, leader, exchange)
                    .await
            }
        }
    }

    /// Joins the URL's flight before going to the origin. A new leader looks
    /// at the store once more (the previous flight may have just stored a
    /// fresh response); a follower is served from the leader's answer when it
    /// may be. Otherwise the request goes on, leading a flight or alone.
    pub(super) async fn join_flight(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Joined {
        let answered = match self.cache.coalescer.join(&self.url) {
            Role::Leader(guard) => match self.stored_meanwhile(&parts).await {
                Some(found) => {
                    drop(guard);
                    let outcome = Self::hit_outcome(&found);
                    self.serve(parts, &found.entry, outcome, None, exchange)
                        .await
                }
                None => return Joined::Go(parts, Some(guard)),
            },
            Role::Follower(rx) => match self.follow_flight(rx, &parts, outcome, exchange).await {
                Followed::Shared(response) => Ok(response),
                Followed::Refreshed(entry) => {
                    self.serve(
                        parts,
                        &entry,
                        Outcome::RefreshUnmodified,
                        Some(304),
                        exchange,
                    )
                    .await
                }
                Followed::Leader(guard) => return Joined::Go(parts, Some(guard)),
                Followed::Alone => return Joined::Go(parts, None),
            },
        };
        Joined::Answered(answered)
    }

    /// A new leader's second look at the store: the URL's previous flight
    /// may have ended, its response stored, between this request's lookup
    /// and its join. A fresh entry found now answers instead of the origin
    /// (followers that joined in between are told the leader is gone).
    pub(super) async fn stored_meanwhile(&self, parts: &request::Parts) -> Option<Found> {
        let Lookup::Hit(found) = self.cache.store.lookup(&self.url, &parts.headers).await else {
            return None;
        };
        let verdict = policy::evaluate(
            &parts.headers,
            found.entry.status,
            &found.entry.headers,
            &found.entry.times,
            SystemTime::now(),
            &self.policy,
        );
        matches!(verdict, Verdict::Fresh).then_some(found)
    }

    /// Waits on the flight of this URL as a follower, and at most once
    /// more on another flight: when the leader's answer is another variant
    /// than this request's (RFC 9111 §4.1), on the flight of this request's
    /// own variant; when the leader went away without an answer (its client
    /// left, or its request failed), on the same flight again. There it may
    /// become the leader, so that the followers still make one request.
    pub(super) async fn follow_flight(
        &self,
        mut rx: watch::Receiver<Published>,
        parts: &request::Parts,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Followed {
        let limit = self.shared.config.cache.lock_timeout;
        let mut key = self.url.clone();
        let mut rejoined = false;
        loop {
            key = match coalesce::wait(rx, limit).await {
                Published::Shared(shared) => {
                    if let Some(response) = self.follow(parts, &shared, outcome, exchange) {
                        return Followed::Shared(response);
                    }
                    let secondary = vary::secondary_key(&shared.vary, &parts.headers);
                    coalesce::variant_key(&self.url, &secondary)
                }
                Published::Refreshed { entry, secondary } => {
                    let Some(names) = vary::vary_names(&entry.headers) else {
                        return Followed::Alone;
                    };
                    let ours = vary::secondary_key(&names, &parts.headers);
                    if ours == secondary {
                        exchange.coalesced = true;
                        self.cache.coalescer.count_follower();
                        return Followed::Refreshed(entry);
                    }
                    coalesce::variant_key(&self.url, &ours)
                }
                Published::Abandoned => key,
                // Not for us to share, or the leader is too slow: on our own.
                Published::NotShareable | Published::Pending => return Followed::Alone,
            };
            if rejoined {
                return Followed::Alone;
            }
            rejoined = true;
            rx = match self.cache.coalescer.join(&key) {
                Role::Leader(guard) => return Followed::Leader(guard),
                Role::Follower(rx) => rx,
            };
        }
    }

    /// Sends the request for a whole, storable response and answers from it.
    pub(super) async fn fetch_from_origin(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        leader: Option<LeaderGuard>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let upstream = upstream_copy(&parts, Method::GET);
        // A Range request that turns out not to be storable is sent again
        // as the client sent it, rather than answered with the whole body.
        let as_sent = parts
            .headers
            .contains_key(RANGE)
            .then(|| upstream_copy_with_range(&parts));
        let request_time = SystemTime::now();
        let response = forward::send(
            &self.shared.forwarding,
            &self.route,
            upstream,
            empty(),
            exchange,
        )
        .await?;
        let answer =
            self.answer_from_origin(parts, response, request_time, outcome, leader, exchange)?;
        match (as_sent, exchange.not_stored) {
            (Some(as_sent), Some(reason)) if answer.status() == StatusCode::OK => {
                drop(answer);
                self.respond(as_sent, outcome, reason, empty(), exchange)
                    .await
            }
            _ => Ok(answer),
        }
    }

    /// How a fill of a body of `length` bytes may keep it: a share of
    /// `cache.fill_budget` (the body itself when it is small enough for
    /// memory, two chunks when it goes to disk) and, unless it is that
    /// small, an object file on the disk tier.
    pub(super) fn plan(&self, length: Option<u64>) -> Result<Plan, NotStorable> {
        let store = &self.cache.store;
        let memory_limit = store.memory_object_size();
        let need = match length {
            Some(n) if n <= memory_limit => n,
            Some(_) => 2 * u64::from(CHUNK),
            None => memory_limit,
        };
        let permit = self
            .cache
            .budget
            .clone()
            .try_acquire_many_owned(u32::try_from(need.div_ceil(1024)).unwrap_or(u32::MAX))
            .map_err(|_| NotStorable::FillBudget)?;
        let object = match store.new_object(length) {
            Ok(object) => Some(object),
            Err(why) if length.is_some_and(|n| n > memory_limit) => {
                return Err(match why {
                    NoObject::Off => NotStorable::DiskOff,
                    NoObject::Full => NotStorable::DiskSpace,
                })
            }
            Err(_) => None,
        };
        Ok(Plan {
            object,
            memory_limit,
            max_object: self.shared.config.cache.max_object_size.as_u64(),
            permit: Some(permit),
            disk_io: store.disk_io(),
        })
    }

    /// Serves a follower from the leader's response as its body arrives,
    /// unless the response selects another variant than this request's.
    pub(super) fn follow(
        &self,
        parts: &request::Parts,
        shared: &SharedResponse,
        outcome: Outcome,
        exchange: &mut Exchange,
    ) -> Option<Response<Body>> {
        if vary::secondary_key(&shared.vary, &parts.headers) != shared.secondary {
            return None;
        }
        let mut response = ranged(parts, shared.status, &shared.headers, &shared.fill)?;
        let not_modified =
            policy::client_conditional(&parts.method, &parts.headers, &shared.headers, None)
                == policy::Conditional::NotModified;
        if parts.method == Method::HEAD || (not_modified && shared.status == StatusCode::OK) {
            if not_modified {
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                response.headers_mut().remove(CONTENT_LENGTH);
                response.headers_mut().remove(CONTENT_RANGE);
            }
            *response.body_mut() = empty();
        }
        exchange.result = crate::exchange::Disposition::Cache(outcome);
        exchange.coalesced = true;
        self.cache.coalescer.count_follower();
        let value = format!(
            "{}; collapsed",
            outcome.cache_status(self.name(), Some(shared.status.as_u16()))
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(CACHE_STATUS.clone(), value);
        }
        Some(response)
    }

    /// Forwards the client's own request as is (not stored, for `reason`)
    /// and marks it.
    pub(super) async fn respond(
        &self,
        parts: request::Parts,
        outcome: Outcome,
        reason: NotStorable,
        body: Body,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        exchange.result = crate::exchange::Disposition::Cache(outcome);
        let response =
            forward::send(&self.shared.forwarding, &self.route, parts, body, exchange).await?;
        exchange.not_stored = Some(reason);
        let status = response.status().as_u16();
        let (mut head, incoming) = response.into_parts();
        forward::finish(&self.shared.forwarding, &mut head);
        let mut response = Response::from_parts(head, body::boxed(incoming));
        self.mark_with_detail(&mut response, outcome, Some(status), Some(reason.as_str()));
        Ok(response)
    }

    /// Turns an origin response into the client's answer, teeing its body
    /// into the store when a shared cache may keep it.
    pub(super) fn answer_from_origin(
        &self,
        parts: request::Parts,
        response: Response<OriginBody>,
        request_time: SystemTime,
        outcome: Outcome,
        leader: Option<LeaderGuard>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        exchange.result = crate::exchange::Disposition::Cache(outcome);
        let response_time = SystemTime::now();
        let (mut head, incoming) = response.into_parts();
        let status = head.status;
        let stored_headers = policy::headers_to_store(&head.headers);
        let vary_names = vary::vary_names(&head.headers);
        let length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let max = self.shared.config.cache.max_object_size.as_u64();
        let verdict = policy::storability(
            &Method::GET,
            &parts.headers,
            status,
            &head.headers,
            &self.policy,
        );
        // The one reason it is not stored, if it is not: the rules first,
        // then what this cache can keep.
        let reason = match verdict {
            Err(reason) => Some(reason),
            Ok(()) if vary_names.is_none() => Some(NotStorable::VaryStar),
            Ok(()) if length.is_some_and(|n| n > max) => Some(NotStorable::TooBig),
            Ok(()) => None,
        };
        // Room to keep it: a share of the fill budget, and the disk tier
        // for a body too large for memory.
        let (reason, plan) = match reason {
            Some(reason) => (Some(reason), None),
            None => match self.plan(length) {
                Ok(plan) => (None, Some(plan)),
                Err(reason) => (Some(reason), None),
            },
        };
        exchange.not_stored = reason;
        let storable = reason.is_none();
        let cookie_detail = policy::set_cookie_detail(&head.headers, verdict, storable);
        if let Some(detail) = cookie_detail {
            tracing::debug!(url = %self.url, "Set-Cookie not cached ({detail}): never replayed to another client");
        }
        forward::finish(&self.shared.forwarding, &mut head);
        let not_modified =
            policy::client_conditional(&parts.method, &parts.headers, &stored_headers, None)
                == policy::Conditional::NotModified;

        let body = if let Some(plan) = plan {
            let fill = Fill::new(length, &plan);
            let store = self.cache.clone();
            let url = self.url.clone();
            let request_headers = parts.headers.clone();
            let names = vary_names.unwrap_or_default();
            let mut leader = leader;
            if let Some(leader) = leader.as_mut() {
                leader.publish(Published::Shared(Arc::new(SharedResponse {
                    status,
                    headers: head.headers.clone(),
                    fill: fill.clone(),
                    secondary: vary::secondary_key(&names, &request_headers),
                    vary: names.clone(),
                })));
            }
            let answer = ranged(&parts, status, &head.headers, &fill);
            let runner = fill.clone();
            self.tasks.spawn(async move {
                // The flight (and its late joiners) lasts until the body is in.
                let times = StoredTimes {
                    request_time,
                    response_time,
                };
                let mut generation = None;
                let early = |body: bytes::Bytes| {
                    let entry = Entry::in_memory(status, stored_headers.clone(), times, body);
                    generation = Some(store.store.insert(
                        &url,
                        names.clone(),
                        &request_headers,
                        entry,
                    ));
                    // Stored: the flight is over (a body kept on disk
                    // only keeps its flight, and its late joiners, until
                    // the fill ends).
                    drop(leader);
                };
                let kept = runner.run(incoming, plan, early).await;
                if let Some(Kept {
                    length,
                    body,
                    object: Some(object),
                }) = kept
                {
                    // On disk now: the head goes there too.
                    let entry = Entry {
                        status,
                        headers: stored_headers,
                        times,
                        generation: 0,
                        length,
                        body,
                        object: Some(Arc::new(object)),
                        part: None,
                    };
                    match generation {
                        // Kept in memory first: only if still the one stored.
                        Some(generation) => {
                            store
                                .store
                                .attach(&url, names, &request_headers, entry, generation)
                        }
                        None => {
                            store.store.insert(&url, names, &request_headers, entry);
                        }
                    }
                }
            });
            match answer {
                Some(answer) => {
                    let (answer_head, body) = answer.into_parts();
                    head.status = answer_head.status;
                    head.headers = answer_head.headers;
                    body
                }
                None => empty(),
            }
        } else {
            if let Some(mut leader) = leader {
                leader.publish(Published::NotShareable);
            }
            if (status.is_success() || status.is_redirection()) && outcome.replaces_stored() {
                // The URL now answers with something we may not keep: drop what we had.
                self.cache.store.invalidate(&self.url);
            }
            body::boxed(incoming)
        };
        let mut response = Response::from_parts(head, body);
        if not_modified && status == StatusCode::OK {
            // The client's conditional matches the new response (RFC 9110 §13.1).
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response.headers_mut().remove(CONTENT_LENGTH);
            response.headers_mut().remove(CONTENT_RANGE);
            *response.body_mut() = empty();
        }
        self.mark_with_detail(
            &mut response,
            outcome,
            Some(status.as_u16()),
            cookie_detail.or(reason.map(NotStorable::as_str)),
        );
        Ok(response)
    }

    /// Sends a conditional request for a stored entry (RFC 9111 §4.3.1).
    pub(super) async fn revalidate_upstream(
        &self,
        parts: &request::Parts,
        entry: &Arc<Entry>,
        exchange: &mut Exchange,
    ) -> Result<Revalidated, ProxyError> {
        let mut upstream = upstream_copy(parts, Method::GET);
        for (name, value) in policy::revalidation_headers(&entry.headers) {
            if let Some(name) = name {
                upstream.headers.insert(name, value);
            }
        }
        let request_time = SystemTime::now();
        let response = forward::send(
            &self.shared.forwarding,
            &self.route,
            upstream,
            empty(),
            exchange,
        )
        .await?;
        if response.status() == StatusCode::NOT_MODIFIED
            && policy::validators_match_304(&entry.headers, response.headers())
        {
            // RFC 9111 §4.3.4: freshen the stored header fields and keep the body.
            let mut head = response.into_parts().0;
            crate::http::hop_by_hop::strip(&mut head.headers);
            let headers = policy::update_headers_from_304(&entry.headers, &head.headers);
            let fresh = Entry {
                status: entry.status,
                headers,
                times: StoredTimes {
                    request_time,
                    response_time: SystemTime::now(),
                },
                generation: 0,
                length: entry.length,
                body: entry.body.clone(),
                object: entry.object.clone(),
                part: entry.part,
            };
            if let Some(names) = vary::vary_names(&fresh.headers) {
                self.cache
                    .store
                    .insert(&self.url, names, &parts.headers, fresh.clone());
            }
            return Ok(Revalidated::NotModified(Arc::new(fresh)));
        }
        Ok(Revalidated::Modified(Box::new(response), request_time))
    }

    /// POST, PUT, DELETE, PATCH and unknown methods: forward with the body,
    /// then invalidate what a successful answer may have changed (§4.4). A
    /// POST response that names itself (explicit freshness, Content-Location
    /// equal to the request URI) is then stored as the response to a GET of
    /// the URI (RFC 9110 §9.3.3, RFC 9111 §2), when a GET's would be.
    pub(super) async fn unsafe_method(
        &self,
        parts: request::Parts,
        body: Body,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let method = parts.method.clone();
        let uri = self.target.clone();
        // The head a later GET of the URI would have sent: the request
        // fields that select its variant, without conditionals.
        let as_get = (method == Method::POST).then(|| upstream_copy(&parts, Method::GET));
        exchange.result = crate::exchange::Disposition::Cache(Outcome::Bypass);
        let request_time = SystemTime::now();
        let response =
            forward::send(&self.shared.forwarding, &self.route, parts, body, exchange).await?;
        let status = response.status();
        if policy::invalidates(&method, status) {
            for target in policy::invalidation_targets(&uri, response.headers()) {
                if let Some(url) = key::cache_key(&target) {
                    self.cache.store.invalidate(&url);
                }
            }
        }
        if let Some(as_get) = as_get {
            if policy::post_stores_as_get(&method, &uri, response.headers()) {
                return self.answer_from_origin(
                    as_get,
                    response,
                    request_time,
                    Outcome::Bypass,
                    None,
                    exchange,
                );
            }
        }
        exchange.not_stored = Some(NotStorable::Method);
        let (mut head, incoming) = response.into_parts();
        forward::finish(&self.shared.forwarding, &mut head);
        let mut response = Response::from_parts(head, body::boxed(incoming));
        self.mark_with_detail(
            &mut response,
            Outcome::Bypass,
            Some(status.as_u16()),
            Some(NotStorable::Method.as_str()),
        );
        Ok(response)
    }
}
