//! Dialogs (RFC 3261 §12) from an INVITE/200 exchange through two record-routing proxies:
//! identifiers, route sets, in-dialog request construction (loose and strict routing), CSeq
//! rules and target refresh; and a whole call over the lossy network.

#[path = "transaction_common/mod.rs"]
mod transaction_common;

use sambung_sip::dialog::{Dialog, DialogError, DialogId, DialogState};
use sambung_sip::transaction::{Config, TxEvent, new_branch, push_via};
use sambung_sip::{HeaderName, Host, Message, Method, Request, Response, Transport, Via};
use sambung_testkit::NetConfig;
use std::time::Duration;
use transaction_common::*;

const RR: &str = "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>";

/// The INVITE as Bob's UA receives it, after proxies p1 and p2.
fn invite(record_route: &str, ruri: &str, uac_transport: &str) -> Request {
    request(
        format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2\r\n\
             Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\n\
             Via: SIP/2.0/{uac_transport} pc33.atlanta.example.com;branch=z9hG4bKuac\r\n\
             Max-Forwards: 68\r\n\
             Record-Route: {record_route}\r\n\
             To: Bob <sip:bob@biloxi.example.com>\r\n\
             From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
             CSeq: 314159 INVITE\r\n\
             Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
}

/// The INVITE as Alice's UA sent it (only its own Via, no Record-Route yet).
fn as_sent(received: &Request) -> Request {
    let mut r = received.clone();
    r.headers.remove(HeaderName::Via);
    r.headers.remove(HeaderName::RecordRoute);
    push_via(&mut r, received.vias().last().unwrap());
    r
}

/// Bob's answer (§12.1.1: Record-Route copied, Contact added) as sent, and as Alice gets it
/// (the proxies' Vias gone).
fn answer(invite: &Request, status: u16, contact: &str) -> (Response, Response) {
    let mut r = invite.reply(status, "");
    for rr in invite.headers.get_all(HeaderName::RecordRoute) {
        r.headers.push(HeaderName::RecordRoute, rr.clone());
    }
    r.headers.push(HeaderName::Contact, contact);
    let mut at_uac = r.clone();
    at_uac.headers.remove(HeaderName::Via);
    push_via_response(&mut at_uac, invite.vias().last().unwrap());
    (r, at_uac)
}

fn push_via_response(r: &mut Response, via: Via) {
    r.headers.0.insert(0, sambung_sip::Header { name: HeaderName::Via, value: via.to_string().into() });
}

fn dialogs(record_route: &str) -> (Dialog, Dialog, Request) {
    let received = invite(record_route, "sip:bob@192.0.2.4", "UDP");
    let (ok, ok_at_uac) = answer(&received, 200, "<sip:bob@192.0.2.4>");
    let uas = Dialog::new_uas(&received, &ok).unwrap();
    let uac = Dialog::new_uac(&as_sent(&received), &ok_at_uac).unwrap();
    (uac, uas, received)
}

fn routes(r: &Request) -> Vec<String> {
    r.headers.values(HeaderName::Route).map(str::to_owned).collect()
}

#[test]
fn uac_and_uas_dialogs_mirror_each_other() {
    let (uac, uas, _) = dialogs(RR);
    assert_eq!(uac.state(), DialogState::Confirmed);
    assert_eq!(uas.state(), DialogState::Confirmed);
    assert_eq!(uac.id().call_id, uas.id().call_id);
    assert_eq!(uac.id().local_tag, "1928301774");
    assert_eq!(uac.id().local_tag, uas.id().remote_tag);
    assert_eq!(uac.id().remote_tag, uas.id().local_tag);
    assert!(!uas.id().local_tag.is_empty());
    // §12.1.1: the UAS keeps Record-Route in order; §12.1.2: the UAC reverses it.
    let names = |d: &Dialog| d.route_set().iter().map(|r| r.uri.to_string()).collect::<Vec<_>>();
    assert_eq!(names(&uas), ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]);
    assert_eq!(names(&uac), ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]);
    assert_eq!(uac.remote_target().to_string(), "sip:bob@192.0.2.4");
    assert_eq!(uas.remote_target().to_string(), "sip:alice@pc33.atlanta.example.com");
    assert_eq!((uac.local_seq(), uac.remote_seq()), (Some(314159), None));
    assert_eq!((uas.local_seq(), uas.remote_seq()), (None, Some(314159)));
    assert_eq!(uac.local_uri().uri.to_string(), "sip:alice@atlanta.example.com");
    assert_eq!(uac.remote_uri().uri.to_string(), "sip:bob@biloxi.example.com");
    assert_eq!(uas.local_uri().uri, uac.remote_uri().uri);
    assert!(!uac.secure() && !uas.secure());
}

