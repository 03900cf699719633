//! Forwarding an absolute-form `http://` request to its origin: loop check,
//! Max-Forwards, hop-by-hop removal, Host rewrite and Via in both
//! directions; bodies stream through untouched in both directions.

use http::header::{HOST, MAX_FORWARDS};
use std::net::SocketAddr;

use http::{request, response, HeaderValue, Request, Response, Uri, Version};
use hyper::body::Incoming;

use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::Body;
use crate::http::max_forwards::{self, MaxForwards};
use crate::http::target::{host_port, Authority};
use crate::http::{hop_by_hop, via};
use crate::shared::Shared;
use crate::upstream::UpstreamPeer;

/// A request head made ready for the origin, or the proxy's own answer.
pub enum Prepared {
    /// The proxy answers itself (Max-Forwards: 0).
    Answer(Response<Body>),
    /// Send this head to the origin.
    Send(request::Parts),
}

/// Checks and rewrites a client's request head for the origin.
///
/// The request goes to `connect_to`, the address the ACL admitted (so that a
/// second DNS answer cannot send it elsewhere), with Host naming `authority`.
pub fn prepare(
    shared: &Shared,
    mut parts: request::Parts,
    uri: Uri,
    authority: &Authority,
    connect_to: SocketAddr,
) -> Result<Prepared, ProxyError> {
    let name = shared.config.server.name.as_str();
    // RFC 9110 §7.6.3: our own pseudonym in Via means the request looped.
    if via::contains(&parts.headers, name) {
        return Err(ProxyError::Loop(name.to_owned()));
    }
    match max_forwards::evaluate(&parts.method, &parts.headers) {
        MaxForwards::AnswerHere => {
            return Ok(Prepared::Answer(max_forwards::answer(
                &parts.method,
                &uri,
                parts.version,
                &parts.headers,
            )));
        }
        MaxForwards::Forward(n) => {
            parts.headers.insert(MAX_FORWARDS, HeaderValue::from(n));
        }
        MaxForwards::Ignore => {}
    }
    hop_by_hop::strip(&mut parts.headers);
    // RFC 9112 §3.2.2: the absolute URI wins; Host is rewritten to match it.
    let host = HeaderValue::from_str(&host_port(authority, 80))
        .map_err(|_| ProxyError::BadTarget("host not representable".into()))?;
    parts.headers.insert(HOST, host);
    if shared.privacy.via() {
        via::append(&mut parts.headers, parts.version, name);
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{connect_to}{path}")
        .parse()
        .map_err(|_| ProxyError::BadTarget(uri.to_string()))?;
    parts.version = Version::HTTP_11;
    Ok(Prepared::Send(parts))
}

/// Sends a prepared head and body; notes the origin's address.
pub async fn send(
    shared: &Shared,
    parts: request::Parts,
    body: Body,
    exchange: &mut Exchange,
) -> Result<Response<Incoming>, ProxyError> {
    let sent = std::time::Instant::now();
    let response = shared
        .upstream
        .send(Request::from_parts(parts, body))
        .await?;
    exchange.upstream_time = Some(sent.elapsed());
    exchange.peer = response.extensions().get::<UpstreamPeer>().map(|p| p.0);
    Ok(response)
}

/// Readies an origin's response head for the client: hop-by-hop out, Via in.
pub fn finish(shared: &Shared, parts: &mut response::Parts) {
    hop_by_hop::strip(&mut parts.headers);
    if shared.privacy.via() {
        via::append(
            &mut parts.headers,
            parts.version,
            &shared.config.server.name,
        );
    }
    parts.version = Version::HTTP_11;
}
