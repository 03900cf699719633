//! A small authoritative DNS server for the tests (UDP on an ephemeral
//! 127.0.0.1 port): answers the names a test sets (A and AAAA), NXDOMAIN
//! for the rest, counts the queries per name and type, and can delay its
//! answers, change them, or stop answering (a dead resolver). Messages are
//! read and written with hickory-proto.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

#[derive(Default)]
struct State {
    /// Name (lower case, no trailing dot) → answers, one per query in turn
    /// (the last one repeats), with their TTL.
    names: HashMap<String, (Vec<Vec<IpAddr>>, u32)>,
    /// (name, type) → queries received.
    queries: HashMap<(String, RecordType), usize>,
    /// Answers sent per name, to step through its answers.
    answered: HashMap<String, usize>,
    delay: Duration,
    silent: bool,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some((reply, delay)) = answer(&st, &query) else {
                    continue;
                };
                let socket = socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = socket.send_to(&reply, from).await;
                });
            }
        });
        DnsServer { addr, state, task }
    }

    /// The `[dns]` section pointing the proxy at this server.
    pub fn config(&self, extra: &str) -> String {
        format!("[dns]\nservers = [\"{}\"]\n{extra}\n", self.addr)
    }

    /// `name` answers `ips` (IPv4 and IPv6 alike) with `ttl` seconds.
    pub fn set(&self, name: &str, ips: &[&str], ttl: u32) {
        self.set_sequence(name, &[ips], ttl);
    }

    /// `name` answers each list in turn, one per query of its A type (the
    /// last one repeats).
    pub fn set_sequence(&self, name: &str, answers: &[&[&str]], ttl: u32) {
        let answers = answers
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        let mut st = self.state.lock().unwrap();
        st.names.insert(name.to_owned(), (answers, ttl));
        st.answered.remove(name);
    }

    /// Every answer waits this long.
    pub fn delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Stops answering (queries are still counted), or answers again.
    pub fn silence(&self, silent: bool) {
        self.state.lock().unwrap().silent = silent;
    }

    /// A queries received for `name`.
    pub fn queries(&self, name: &str) -> usize {
        self.queries_of(name, RecordType::A)
    }

    pub fn queries_of(&self, name: &str, kind: RecordType) -> usize {
        let st = self.state.lock().unwrap();
        st.queries
            .get(&(name.to_owned(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Queries of any name and type.
    pub fn total_queries(&self) -> usize {
        self.state.lock().unwrap().queries.values().sum()
    }
}

fn answer(state: &Mutex<State>, query: &Message) -> Option<(Vec<u8>, Duration)> {
    let q = query.queries().first()?.clone();
    let name = q.name().to_lowercase().to_ascii();
    let name = name.trim_end_matches('.').to_owned();
    let kind = q.query_type();
    let mut st = state.lock().unwrap();
    *st.queries.entry((name.clone(), kind)).or_insert(0) += 1;
    if st.silent {
        return None;
    }
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .add_query(q.clone());
    let step = if kind == RecordType::A {
        let n = st.answered.entry(name.clone()).or_insert(0);
        *n += 1;
        *n - 1
    } else {
        st.answered
            .get(&name)
            .copied()
            .unwrap_or(1)
            .saturating_sub(1)
    };
    match st.names.get(&name) {
        None => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Some((answers, ttl)) => {
            let ips = answers
                .get(step)
                .or(answers.last())
                .cloned()
                .unwrap_or_default();
            for ip in ips {
                let rdata = match (ip, kind) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(q.name().clone(), *ttl, rdata));
            }
        }
    }
    Some((reply.to_vec().ok()?, st.delay))
}
