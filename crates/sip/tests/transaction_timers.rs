//! The timer values of RFC 3261 §17 (Table 4) and RFC 6026, checked on the virtual clock with
//! one transaction layer and a scripted peer.

mod transaction_common;

use sambung_sip::transaction::{Config, Peer, Timer, TransactionLayer, TxEvent, TxKey, TxState};
use sambung_sip::{Message, Method, Request, Response, Transport};
use sambung_testkit::{Clock, Rng};
use std::time::{Duration, Instant};
use transaction_common::*;

/// One layer, its clock, and what it sent and reported, with times.
struct Bench {
    clock: Clock,
    layer: TransactionLayer,
    peer: Peer,
    sent: Vec<(Duration, String)>,
    events: Vec<(Duration, TxEvent)>,
    rng: Rng,
}

impl Bench {
    fn new(transport: Transport) -> Bench {
        Bench::with_config(transport, Config::default())
    }

    fn with_config(transport: Transport, config: Config) -> Bench {
        Bench {
            clock: Clock::new(),
            layer: TransactionLayer::new(config),
            peer: Peer { transport, addr: "192.0.2.2:5060".parse().unwrap(), flow: Some(1) },
            sent: Vec::new(),
            events: Vec::new(),
            rng: Rng::new(1),
        }
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn collect(&mut self) {
        let t = self.clock.elapsed();
        while let Some(tx) = self.layer.poll_transmit() {
            let first = tx.bytes.split(|&b| b == b'\r').next().unwrap();
            self.sent.push((t, String::from_utf8_lossy(first).into_owned()));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((t, e));
        }
    }

    /// Fires timers until `until` (from the start).
    fn run_until(&mut self, until: Duration) {
        self.collect();
        while let Some(at) = self.layer.poll_timeout() {
            if self.clock.offset(at) > until {
                break;
            }
            self.clock.advance_to(at);
            self.layer.handle_timeout(at);
            self.collect();
        }
        let end = self.clock.base() + until;
        self.clock.advance_to(end);
    }

    fn receive(&mut self, message: Message) -> Option<TxEvent> {
        let now = self.now();
        let e = self.layer.handle_message(message, self.peer.clone(), now);
        self.collect();
        e
    }

    /// When datagrams starting with `start` went out.
    fn times(&self, start: &str) -> Vec<Duration> {
        self.sent.iter().filter(|(_, l)| l.starts_with(start)).map(|(t, _)| *t).collect()
    }

    fn send(&mut self, method: Method) -> (TxKey, Request) {
        let transport = self.peer.transport.clone();
        let r = new_request(method, "timers", 1, &transport, &mut self.rng);
        let now = self.now();
        let key = self.layer.send_request(r.clone(), self.peer.clone(), now).unwrap();
        self.collect();
        (key, r)
    }

    fn respond(&mut self, key: TxKey, response: Response) {
        let now = self.now();
        self.layer.respond(key, response, now).unwrap();
        self.collect();
    }

    fn terminated_at(&self, key: TxKey) -> Option<Duration> {
        self.events.iter().find(|(_, e)| *e == TxEvent::Terminated { key }).map(|(t, _)| *t)
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn intervals(times: &[Duration]) -> Vec<u64> {
    times.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect()
}

/// The response the peer would send to `request`.
fn answer(request: &Request, status: u16) -> Message {
    Message::Response(request.reply(status, ""))
}

#[test]
fn timer_a_doubles_and_timer_b_gives_408_at_64_t1() {
    let mut b = Bench::new(Transport::Udp);
    let (key, _) = b.send(Method::Invite);
    b.run_until(secs(40.0));
    let times = b.times("INVITE ");
    assert_eq!(intervals(&times), [500, 1000, 2000, 4000, 8000, 16000], "§17.1.1.2 Timer A");
    assert_eq!(times.len(), 7);
    let timeout = b.events.iter().find(|(_, e)| matches!(e, TxEvent::Timeout { .. })).unwrap();
    assert_eq!(timeout.0, secs(32.0), "Timer B = 64*T1");
    let TxEvent::Timeout { key: k, timer, response } = &timeout.1 else { unreachable!() };
    assert_eq!((*k, *timer, response.status), (key, Timer::B, 408));
    assert_eq!(b.terminated_at(key), Some(secs(32.0)));
    assert!(b.layer.is_empty());
}

#[test]
fn timer_e_caps_at_t2_and_timer_f_gives_408() {
    let mut b = Bench::new(Transport::Udp);
    let (key, _) = b.send(Method::Options);
    b.run_until(secs(40.0));
    let times = b.times("OPTIONS ");
    assert_eq!(intervals(&times), [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000], "§17.1.2.2 Timer E");
    assert!(matches!(
        b.events.iter().find(|(_, e)| matches!(e, TxEvent::Timeout { .. })),
        Some((t, TxEvent::Timeout { timer: Timer::F, response, .. })) if *t == secs(32.0) && response.status == 408
    ));
    assert_eq!(b.terminated_at(key), Some(secs(32.0)));
}

#[test]
fn timer_e_fires_every_t2_once_proceeding() {
    let mut b = Bench::new(Transport::Udp);
    let (key, req) = b.send(Method::Register);
    b.clock.advance(secs(0.1));
    assert!(matches!(b.receive(answer(&req, 100)), Some(TxEvent::Response { .. })));
    assert_eq!(b.layer.state(key), Some(TxState::Proceeding));
    b.run_until(secs(13.0));
    assert_eq!(b.times("REGISTER "), [secs(0.0), secs(0.5), secs(4.5), secs(8.5), secs(12.5)]);
    // The final response: Timer K = T4 on UDP, and its retransmission is absorbed.
    assert!(matches!(b.receive(answer(&req, 200)), Some(TxEvent::Response { .. })));
    assert_eq!(b.receive(answer(&req, 200)), None);
    b.run_until(secs(30.0));
    assert_eq!(b.terminated_at(key), Some(secs(13.0) + Duration::from_secs(5)), "Timer K = T4");
    assert!(!b.events.iter().any(|(_, e)| matches!(e, TxEvent::Timeout { .. })));
}

#[test]
fn reliable_client_sends_once_and_timer_k_is_zero() {
    let mut b = Bench::new(Transport::Tcp);
    let (key, req) = b.send(Method::Options);
    b.run_until(secs(1.0));
    assert!(matches!(b.receive(answer(&req, 200)), Some(TxEvent::Response { .. })));
    assert_eq!(b.terminated_at(key), Some(secs(1.0)));
    assert_eq!(b.times("OPTIONS ").len(), 1);

    let (key, _) = b.send(Method::Invite);
    b.run_until(secs(40.0));
    assert_eq!(b.times("INVITE ").len(), 1, "no Timer A on TCP");
    assert_eq!(b.terminated_at(key), Some(secs(33.0)), "Timer B still guards");
}

#[test]
fn timer_d_acks_every_retransmitted_final() {
    let mut b = Bench::new(Transport::Udp);
    let (key, req) = b.send(Method::Invite);
    b.clock.advance(secs(0.2));
    assert!(matches!(b.receive(answer(&req, 180)), Some(TxEvent::Response { .. })));
    b.run_until(secs(2.0));
    assert_eq!(b.times("INVITE ").len(), 1, "a provisional response stops Timer A");
    let busy = answer(&req, 486);
    assert!(matches!(b.receive(busy.clone()), Some(TxEvent::Response { response, .. }) if response.status == 486));
    assert_eq!(b.layer.state(key), Some(TxState::Completed));
    for _ in 0..3 {
        b.clock.advance(secs(1.0));
        assert_eq!(b.receive(busy.clone()), None, "retransmitted final absorbed");
    }
    assert_eq!(b.times("ACK "), [secs(2.0), secs(3.0), secs(4.0), secs(5.0)], "§17.1.1.2: each one ACKed");
    b.run_until(secs(60.0));
    assert_eq!(b.terminated_at(key), Some(secs(34.0)), "Timer D = 32 s");

    // Over TCP Timer D is zero.
    let mut b = Bench::new(Transport::Tcp);
    let (key, req) = b.send(Method::Invite);
    b.receive(answer(&req, 603));
    assert_eq!(b.times("ACK ").len(), 1);
    assert_eq!(b.terminated_at(key), Some(secs(0.0)));
}

#[test]
fn timer_m_resends_the_tus_ack_for_each_2xx() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = b.send(Method::Invite);
    let ok = invite.reply(200, "");
    assert!(matches!(b.receive(Message::Response(ok.clone())), Some(TxEvent::Response { .. })));
    assert_eq!(b.layer.state(key), Some(TxState::Accepted));
    let ack = ack_for_2xx(&invite, &ok, &mut b.rng);
    b.layer.send_ack(key, ack, b.peer.clone());
    b.collect();
    b.clock.advance(secs(1.0));
    assert_eq!(b.receive(Message::Response(ok.clone())), None, "the 2xx again: absorbed ...");
    assert_eq!(b.times("ACK "), [secs(0.0), secs(1.0)], "... and ACKed again (RFC 6026 §7.2)");
    // A 2xx from another fork is news for the TU.
    let mut fork = ok.clone();
    fork.headers.set(sambung_sip::HeaderName::To, "Bob <sip:bob@example.com>;tag=other-fork");
    assert!(matches!(b.receive(Message::Response(fork)), Some(TxEvent::Response { .. })));
    b.run_until(secs(60.0));
    assert_eq!(b.terminated_at(key), Some(secs(32.0)), "Timer M = 64*T1");
}

/// An INVITE from the peer, as received.
fn incoming(b: &mut Bench, method: Method) -> (TxKey, Request) {
    let transport = b.peer.transport.clone();
    let r = new_request(method, "server", 7, &transport, &mut b.rng);
    let Some(TxEvent::Request { key, request, .. }) = b.receive(Message::Request(r)) else { panic!("new request") };
    (key, request)
}

#[test]
fn timer_g_caps_at_t2_and_timer_h_reports_the_missing_ack() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    b.respond(key, invite.reply(486, ""));
    b.run_until(secs(40.0));
    let times = b.times("SIP/2.0 486");
    assert_eq!(intervals(&times), [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000], "§17.2.1 Timer G");
    assert!(b.events.contains(&(secs(32.0), TxEvent::NoAck { key, timer: Timer::H })), "Timer H = 64*T1");
    assert_eq!(b.terminated_at(key), Some(secs(32.0)));
}

#[test]
fn timer_i_absorbs_acks_for_t4() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    let busy = invite.reply(486, "");
    b.respond(key, busy.clone());
    b.run_until(secs(1.0));
    let ack = sambung_sip::transaction::ack_for(&invite, &busy);
    assert_eq!(b.receive(Message::Request(ack.clone())), None, "ACK for non-2xx absorbed");
    assert_eq!(b.layer.state(key), Some(TxState::Confirmed));
    b.clock.advance(secs(1.0));
    assert_eq!(b.receive(Message::Request(ack)), None);
    assert_eq!(b.receive(Message::Request(invite)), None, "INVITE absorbed in Confirmed");
    b.run_until(secs(60.0));
    assert_eq!(b.times("SIP/2.0 486"), [secs(0.0), secs(0.5)], "Timer G stopped by the ACK");
    assert_eq!(b.terminated_at(key), Some(secs(6.0)), "Timer I = T4");

