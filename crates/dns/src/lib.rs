//! Sans-IO resolution of SIP servers (RFC 3263 §4) over DNS (RFC 1035, RFC 2782, RFC 3403).
//!
//! The [`Resolver`] opens no socket, reads no clock and draws no randomness of its own: the
//! driver passes `now` in, sends the datagrams [`Resolver::poll_transmit`] gives it, feeds the
//! answers back through [`Resolver::handle_datagram`] and calls [`Resolver::handle_timeout`] at
//! [`Resolver::poll_timeout`]. Query ids and the SRV weight draws come from the seed given to
//! [`Resolver::new`].
//!
//! ```
//! use std::time::Instant;
//! use sambung_dns::{Query, Resolver, Transport};
//!
//! let mut resolver = Resolver::new(vec!["192.0.2.53:53".parse().unwrap()], 7);
//! let now = Instant::now();
//! let id = resolver.lookup(
//!     Query { host: "192.0.2.10".into(), port: None, transport: Some(Transport::Tcp), secure: false },
//!     now,
//! );
//! // An IP literal needs no DNS: the answer is ready at once.
//! let (done, targets) = resolver.poll_answer().unwrap();
//! assert_eq!(done, id);
//! assert_eq!(targets.unwrap()[0].addr, "192.0.2.10:5060".parse().unwrap());
//! assert!(resolver.poll_transmit().is_none());
//! ```

pub mod message;
mod rng;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
pub use std::net::SocketAddr;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use message::{CLASS_IN, Message, RData, RType, rcode};
use rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// What to resolve: the host part of a SIP URI and what the URI says (RFC 3263 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// A domain name, or an IP literal (v4, or v6 with or without brackets).
    pub host: String,
    /// An explicit port in the URI.
    pub port: Option<u16>,
    /// `;transport=` in the URI.
    pub transport: Option<Transport>,
    /// A sips: URI: only TLS is acceptable.
    pub secure: bool,
}

/// One place to send to, in the order to try them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The name a TLS server's certificate must match (RFC 5922 §4: the domain of the URI, i.e.
    /// `Query.host` in lower case without a trailing dot, not the SRV target name; for an IP
    /// literal, the address).
    pub server_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The name does not exist (NXDOMAIN), or has no usable records.
    #[error("no usable DNS records")]
    NotFound,
    /// No DNS server answered in time.
    #[error("no DNS server answered")]
    Timeout,
    /// Every DNS server answered with a failure (SERVFAIL, REFUSED, ...).
    #[error("the DNS servers failed")]
    ServerFailure,
    /// The resolver was given no DNS server, and the answer is not cached.
    #[error("no DNS server configured")]
    NoServers,
    /// The host is neither an IP literal nor a valid domain name.
    #[error("not a valid host name")]
    BadName,
    /// A sips: URI with `;transport=udp`: SIPS needs TLS, and there is no TLS over UDP here.
    #[error("a sips: URI needs TLS, not UDP")]
    InsecureTransport,
}

/// Attempts per server before the next one is asked; the first waits 1 s, the second 2 s.
const ATTEMPTS_PER_SERVER: u8 = 2;
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// CNAMEs followed across queries for one question.
const MAX_CNAME_HOPS: u8 = 8;
/// How long answers are kept at most: positive ones, and NXDOMAIN or no-data ones.
const MAX_POSITIVE_TTL: u32 = 86_400;
const MAX_NEGATIVE_TTL: u32 = 300;
/// A negative answer without an SOA record is kept this long.
const DEFAULT_NEGATIVE_TTL: u32 = 30;
const MAX_CACHE_ENTRIES: usize = 4096;

type Key = (String, RType);
type Outcome = Result<Vec<RData>, Error>;

/// A lookup's host, after checking.
#[derive(Debug)]
struct Name {
    host: String,
    port: Option<u16>,
    /// Tls whenever `secure`.
    transport: Option<Transport>,
    secure: bool,
}

#[derive(Debug)]
struct Lookup {
    name: Name,
    /// The answers to this lookup's questions so far, from the cache or the servers.
    answers: BTreeMap<Key, Outcome>,
}

/// A DNS question on the wire, for one or more lookups.
#[derive(Debug)]
struct Pending {
    key: Key,
    /// The name asked: `key.0`, or the end of a CNAME chain from it.
    qname: String,
    hops: u8,
    /// The smallest TTL of the CNAMEs followed.
    chain_ttl: u32,
    server: usize,
    attempt: u8,
    sent_to: Vec<SocketAddr>,
    deadline: Instant,
    waiters: Vec<LookupId>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: BTreeMap<Key, (Instant, Outcome)>,
}

