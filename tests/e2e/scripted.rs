//! A scripted origin for cache tests: each request is answered by a closure
//! that sees the request head and its sequence number; requests are counted
//! and their heads recorded. `stop()` takes the origin down completely
//! (listener and open connections), to test serving from cache.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{request, HeaderMap, Response};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::TestBody;

type Script = dyn Fn(&request::Parts, usize) -> Response<TestBody> + Send + Sync;

pub struct Scripted {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<HeaderMap>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Scripted {
    pub async fn start<F>(script: F) -> Scripted
    where
        F: Fn(&request::Parts, usize) -> Response<TestBody> + Send + Sync + 'static,
    {
        Scripted::start_at("127.0.0.1:0", script).await
    }

    /// Like [`Scripted::start`], listening on `bind` (e.g. `127.0.0.2:0`).
    pub async fn start_at<F>(bind: &str, script: F) -> Scripted
    where
        F: Fn(&request::Parts, usize) -> Response<TestBody> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let (c, h, t) = (count.clone(), heads.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (c, h, script) = (c.clone(), h.clone(), script.clone());
                let conn = tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                        let (parts, _) = req.into_parts();
                        h.lock().unwrap().push(parts.headers.clone());
                        let response = script(&parts, n);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                t.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Scripted {
            addr,
            count,
            heads,
            tasks,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Request heads received so far, in order.
    pub fn heads(&self) -> Vec<HeaderMap> {
        self.heads.lock().unwrap().clone()
    }

    /// Closes the listener and every open connection.
    pub fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// A response with the given status, header fields and body.
pub fn respond(status: u16, headers: &[(&str, String)], body: &str) -> Response<TestBody> {
    let mut response = Response::new(crate::support::full(body.to_owned()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

/// An HTTP date `secs_ago` seconds in the past.
pub fn date_ago(secs_ago: u64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago))
}
