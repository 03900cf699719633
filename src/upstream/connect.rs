//! Opening TCP connections to origins and parents: Happy Eyeballs across
//! several addresses (RFC 8305), a deadline, and the refusal of this proxy's
//! own sockets (a loop, or the admin listener).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::dns::DnsError;
use crate::error::ProxyError;

/// Why a connection to an origin could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {0}")]
    Dns(DnsError),
    #[error("connection to {0} refused")]
    Refused(String),
    #[error("timed out connecting to {0}")]
    Timeout(String),
    #[error("cannot connect to {0}: {1}")]
    Other(String, io::Error),
    /// The address is this proxy's own listening socket.
    #[error("{0} is this proxy")]
    Loop(SocketAddr),
    /// The address is the admin listener.
    #[error("{0} is the admin listener")]
    Admin(SocketAddr),
}

impl ConnectError {
    /// Failed before any byte was sent, fast: another address may work.
    pub(crate) fn try_next(&self) -> bool {
        matches!(self, ConnectError::Refused(_) | ConnectError::Other(..))
    }
}

/// This proxy's own sockets: connecting to them would loop (the listener)
/// or reach what clients must not (the admin listener).
#[derive(Debug, Clone, Copy)]
pub struct LocalSockets {
    pub listen: SocketAddr,
    pub admin: Option<SocketAddr>,
}

impl LocalSockets {
    fn refuse(&self, addr: SocketAddr) -> Option<ConnectError> {
        if self.admin.is_some_and(|admin| same_socket(addr, admin)) {
            return Some(ConnectError::Admin(addr));
        }
        same_socket(addr, self.listen).then_some(ConnectError::Loop(addr))
    }
}

/// Whether connecting to `addr` reaches the socket listening on `listen`.
fn same_socket(addr: SocketAddr, listen: SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    if addr.port() != listen.port() {
        return false;
    }
    let own = listen.ip().to_canonical();
    ip == own || (own.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
}

/// Maps a connect failure to the request's error; `name` is our pseudonym.
pub(crate) fn connect_error(e: &ConnectError, name: &str) -> ProxyError {
    match e {
        ConnectError::Dns(d) => ProxyError::Dns(d.to_string()),
        ConnectError::Refused(h) => ProxyError::ConnectRefused(h.clone()),
        ConnectError::Timeout(h) => ProxyError::ConnectTimeout(h.clone()),
        ConnectError::Other(h, e) => ProxyError::ConnectFailed(h.clone(), e.to_string()),
        ConnectError::Loop(_) => {
            ProxyError::Loop(format!("{name} (the destination is this proxy)"))
        }
        ConnectError::Admin(_) => {
            ProxyError::Denied("the admin listener (not reachable through the proxy)".into())
        }
    }
}

/// RFC 8305 §5: the next address is tried when the previous attempt has
/// neither succeeded nor failed within this delay.
const STAGGER: Duration = Duration::from_millis(250);

/// Connects to the first of `addrs` that accepts, Happy-Eyeballs style
/// (attempts started `STAGGER` apart, or as soon as one fails), refusing
/// this proxy's own sockets, all within `deadline`.
pub async fn connect_any(
    addrs: &[SocketAddr],
    local: &LocalSockets,
    deadline: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let mut refused = None;
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| match local.refuse(*a) {
            Some(e) => {
                refused.get_or_insert(e);
                false
            }
            None => true,
        })
        .collect();
    let label = match addrs.first() {
        Some(a) => a.to_string(),
        None => String::new(),
    };
    let Some(&first) = allowed.first() else {
        return Err(refused.unwrap_or(ConnectError::Refused(label)));
    };
    let attempt = async {
        if allowed.len() == 1 {
            return TcpStream::connect(first).await.map(|s| (s, first));
        }
        race(&allowed).await
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(Ok((stream, addr))) => {
            // Latency matters more than packet count for a proxy.
            let _ = stream.set_nodelay(true);
            Ok((stream, addr))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ConnectError::Refused(label))
        }
        Ok(Err(e)) => Err(ConnectError::Other(label, e)),
        Err(_) => Err(ConnectError::Timeout(label)),
    }
}

/// Races connection attempts to several addresses (RFC 8305 §5).
async fn race(addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    let mut attempts = tokio::task::JoinSet::new();
    let mut next = addrs.iter().copied();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    let start = |set: &mut tokio::task::JoinSet<_>, next: &mut dyn Iterator<Item = SocketAddr>| {
        next.next().map(|a| {
            set.spawn(async move { TcpStream::connect(a).await.map(|s| (s, a)) });
        })
    };
    start(&mut attempts, &mut next);
    loop {
        tokio::select! {
            done = attempts.join_next() => match done {
                Some(Ok(Ok(found))) => return Ok(found),
                Some(Ok(Err(e))) => {
                    last = e;
                    if start(&mut attempts, &mut next).is_none() && attempts.is_empty() {
                        return Err(last);
                    }
                }
                Some(Err(e)) => last = io::Error::other(e.to_string()),
                None => return Err(last),
            },
            () = tokio::time::sleep(STAGGER) => {
                start(&mut attempts, &mut next);
            }
        }
    }
}
