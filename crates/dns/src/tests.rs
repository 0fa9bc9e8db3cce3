//! The resolver against a small authoritative zone in memory: every answer goes through the
//! encoder, the wire and `handle_datagram`.

use proptest::prelude::*;

use super::*;
use crate::message::{Question, Record, WireError};

// The tests need some instant to count from; the crate itself never reads the clock.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn s1() -> SocketAddr {
    "192.0.2.53:53".parse().unwrap()
}

fn s2() -> SocketAddr {
    "[2001:db8::53]:53".parse().unwrap()
}

fn rec(name: &str, ttl: u32, data: RData) -> Record {
    Record { name: name.to_owned(), class: CLASS_IN, ttl, data }
}

fn a(name: &str, ip: &str) -> Record {
    rec(name, 60, RData::A(ip.parse().unwrap()))
}

fn aaaa(name: &str, ip: &str) -> Record {
    rec(name, 60, RData::Aaaa(ip.parse().unwrap()))
}

fn srv(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    rec(name, 60, RData::Srv { priority, weight, port, target: target.to_owned() })
}

fn naptr(name: &str, order: u16, preference: u16, flags: &str, services: &str, replacement: &str) -> Record {
    rec(
        name,
        60,
        RData::Naptr {
            order,
            preference,
            flags: flags.to_owned(),
            services: services.to_owned(),
            regexp: String::new(),
            replacement: replacement.to_owned(),
        },
    )
}

fn soa(name: &str, ttl: u32, minimum: u32) -> Record {
    rec(
        name,
        ttl,
        RData::Soa {
            mname: "ns.test".into(),
            rname: "hostmaster.test".into(),
            serial: 1,
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum,
        },
    )
}

/// An authoritative server for a handful of records.
#[derive(Default)]
struct Zone {
    records: Vec<Record>,
    /// Added to the additional section of every SRV answer.
    glue: Vec<Record>,
    /// Put in the authority section of negative answers.
    soa: Option<Record>,
    /// Do not follow CNAMEs inside the zone (as a server that is not authoritative for the target).
    no_cname_chase: bool,
    /// The questions asked, in order.
    log: Vec<(String, RType)>,
}

impl Zone {
    fn new(records: Vec<Record>) -> Zone {
        Zone { records, ..Zone::default() }
    }

    fn answer(&mut self, query: &[u8]) -> Vec<u8> {
        let q = Message::parse(query).expect("the resolver's query parses");
        assert!(q.recursion_desired && !q.response && q.questions.len() == 1);
        let question = q.questions[0].clone();
        self.log.push((question.name.clone(), question.qtype));
        let mut resp = Message {
            id: q.id,
            response: true,
            recursion_desired: true,
            recursion_available: true,
            questions: q.questions,
            ..Message::default()
        };
        let mut name = question.name.clone();
        let mut found = false;
        loop {
            let exists = self.records.iter().any(|r| r.name == name || r.name.ends_with(&format!(".{name}")));
            let typed: Vec<_> =
                self.records.iter().filter(|r| r.name == name && r.rtype() == question.qtype).cloned().collect();
            if !typed.is_empty() {
                resp.answers.extend(typed);
                found = true;
                break;
            }
            let cname = self.records.iter().find(|r| r.name == name && r.rtype() == RType::CNAME).cloned();
            if let Some(c) = cname {
                let RData::Cname(target) = &c.data else { unreachable!() };
                name = target.clone();
                resp.answers.push(c);
                if self.no_cname_chase {
                    break;
                }
                continue;
            }
            if !exists {
                resp.rcode = rcode::NXDOMAIN;
            }
            break;
        }
        if !found {
            resp.authority.extend(self.soa.clone());
        }
        if question.qtype == RType::SRV {
            resp.additional.extend(self.glue.iter().cloned());
        }
        resp.encode().unwrap()
    }

    fn asked(&self, name: &str, rtype: RType) -> bool {
        self.log.iter().any(|(n, t)| n == name && *t == rtype)
    }
}

/// Answers every query from `zone` until there is none left; returns how many there were.
fn run(r: &mut Resolver, zone: &mut Zone, now: Instant) -> usize {
    let mut count = 0;
    while let Some((to, bytes)) = r.poll_transmit() {
        count += 1;
        let reply = zone.answer(&bytes);
        r.handle_datagram(to, &reply, now);
    }
    count
}

