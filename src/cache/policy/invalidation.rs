//! Invalidation after unsafe requests (RFC 9111 §4.4): when to invalidate and
//! which URIs. Pure: functions of a method, a status, a URI and headers.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};

use crate::cache::policy::key::{cache_key, effective_port};

/// Whether this exchange invalidates stored responses (RFC 9111 §4.4): an
/// unsafe method (anything but GET, HEAD, OPTIONS and TRACE, RFC 9110 §9.2.1,
/// including unknown methods) answered with a non-error status (2xx or 3xx).
pub fn invalidates(method: &Method, status: StatusCode) -> bool {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method);
    !safe && (status.is_success() || status.is_redirection())
}

/// The URIs to invalidate (RFC 9111 §4.4): the request URI, plus `Location`
/// and `Content-Location` when they resolve (RFC 3986 §5.2, fragments
/// dropped) to the same origin (scheme, host and port, RFC 9110 §4.3.1) as
/// the request URI. Duplicates (same cache key) are listed once.
pub fn invalidation_targets(request_uri: &Uri, resp_headers: &HeaderMap) -> Vec<Uri> {
    let mut targets = vec![request_uri.clone()];
    let (Some(base), Some(request_origin)) = (Base::of(request_uri), origin(request_uri)) else {
        return targets;
    };
    let mut keys: Vec<String> = cache_key(request_uri).into_iter().collect();
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        for value in resp_headers.get_all(name) {
            let Some(uri) = value.to_str().ok().and_then(|r| base.resolve(r)) else {
                continue;
            };
            // RFC 9111 §4.4: never invalidate another origin.
            if origin(&uri).as_ref() != Some(&request_origin) {
                continue;
            }
            let Some(key) = cache_key(&uri) else {
                continue;
            };
            if !keys.contains(&key) {
                keys.push(key);
                targets.push(uri);
            }
        }
    }
    targets
}

/// Whether the response's `Content-Location` (its first line) identifies the
/// request URI itself (RFC 9110 §8.7): the reference, resolved against the
/// request URI (RFC 3986 §5.2, fragment dropped), has the same cache key.
pub fn content_location_is_request_uri(request_uri: &Uri, resp_headers: &HeaderMap) -> bool {
    let Some(base) = Base::of(request_uri) else {
        return false;
    };
    let Some(reference) = resp_headers
        .get(header::CONTENT_LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let resolved = base.resolve(reference).and_then(|uri| cache_key(&uri));
    resolved.is_some() && resolved == cache_key(request_uri)
}

/// (lower-cased scheme, lower-cased host, effective port) of an absolute URI
/// (RFC 9110 §4.3.1); `None` when any part is missing or invalid.
fn origin(uri: &Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    Some((scheme, host, effective_port(uri)?))
}

/// The components of a base URI (RFC 3986 §5.1).
struct Base<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Base<'a> {
    fn of(uri: &'a Uri) -> Option<Self> {
        Some(Self {
            scheme: uri.scheme_str()?,
            authority: uri.authority()?.as_str(),
            path: uri.path(),
            query: uri.query(),
        })
    }

    /// RFC 3986 §5.2.2: transforms a reference into a target URI.
    fn resolve(&self, reference: &str) -> Option<Uri> {
        let reference = reference.trim();
        // RFC 3986 §5.2.2 keeps R.fragment; §4.4 wants URIs without it.
        let reference = reference.split('#').next().unwrap_or_default();
        let r = Parts::split(reference);
        let (scheme, authority, path, query) = if let Some(scheme) = r.scheme {
            (
                scheme,
                r.authority.unwrap_or_default(),
                remove_dot_segments(r.path),
                r.query,
            )
        } else if let Some(authority) = r.authority {
            (self.scheme, authority, remove_dot_segments(r.path), r.query)
        } else if r.path.is_empty() {
            (
                self.scheme,
                self.authority,
                self.path.to_owned(),
                r.query.or(self.query),
            )
        } else if r.path.starts_with('/') {
            (
                self.scheme,
                self.authority,
                remove_dot_segments(r.path),
                r.query,
            )
        } else {
            (
                self.scheme,
                self.authority,
                remove_dot_segments(&self.merge(r.path)),
                r.query,
            )
        };
        let mut text = format!("{scheme}://{authority}{path}");
        if let Some(query) = query {
            text.push('?');
            text.push_str(query);
        }
        text.parse().ok()
    }

    /// RFC 3986 §5.2.3: merges a relative-path reference with the base path.
    fn merge(&self, path: &str) -> String {
        if self.path.is_empty() {
            return format!("/{path}");
        }
        let dir = self
            .path
            .rfind('/')
            .map_or("", |i| self.path.split_at(i.saturating_add(1)).0);
        format!("{dir}{path}")
    }
}

/// The components of a URI reference without fragment (RFC 3986 §3,
/// Appendix B).
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn split(reference: &'a str) -> Self {
        let (rest, query) = match reference.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (reference, None),
        };
        // RFC 3986 §3.1: a scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        // before the first ":" that comes before any "/".
        let (scheme, rest) = match rest.split_once(':') {
            Some((scheme, after)) if is_scheme(scheme) => (Some(scheme), after),
            _ => (None, rest),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find('/').unwrap_or(after.len());
                let (authority, path) = after.split_at(end);
                (Some(authority), path)
            }
            None => (None, rest),
        };
        Self {
            scheme,
            authority,
            path,
            query,
        }
    }
}

fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// RFC 3986 §5.2.4: removes "." and ".." segments.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input
            .strip_prefix("../")
            .or_else(|| input.strip_prefix("./"))
        {
            input = rest;
        } else if input.starts_with("/./") {
            input = input.strip_prefix("/.").unwrap_or(input);
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." {
                "/"
            } else {
                input.strip_prefix("/..").unwrap_or(input)
            };
            let cut = output.rfind('/').unwrap_or(0);
            output.truncate(cut);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            // Move the first segment, with its leading "/", to the output.
            let end = input
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == '/')
                .map_or(input.len(), |(i, _)| i);
            let (segment, rest) = input.split_at(end);
            output.push_str(segment);
            input = rest;
        }
    }
    output
}

#[cfg(test)]
#[path = "invalidation_tests.rs"]
mod tests;
