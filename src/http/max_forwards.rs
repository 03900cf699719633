//! Max-Forwards (RFC 9110 §7.6.2): for OPTIONS and TRACE only, a proxy that
//! receives 0 answers itself; otherwise it decrements before forwarding.
//! Pure.

use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, MAX_FORWARDS};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, Version};

use super::body::{empty, full, Body};

/// What to do with a request's Max-Forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxForwards {
    /// Not OPTIONS/TRACE, or no valid field: forward untouched.
    Ignore,
    /// The value is 0: this proxy is the final recipient.
    AnswerHere,
    /// Forward with this (decremented) value.
    Forward(u64),
}

/// Evaluates Max-Forwards for a request.
pub fn evaluate(method: &Method, headers: &HeaderMap) -> MaxForwards {
    if method != Method::OPTIONS && method != Method::TRACE {
        return MaxForwards::Ignore;
    }
    let Some(value) = headers
        .get(MAX_FORWARDS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return MaxForwards::Ignore;
    };
    match value {
        0 => MaxForwards::AnswerHere,
        n => MaxForwards::Forward(n - 1),
    }
}

/// The proxy's own answer when it is the final recipient: OPTIONS lists the
/// methods it forwards; TRACE echoes the request head it received (RFC 9110
/// §9.3.8), minus credentials.
pub fn answer(method: &Method, uri: &Uri, version: Version, headers: &HeaderMap) -> Response<Body> {
    if method == Method::TRACE {
        let mut echo = format!("TRACE {uri} {version:?}\r\n");
        for (name, value) in headers {
            if is_sensitive(name.as_str()) {
                continue;
            }
            echo.push_str(name.as_str());
            echo.push_str(": ");
            echo.push_str(&String::from_utf8_lossy(value.as_bytes()));
            echo.push_str("\r\n");
        }
        echo.push_str("\r\n");
        let len = echo.len();
        let mut response = Response::new(full(echo));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("message/http"));
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
        return response;
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT"),
    );
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn is_sensitive(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(MAX_FORWARDS, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn zero_means_answer_here_for_options_and_trace() {
        // RFC 9110 §7.6.2.
        assert_eq!(
            evaluate(&Method::TRACE, &headers("0")),
            MaxForwards::AnswerHere
        );
        assert_eq!(
            evaluate(&Method::OPTIONS, &headers("0")),
            MaxForwards::AnswerHere
        );
        assert_eq!(
            evaluate(&Method::OPTIONS, &headers("5")),
            MaxForwards::Forward(4)
        );
    }

    #[test]
    fn other_methods_and_garbage_are_ignored() {
        assert_eq!(evaluate(&Method::GET, &headers("0")), MaxForwards::Ignore);
        assert_eq!(evaluate(&Method::TRACE, &headers("x")), MaxForwards::Ignore);
        assert_eq!(
            evaluate(&Method::TRACE, &HeaderMap::new()),
            MaxForwards::Ignore
        );
    }

    #[test]
    fn trace_echo_drops_credentials() {
        let mut h = headers("0");
        h.insert(
            "proxy-authorization",
            HeaderValue::from_static("Basic eA=="),
        );
        h.insert("x-probe", HeaderValue::from_static("1"));
        let r = answer(
            &Method::TRACE,
            &"http://a/".parse().unwrap(),
            Version::HTTP_11,
            &h,
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "message/http");
    }
}