fn only_answer(r: &mut Resolver, id: LookupId) -> Result<Vec<Target>, Error> {
    let (done, result) = r.poll_answer().expect("the lookup finished");
    assert_eq!(done, id);
    assert!(r.poll_answer().is_none());
    result
}

fn query(host: &str, port: Option<u16>, transport: Option<Transport>, secure: bool) -> Query {
    Query { host: host.to_owned(), port, transport, secure }
}

fn pairs(targets: &[Target]) -> Vec<(Transport, String)> {
    targets.iter().map(|t| (t.transport, t.addr.to_string())).collect()
}

fn tls(addr: &str) -> (Transport, String) {
    (Transport::Tls, addr.to_owned())
}

fn tcp(addr: &str) -> (Transport, String) {
    (Transport::Tcp, addr.to_owned())
}

fn udp(addr: &str) -> (Transport, String) {
    (Transport::Udp, addr.to_owned())
}

#[test]
fn codec_round_trip() {
    let msg = Message {
        id: 0xBEEF,
        response: true,
        opcode: 0,
        authoritative: true,
        truncated: true,
        recursion_desired: true,
        recursion_available: true,
        rcode: rcode::NXDOMAIN,
        questions: vec![Question { name: "example.test".into(), qtype: RType::NAPTR, qclass: CLASS_IN }],
        answers: vec![
            naptr("example.test", 10, 20, "s", "SIPS+D2T", "_sips._tcp.example.test"),
            srv("_sips._tcp.example.test", 1, 2, 5061, "sip.example.test"),
            srv("_sip._udp.example.test", 0, 0, 0, "."),
            rec("alias.test", 5, RData::Cname("a\\046b.test".into())),
        ],
        authority: vec![soa("test", 3600, 30)],
        additional: vec![
            a("sip.example.test", "192.0.2.1"),
            aaaa("sip.example.test", "2001:db8::1"),
            rec("x.test", 0, RData::Other { rtype: RType(99), data: vec![1, 2, 3] }),
        ],
    };
    let bytes = msg.encode().unwrap();
    assert_eq!(Message::parse(&bytes).unwrap(), msg);

    let query = Message::query(7, "Sip.Example.Test.", RType::SRV).encode().unwrap();
    let parsed = Message::parse(&query).unwrap();
    assert!(parsed.recursion_desired && !parsed.response);
    assert_eq!(parsed.questions[0].name, "sip.example.test");
    assert_eq!(query.len(), 12 + 18 + 4);

    assert_eq!(Message::query(1, &format!("{}.test", "x".repeat(64)), RType::A).encode(), Err(WireError::BadLabel));
    assert_eq!(Message::query(1, "a..test", RType::A).encode(), Err(WireError::BadLabel));
}

/// A response as a server with name compression writes it.
fn compressed_response() -> Vec<u8> {
    let mut b = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    // 12: sip.example.test, SRV, IN
    b.extend_from_slice(b"\x03SIP\x07example\x04test\x00\x00\x21\x00\x01");
    // answer: <ptr 12> SRV IN 60, 0 5 5060 "pbx" <ptr 16: example.test>
    b.extend_from_slice(&[
        0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 12, 0, 0, 0, 5, 0x13, 0xC4, 3, b'p', b'b', b'x', 0xC0, 16,
    ]);
    // answer: "x" <ptr to the SRV target at 52> CNAME IN 60 <ptr 12>
    b.extend_from_slice(&[1, b'x', 0xC0, 52, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xC0, 12]);
    b
}

#[test]
fn compressed_names_parse() {
    let m = Message::parse(&compressed_response()).unwrap();
    assert_eq!(m.id, 0x1234);
    assert!(m.response && m.recursion_available);
    assert_eq!(m.questions[0].name, "sip.example.test");
    assert_eq!(m.answers[0].name, "sip.example.test");
    assert_eq!(m.answers[0].data, RData::Srv { priority: 0, weight: 5, port: 5060, target: "pbx.example.test".into() });
    assert_eq!(m.answers[1].name, "x.pbx.example.test");
    assert_eq!(m.answers[1].data, RData::Cname("sip.example.test".into()));
}