#[test]
fn in_dialog_requests_follow_the_loose_route_set() {
    let (mut uac, mut uas, _) = dialogs(RR);
    let mut bye = uac.create_request(Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.4", "Request-URI = remote target");
    assert_eq!(routes(&bye), ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]);
    assert_eq!(bye.cseq().unwrap().to_string(), "314160 BYE");
    assert_eq!(bye.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(bye.to().unwrap().tag(), Some(uas.id().local_tag.as_ref()));
    assert_eq!(bye.call_id(), Some("a84b4c76e66710@pc33.atlanta.example.com"));
    assert_eq!(bye.max_forwards(), Some(70));
    assert!(bye.headers.get(HeaderName::Contact).is_none(), "BYE is no target refresh");
    // With a Via it is a well-formed request that prints and parses back.
    push_via(&mut bye, Via::new(Transport::Udp, Host::from("pc33.atlanta.example.com"), None, &new_branch(&[7; 8])));
    let Message::Request(parsed) = Message::parse(bye.to_bytes()).unwrap() else { panic!() };
    assert_eq!(parsed, bye);
    // The UAS takes it as its dialog's.
    assert_eq!(DialogId::of_request(&bye).as_ref(), Some(uas.id()));
    uas.handle_request(&bye).unwrap();
    assert_eq!(uas.remote_seq(), Some(314160));
    assert_eq!(uas.state(), DialogState::Terminated);

    // The callee's own requests: Route the other way round, CSeq from 1 (its local seq was empty).
    let (_, mut uas, _) = dialogs(RR);
    let info = uas.create_request(Method::Info);
    assert_eq!(info.uri.to_string(), "sip:alice@pc33.atlanta.example.com");
    assert_eq!(routes(&info), ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
    assert_eq!(info.cseq().unwrap().seq, 1);
    assert_eq!(info.from().unwrap().tag(), Some(uas.id().local_tag.as_ref()));
    assert_eq!(info.to().unwrap().tag(), Some("1928301774"));
    assert_eq!(uas.create_request(Method::Info).cseq().unwrap().seq, 2);
}

#[test]
fn strict_router_first_rewrites_the_request_uri() {
    // p1 (the UAC's first hop) is an RFC 2543 strict router: no `lr`.
    let (mut uac, _, _) = dialogs("<sip:p2.example.com;lr>, <sip:p1.example.com;transport=udp;method=INVITE>");
    let bye = uac.create_request(Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:p1.example.com;transport=udp", "first route, `method` stripped");
    assert_eq!(routes(&bye), ["<sip:p2.example.com;lr>", "<sip:bob@192.0.2.4>"], "remote target last");
    // Without a route set the request goes straight to the target.
    let (mut uac, _, _) = dialogs("<sip:p1.example.com;lr>");
    uac.handle_response(&{
        let (_, mut ok) =
            answer(&invite("<sip:p1.example.com;lr>", "sip:bob@192.0.2.4", "UDP"), 200, "<sip:bob@192.0.2.4>");
        ok.headers.set(HeaderName::CSeq, "314160 UPDATE");
        ok
    })
    .unwrap();
    assert_eq!(uac.route_set().len(), 1, "a 2xx in a confirmed dialog leaves the route set alone");
}

#[test]
fn cseq_rules() {
    let (mut uac, mut uas, received) = dialogs(RR);
    // §12.2.2: lower than the remote sequence number → 500; the number does not move.
    let mut old = uac.create_request(Method::Info);
    old.headers.set(HeaderName::CSeq, "314158 INFO");
    let err = uas.handle_request(&old).unwrap_err();
    assert_eq!(err, DialogError::OutOfOrder { got: 314158, remote: 314159 });
    assert_eq!(err.status(), 500);
    assert_eq!(uas.remote_seq(), Some(314159));
    // The ACK for the INVITE carries the INVITE's number: fine.
    let ack = uac.create_request(Method::Ack);
    assert_eq!(ack.cseq().unwrap().to_string(), "314159 ACK", "ACK for 2xx reuses the INVITE's CSeq");
    uas.handle_request(&ack).unwrap();
    // Numbers may jump: only "lower" is refused.
    let mut later = uac.create_request(Method::Info);
    later.headers.set(HeaderName::CSeq, "314200 INFO");
    uas.handle_request(&later).unwrap();
    assert_eq!(uas.remote_seq(), Some(314200));

    // A re-INVITE: the next number, and its ACK uses it, not the one after.
    let reinvite = uac.create_request(Method::Invite);
    let n = reinvite.cseq().unwrap().seq;
    assert_eq!(n, 314162, "314160 and 314161 went to the two INFOs above");
    assert_eq!(reinvite.headers.get(HeaderName::Contact).unwrap(), "<sip:alice@pc33.atlanta.example.com>");
    assert_eq!(uac.create_request(Method::Ack).cseq().unwrap().seq, n);
    assert_eq!(uac.local_seq(), Some(n), "ACK does not count");
    assert_eq!(uac.create_request(Method::Bye).cseq().unwrap().seq, n + 1);
    // A request of another dialog: 481.
    let mut stranger = old.clone();
    stranger.headers.set(HeaderName::From, "Eve <sip:eve@example.com>;tag=evil");
    assert_eq!(uas.handle_request(&stranger).map_err(|e| e.status()), Err(481));
    let _ = received;
}

#[test]
fn target_refresh_from_requests_and_2xx() {
    let (mut uac, mut uas, _) = dialogs(RR);
    // The caller moves: its re-INVITE carries a new Contact.
    uac.set_local_contact(Some("<sip:alice@198.51.100.7:5070>".into()));
    let reinvite = uac.create_request(Method::Invite);
    uas.handle_request(&reinvite).unwrap();
    assert_eq!(uas.remote_target().to_string(), "sip:alice@198.51.100.7:5070");
    // INFO is no target refresh even with a Contact.
    let mut info = uac.create_request(Method::Info);
    info.headers.push(HeaderName::Contact, "<sip:alice@203.0.113.9>");
    uas.handle_request(&info).unwrap();
    assert_eq!(uas.remote_target().to_string(), "sip:alice@198.51.100.7:5070");
    // UPDATE is (RFC 3311).
    let mut update = uac.create_request(Method::Update);
    update.headers.set(HeaderName::Contact, "<sip:alice@203.0.113.10>");
    uas.handle_request(&update).unwrap();
    assert_eq!(uas.remote_target().to_string(), "sip:alice@203.0.113.10");

    // The callee moves: the 2xx to the caller's re-INVITE says where it is now.
    let reinvite = uac.create_request(Method::Invite);
    let mut ok = reinvite.reply(200, "");
    ok.headers.push(HeaderName::Contact, "<sip:bob@192.0.2.44>");
    uac.handle_response(&ok).unwrap();
    assert_eq!(uac.remote_target().to_string(), "sip:bob@192.0.2.44");
    // A 2xx to INFO does not move it.
    let info = uac.create_request(Method::Info);
    let mut ok = info.reply(200, "");
    ok.headers.push(HeaderName::Contact, "<sip:bob@192.0.2.99>");
    uac.handle_response(&ok).unwrap();
    assert_eq!(uac.remote_target().to_string(), "sip:bob@192.0.2.44");
    assert_eq!(uac.create_request(Method::Bye).uri.to_string(), "sip:bob@192.0.2.44");
}

#[test]
fn early_dialogs_confirm_or_end() {
    let received = invite("<sip:p1.example.com;lr>", "sip:bob@192.0.2.4", "UDP");
    let sent = as_sent(&received);
    let (ringing, ringing_at_uac) = answer(&received, 180, "<sip:bob@192.0.2.4>");
    let mut uac = Dialog::new_uac(&sent, &ringing_at_uac).unwrap();
    let mut uas = Dialog::new_uas(&received, &ringing).unwrap();
    assert_eq!((uac.state(), uas.state()), (DialogState::Early, DialogState::Early));
    assert_eq!(uac.route_set().len(), 1);
    // The 2xx confirms it; its Record-Route is the one that counts (§13.2.2.4).
    let (_, mut ok) = answer(&received, 200, "<sip:bob@192.0.2.5>");
    ok.headers.set(HeaderName::RecordRoute, RR);
    uac.handle_response(&ok).unwrap();
    assert_eq!(uac.state(), DialogState::Confirmed);
    assert_eq!(uac.route_set().len(), 2);
    assert_eq!(uac.route_set()[0].uri.to_string(), "sip:p1.example.com;lr");
    assert_eq!(uac.remote_target().to_string(), "sip:bob@192.0.2.5");
    uas.handle_local_response(&ok);
    assert_eq!(uas.state(), DialogState::Confirmed);

    // A busy answer ends an early dialog (§12.3), on both sides.
    let mut uac = Dialog::new_uac(&sent, &ringing_at_uac).unwrap();
    let mut uas = Dialog::new_uas(&received, &ringing).unwrap();
    let (busy, busy_at_uac) = answer(&received, 486, "<sip:bob@192.0.2.4>");
    uac.handle_response(&busy_at_uac).unwrap();
    uas.handle_local_response(&busy);
    assert_eq!((uac.state(), uas.state()), (DialogState::Terminated, DialogState::Terminated));

    // 481 to a request inside a dialog ends it (§12.2.1.2).
    let (mut uac, _, _) = dialogs(RR);
    let info = uac.create_request(Method::Info);
    uac.handle_response(&info.reply(481, "")).unwrap();
    assert_eq!(uac.state(), DialogState::Terminated);

    // What does not make a dialog.
    assert_eq!(Dialog::new_uac(&sent, &received.reply(100, "")).unwrap_err(), DialogError::NotDialogCreating(100));
    assert_eq!(Dialog::new_uac(&sent, &received.reply(404, "")).unwrap_err(), DialogError::NotDialogCreating(404));
    let mut untagged = ringing_at_uac.clone();
    untagged.headers.set(HeaderName::To, "Bob <sip:bob@biloxi.example.com>");
    assert_eq!(Dialog::new_uac(&sent, &untagged).unwrap_err(), DialogError::Missing("To tag"));
    let mut no_contact = ringing.clone();
    no_contact.headers.remove(HeaderName::Contact);
    let mut bare = received.clone();
    bare.headers.remove(HeaderName::Contact);
    assert_eq!(Dialog::new_uas(&bare, &no_contact).unwrap_err(), DialogError::Missing("Contact"));
    // A response of another dialog is refused.
    let (mut uac, _, _) = dialogs(RR);
    let mut other = info.reply(200, "");
    other.headers.set(HeaderName::To, "Bob <sip:bob@biloxi.example.com>;tag=another-fork");
    assert_eq!(uac.handle_response(&other), Err(DialogError::NotThisDialog));
}

#[test]
fn secure_needs_sips_and_tls() {
    let received = invite(RR, "sips:bob@biloxi.example.com", "TLS");
    let (ok, ok_at_uac) = answer(&received, 200, "<sips:bob@192.0.2.4>");
    assert!(!Dialog::new_uas(&received, &ok).unwrap().secure(), "the last hop (p2) used UDP");
    assert!(Dialog::new_uac(&as_sent(&received), &ok_at_uac).unwrap().secure());
    let plain = invite(RR, "sip:bob@biloxi.example.com", "TLS");
    let (_, ok_at_uac) = answer(&plain, 200, "<sip:bob@192.0.2.4>");
    assert!(!Dialog::new_uac(&as_sent(&plain), &ok_at_uac).unwrap().secure());
}

/// A whole call — INVITE, 180, 200, ACK, BYE, 200 — with a dialog on each side, over 50 seeds
/// of 30 % loss: both dialogs confirm and then end, and agree on everything.
#[test]
fn a_call_over_a_lossy_network() {
    for seed in 0..50 {
        let mut sim = Sim::new(Transport::Udp, NetConfig::lossy(0.3), Config::default(), seed);
        let invite = new_request(Method::Invite, &format!("dialog-{seed}"), 1, &Transport::Udp, &mut sim.rng);
        sim.send_request(UAC, invite.clone());
        let mut uac: Option<Dialog> = None;
        let mut uas: Option<Dialog> = None;
        let mut bye_ok = 0;
        sim.run(Duration::from_secs(300), |sim, node, event| match (node, event) {
            (UAS, TxEvent::Request { key, request, .. }) => {
                let now = sim.now();
                match request.method {
                    Method::Invite => {
                        let mut ok = request.reply(200, "");
                        ok.headers.push(HeaderName::Contact, "<sip:bob@192.0.2.2>");
                        let mut d = Dialog::new_uas(&request, &ok).unwrap();
                        d.handle_local_response(&ok);
                        uas = Some(d);
                        sim.layer(UAS).respond(key, request.reply(180, ""), now).unwrap();
                        sim.schedule(UAS, ms(800), move |l, now| l.respond(key, ok, now).unwrap());
                    }
                    Method::Bye => {
                        let d = uas.as_mut().unwrap();
                        d.handle_request(&request).unwrap();
                        sim.layer(UAS).respond(key, request.reply(200, ""), now).unwrap();
                    }
                    m => panic!("{m}"),
                }
            }
            (UAS, TxEvent::Ack { request, .. }) => uas.as_mut().unwrap().handle_request(&request).unwrap(),
            (UAC, TxEvent::Response { key, response, .. }) if response.cseq().unwrap().method == Method::Invite => {
                if response.is_success() {
                    let mut d = Dialog::new_uac(&invite, &response).unwrap();
                    let mut ack = d.create_request(Method::Ack);
                    let branch = new_branch(&sim.rng.bytes::<8>());
                    push_via(&mut ack, Via::new(Transport::Udp, Host::from("192.0.2.1"), Some(5060), &branch));
                    let to = sim.peer(UAS);
                    sim.layer(UAC).send_ack(key, ack, to);
                    let mut bye = d.create_request(Method::Bye);
                    let branch = new_branch(&sim.rng.bytes::<8>());
                    push_via(&mut bye, Via::new(Transport::Udp, Host::from("192.0.2.1"), Some(5060), &branch));
                    sim.send_request(UAC, bye);
                    uac = Some(d);
                }
            }
            (UAC, TxEvent::Response { response, .. }) => {
                uac.as_mut().unwrap().handle_response(&response).unwrap();
                bye_ok += 1;
            }
            (_, TxEvent::Terminated { .. }) => {}
            (n, e) => panic!("seed {seed} node {n}: {e:?}"),
        });
        let (uac, uas) = (uac.expect("call answered"), uas.expect("call arrived"));
        assert_eq!(bye_ok, 1, "seed {seed}");
        assert_eq!((uac.state(), uas.state()), (DialogState::Terminated, DialogState::Terminated), "seed {seed}");
        assert_eq!(uac.id().local_tag, uas.id().remote_tag);
        assert_eq!(uac.id().remote_tag, uas.id().local_tag);
        assert_eq!(uac.local_seq(), uas.remote_seq(), "seed {seed}: the BYE's CSeq");
        assert_eq!(uac.remote_target().to_string(), "sip:bob@192.0.2.2");
        assert!(sim.nodes.iter().all(|n| n.layer.is_empty()));
    }
}