    let mut b = Bench::new(Transport::Tcp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    let busy = invite.reply(486, "");
    b.respond(key, busy.clone());
    b.run_until(secs(10.0));
    assert_eq!(b.times("SIP/2.0 486").len(), 1, "no Timer G on TCP");
    b.receive(Message::Request(sambung_sip::transaction::ack_for(&invite, &busy)));
    assert_eq!(b.terminated_at(key), Some(secs(10.0)), "Timer I is zero on TCP");
}

#[test]
fn timer_j_answers_retransmissions_for_64_t1() {
    let mut b = Bench::new(Transport::Udp);
    let (key, request) = incoming(&mut b, Method::Options);
    assert_eq!(b.receive(Message::Request(request.clone())), None, "absorbed while Trying");
    assert!(b.sent.is_empty());
    assert!(b.layer.request(key).is_some(), "the TU may read the request until it answers");
    b.respond(key, request.reply(200, ""));
    // Completed, it only answers retransmissions with the response's bytes: the request is
    // not kept for the 32 s of Timer J.
    assert!(b.layer.request(key).is_none());
    // Completed, the transaction keeps only its response (for retransmissions): the TU has
    // nothing more to do with it.
    assert_eq!(
        b.layer.respond(key, request.reply(500, ""), b.clock.now()),
        Err(sambung_sip::transaction::TxError::UnknownTransaction)
    );
    b.clock.advance(secs(3.0));
    assert_eq!(b.receive(Message::Request(request.clone())), None);
    assert_eq!(b.times("SIP/2.0 200"), [secs(0.0), secs(3.0)], "§17.2.2: the final again");
    b.run_until(secs(60.0));
    assert_eq!(b.terminated_at(key), Some(secs(32.0)), "Timer J = 64*T1");

    let mut b = Bench::new(Transport::Tcp);
    let (key, request) = incoming(&mut b, Method::Bye);
    b.respond(key, request.reply(200, ""));
    b.collect();
    assert_eq!(b.terminated_at(key), Some(secs(0.0)), "Timer J is zero on TCP");
}

#[test]
fn provisional_answers_retransmitted_requests() {
    let mut b = Bench::new(Transport::Udp);
    let (key, request) = incoming(&mut b, Method::Register);
    b.respond(key, request.reply(100, ""));
    b.clock.advance(secs(0.5));
    assert_eq!(b.receive(Message::Request(request)), None);
    assert_eq!(b.times("SIP/2.0 100"), [secs(0.0), secs(0.5)]);
    assert_eq!(b.layer.state(key), Some(TxState::Proceeding));
}

#[test]
fn server_sends_100_trying_after_200_ms() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    b.run_until(secs(1.0));
    assert_eq!(b.times("SIP/2.0 100"), [secs(0.2)], "§17.2.1: the TU stayed silent for 200 ms");
    b.clock.advance(secs(0.1));
    assert_eq!(b.receive(Message::Request(invite.clone())), None);
    assert_eq!(b.times("SIP/2.0 100"), [secs(0.2), secs(1.1)], "the 100 answers a retransmitted INVITE");