#[test]
fn malformed_messages_are_errors() {
    let good = compressed_response();
    for len in 0..good.len() {
        assert!(Message::parse(&good[..len]).is_err(), "a {len}-byte prefix parsed");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(Message::parse(&trailing), Err(WireError::TrailingBytes));

    let header = [0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    let with = |rest: &[u8]| [&header[..], rest].concat();
    // A pointer to itself, and two pointing at each other.
    assert_eq!(Message::parse(&with(&[0xC0, 12, 0, 1, 0, 1])), Err(WireError::BadPointer));
    assert_eq!(Message::parse(&with(&[0xC0, 14, 0xC0, 12, 0, 1, 0, 1])), Err(WireError::BadPointer));
    // A label that jumps back into itself after reading forward.
    assert_eq!(Message::parse(&with(&[1, b'a', 0xC0, 12, 0, 1, 0, 1])), Err(WireError::BadPointer));
    // A pointer past the end, and the reserved label kinds.
    assert_eq!(Message::parse(&with(&[0xFF, 0xFF, 0, 1, 0, 1])), Err(WireError::BadPointer));
    assert_eq!(Message::parse(&with(&[0x80, 0, 0, 1, 0, 1])), Err(WireError::BadLabel));
    assert_eq!(Message::parse(&with(&[0xC1, 0xFF, 0, 1, 0, 1])), Err(WireError::BadPointer));
    assert_eq!(Message::parse(&with(&[0x40, 0, 0, 1, 0, 1])), Err(WireError::BadLabel));
    // A name over 255 bytes.
    let mut long: Vec<u8> = (0..130).flat_map(|_| [1, b'a']).collect();
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(Message::parse(&with(&long)), Err(WireError::NameTooLong));
    // Record data shorter than its type needs, or longer than the message.
    let answer = |rdata: &[u8]| {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 60];
        m.extend_from_slice(rdata);
        m
    };
    assert_eq!(Message::parse(&answer(&[0, 3, 1, 2, 3])), Err(WireError::BadRdata));
    assert_eq!(Message::parse(&answer(&[0, 9, 1, 2, 3, 4])), Err(WireError::Truncated));
    assert!(Message::parse(&answer(&[0, 4, 1, 2, 3, 4])).is_ok());
}

/// The zone of the NAPTR test: TLS with a weighted set and a backup, then UDP, then TCP.
fn naptr_zone() -> Zone {
    let mut zone = Zone::new(vec![
        naptr("example.test", 20, 10, "s", "SIP+D2T", "_sip._tcp.example.test"),
        naptr("example.test", 10, 20, "S", "sip+d2u", "_sip._udp.example.test"),
        naptr("example.test", 10, 10, "s", "SIPS+D2T", "_sips._tcp.example.test"),
        // Not for a SIP client: another service, and a terminal rule with a regexp.
        naptr("example.test", 1, 1, "s", "E2U+sip", "_other.example.test"),
        rec(
            "example.test",
            60,
            RData::Naptr {
                order: 1,
                preference: 1,
                flags: "u".into(),
                services: "SIP+D2U".into(),
                regexp: "!^.*$!sip:x@y!".into(),
                replacement: ".".into(),
            },
        ),
        srv("_sips._tcp.example.test", 10, 60, 5061, "a.example.test"),
        srv("_sips._tcp.example.test", 20, 0, 5062, "d.example.test"),
        srv("_sips._tcp.example.test", 10, 30, 5061, "b.example.test"),
        srv("_sips._tcp.example.test", 10, 10, 5061, "c.example.test"),
        srv("_sip._udp.example.test", 10, 0, 5060, "e.example.test"),
        srv("_sip._tcp.example.test", 10, 0, 5060, "e.example.test"),
        a("a.example.test", "10.0.0.1"),
        a("b.example.test", "10.0.0.2"),
        a("c.example.test", "10.0.0.3"),
        aaaa("c.example.test", "2001:db8::3"),
        a("d.example.test", "10.0.0.4"),
    ]);
    zone.glue = vec![a("e.example.test", "10.0.0.5")];
    zone
}

#[test]
fn naptr_srv_address_chain() {
    let mut zone = naptr_zone();
    let now = t0();
    let mut r = Resolver::new(vec![s1()], 1);
    let id = r.lookup(query("Example.TEST.", None, None, false), now);
    run(&mut r, &mut zone, now);
    let targets = only_answer(&mut r, id).unwrap();
    assert!(targets.iter().all(|t| t.server_name == "example.test"));
    let got = pairs(&targets);
    assert_eq!(got.len(), 7, "{got:?}");
    // The priority-10 TLS targets in some weighted order (c has two addresses, v4 first) ...
    let mut first: Vec<_> = got[..4].to_vec();
    first.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        first,
        vec![tls("10.0.0.1:5061"), tls("10.0.0.2:5061"), tls("10.0.0.3:5061"), tls("[2001:db8::3]:5061")]
    );
    let v4 = got.iter().position(|p| *p == tls("10.0.0.3:5061")).unwrap();
    assert_eq!(got[v4 + 1], tls("[2001:db8::3]:5061"));
    // ... then the priority-20 one, then the NAPTR order: UDP (order 10) before TCP (order 20).
    assert_eq!(got[4..], [tls("10.0.0.4:5062"), udp("10.0.0.5:5060"), tcp("10.0.0.5:5060")]);
    // e's address came in the additional section; the other NAPTRs were not followed.
    assert!(!zone.asked("e.example.test", RType::A) && !zone.asked("e.example.test", RType::AAAA));
    assert!(!zone.asked("_other.example.test", RType::SRV));
    assert!(zone.asked("d.example.test", RType::AAAA));
}

