//! Opening the sockets the pool's connections run on: to an origin's
//! address (always an IP literal: names are resolved before, in
//! [`Upstream::send`](super::Upstream::send), so that the pool is keyed by
//! address, a request never reuses a connection made to an address its
//! rules did not admit, and a changed DNS answer is seen as soon as its TTL
//! is over), or to a parent proxy (its name resolved through the cache).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::connect::{connect_any, ConnectError, LocalSockets};
use crate::dns::Resolver;

/// How origin connections are opened.
#[derive(Clone)]
pub struct Connector {
    pub timeout: Duration,
    pub local: LocalSockets,
}

impl Connector {
    /// Connects to `addr` within the deadline (never to our own sockets).
    pub async fn open(&self, addr: SocketAddr) -> Result<(TcpStream, SocketAddr), ConnectError> {
        connect_any(&[addr], &self.local, self.timeout).await
    }
}

/// How one parent proxy's connections are opened.
#[derive(Clone)]
pub struct ParentConnector {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub dns: Arc<Resolver>,
    pub local: LocalSockets,
}

impl ParentConnector {
    /// Connects to the parent (its name resolved through the cache).
    pub async fn open(&self) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let addrs = self
            .dns
            .socket_addrs(&self.host, self.port)
            .await
            .map_err(ConnectError::Dns)?;
        connect_any(&addrs, &self.local, self.timeout).await
    }
}
