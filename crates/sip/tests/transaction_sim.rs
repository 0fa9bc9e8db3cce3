//! Two transaction layers, a UAC and a UAS, over a lossy in-memory network on the virtual
//! clock: 200 seeds with 30 % loss, 10 % duplication and 10 % reordering. Every transaction
//! must end, each TU must see each request once and each final response once, and what one
//! side concludes must agree with what the other did.

mod transaction_common;

use sambung_sip::transaction::{Config, Timer, TxEvent, TxKey};
use sambung_sip::{HeaderName, Method, Request, Transport};
use sambung_testkit::NetConfig;
use std::collections::HashMap;
use std::time::Duration;
use transaction_common::*;

const SEEDS: u64 = 200;
const LOSS: f64 = 0.3;

/// One client transaction and how it ended at the UAC's TU.
#[derive(Debug)]
struct Track {
    label: &'static str,
    request: Request,
    finals: Vec<u16>,
    timeouts: Vec<Timer>,
}

/// What happened in one seeded run.
#[derive(Debug, Default)]
struct Run {
    tracks: HashMap<TxKey, Track>,
    /// Request events at the UAS, by Call-ID and method.
    requests: HashMap<(String, String), usize>,
    acks: usize,
    no_acks: Vec<Timer>,
}

impl Run {
    fn track(&self, label: &str) -> &Track {
        self.tracks.values().find(|t| t.label == label).unwrap_or_else(|| panic!("no {label}"))
    }

    fn requests_seen(&self, t: &Track) -> usize {
        let id = (t.request.call_id().unwrap().to_owned(), t.request.method.to_string());
        self.requests.get(&id).copied().unwrap_or(0)
    }
}

/// One call answered 180 then 200 after 1 s, ACKed and hung up with a BYE at once; one
/// OPTIONS answered 200; one call answered 180 then 486 after 500 ms.
fn run(seed: u64, net: NetConfig, transport: Transport) -> (Run, Sim) {
    let mut sim = Sim::new(transport.clone(), net, Config::default(), seed);
    let mut r = Run::default();
    let call = new_request(Method::Invite, &format!("call-{seed}"), 1, &transport, &mut sim.rng);
    let options = new_request(Method::Options, &format!("options-{seed}"), 1, &transport, &mut sim.rng);
    let busy = new_request(Method::Invite, &format!("busy-{seed}"), 1, &transport, &mut sim.rng);
    for (label, request) in [("invite-200", call), ("options", options), ("invite-486", busy)] {
        let key = sim.send_request(UAC, request.clone());
        r.tracks.insert(key, Track { label, request, finals: vec![], timeouts: vec![] });
    }

    sim.run(Duration::from_secs(300), |sim, node, event| match (node, event) {
        (UAS, TxEvent::Request { key, request, .. }) => {
            let id = (request.call_id().unwrap().to_owned(), request.method.to_string());
            *r.requests.entry(id).or_default() += 1;
            let now = sim.now();
            if request.method == Method::Invite {
                sim.layer(UAS).respond(key, request.reply(180, ""), now).unwrap();
                let busy = request.call_id().unwrap().starts_with("busy");
                let (status, after) = if busy { (486, 500) } else { (200, 1000) };
                let last = request.reply(status, "");
                sim.schedule(UAS, ms(after), move |l, now| l.respond(key, last, now).unwrap());
            } else {
                sim.layer(UAS).respond(key, request.reply(200, ""), now).unwrap();
            }
        }
        (UAS, TxEvent::Ack { request, .. }) => {
            assert!(request.call_id().unwrap().starts_with("call"), "seed {seed}: only the 2xx ACK reaches the TU");
            r.acks += 1;
        }
        (UAS, TxEvent::NoAck { timer, .. }) => r.no_acks.push(timer),
        (UAC, TxEvent::Response { key, response, .. }) => {
            let track = r.tracks.get_mut(&key).expect("a response for a transaction we started");
            if response.status >= 200 {
                track.finals.push(response.status);
            }
            if response.is_success() && track.label == "invite-200" {
                let invite = track.request.clone();
                let ack = ack_for_2xx(&invite, &response, &mut sim.rng);
                let to = sim.peer(UAS);
                sim.layer(UAC).send_ack(key, ack, to);
                let transport = sim.nodes[UAC].transport.clone();
                let mut bye = new_request(Method::Bye, response.call_id().unwrap(), 2, &transport, &mut sim.rng);
                bye.headers.set(HeaderName::From, invite.headers.get(HeaderName::From).unwrap().clone());
                bye.headers.set(HeaderName::To, response.headers.get(HeaderName::To).unwrap().clone());
                let bye_key = sim.send_request(UAC, bye.clone());
                r.tracks.insert(bye_key, Track { label: "bye", request: bye, finals: vec![], timeouts: vec![] });
            }
        }
        (UAC, TxEvent::Timeout { key, timer, response }) => {
            assert_eq!(response.status, 408);
            r.tracks.get_mut(&key).unwrap().timeouts.push(timer);
        }
        (_, TxEvent::Terminated { .. }) => {}
        (n, e) => panic!("seed {seed}: unexpected event at node {n}: {e:?}"),
    });
    (r, sim)
}