#[test]
fn srv_weights_are_followed() {
    let now = t0();
    let mut firsts = BTreeMap::new();
    let runs = 3000;
    for seed in 0..runs {
        let mut zone = naptr_zone();
        let mut r = Resolver::new(vec![s1()], seed);
        let id = r.lookup(query("example.test", None, Some(Transport::Tls), false), now);
        run(&mut r, &mut zone, now);
        let targets = only_answer(&mut r, id).unwrap();
        assert_eq!(targets.len(), 5);
        assert_eq!(targets[4].addr.to_string(), "10.0.0.4:5062", "priority 20 comes last");
        *firsts.entry(targets[0].addr.ip().to_string()).or_insert(0) += 1;
    }
    let share = |ip: &str| f64::from(firsts.get(ip).copied().unwrap_or(0)) / runs as f64;
    assert!((share("10.0.0.1") - 0.6).abs() < 0.04, "{firsts:?}");
    assert!((share("10.0.0.2") - 0.3).abs() < 0.04, "{firsts:?}");
    assert!((share("10.0.0.3") - 0.1).abs() < 0.03, "{firsts:?}");
}

#[test]
fn without_naptr_srv_in_rfc_order_then_addresses() {
    let now = t0();
    let mut zone = Zone::new(vec![
        a("example.test", "10.0.0.9"),
        srv("_sip._udp.example.test", 10, 0, 5070, "u.example.test"),
        srv("_sip._tcp.example.test", 10, 0, 5080, "t.example.test"),
        a("u.example.test", "10.0.0.1"),
        a("t.example.test", "10.0.0.2"),
        a("plain.test", "10.0.0.3"),
    ]);
    let mut r = Resolver::new(vec![s1()], 2);
    let id = r.lookup(query("example.test", None, None, false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [tcp("10.0.0.2:5080"), udp("10.0.0.1:5070")]);
    assert!(zone.asked("_sips._tcp.example.test", RType::SRV));

    // No NAPTR, no SRV: the host's addresses, UDP on 5060.
    let id = r.lookup(query("plain.test", None, None, false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.3:5060")]);
}

#[test]
fn transport_given_without_port() {
    let now = t0();
    let mut zone = Zone::new(vec![
        srv("_sip._tcp.example.test", 10, 0, 5090, "pbx.example.test"),
        a("pbx.example.test", "10.0.0.1"),
        a("example.test", "10.0.0.2"),
    ]);
    let mut r = Resolver::new(vec![s1()], 3);
    let id = r.lookup(query("example.test", None, Some(Transport::Tcp), false), now);
    run(&mut r, &mut zone, now);
    let targets = only_answer(&mut r, id).unwrap();
    assert_eq!(pairs(&targets), [tcp("10.0.0.1:5090")]);
    assert_eq!(targets[0].server_name, "example.test");
    assert!(!zone.asked("example.test", RType::NAPTR));

    // No SRV for UDP: the host's address on 5060.
    let id = r.lookup(query("example.test", None, Some(Transport::Udp), false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.2:5060")]);
    assert!(zone.asked("_sip._udp.example.test", RType::SRV));
    // TLS: _sips._tcp, then 5061.
    let id = r.lookup(query("example.test", None, Some(Transport::Tls), false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [tls("10.0.0.2:5061")]);
    assert!(zone.asked("_sips._tcp.example.test", RType::SRV));
    assert!(!zone.asked("example.test", RType::NAPTR));
}

#[test]
fn port_given_asks_only_addresses() {
    let now = t0();
    let mut zone = Zone::new(vec![
        naptr("example.test", 10, 10, "s", "SIP+D2U", "_sip._udp.example.test"),
        aaaa("example.test", "2001:db8::1"),
        a("example.test", "10.0.0.1"),
    ]);
    let mut r = Resolver::new(vec![s1()], 4);
    let id = r.lookup(query("example.test", Some(5070), None, false), now);
    assert_eq!(run(&mut r, &mut zone, now), 2);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.1:5070"), udp("[2001:db8::1]:5070")]);
    assert_eq!(zone.log, [("example.test".to_owned(), RType::A), ("example.test".to_owned(), RType::AAAA)]);

    let id = r.lookup(query("example.test", Some(5071), Some(Transport::Tcp), false), now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap())[0], tcp("10.0.0.1:5071"), "from the cache");
    let id = r.lookup(query("example.test", Some(5072), None, true), now);
    let targets = only_answer(&mut r, id).unwrap();
    assert_eq!(pairs(&targets)[0], tls("10.0.0.1:5072"));
    assert_eq!(targets[0].server_name, "example.test");
}

#[test]
fn ip_literals_need_no_dns() {
    let now = t0();
    let mut r = Resolver::new(vec![s1()], 5);
    let cases = [
        (query("192.0.2.7", None, None, false), udp("192.0.2.7:5060")),
        (query("192.0.2.7", Some(5080), Some(Transport::Tcp), false), tcp("192.0.2.7:5080")),
        (query("[2001:db8::7]", None, None, true), tls("[2001:db8::7]:5061")),
        (query("2001:db8::7", None, Some(Transport::Tls), false), tls("[2001:db8::7]:5061")),
        (query("::1", Some(5062), Some(Transport::Tcp), true), tls("[::1]:5062")),
    ];
    for (q, want) in cases {
        let id = r.lookup(q, now);
        let targets = only_answer(&mut r, id).unwrap();
        assert_eq!(pairs(&targets), [want]);
        assert_eq!(targets[0].server_name, targets[0].addr.ip().to_string());
    }
    assert!(r.poll_transmit().is_none());
    assert!(r.poll_timeout().is_none());
    for bad in ["[2001:db8::7", "[192.0.2.1]", "", ".", "a..b", "exa mple.test", "bad/name", "é.test"] {
        let id = r.lookup(query(bad, None, None, false), now);
        assert_eq!(only_answer(&mut r, id), Err(Error::BadName), "{bad}");
    }
}

#[test]
fn sips_uses_only_tls() {
    let now = t0();
    let mut zone = naptr_zone();
    let mut r = Resolver::new(vec![s1()], 6);
    let id = r.lookup(query("example.test", None, None, true), now);
    run(&mut r, &mut zone, now);
    let targets = only_answer(&mut r, id).unwrap();
    assert_eq!(targets.len(), 5);
    assert!(targets.iter().all(|t| t.transport == Transport::Tls));
    assert!(!zone.asked("_sip._udp.example.test", RType::SRV) && !zone.asked("_sip._tcp.example.test", RType::SRV));

    // Without NAPTR: only _sips._tcp, then the address on 5061.
    let mut r = Resolver::new(vec![s1()], 6);
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1"), srv("_sip._udp.example.test", 1, 1, 5060, "x.test")]);
    let id = r.lookup(query("example.test", None, None, true), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [tls("10.0.0.1:5061")]);
    assert!(zone.asked("_sips._tcp.example.test", RType::SRV));
    assert!(!zone.asked("_sip._udp.example.test", RType::SRV) && !zone.asked("_sip._tcp.example.test", RType::SRV));

    // sips with ;transport=tcp is TLS; with ;transport=udp it cannot be done.
    let id = r.lookup(query("example.test", None, Some(Transport::Tcp), true), now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [tls("10.0.0.1:5061")], "from the cache");
    let id = r.lookup(query("example.test", None, Some(Transport::Udp), true), now);
    assert_eq!(only_answer(&mut r, id), Err(Error::InsecureTransport));
}

#[test]
fn cache_answers_within_ttl_and_asks_again_after() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    zone.soa = Some(soa("test", 3600, 10));
    let mut r = Resolver::new(vec![s1()], 7);
    let q = query("example.test", Some(5060), None, false);
    let id = r.lookup(q.clone(), now);
    assert_eq!(run(&mut r, &mut zone, now), 2);
    let first = only_answer(&mut r, id).unwrap();

    // Within the 60 s TTL (and the 10 s of the negative AAAA): no query at all.
    let id = r.lookup(q.clone(), now + secs(9));
    assert!(r.poll_transmit().is_none());
    assert_eq!(only_answer(&mut r, id).unwrap(), first);
    // After the negative TTL, only AAAA is asked again.
    let id = r.lookup(q.clone(), now + secs(30));
    assert_eq!(run(&mut r, &mut zone, now + secs(30)), 1);
    assert_eq!(zone.log.last().unwrap(), &("example.test".to_owned(), RType::AAAA));
    assert_eq!(only_answer(&mut r, id).unwrap(), first);
    // After the positive TTL, A too.
    let id = r.lookup(q, now + secs(61));
    assert_eq!(run(&mut r, &mut zone, now + secs(61)), 2);
    assert_eq!(only_answer(&mut r, id).unwrap(), first);

    // NXDOMAIN is kept for the SOA minimum.
    let q = query("missing.test", Some(5060), None, false);
    let id = r.lookup(q.clone(), now);
    assert_eq!(run(&mut r, &mut zone, now), 2);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
    let id = r.lookup(q.clone(), now + secs(5));
    assert!(r.poll_transmit().is_none());
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
    let id = r.lookup(q, now + secs(11));
    assert_eq!(run(&mut r, &mut zone, now + secs(11)), 2);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
}

#[test]
fn negative_answer_without_soa_is_kept_30_s() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1()], 8);
    let q = query("example.test", None, Some(Transport::Udp), false);
    let id = r.lookup(q.clone(), now);
    assert_eq!(run(&mut r, &mut zone, now), 3, "SRV, A, AAAA");
    only_answer(&mut r, id).unwrap();
    let id = r.lookup(q.clone(), now + secs(29));
    assert!(r.poll_transmit().is_none());
    only_answer(&mut r, id).unwrap();
    let id = r.lookup(q, now + secs(31));
    assert_eq!(run(&mut r, &mut zone, now + secs(31)), 2, "SRV and AAAA again");
    only_answer(&mut r, id).unwrap();
}

#[test]
fn lookups_of_one_name_share_queries() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1()], 9);
    let first = r.lookup(query("example.test", Some(5060), None, false), now);
    let second = r.lookup(query("example.test", Some(5070), Some(Transport::Tcp), false), now);
    assert_eq!(run(&mut r, &mut zone, now), 2);
    let mut done = BTreeMap::new();
    while let Some((id, result)) = r.poll_answer() {
        done.insert(id, pairs(&result.unwrap()));
    }
    assert_eq!(done[&first], [udp("10.0.0.1:5060")]);
    assert_eq!(done[&second], [tcp("10.0.0.1:5070")]);
}

