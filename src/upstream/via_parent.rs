//! A CONNECT tunnel through a parent proxy: connect to the parent, send it
//! `CONNECT host:port` (with its credentials), and on `200` use the
//! upgraded connection as the tunnel's far side.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::connect::ConnectError;
use super::stream::ParentConnector;
use super::Failure;
use crate::http::body::empty;
use crate::parent::Parent;

/// What a tunnel's far side can be: a TCP stream, or a parent's upgraded
/// connection.
pub trait TunnelIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> TunnelIo for T {}

/// The far side of a CONNECT tunnel.
pub enum TunnelStream {
    /// A TCP connection to the destination (its bytes can be spliced).
    Tcp(tokio::net::TcpStream),
    /// A parent proxy's tunnel, through hyper's upgraded connection.
    Parent(Box<dyn TunnelIo>),
}

/// Opens a tunnel to `authority` through `parent` (connected to by
/// `connector`, the one its requests use), within the connect and response
/// deadlines. A failure says whether the parent could not be reached
/// (another may be tried) or answered with a refusal.
pub(super) async fn open(
    parent: &Parent,
    connector: &ParentConnector,
    authority: &str,
    response_timeout: Duration,
) -> Result<(TunnelStream, SocketAddr), (ConnectError, Failure)> {
    let (stream, peer) = connector
        .open()
        .await
        .map_err(|e| (e, Failure::Connect { fast: true }))?;
    let refused = |why: String| {
        (
            ConnectError::Other(parent.name.clone(), io::Error::other(why)),
            Failure::Final,
        )
    };
    let handshake = async {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| refused(format!("handshake with the parent failed: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut request = Request::new(empty());
        *request.method_mut() = Method::CONNECT;
        *request.uri_mut() = authority
            .parse()
            .map_err(|_| refused(format!("{authority} is not an authority")))?;
        if let Ok(host) = http::HeaderValue::from_str(authority) {
            request.headers_mut().insert(http::header::HOST, host);
        }
        if let Some(auth) = &parent.authorization {
            request
                .headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, auth.clone());
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| refused(format!("the parent closed the connection: {e}")))?;
        if response.status() != StatusCode::OK {
            return Err(refused(format!(
                "the parent answered {} to CONNECT {authority}",
                response.status()
            )));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| refused(format!("the parent's tunnel failed: {e}")))?;
        Ok::<TunnelStream, (ConnectError, Failure)>(TunnelStream::Parent(Box::new(TokioIo::new(
            upgraded,
        ))))
    };
    match tokio::time::timeout(response_timeout, handshake).await {
        Ok(Ok(stream)) => Ok((stream, peer)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(refused(format!(
            "the parent did not answer CONNECT {authority} in time"
        ))),
    }
}