    // A TU that answers in time: no 100.
    let mut b = Bench::new(Transport::Udp);
    let (key2, invite) = incoming(&mut b, Method::Invite);
    b.clock.advance(secs(0.1));
    b.respond(key2, invite.reply(180, ""));
    b.run_until(secs(5.0));
    assert!(b.times("SIP/2.0 100").is_empty());
    assert_eq!(b.layer.state(key2), Some(TxState::Proceeding));

    // `trying_delay: Some(ZERO)`: at once.
    let config = Config { trying_delay: Some(Duration::ZERO), ..Config::default() };
    let mut b = Bench::with_config(Transport::Udp, config);
    incoming(&mut b, Method::Invite);
    assert_eq!(b.times("SIP/2.0 100"), [secs(0.0)]);
    let _ = key;
}

#[test]
fn timer_l_retransmits_the_2xx_until_the_ack() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    let ok = invite.reply(200, "");
    b.respond(key, ok.clone());
    assert_eq!(b.layer.state(key), Some(TxState::Accepted));
    b.run_until(secs(4.0));
    assert_eq!(b.times("SIP/2.0 200"), [secs(0.0), secs(0.5), secs(1.5), secs(3.5)], "§13.3.1.4");
    assert_eq!(b.receive(Message::Request(invite.clone())), None, "RFC 6026: INVITE absorbed in Accepted");
    let ack = ack_for_2xx(&invite, &ok, &mut b.rng);
    assert!(
        matches!(b.receive(Message::Request(ack.clone())), Some(TxEvent::Ack { .. })),
        "the ACK for 2xx is the TU's"
    );
    assert_eq!(b.receive(Message::Request(ack.clone())), None, "a repeated ACK is absorbed");
    b.run_until(secs(60.0));
    assert_eq!(b.times("SIP/2.0 200").len(), 4, "the ACK stopped the retransmissions");
    assert_eq!(b.terminated_at(key), Some(secs(32.0)), "Timer L = 64*T1");
    assert!(!b.events.iter().any(|(_, e)| matches!(e, TxEvent::NoAck { .. })));
    // After the transaction is gone a late ACK still reaches the TU.
    assert!(matches!(b.receive(Message::Request(ack)), Some(TxEvent::Ack { .. })));

    // No ACK at all: retransmit 2xx every T2 up to 64*T1, then tell the TU (it sends BYE).
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = incoming(&mut b, Method::Invite);
    b.respond(key, invite.reply(200, ""));
    b.run_until(secs(60.0));
    assert_eq!(intervals(&b.times("SIP/2.0 200")), [500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, 4000]);
    assert!(b.events.contains(&(secs(32.0), TxEvent::NoAck { key, timer: Timer::L })));

    // A proxy leaves 2xx retransmission to the UAS.
    let config = Config { retransmit_2xx: false, ..Config::default() };
    let mut b = Bench::with_config(Transport::Udp, config);
    let (key, invite) = incoming(&mut b, Method::Invite);
    let ok = invite.reply(200, "");
    b.respond(key, ok.clone());
    // ... and forwards every ACK for it: none is absorbed.
    let ack = ack_for_2xx(&invite, &ok, &mut b.rng);
    assert!(matches!(b.receive(Message::Request(ack.clone())), Some(TxEvent::Ack { .. })));
    assert!(matches!(b.receive(Message::Request(ack)), Some(TxEvent::Ack { .. })));
    b.run_until(secs(60.0));
    assert_eq!(b.times("SIP/2.0 200").len(), 1);
    assert!(!b.events.iter().any(|(_, e)| matches!(e, TxEvent::NoAck { .. })));
}