#[test]
fn retransmission_failover_and_timeout() {
    let now = t0();
    let mut r = Resolver::new(vec![s1(), s2()], 10);
    let id = r.lookup(query("example.test", Some(5060), None, false), now);
    let sent = |r: &mut Resolver| std::iter::from_fn(|| r.poll_transmit()).collect::<Vec<_>>();
    let first = sent(&mut r);
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|(to, _)| *to == s1()));
    assert_eq!(r.poll_timeout(), Some(now + secs(1)));

    r.handle_timeout(now + Duration::from_millis(999));
    assert!(r.poll_transmit().is_none());
    r.handle_timeout(now + secs(1));
    let again = sent(&mut r);
    assert_eq!(again, first, "the same queries again, to the same server");
    assert_eq!(r.poll_timeout(), Some(now + secs(3)));

    r.handle_timeout(now + secs(3));
    let next = sent(&mut r);
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|(to, _)| *to == s2()));
    assert_eq!(r.poll_timeout(), Some(now + secs(4)));
    r.handle_timeout(now + secs(4));
    assert_eq!(sent(&mut r).len(), 2);
    assert_eq!(r.poll_timeout(), Some(now + secs(6)));
    assert!(r.poll_answer().is_none());

    r.handle_timeout(now + secs(6));
    assert!(r.poll_transmit().is_none());
    assert_eq!(only_answer(&mut r, id), Err(Error::Timeout));
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn late_answer_from_the_first_server_still_counts() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1(), s2()], 11);
    let id = r.lookup(query("example.test", Some(5060), None, false), now);
    let first: Vec<_> = std::iter::from_fn(|| r.poll_transmit()).collect();
    r.handle_timeout(now + secs(1));
    r.handle_timeout(now + secs(3));
    while r.poll_transmit().is_some() {}
    for (to, bytes) in &first {
        r.handle_datagram(*to, &zone.answer(bytes), now + secs(3));
    }
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.1:5060")]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn failures_move_to_the_next_server_and_strays_are_ignored() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1(), s2()], 12);
    let id = r.lookup(query("example.test", None, Some(Transport::Udp), false), now);
    let (to, bytes) = r.poll_transmit().unwrap();
    assert_eq!(to, s1());
    let good = zone.answer(&bytes);
    let mut reply = Message::parse(&good).unwrap();

    // From a server it was not sent to, with another id, or for another question: ignored.
    r.handle_datagram("192.0.2.99:53".parse().unwrap(), &good, now);
    let mut other = reply.clone();
    other.id = reply.id.wrapping_add(1);
    r.handle_datagram(s1(), &other.encode().unwrap(), now);
    let mut other = reply.clone();
    other.questions[0].name = "_sip._udp.other.test".into();
    r.handle_datagram(s1(), &other.encode().unwrap(), now);
    let mut other = reply.clone();
    other.questions[0].qtype = RType::A;
    r.handle_datagram(s1(), &other.encode().unwrap(), now);
    let mut other = reply.clone();
    other.response = false;
    r.handle_datagram(s1(), &other.encode().unwrap(), now);
    r.handle_datagram(s1(), &good[..good.len() - 1], now);
    assert!(r.poll_transmit().is_none() && r.poll_answer().is_none());

    // SERVFAIL: the next server at once, with no wait.
    reply.rcode = rcode::SERVFAIL;
    r.handle_datagram(s1(), &reply.encode().unwrap(), now);
    let (to, bytes) = r.poll_transmit().unwrap();
    assert_eq!(to, s2());
    r.handle_datagram(s2(), &zone.answer(&bytes), now);
    run(&mut r, &mut zone, now);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.1:5060")]);

    // REFUSED from both: ServerFailure, and nothing cached.
    let id = r.lookup(query("other.test", Some(5060), None, false), now);
    while let Some((to, bytes)) = r.poll_transmit() {
        let mut reply = Message::parse(&zone.answer(&bytes)).unwrap();
        reply.rcode = rcode::REFUSED;
        r.handle_datagram(to, &reply.encode().unwrap(), now);
    }
    assert_eq!(only_answer(&mut r, id), Err(Error::ServerFailure));
    r.lookup(query("other.test", Some(5060), None, false), now);
    assert!(r.poll_transmit().is_some());
}

