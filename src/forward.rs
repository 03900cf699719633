//! Forwarding an absolute-form `http://` request to its origin: loop check,
//! Max-Forwards, hop-by-hop removal, Host rewrite and Via in both
//! directions; bodies stream through untouched in both directions.

use http::header::{HOST, MAX_FORWARDS};
use std::net::IpAddr;

use http::{request, response, HeaderValue, Response, Uri, Version};

use crate::anonymize::Privacy;
use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::Body;
use crate::http::max_forwards::{self, MaxForwards};
use crate::http::target::{host_port, Authority, Host};
use crate::http::{hop_by_hop, via};
use crate::upstream::{Connect, OriginBody, Upstream, UpstreamPeer};

/// What forwarding uses of the configuration snapshot (kept in it, so that
/// this module needs nothing else of it).
pub struct Forwarding {
    /// Our pseudonym: Via, loop detection.
    pub name: String,
    /// `1.1 <name>`, the Via entry added to HTTP/1.1 requests.
    pub via: HeaderValue,
    pub privacy: Privacy,
    pub upstream: Upstream,
}

/// A request head made ready for the origin, or the proxy's own answer.
pub enum Prepared {
    /// The proxy answers itself (Max-Forwards: 0).
    Answer(Response<Body>),
    /// Send this head to the origin.
    Send(request::Parts),
}

/// Checks a client's request head (loops, Max-Forwards) and removes its
/// hop-by-hop fields; `parts.uri` becomes the normalized `uri`. What only the
/// origin needs (Host, Via, X-Forwarded-For, the address) is added by
/// [`send`], so that answers from the cache cost none of it.
pub fn prepare(
    fwd: &Forwarding,
    mut parts: request::Parts,
    uri: Uri,
) -> Result<Prepared, ProxyError> {
    let name = fwd.name.as_str();
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
    parts.uri = uri;
    Ok(Prepared::Send(parts))
}

/// Where, and on whose behalf, a request goes upstream.
#[derive(Debug, Clone)]
pub struct Route {
    /// The origin as named by the request (the Host field).
    pub authority: Authority,
    /// How its address is found: by name when connecting, or the addresses
    /// the access rules admitted (a second DNS answer cannot send the
    /// request elsewhere).
    pub connect: Connect,
    /// The client, for X-Forwarded-For.
    pub client: IpAddr,
}

/// Sends a prepared head and body along `route`; notes the origin's address.
pub async fn send(
    fwd: &Forwarding,
    route: &Route,
    mut parts: request::Parts,
    body: Body,
    exchange: &mut Exchange,
) -> Result<Response<OriginBody>, ProxyError> {
    // RFC 9112 §3.2.2: the absolute URI wins; Host is rewritten to match it.
    let host = HeaderValue::from_str(&host_port(&route.authority, 80))
        .map_err(|_| ProxyError::BadTarget("host not representable".into()))?;
    parts.headers.insert(HOST, host);
    if fwd.privacy.via() {
        // RFC 9110 §7.6.3: the protocol the request was received with.
        if parts.version == Version::HTTP_11 {
            parts.headers.append(http::header::VIA, fwd.via.clone());
        } else {
            via::append(&mut parts.headers, parts.version, &fwd.name);
        }
    }
    fwd.privacy.forwarded_for(&mut parts.headers, route.client);
    parts.version = Version::HTTP_11;
    let sent = std::time::Instant::now();
    let host = match &route.authority.host {
        Host::Domain(name) => std::borrow::Cow::Borrowed(name.as_str()),
        Host::Ip(ip) => std::borrow::Cow::Owned(ip.to_string()),
    };
    let response = fwd
        .upstream
        .send(&route.connect, (&host, route.authority.port), parts, body)
        .await?;
    exchange.upstream_time = Some(sent.elapsed());
    if let Some(peer) = response.extensions().get::<UpstreamPeer>() {
        exchange.peer = Some(peer.addr);
        exchange.via_parent = peer.parent;
    }
    Ok(response)
}

/// Readies an origin's response head for the client: hop-by-hop out, Via in.
pub fn finish(fwd: &Forwarding, parts: &mut response::Parts) {
    hop_by_hop::strip(&mut parts.headers);
    if fwd.privacy.via() {
        via::append(&mut parts.headers, parts.version, &fwd.name);
    }
    parts.version = Version::HTTP_11;
}