#[test]
fn timer_c_cancels_a_proxied_invite() {
    let config = Config { timer_c: Some(Duration::from_secs(180)), ..Config::default() };
    let mut b = Bench::with_config(Transport::Udp, config);
    let (key, invite) = b.send(Method::Invite);
    b.clock.advance(secs(1.0));
    b.receive(answer(&invite, 180));
    b.clock.advance(secs(9.0));
    b.receive(answer(&invite, 183)); // resets Timer C
    b.run_until(secs(300.0));
    let cancel = b.times("CANCEL ");
    assert_eq!(cancel[0], secs(190.0), "Timer C: 180 s after the last provisional response");
    let expired = b.events.iter().find_map(|(_, e)| match e {
        TxEvent::Expired { key: k, cancel } if *k == key => Some(*cancel),
        _ => None,
    });
    assert!(expired.is_some());
    // Nobody answers the CANCEL: the CANCEL times out (Timer F) and so does the INVITE
    // (§9.1: 64*T1 after the CANCEL).
    assert!(b.events.contains(&(
        secs(222.0),
        TxEvent::Timeout { key, timer: Timer::B, response: invite.reply(408, "Request Timeout") }
    )));
    assert!(b.layer.is_empty());
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = b.send(Method::Invite);
    let cancel = b.layer.cancel(key, b.clock.now()).unwrap();
    assert_eq!(b.layer.cancel(key, b.clock.now()), Ok(cancel), "asking twice gives the same CANCEL");
    b.run_until(secs(1.0));
    assert!(b.times("CANCEL ").is_empty(), "§9.1: no CANCEL before a provisional response");
    b.receive(answer(&invite, 180));
    assert_eq!(b.times("CANCEL "), [secs(1.0)]);
    assert_eq!(b.layer.state(cancel), Some(TxState::Trying));
    let sent_cancel = b.layer.request(cancel).unwrap().clone();
    assert_eq!(sent_cancel.method, Method::Cancel);
    assert_eq!(sent_cancel.top_via(), invite.top_via());
    assert!(matches!(b.receive(answer(&sent_cancel, 200)), Some(TxEvent::Response { key: k, .. }) if k == cancel));
    assert!(matches!(b.receive(answer(&invite, 487)), Some(TxEvent::Response { key: k, .. }) if k == key));
    assert_eq!(b.times("ACK ").len(), 1);

    // A final response before any provisional: the held CANCEL is dropped, never sent.
    let mut b = Bench::new(Transport::Udp);
    let (key, invite) = b.send(Method::Invite);
    let cancel = b.layer.cancel(key, b.clock.now()).unwrap();
    b.receive(answer(&invite, 486));
    assert!(b.events.iter().any(|(_, e)| *e == TxEvent::Terminated { key: cancel }));
    assert!(b.times("CANCEL ").is_empty());
    assert_eq!(b.layer.cancel(key, b.clock.now()), Err(sambung_sip::transaction::TxError::AlreadyFinal));
}

#[test]
fn transport_errors_end_the_transaction() {
    let mut b = Bench::new(Transport::Tcp);
    let (key, _) = b.send(Method::Invite);
    b.layer.handle_transport_error(key, b.clock.now());
    b.collect();
    assert_eq!(b.events, [(secs(0.0), TxEvent::TransportError { key }), (secs(0.0), TxEvent::Terminated { key })]);
    assert!(b.layer.is_empty());
    // A response after that is a stray.
    let _unused: Option<Response> = None;
}