#[test]
fn nxdomain_gives_not_found() {
    let now = t0();
    let mut zone = Zone::new(vec![a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1()], 13);
    let id = r.lookup(query("nowhere.test", Some(5060), None, false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
    // Through NAPTR, the three SRV names and the addresses.
    let id = r.lookup(query("elsewhere.test", None, None, false), now);
    assert_eq!(run(&mut r, &mut zone, now), 6);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
}

#[test]
fn srv_dot_target_means_no_service() {
    let now = t0();
    let mut zone = Zone::new(vec![srv("_sip._tcp.example.test", 0, 0, 0, "."), a("example.test", "10.0.0.1")]);
    let mut r = Resolver::new(vec![s1()], 14);
    let id = r.lookup(query("example.test", None, Some(Transport::Tcp), false), now);
    assert_eq!(run(&mut r, &mut zone, now), 1);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
}

#[test]
fn cnames_are_followed() {
    let now = t0();
    let mut zone = Zone::new(vec![
        rec("sip.example.test", 300, RData::Cname("host.example.test".into())),
        rec("host.example.test", 300, RData::Cname("real.example.test".into())),
        a("real.example.test", "10.0.0.1"),
    ]);
    zone.soa = Some(soa("test", 3600, 10));
    let mut r = Resolver::new(vec![s1()], 15);
    let q = query("sip.example.test", Some(5060), None, false);
    let id = r.lookup(q.clone(), now);
    assert_eq!(run(&mut r, &mut zone, now), 2);
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.1:5060")]);

    // A server that gives only the first CNAME: the rest is asked for.
    zone.no_cname_chase = true;
    zone.soa = None;
    zone.log.clear();
    let id = r.lookup(q.clone(), now + secs(61));
    run(&mut r, &mut zone, now + secs(61));
    assert_eq!(pairs(&only_answer(&mut r, id).unwrap()), [udp("10.0.0.1:5060")]);
    assert!(zone.asked("host.example.test", RType::A) && zone.asked("real.example.test", RType::A));
    // A CNAME loop ends.
    zone.records = vec![
        rec("loop.test", 300, RData::Cname("pool.test".into())),
        rec("pool.test", 300, RData::Cname("loop.test".into())),
    ];
    let id = r.lookup(query("loop.test", Some(5060), None, false), now);
    run(&mut r, &mut zone, now);
    assert_eq!(only_answer(&mut r, id), Err(Error::NotFound));
}

#[test]
fn no_servers() {
    let now = t0();
    let mut r = Resolver::new(Vec::new(), 16);
    let id = r.lookup(query("example.test", None, None, false), now);
    assert_eq!(only_answer(&mut r, id), Err(Error::NoServers));
    let id = r.lookup(query("192.0.2.1", None, None, false), now);
    assert!(only_answer(&mut r, id).is_ok());
}

#[test]
fn resolv_conf() {
    let text = "# generated\nsearch example.test\nnameserver 192.0.2.1\n  nameserver   2001:db8::1 # v6\n\
                ;nameserver 192.0.2.9\nnameserver fe80::1%eth0\nnameserver\noptions ndots:2\nnameserver 10.0.0.1";
    let servers: Vec<String> = parse_resolv_conf(text).iter().map(ToString::to_string).collect();
    assert_eq!(servers, ["192.0.2.1:53", "[2001:db8::1]:53", "10.0.0.1:53"]);
}

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), flags in any::<u16>()) {
        let now = t0();
        let mut r = Resolver::new(vec![s1()], 17);
        r.lookup(query("example.test", None, None, false), now);
        let (_, sent) = r.poll_transmit().unwrap();
        r.handle_datagram(s1(), &bytes, now);
        // The same bytes behind the pending query's id and question, so the parse goes deeper.
        let mut framed = sent.clone();
        framed[2..4].copy_from_slice(&(flags | 0x8000).to_be_bytes());
        framed.extend_from_slice(&bytes);
        r.handle_datagram(s1(), &framed, now);
        let mut counted = framed.clone();
        if counted.len() >= 12 {
            counted[6..12].copy_from_slice(&[0, 2, 0, 1, 0, 1]);
        }
        r.handle_datagram(s1(), &counted, now);
        r.handle_timeout(now + secs(100));
        while r.poll_transmit().is_some() {}
        while r.poll_answer().is_some() {}
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::parse(&bytes);
    }
}
