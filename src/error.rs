//! Request-path failures, classified once: each knows its side, its HTTP
//! status and its Squid result code. Pages are rendered in `http::error_page`.
//!
//! Pure.

use http::StatusCode;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something we cannot or will not serve.
    Client,
    /// The origin (or the path to it) failed.
    Upstream,
    /// Our own fault.
    Internal,
}

/// Everything that can stop a request from being answered by the origin.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request target is a path (origin form): we are a proxy, not a server.
    #[error("this is a proxy: requests must carry an absolute URI such as http://example.com/")]
    OriginForm,
    /// The request target is malformed or in a form we cannot use.
    #[error("invalid request target: {0}")]
    BadTarget(String),
    /// The request itself is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The scheme is not one we forward (https must use CONNECT).
    #[error("the {0}:// scheme is not forwarded; HTTPS clients use CONNECT through this proxy")]
    UnsupportedScheme(String),
    /// CONNECT to a port outside `connect_ports`.
    #[error("CONNECT to port {0} is not allowed")]
    ConnectPortDenied(u16),
    /// The access rules refuse this request; names the deciding rule.
    #[error("access denied by {0}")]
    Denied(String),
    /// Our own pseudonym is already in Via.
    #[error("forwarding loop detected: this request has already passed through {0}")]
    Loop(String),
    /// The origin's name does not resolve.
    #[error("cannot resolve {0}")]
    Dns(String),
    /// The origin refused the TCP connection.
    #[error("connection to {0} refused")]
    ConnectRefused(String),
    /// Another failure to open the TCP connection.
    #[error("cannot connect to {0}: {1}")]
    ConnectFailed(String, String),
    /// Name resolution plus TCP connect exceeded `timeouts.upstream_connect`.
    #[error("timed out connecting to {0}")]
    ConnectTimeout(String),
    /// The origin sent no response head within `timeouts.upstream_response`.
    #[error("{0} did not answer in time")]
    ResponseTimeout(String),
    /// The origin closed or reset the connection before a complete response head.
    #[error("{0} closed the connection without a valid response")]
    UpstreamReset(String),
    /// A stale response that must be revalidated could not be (must-revalidate).
    #[error("the stored response must be revalidated and the origin cannot be reached: {0}")]
    RevalidationFailed(String),
    /// A bug or resource failure on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ProxyError {
    /// The status the client receives.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::OriginForm | ProxyError::BadTarget(_) | ProxyError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::UnsupportedScheme(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::ConnectPortDenied(_) | ProxyError::Denied(_) => StatusCode::FORBIDDEN,
            ProxyError::Loop(_) => StatusCode::LOOP_DETECTED,
            ProxyError::Dns(_)
            | ProxyError::ConnectRefused(_)
            | ProxyError::ConnectFailed(..)
            | ProxyError::UpstreamReset(_) => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout(_)
            | ProxyError::ResponseTimeout(_)
            | ProxyError::RevalidationFailed(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Who is at fault.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::OriginForm
            | ProxyError::BadTarget(_)
            | ProxyError::BadRequest(_)
            | ProxyError::UnsupportedScheme(_)
            | ProxyError::ConnectPortDenied(_)
            | ProxyError::Denied(_)
            | ProxyError::Loop(_) => Side::Client,
            ProxyError::Dns(_)
            | ProxyError::ConnectRefused(_)
            | ProxyError::ConnectFailed(..)
            | ProxyError::ConnectTimeout(_)
            | ProxyError::ResponseTimeout(_)
            | ProxyError::RevalidationFailed(_)
            | ProxyError::UpstreamReset(_) => Side::Upstream,
            ProxyError::Internal(_) => Side::Internal,
        }
    }

    /// Metrics label of an upstream failure.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Dns(_) => "dns",
            ProxyError::ConnectRefused(_) => "refused",
            ProxyError::ConnectFailed(..) => "connect",
            ProxyError::ConnectTimeout(_) => "connect_timeout",
            ProxyError::ResponseTimeout(_) => "response_timeout",
            ProxyError::UpstreamReset(_) => "reset",
            ProxyError::RevalidationFailed(_) => "revalidation",
            _ => "other",
        }
    }

    /// True when the origin could not be reached or was not heard from: its
    /// name does not resolve, the TCP connection was refused, timed out or
    /// failed otherwise, or the origin reset or closed the connection, or
    /// sent nothing in time, before a response head. These are the failures
    /// of a "disconnected" cache (RFC 9111 §4.2.4) that may serve a stale
    /// response; an answer from the origin, even a 5xx, is never one.
    ///
    /// A name that cannot be resolved is an unreachable origin like any
    /// other: the resolver relies on that.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ProxyError::Dns(_)
            | ProxyError::ConnectRefused(_)
            | ProxyError::ConnectFailed(..)
            | ProxyError::ConnectTimeout(_)
            | ProxyError::ResponseTimeout(_)
            | ProxyError::UpstreamReset(_) => true,
            ProxyError::OriginForm
            | ProxyError::BadTarget(_)
            | ProxyError::BadRequest(_)
            | ProxyError::UnsupportedScheme(_)
            | ProxyError::ConnectPortDenied(_)
            | ProxyError::Denied(_)
            | ProxyError::Loop(_)
            | ProxyError::RevalidationFailed(_)
            | ProxyError::Internal(_) => false,
        }
    }

    /// The `detail` of the `Cache-Status` on the page for this failure
    /// (RFC 9211 §2.8): a token naming what stopped the request.
    pub fn detail(&self) -> &'static str {
        match self {
            ProxyError::OriginForm => "origin-form",
            ProxyError::BadTarget(_) | ProxyError::BadRequest(_) => "bad-request",
            ProxyError::UnsupportedScheme(_) => "scheme",
            ProxyError::ConnectPortDenied(_) => "port-denied",
            ProxyError::Denied(_) => "denied",
            ProxyError::Loop(_) => "loop",
            ProxyError::Internal(_) => "internal",
            other => other.kind(),
        }
    }

    /// Short title for the error page.
    pub fn title(&self) -> &'static str {
        match self {
            ProxyError::OriginForm => "Not a web server",
            ProxyError::BadTarget(_) | ProxyError::BadRequest(_) => "Bad request",
            ProxyError::UnsupportedScheme(_) => "Scheme not supported",
            ProxyError::ConnectPortDenied(_) => "Port not allowed",
            ProxyError::Denied(_) => "Access denied",
            ProxyError::Loop(_) => "Forwarding loop",
            ProxyError::Dns(_) => "Unknown host",
            ProxyError::ConnectRefused(_) => "Connection refused",
            ProxyError::ConnectFailed(..) => "Connection failed",
            ProxyError::ConnectTimeout(_) => "Connection timed out",
            ProxyError::ResponseTimeout(_) => "Origin timed out",
            ProxyError::UpstreamReset(_) => "Origin closed the connection",
            ProxyError::RevalidationFailed(_) => "Cannot revalidate",
            ProxyError::Internal(_) => "Internal error",
        }
    }

    /// A refusal by policy (access rules, CONNECT ports), not a fault.
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            ProxyError::ConnectPortDenied(_) | ProxyError::Denied(_)
        )
    }

    /// Squid's result code for the access log.
    pub fn squid_code(&self) -> &'static str {
        match self.side() {
            Side::Client if self.is_denial() => "TCP_DENIED",
            Side::Client => "NONE_NONE",
            Side::Upstream => "TCP_MISS",
            Side::Internal => "NONE_NONE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        // RFC 9110 §15.6.3 (502) and §15.6.5 (504).
        let h = || "example.com:80".to_owned();
        assert_eq!(ProxyError::Dns(h()).status(), 502);
        assert_eq!(ProxyError::ConnectRefused(h()).status(), 502);
        assert_eq!(ProxyError::UpstreamReset(h()).status(), 502);
        assert_eq!(ProxyError::ConnectTimeout(h()).status(), 504);
        assert_eq!(ProxyError::ResponseTimeout(h()).status(), 504);
        assert_eq!(ProxyError::Dns(h()).side(), Side::Upstream);
    }

    #[test]
    fn unreachable_origins_are_classified_by_variant() {
        // RFC 9111 §4.2.4: failures to reach or hear from the origin, a name
        // that does not resolve included; never the client's or our own.
        let h = || "example.com:80".to_owned();
        for unreachable in [
            ProxyError::Dns(h()),
            ProxyError::ConnectRefused(h()),
            ProxyError::ConnectFailed(h(), "network unreachable".into()),
            ProxyError::ConnectTimeout(h()),
            ProxyError::ResponseTimeout(h()),
            ProxyError::UpstreamReset(h()),
        ] {
            assert!(unreachable.is_unreachable(), "{unreachable:?}");
            assert_eq!(unreachable.side(), Side::Upstream);
        }
        for reached in [
            ProxyError::OriginForm,
            ProxyError::BadRequest("x".into()),
            ProxyError::BadTarget("x".into()),
            ProxyError::Denied("rule".into()),
            ProxyError::Loop("cachalot".into()),
            ProxyError::RevalidationFailed(h()),
            ProxyError::Internal("x".into()),
        ] {
            assert!(!reached.is_unreachable(), "{reached:?}");
        }
    }

    #[test]
    fn client_mistakes_are_4xx() {
        assert_eq!(ProxyError::OriginForm.status(), 400);
        assert_eq!(ProxyError::ConnectPortDenied(25).status(), 403);
        assert_eq!(ProxyError::ConnectPortDenied(25).squid_code(), "TCP_DENIED");
        assert_eq!(ProxyError::OriginForm.side(), Side::Client);
    }
}