impl Cache {
    fn get(&self, key: &Key, now: Instant) -> Option<Outcome> {
        self.entries.get(key).filter(|(expires, _)| *expires > now).map(|(_, outcome)| outcome.clone())
    }

    fn insert(&mut self, key: Key, outcome: Outcome, ttl: u32, now: Instant) {
        let cap = if matches!(&outcome, Ok(d) if !d.is_empty()) { MAX_POSITIVE_TTL } else { MAX_NEGATIVE_TTL };
        let ttl = ttl.min(cap);
        if ttl == 0 {
            self.entries.remove(&key);
            return;
        }
        if self.entries.len() >= MAX_CACHE_ENTRIES && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (expires, _)| *expires > now);
            if self.entries.len() >= MAX_CACHE_ENTRIES {
                let soonest = self.entries.iter().min_by_key(|(_, (expires, _))| *expires).map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (now + Duration::from_secs(u64::from(ttl)), outcome));
    }
}

/// Resolves SIP URIs' hosts to an ordered list of [`Target`]s (see the crate documentation).
#[derive(Debug)]
pub struct Resolver {
    servers: Vec<SocketAddr>,
    rng: Rng,
    next_lookup: u64,
    lookups: BTreeMap<LookupId, Lookup>,
    pending: BTreeMap<u16, Pending>,
    cache: Cache,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    answers: VecDeque<(LookupId, Result<Vec<Target>, Error>)>,
}

impl Resolver {
    /// Queries go to `servers` (tried in order, each with retransmission); `seed` drives query
    /// ids and SRV weight selection.
    pub fn new(servers: Vec<SocketAddr>, seed: u64) -> Resolver {
        Resolver {
            servers,
            rng: Rng::new(seed),
            next_lookup: 0,
            lookups: BTreeMap::new(),
            pending: BTreeMap::new(),
            cache: Cache::default(),
            transmits: VecDeque::new(),
            answers: VecDeque::new(),
        }
    }

