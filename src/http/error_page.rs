//! The one place that renders error answers: a short HTML page naming the
//! cause, with the proxy's name. Pure.

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};

use super::body::{full, Body};
use crate::error::ProxyError;

/// Renders a [`ProxyError`] as a complete response.
pub fn render(error: &ProxyError, proxy_name: &str) -> Response<Body> {
    page(
        error.status(),
        error.title(),
        &error.to_string(),
        proxy_name,
    )
}

/// Renders an error page for any status, title and explanation.
pub fn page(status: StatusCode, title: &str, detail: &str, proxy_name: &str) -> Response<Body> {
    let html = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {title}</title></head>\n\
         <body><h1>{code} {title}</h1>\n<p>{detail}</p>\n<hr><address>{name}</address></body></html>\n",
        code = status.as_u16(),
        title = escape(title),
        detail = escape(detail),
        name = escape(proxy_name),
    );
    let mut response = Response::new(full(html.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(html.len()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// HTML-escapes text that may come from the request (host names, URIs).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn page_names_the_cause_and_escapes_input() {
        let err = ProxyError::Dns("<script>.example".into());
        let resp = render(&err, "cachalot");
        assert_eq!(resp.status(), 502);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("cannot resolve &lt;script&gt;.example"));
        assert!(text.contains("<address>cachalot</address>"));
    }
}