/// What must hold on every seed, however unlucky.
fn check_invariants(seed: u64, r: &Run, sim: &Sim) {
    for n in &sim.nodes {
        assert!(n.layer.is_empty(), "seed {seed}: every transaction ended");
        assert!(n.layer.poll_timeout().is_none());
    }
    for t in r.tracks.values() {
        // The UAC's TU hears exactly one outcome per transaction.
        assert_eq!(t.finals.len() + t.timeouts.len(), 1, "seed {seed}: {} ended once: {t:?}", t.label);
        // The UAS's TU sees each request at most once (never a retransmission).
        let seen = r.requests_seen(t);
        assert!(seen <= 1, "seed {seed}: {} delivered {seen} times", t.label);
        if !t.finals.is_empty() {
            assert_eq!(seen, 1, "seed {seed}: a response implies the UAS saw the request");
        }
    }
    assert!(r.acks <= 1, "seed {seed}: ACK for 2xx reaches the TU once");
}

#[test]
fn lossy_udp_over_200_seeds() {
    let mut clean = 0;
    let mut unlucky = Vec::new();
    let (mut sent, mut dropped, mut duplicated, mut reordered) = (0, 0, 0, 0);
    for seed in 0..SEEDS {
        let (r, sim) = run(seed, NetConfig::lossy(LOSS), Transport::Udp);
        check_invariants(seed, &r, &sim);
        let s = sim.net.stats();
        (sent, dropped, duplicated, reordered) =
            (sent + s.sent, dropped + s.dropped, duplicated + s.duplicated, reordered + s.reordered);

        let expected = [("invite-200", 200), ("options", 200), ("invite-486", 486), ("bye", 200)];
        let all_final = expected.iter().all(|(label, status)| {
            r.tracks.values().any(|t| t.label == *label && t.finals == [*status] && r.requests_seen(t) == 1)
        });
        if all_final && r.acks == 1 && r.no_acks.is_empty() {
            clean += 1;
            continue;
        }
        // Thirty per cent loss can, rarely, defeat every retransmission. Then the outcome must
        // still be the one the RFC prescribes for both ends.
        let call = r.track("invite-200");
        if call.finals == [200] {
            // The 2xx got through but no ACK did within 64*T1: §13.3.1.4.
            assert!(r.acks == 1 || r.no_acks == [Timer::L], "seed {seed}: {r:?}");
        } else {
            assert_eq!(call.timeouts, [Timer::B], "seed {seed}");
        }
        for label in ["options", "bye"] {
            if let Some(t) = r.tracks.values().find(|t| t.label == label) {
                assert!(t.finals == [200] || t.timeouts == [Timer::F], "seed {seed}: {t:?}");
            }
        }
        let busy = r.track("invite-486");
        assert!(busy.finals == [486] || busy.timeouts == [Timer::B], "seed {seed}: {busy:?}");
        if busy.finals == [486] && r.no_acks.contains(&Timer::H) {
            // Every ACK for the 486 was lost: the server gave up after Timer H.
        }
        unlucky.push(seed);
    }
    let total = sent + duplicated;
    let loss = dropped as f64 / total as f64;
    eprintln!(
        "{SEEDS} seeds: {clean} clean, unlucky {unlucky:?}; {sent} datagrams sent, {:.1} % lost, {duplicated} duplicated, {reordered} reordered",
        loss * 100.0
    );
    assert!((0.27..0.33).contains(&loss), "the network really lost about 30 %: {loss}");
    assert!(duplicated > 0 && reordered > 0);
    assert!(unlucky.len() <= 4, "bad luck stays rare: {unlucky:?}");
}