    /// Starts a lookup. IP literals (and names found in the cache) may finish at once: their
    /// answer is then ready in [`Resolver::poll_answer`] without any transmit.
    pub fn lookup(&mut self, query: Query, now: Instant) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        match classify(query) {
            Ok(Host::Literal(target)) => self.answers.push_back((id, Ok(vec![target]))),
            Ok(Host::Name(name)) => {
                self.lookups.insert(id, Lookup { name, answers: BTreeMap::new() });
                self.drive(id, now);
            }
            Err(e) => self.answers.push_back((id, Err(e))),
        }
        id
    }

    /// A datagram arrived from a DNS server. Anything that is not the answer to a question in
    /// flight, from a server it was sent to, is ignored.
    pub fn handle_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let Ok(msg) = Message::parse(bytes) else { return };
        if !msg.response || msg.opcode != 0 {
            return;
        }
        let Some(p) = self.pending.get(&msg.id) else { return };
        let [q] = msg.questions.as_slice() else { return };
        if !p.sent_to.contains(&from) || q.qclass != CLASS_IN || q.qtype != p.key.1 || q.name != p.qname {
            return;
        }
        let qid = msg.id;
        let key = p.key.clone();
        let (qname, chain_ttl) = (p.qname.clone(), p.chain_ttl);
        match msg.rcode {
            rcode::NOERROR => {}
            rcode::NXDOMAIN => {
                self.cache.insert(key, Err(Error::NotFound), negative_ttl(&msg), now);
                self.finish(qid, Err(Error::NotFound), Vec::new(), now);
                return;
            }
            _ => {
                self.next_server(qid, Error::ServerFailure, now);
                return;
            }
        }
        match follow(&msg, &qname, key.1) {
            Followed::Found { data, ttl } => {
                let extras = if key.1 == RType::SRV { self.additional_addresses(&msg, &data, now) } else { Vec::new() };
                self.cache.insert(key, Ok(data.clone()), ttl.min(chain_ttl), now);
                self.finish(qid, Ok(data), extras, now);
            }
            Followed::NoData if msg.truncated => self.next_server(qid, Error::ServerFailure, now),
            Followed::NoData => {
                self.cache.insert(key, Ok(Vec::new()), negative_ttl(&msg).min(chain_ttl), now);
                self.finish(qid, Ok(Vec::new()), Vec::new(), now);
            }
            Followed::Cname { target, ttl } => {
                let Some(mut p) = self.pending.remove(&qid) else { return };
                p.hops += 1;
                if p.hops > MAX_CNAME_HOPS {
                    self.pending.insert(qid, p);
                    self.finish(qid, Err(Error::NotFound), Vec::new(), now);
                    return;
                }
                p.qname = target;
                p.chain_ttl = p.chain_ttl.min(ttl);
                p.server = 0;
                p.attempt = 0;
                p.sent_to.clear();
                let qid = self.fresh_id();
                self.pending.insert(qid, p);
                self.send(qid, now);
            }
        }
    }

    /// Timers due by `now` fire (retransmission, next server, give up).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<u16> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for qid in due {
            let Some(p) = self.pending.get_mut(&qid) else { continue };
            p.attempt += 1;
            if p.attempt < ATTEMPTS_PER_SERVER {
                self.send(qid, now);
            } else {
                self.next_server(qid, Error::Timeout, now);
            }
        }
    }

    /// The next DNS query datagram to send: (DNS server address, bytes).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// A finished lookup: the targets in the order to try them (never empty on Ok).
    pub fn poll_answer(&mut self) -> Option<(LookupId, Result<Vec<Target>, Error>)> {
        self.answers.pop_front()
    }

    /// When [`Resolver::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Asks the lookup's next questions, from the cache when it can; finishes it when it has all
    /// it needs.
    fn drive(&mut self, id: LookupId, now: Instant) {
        loop {
            let Some(lookup) = self.lookups.get_mut(&id) else { return };
            match plan(&lookup.name, &lookup.answers, &mut self.rng) {
                Step::Done(result) => {
                    self.lookups.remove(&id);
                    self.answers.push_back((id, result));
                    return;
                }
                Step::Need(keys) => {
                    let mut ask = Vec::new();
                    for key in keys {
                        if let Some(outcome) = self.cache.get(&key, now) {
                            lookup.answers.insert(key, outcome);
                        } else if self.servers.is_empty() {
                            lookup.answers.insert(key, Err(Error::NoServers));
                        } else {
                            ask.push(key);
                        }
                    }
                    if !ask.is_empty() {
                        for key in ask {
                            self.subscribe(key, id, now);
                        }
                        return;
                    }
                }
            }
        }
    }

    /// Adds `id` to the waiters of the question `key`, asking it if it is not in flight.
    fn subscribe(&mut self, key: Key, id: LookupId, now: Instant) {
        if let Some(p) = self.pending.values_mut().find(|p| p.key == key) {
            if !p.waiters.contains(&id) {
                p.waiters.push(id);
            }
            return;
        }
        let qid = self.fresh_id();
        let qname = key.0.clone();
        self.pending.insert(
            qid,
            Pending {
                key,
                qname,
                hops: 0,
                chain_ttl: u32::MAX,
                server: 0,
                attempt: 0,
                sent_to: Vec::new(),
                deadline: now,
                waiters: vec![id],
            },
        );
        self.send(qid, now);
    }

    fn fresh_id(&mut self) -> u16 {
        loop {
            let id = self.rng.next_u64() as u16;
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Sends (or resends) question `qid` to its current server and sets its timer.
    fn send(&mut self, qid: u16, now: Instant) {
        let Some(p) = self.pending.get_mut(&qid) else { return };
        let Some(&server) = self.servers.get(p.server) else { return };
        match Message::query(qid, &p.qname, p.key.1).encode() {
            Ok(bytes) => {
                p.deadline = now + FIRST_WAIT * (1 << p.attempt);
                if !p.sent_to.contains(&server) {
                    p.sent_to.push(server);
                }
                self.transmits.push_back((server, bytes));
            }
            Err(_) => self.finish(qid, Err(Error::BadName), Vec::new(), now),
        }
    }

    /// Moves question `qid` to the next server, or fails it with `error` after the last one.
    fn next_server(&mut self, qid: u16, error: Error, now: Instant) {
        let Some(p) = self.pending.get_mut(&qid) else { return };
        p.server += 1;
        p.attempt = 0;
        if p.server < self.servers.len() {
            self.send(qid, now);
        } else {
            self.finish(qid, Err(error), Vec::new(), now);
        }
    }

    /// Question `qid` has its outcome: every lookup waiting for it learns it (and `extras`, the
    /// addresses of SRV targets from the additional section) and moves on.
    fn finish(&mut self, qid: u16, outcome: Outcome, extras: Vec<(Key, Outcome)>, now: Instant) {
        let Some(p) = self.pending.remove(&qid) else { return };
        for id in p.waiters {
            let Some(lookup) = self.lookups.get_mut(&id) else { continue };
            lookup.answers.insert(p.key.clone(), outcome.clone());
            for (key, extra) in &extras {
                lookup.answers.entry(key.clone()).or_insert_with(|| extra.clone());
            }
            self.drive(id, now);
        }
    }

    /// The A and AAAA records of the SRV targets in `srv` that the additional section carries,
    /// as answers (caching them too). A target with any address there counts as resolved.
    fn additional_addresses(&mut self, msg: &Message, srv: &[RData], now: Instant) -> Vec<(Key, Outcome)> {
        let mut out = Vec::new();
        for data in srv {
            let RData::Srv { target, .. } = data else { continue };
            if target == "." || out.iter().any(|((name, _), _)| name == target) {
                continue;
            }
            let found: Vec<_> = [RType::A, RType::AAAA]
                .into_iter()
                .map(|rtype| {
                    let records: Vec<_> = msg
                        .additional
                        .iter()
                        .filter(|r| r.name == *target && r.class == CLASS_IN && r.rtype() == rtype)
                        .collect();
                    (rtype, records)
                })
                .collect();
            if found.iter().all(|(_, records)| records.is_empty()) {
                continue;
            }
            for (rtype, records) in found {
                let key = (target.clone(), rtype);
                let data: Vec<RData> = records.iter().map(|r| r.data.clone()).collect();
                if let Some(ttl) = records.iter().map(|r| ttl_of(r.ttl)).min() {
                    self.cache.insert(key.clone(), Ok(data.clone()), ttl, now);
                }
                out.push((key, Ok(data)));
            }
        }
        out
    }
}

/// The name servers of an /etc/resolv.conf text (`nameserver` lines, port 53), in order.
/// Addresses that do not parse (a scoped IPv6 address such as `fe80::1%eth0`) are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

enum Host {
    Literal(Target),
    Name(Name),
}

fn default_port(transport: Transport) -> u16 {
    if transport == Transport::Tls { 5061 } else { 5060 }
}

fn classify(query: Query) -> Result<Host, Error> {
    let transport = match (query.secure, query.transport) {
        (true, Some(Transport::Udp)) => return Err(Error::InsecureTransport),
        (true, _) => Some(Transport::Tls),
        (false, t) => t,
    };
    let host = query.host.as_str();
    let literal = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(Error::BadName)?;
        Some(IpAddr::V6(inner.parse::<Ipv6Addr>().map_err(|_| Error::BadName)?))
    } else {
        host.parse::<IpAddr>().ok()
    };
    if let Some(ip) = literal {
        let transport = transport.unwrap_or(Transport::Udp);
        let port = query.port.unwrap_or(default_port(transport));
        return Ok(Host::Literal(Target { transport, addr: SocketAddr::new(ip, port), server_name: ip.to_string() }));
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid_label =
        |l: &str| (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(Error::BadName);
    }
    Ok(Host::Name(Name { host, port: query.port, transport, secure: query.secure }))
}

fn srv_name(transport: Transport, host: &str) -> String {
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{prefix}.{host}")
}

/// TTLs above 2^31 - 1 count as 0 (RFC 2181 §8).
fn ttl_of(ttl: u32) -> u32 {
    if ttl > i32::MAX as u32 { 0 } else { ttl }
}

/// How long a negative answer is kept: the SOA's minimum, or its own TTL if smaller (RFC 2308 §5).
fn negative_ttl(msg: &Message) -> u32 {
    msg.authority
        .iter()
        .find_map(|r| match r.data {
            RData::Soa { minimum, .. } => Some(ttl_of(r.ttl).min(minimum)),
            _ => None,
        })
        .unwrap_or(DEFAULT_NEGATIVE_TTL)
}

enum Followed {
    Found {
        data: Vec<RData>,
        ttl: u32,
    },
    /// The answer ends in a CNAME whose target's records it neither carries nor denies.
    Cname {
        target: String,
        ttl: u32,
    },
    NoData,
}

/// The records of type `rtype` for `qname` in the answer section, following CNAMEs in it.
fn follow(msg: &Message, qname: &str, rtype: RType) -> Followed {
    let mut name = qname.to_owned();
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_HOPS {
        let found: Vec<_> =
            msg.answers.iter().filter(|r| r.name == name && r.class == CLASS_IN && r.rtype() == rtype).collect();
        if !found.is_empty() {
            let ttl = found.iter().map(|r| ttl_of(r.ttl)).fold(ttl, u32::min);
            return Followed::Found { data: found.into_iter().map(|r| r.data.clone()).collect(), ttl };
        }
        let cname = msg.answers.iter().find_map(|r| match &r.data {
            RData::Cname(target) if r.name == name && r.class == CLASS_IN => Some((target, r.ttl)),
            _ => None,
        });
        let Some((target, cname_ttl)) = cname else { break };
        ttl = ttl.min(ttl_of(cname_ttl));
        name = target.clone();
    }
    // A chain that ends without records is no data when the server says so with an SOA (a
    // recursive server follows the chain itself); otherwise the rest is asked for.
    let negative = msg.authority.iter().any(|r| r.rtype() == RType::SOA);
    if name == qname || negative { Followed::NoData } else { Followed::Cname { target: name, ttl } }
}

enum Step {
    Need(Vec<Key>),
    Done(Result<Vec<Target>, Error>),
}

/// RFC 3263 §4: what the lookup needs next given what it has, or its result. `rng` is used only
/// on the way to a result, so a lookup draws its SRV order once.
fn plan(name: &Name, answers: &BTreeMap<Key, Outcome>, rng: &mut Rng) -> Step {
    let host = &name.host;
    let fallback = if name.secure { Transport::Tls } else { Transport::Udp };
    if let Some(port) = name.port {
        return addresses(name, answers, name.transport.unwrap_or(fallback), port);
    }
    if let Some(transport) = name.transport {
        return services(name, answers, &[(transport, srv_name(transport, host))], Some(transport), rng);
    }
    let naptr_key = (host.clone(), RType::NAPTR);
    let naptr = match answers.get(&naptr_key) {
        None => return Step::Need(vec![naptr_key]),
        Some(Ok(data)) => usable_naptr(data, name.secure),
        Some(Err(Error::NotFound)) => Vec::new(),
        Some(Err(e)) => return Step::Done(Err(e.clone())),
    };
    if !naptr.is_empty() {
        return services(name, answers, &naptr, None, rng);
    }
    let candidates: &[Transport] =
        if name.secure { &[Transport::Tls] } else { &[Transport::Tls, Transport::Tcp, Transport::Udp] };
    let list: Vec<_> = candidates.iter().map(|&t| (t, srv_name(t, host))).collect();
    services(name, answers, &list, Some(fallback), rng)
}

/// The NAPTR records a SIP client may follow (RFC 3263 §4.1), best first, as (transport, SRV name).
fn usable_naptr(data: &[RData], secure: bool) -> Vec<(Transport, String)> {
    let mut usable: Vec<(u16, u16, Transport, &String)> = data
        .iter()
        .filter_map(|d| {
            let RData::Naptr { order, preference, flags, services, regexp, replacement } = d else { return None };
            if !flags.eq_ignore_ascii_case("s") || !regexp.is_empty() || replacement == "." {
                return None;
            }
            let transport = match services.to_ascii_uppercase().as_str() {
                "SIP+D2U" if !secure => Transport::Udp,
                "SIP+D2T" if !secure => Transport::Tcp,
                "SIPS+D2T" => Transport::Tls,
                _ => return None,
            };
            Some((*order, *preference, transport, replacement))
        })
        .collect();
    usable.sort_by_key(|&(order, preference, ..)| (order, preference));
    let mut out: Vec<(Transport, String)> = Vec::new();
    for (_, _, transport, replacement) in usable {
        if !out.iter().any(|(t, r)| *t == transport && r == replacement) {
            out.push((transport, replacement.clone()));
        }
    }
    out
}

#[derive(Clone, Debug)]
struct Srv {
    priority: u16,
    weight: u16,
    port: u16,
    target: String,
}

/// SRV lookups of `list` (in preference order); their targets' addresses. Without any SRV record
/// at all, the host's addresses with `fallback`'s default port, if given.
fn services(
    name: &Name,
    answers: &BTreeMap<Key, Outcome>,
    list: &[(Transport, String)],
    fallback: Option<Transport>,
    rng: &mut Rng,
) -> Step {
    let mut need = Vec::new();
    let mut groups = Vec::new();
    let mut error = None;
    for (transport, srv) in list {
        let key = (srv.clone(), RType::SRV);
        match answers.get(&key) {
            None => need.push(key),
            Some(Ok(data)) => {
                let records: Vec<Srv> = data
                    .iter()
                    .filter_map(|d| match d {
                        RData::Srv { priority, weight, port, target } => {
                            Some(Srv { priority: *priority, weight: *weight, port: *port, target: target.clone() })
                        }
                        _ => None,
                    })
                    .collect();
                if !records.is_empty() {
                    groups.push((*transport, records));
                }
            }
            Some(Err(Error::NotFound)) => {}
            Some(Err(e)) => {
                error.get_or_insert_with(|| e.clone());
            }
        }
    }
    if !need.is_empty() {
        return Step::Need(need);
    }
    if groups.is_empty() {
        return match (error, fallback) {
            (Some(e), _) => Step::Done(Err(e)),
            (None, Some(transport)) => addresses(name, answers, transport, default_port(transport)),
            (None, None) => Step::Done(Err(Error::NotFound)),
        };
    }
    for (_, records) in &groups {
        for r in records.iter().filter(|r| r.target != ".") {
            for rtype in [RType::A, RType::AAAA] {
                let key = (r.target.clone(), rtype);
                if !answers.contains_key(&key) && !need.contains(&key) {
                    need.push(key);
                }
            }
        }
    }
    if !need.is_empty() {
        return Step::Need(need);
    }
    let mut targets = Vec::new();
    let mut address_error = None;
    for (transport, records) in groups {
        for r in order_srv(records, rng) {
            if r.target != "." {
                push_addresses(&mut targets, &mut address_error, answers, &r.target, transport, r.port, &name.host);
            }
        }
    }
    finish_targets(targets, address_error)
}

/// The host's own A and AAAA records, with `port`.
fn addresses(name: &Name, answers: &BTreeMap<Key, Outcome>, transport: Transport, port: u16) -> Step {
    let need: Vec<Key> = [RType::A, RType::AAAA]
        .into_iter()
        .map(|rtype| (name.host.clone(), rtype))
        .filter(|key| !answers.contains_key(key))
        .collect();
    if !need.is_empty() {
        return Step::Need(need);
    }
    let mut targets = Vec::new();
    let mut error = None;
    push_addresses(&mut targets, &mut error, answers, &name.host, transport, port, &name.host);
    finish_targets(targets, error)
}

fn push_addresses(
    targets: &mut Vec<Target>,
    error: &mut Option<Error>,
    answers: &BTreeMap<Key, Outcome>,
    host: &str,
    transport: Transport,
    port: u16,
    server_name: &str,
) {
    for rtype in [RType::A, RType::AAAA] {
        match answers.get(&(host.to_owned(), rtype)) {
            Some(Ok(data)) => {
                for d in data {
                    let ip = match d {
                        RData::A(a) => IpAddr::V4(*a),
                        RData::Aaaa(a) => IpAddr::V6(*a),
                        _ => continue,
                    };
                    let target =
                        Target { transport, addr: SocketAddr::new(ip, port), server_name: server_name.to_owned() };
                    if !targets.iter().any(|t| t.transport == transport && t.addr == target.addr) {
                        targets.push(target);
                    }
                }
            }
            Some(Err(Error::NotFound)) | None => {}
            Some(Err(e)) => {
                error.get_or_insert_with(|| e.clone());
            }
        }
    }
}

fn finish_targets(targets: Vec<Target>, error: Option<Error>) -> Step {
    if targets.is_empty() { Step::Done(Err(error.unwrap_or(Error::NotFound))) } else { Step::Done(Ok(targets)) }
}

/// RFC 2782: by priority, lowest first; within a priority, a weighted random order (each pick
/// among the rest with probability proportional to weight, zero weights first in the running sum).
fn order_srv(mut records: Vec<Srv>, rng: &mut Rng) -> Vec<Srv> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut pool = vec![first];
        while let Some(r) = rest.next_if(|r| r.priority == pool[0].priority) {
            pool.push(r);
        }
        pool.sort_by_key(|r| r.weight != 0);
        while !pool.is_empty() {
            let total: u64 = pool.iter().map(|r| u64::from(r.weight)).sum();
            let pick = rng.below(total + 1);
            let mut sum = 0;
            let index = pool
                .iter()
                .position(|r| {
                    sum += u64::from(r.weight);
                    sum >= pick
                })
                .unwrap_or(0);
            out.push(pool.remove(index));
        }
    }
    out
}
