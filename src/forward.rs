//! Forwarding an absolute-form `http://` request to its origin: loop check,
//! Max-Forwards, hop-by-hop removal, Host rewrite and Via in both
//! directions; bodies stream through untouched in both directions.

use http::header::{HOST, MAX_FORWARDS};
use http::{HeaderValue, Request, Response, Uri, Version};
use hyper::body::Incoming;

use crate::error::ProxyError;
use crate::exchange::Exchange;
use crate::http::body::{self, Body};
use crate::http::max_forwards::{self, MaxForwards};
use crate::http::target::{host_port, Authority};
use crate::http::{hop_by_hop, via};
use crate::shared::Shared;
use crate::upstream::UpstreamPeer;

/// Forwards `request` to `uri` (normalized) and returns the origin's
/// response with its body still streaming.
pub async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
    uri: Uri,
    authority: &Authority,
    exchange: &mut Exchange,
) -> Result<Response<Body>, ProxyError> {
    let name = shared.config.server.name.as_str();
    // RFC 9110 §7.6.3: our own pseudonym in Via means the request looped.
    if via::contains(request.headers(), name) {
        return Err(ProxyError::Loop(name.to_owned()));
    }
    let (mut parts, body) = request.into_parts();
    match max_forwards::evaluate(&parts.method, &parts.headers) {
        MaxForwards::AnswerHere => {
            exchange.result = "TCP_MISS";
            return Ok(max_forwards::answer(
                &parts.method,
                &uri,
                parts.version,
                &parts.headers,
            ));
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
    via::append(&mut parts.headers, parts.version, name);
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    exchange.result = "TCP_MISS";
    let response = shared
        .upstream
        .send(Request::from_parts(parts, body::boxed(body)))
        .await?;
    exchange.peer = response.extensions().get::<UpstreamPeer>().map(|p| p.0);

    let (mut parts, body) = response.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    via::append(&mut parts.headers, parts.version, name);
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, body::boxed(body)))
}