#[test]
fn reliable_transport_retransmits_nothing() {
    for seed in 0..20 {
        let (r, sim) = run(seed, NetConfig::reliable(ms(20)), Transport::Tcp);
        check_invariants(seed, &r, &sim);
        assert_eq!(r.acks, 1);
        assert!(r.no_acks.is_empty());
        for (label, status) in [("invite-200", 200), ("options", 200), ("invite-486", 486), ("bye", 200)] {
            assert_eq!(r.track(label).finals, [status]);
        }
        // Each request once, each response once: no Timer A, E or G retransmission.
        let uac = &sim.nodes[UAC];
        assert_eq!(uac.sent_times("INVITE ").len(), 2);
        assert_eq!(uac.sent_times("OPTIONS ").len(), 1);
        assert_eq!(uac.sent_times("BYE ").len(), 1);
        assert_eq!(uac.sent_times("ACK ").len(), 2, "one ACK for the 486, one for the 200");
        let uas = &sim.nodes[UAS];
        assert_eq!(uas.sent_times("SIP/2.0 180").len(), 2);
        assert_eq!(uas.sent_times("SIP/2.0 486").len(), 1);
        assert_eq!(uas.sent_times("SIP/2.0 200").len(), 3);
        assert_eq!(uas.sent_times("SIP/2.0 100").len(), 0, "the TU answered within 200 ms");
        // Timers D, I, J and K are zero: every transaction is gone as soon as it completes;
        // only the 2xx's Accepted states wait out 64*T1 (Timers L and M).
        let last = sim.nodes.iter().flat_map(|n| n.events.iter().map(|(t, _)| *t)).max().unwrap();
        assert!(sim.t(last) < Duration::from_secs(34), "{:?}", sim.t(last));
    }
}

#[test]
fn silent_peer_times_out_at_64_t1() {
    let mut sim = Sim::new(Transport::Udp, NetConfig::lossy(0.0), Config::default(), 1);
    sim.net.set_down(sim.nodes[UAS].addr, true);
    let invite = new_request(Method::Invite, "silent", 1, &Transport::Udp, &mut sim.rng);
    let options = new_request(Method::Options, "silent", 2, &Transport::Udp, &mut sim.rng);
    let (i, o) = (sim.send_request(UAC, invite), sim.send_request(UAC, options));
    let mut timeouts = Vec::new();
    sim.run(Duration::from_secs(100), |sim, _, e| {
        if let TxEvent::Timeout { key, timer, response } = e {
            timeouts.push((sim.t(sim.now()), key, timer, response.status));
        }
    });
    let s = Duration::from_secs(32);
    assert_eq!(timeouts, [(s, i, Timer::B, 408), (s, o, Timer::F, 408)]);
    let uac = &sim.nodes[UAC];
    assert_eq!(uac.sent_times("INVITE ").len(), 7, "Timer A: 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert_eq!(uac.sent_times("OPTIONS ").len(), 11, "Timer E: 0, 0.5, 1.5, 3.5, then every 4 s to 31.5 s");
    assert!(sim.nodes[UAS].events.is_empty());
}

/// `SEED=n cargo test --test transaction_sim debug_seed -- --nocapture` prints one run.
#[test]
fn debug_seed() {
    let Ok(seed) = std::env::var("SEED") else { return };
    let (r, sim) = run(seed.parse().unwrap(), NetConfig::lossy(LOSS), Transport::Udp);
    for t in r.tracks.values() {
        eprintln!("{} finals {:?} timeouts {:?} seen {}", t.label, t.finals, t.timeouts, r.requests_seen(t));
    }
    eprintln!("acks {} noacks {:?}", r.acks, r.no_acks);
    for (i, n) in sim.nodes.iter().enumerate() {
        for (t, b) in &n.sent {
            let line = String::from_utf8_lossy(&b[..b.iter().position(|&c| c == b'\r').unwrap()]).to_string();
            let cid = String::from_utf8_lossy(b).lines().find(|l| l.starts_with("Call-ID")).unwrap().to_string();
            eprintln!("{:>8?} node{i} {line} {cid}", sim.t(*t));
        }
        for (t, e) in &n.events {
            let name = format!("{e:?}");
            eprintln!("{:>8?} node{i} event {}", sim.t(*t), &name[..name.len().min(60)]);
        }
    }
}
