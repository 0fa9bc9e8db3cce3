//! Carriers through call control, with the messages written out as the carriers and phones
//! would send them: the registration with a carrier (challenge answered, refreshed), a call to
//! a phone number (national form read by the dial plan, the carrier's challenge answered, a
//! 503 failed over to the next trunk, caller identity as each carrier wants it), a carrier's
//! call to one of our numbers, an emergency call past the caller's limits with its location,
//! and host names looked up (RFC 3263) for a trunk and for another domain.

mod common;

use common::*;
use sambung_pbx::guard::fraud::Destination;
use sambung_pbx::registrar::{Accounts, Routing};
use sambung_pbx::trunks::{CivicAddress, DialPlan, NumberFormat, TrunkConfig, TrunkState, Trunks};
use sambung_pbx::{Event, Input, Lookup, Output, PbxConfig};
use sambung_sip::digest::{self, Algorithm, Challenge, Credentials};
use sambung_sip::{HeaderName, Message, Request, Uri};

const CARRIER_A: &str = "192.0.2.50:5060";
const CARRIER_B: &str = "192.0.2.60:5080";
const CARRIER_B_MEDIA: &str = "192.0.2.61:5060";
const CARRIER_E: &str = "192.0.2.70:5060";
const ALICE_NUMBER: &str = "+442071234567";
const BOB_NUMBER: &str = "+442075550001";

fn trunk(name: &str, proxy: &str) -> TrunkConfig {
    TrunkConfig::new(name, Uri::parse(proxy).unwrap())
}

fn config(trunks: Vec<TrunkConfig>) -> PbxConfig {
    let mut plan = DialPlan { country_code: "44".into(), ..DialPlan::default() };
    plan.locations.insert(
        "alice".into(),
        CivicAddress {
            country: "GB".into(),
            a3: "London".into(),
            road: "Whitehall".into(),
            house_number: "10".into(),
            ..CivicAddress::default()
        },
    );
    let mut config = PbxConfig {
        domains: vec![REALM.into()],
        realm: REALM.into(),
        media_address: Some(RELAY_IP.parse().unwrap()),
        trunks: Trunks { trunks, plan },
        ..PbxConfig::default()
    };
    config.guard.fraud.outside = vec![Destination::Prefix("+44".into()), Destination::Host("other.test".into())];
    config
}

/// Three carriers: A registers and writes national numbers (first), B knows us by address
/// (second), E takes emergency calls.
fn carriers() -> Vec<TrunkConfig> {
    let mut a = trunk("carrier-a", &format!("sip:{CARRIER_A}"));
    a.register = true;
    a.username = Some("acct-a".into());
    a.password = Some("pw-a".into());
    a.number_format = NumberFormat::National;
    a.asserted_identity = false;
    let mut b = trunk("carrier-b", &format!("sip:{CARRIER_B}"));
    b.priority = 20;
    b.inbound = vec!["192.0.2.61".parse().unwrap()];
    let mut e = trunk("carrier-e", &format!("sip:{CARRIER_E}"));
    e.priority = 30;
    e.emergency = true;
    vec![a, b, e]
}

fn rig_with(trunks: Vec<TrunkConfig>) -> Rig {
    let mut rig = Rig::with_config(config(trunks));
    let accounts = Accounts::new(vec![account(1, "alice", Routing::default()), account(2, "bob", Routing::default())])
        .with_numbers([(ALICE_NUMBER.to_owned(), 1), (BOB_NUMBER.to_owned(), 2)]);
    rig.input(Input::Accounts(accounts));
    rig
}

fn header<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request.headers.get(HeaderName::from(name)).map(|v| &**v)
}

#[test]
fn registers_with_the_carrier_answering_its_challenge_and_refreshes() {
    let mut rig = rig_with(carriers());
    let out = rig.timeout();
    let register = request(&out, CARRIER_A, "REGISTER");
    assert_eq!(register.uri.to_string(), "sip:192.0.2.50:5060");
    assert!(header(&register, "Contact").unwrap().contains("sip:acct-a@"), "{register:?}");
    assert!(header(&register, "Authorization").is_none());
    // The carrier challenges.
    let challenge = Challenge::new("carrier.example", "n0nce", Algorithm::Md5);
    let out = rig.feed(
        CARRIER_A,
        &answer(&register, 401, "c1", "sip:x@192.0.2.50", "")
            .replace("Content-Length: 0\r\n", &format!("WWW-Authenticate: {challenge}\r\nContent-Length: 0\r\n")),
    );
    let again = request(&out, CARRIER_A, "REGISTER");
    assert_eq!(again.cseq().unwrap().seq, register.cseq().unwrap().seq + 1);
    assert_eq!(again.call_id(), register.call_id(), "one Call-ID for the binding");
    let creds = Credentials::parse(header(&again, "Authorization").unwrap()).unwrap();
    assert_eq!(creds.username, "acct-a");
    let ha1 = digest::ha1(Algorithm::Md5, "acct-a", "carrier.example", "pw-a");
    assert!(digest::verify(&creds, "REGISTER", &ha1), "the digest answers with the trunk's password");
    // Granted for 120 s: registered, refreshed halfway.
    let contact = header(&again, "Contact").unwrap().to_owned();
    let ok = answer(&again, 200, "c1", "sip:x@192.0.2.50", "")
        .replace("Contact: <sip:x@192.0.2.50>", &format!("Contact: {contact};expires=120"));
    rig.feed(CARRIER_A, &ok);
    let events = rig.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::TrunkRegistration { trunk, state: TrunkState::Registered { .. }, .. } if trunk == "carrier-a")),
        "{events:?}"
    );
    assert!(matches!(rig.pbx.trunk_states()[..], [(ref name, TrunkState::Registered { .. })] if name == "carrier-a"));
    rig.ms += 59_000;
    assert!(rig.timeout().is_empty(), "not yet");
    rig.ms += 1_000;
    let refresh = request(&rig.timeout(), CARRIER_A, "REGISTER");
    assert_eq!(refresh.call_id(), register.call_id());
    assert!(refresh.cseq().unwrap().seq > again.cseq().unwrap().seq);
    // A refusal is a failed state, retried later.
    rig.feed(CARRIER_A, &answer(&refresh, 403, "c1", "sip:x@192.0.2.50", ""));
    let events = rig.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::TrunkRegistration { state: TrunkState::Failed { .. }, .. })),
        "{events:?}"
    );
    rig.ms += 30_000;
    let retry = request(&rig.timeout(), CARRIER_A, "REGISTER");
    // The carrier wants a longer registration (423, RFC 3261 §10.2.8): asked again at once.
    let too_brief = answer(&retry, 423, "c1", "sip:x@192.0.2.50", "")
        .replace("Content-Length: 0\r\n", "Min-Expires: 3600\r\nContent-Length: 0\r\n");
    let longer = request(&rig.feed(CARRIER_A, &too_brief), CARRIER_A, "REGISTER");
    assert_eq!(header(&longer, "Expires"), Some("3600"));
}

#[test]
fn a_number_goes_out_answering_the_carriers_challenge_and_fails_over_on_503() {
    let mut rig = rig_with(carriers());
    rig.timeout(); // the registration's first REGISTER
    let out = alice_calls(&mut rig, &format!("sip:020%207946%200000@{REALM}"), "out-1");
    response(&out, ALICE, 100);
    // Carrier A first (priority 10), the number in national form, alice's number as caller.
    let to_a = request(&out, CARRIER_A, "INVITE");
    assert_eq!(to_a.uri.to_string(), "sip:02079460000@192.0.2.50:5060;user=phone");
    assert!(header(&to_a, "To").unwrap().contains("sip:02079460000@192.0.2.50:5060"));
    assert!(header(&to_a, "From").unwrap().contains("<sip:02071234567@192.0.2.50:5060>"), "{to_a:?}");
    assert!(header(&to_a, "P-Asserted-Identity").is_none(), "carrier A wants none");
    // It challenges the call: answered once with the trunk's credentials, CSeq one higher.
    let challenge = Challenge::new("carrier.example", "call-n0nce", Algorithm::Md5);
    let challenged = answer(&to_a, 407, "ca", "sip:x@192.0.2.50", "")
        .replace("Content-Length: 0\r\n", &format!("Proxy-Authenticate: {challenge}\r\nContent-Length: 0\r\n"));
    let out = rig.feed(CARRIER_A, &challenged);
    let with_auth = request(&out, CARRIER_A, "INVITE");
    assert_eq!(with_auth.cseq().unwrap().seq, to_a.cseq().unwrap().seq + 1);
    assert_eq!(with_auth.call_id(), to_a.call_id());
    let creds = Credentials::parse(header(&with_auth, "Proxy-Authorization").unwrap()).unwrap();
    let ha1 = digest::ha1(Algorithm::Md5, "acct-a", "carrier.example", "pw-a");
    assert!(digest::verify(&creds, "INVITE", &ha1));
    // Then it is out of service: the call moves to carrier B, in E.164 with the caller asserted.
    let out = rig.feed(CARRIER_A, &answer(&with_auth, 503, "ca", "sip:x@192.0.2.50", ""));
    let to_b = request(&out, CARRIER_B, "INVITE");
    assert_eq!(to_b.uri.to_string(), "sip:+442079460000@192.0.2.60:5080;user=phone");
    assert_ne!(to_b.call_id(), to_a.call_id(), "a new attempt, a new B-leg identity");
    assert!(header(&to_b, "From").unwrap().contains("<sip:+442071234567@192.0.2.60:5080>"));
    assert!(header(&to_b, "P-Asserted-Identity").unwrap().contains("sip:+442071234567@192.0.2.60:5080"));
    assert!(
        out.iter().all(|(to, m)| !(to.to_string() == ALICE && matches!(m, Message::Response(r) if r.status >= 300)))
    );
    // B answers: alice is connected.
    let sdp = sdp("192.0.2.62", 7000, "0", "");
    let out = rig.feed(CARRIER_B, &answer(&to_b, 200, "cb", &format!("sip:gw@{CARRIER_B}"), &sdp));
    response(&out, ALICE, 200);
    request(&out, CARRIER_B, "ACK");
    let events = rig.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::CallStarted { callee, callee_id: 0, .. } if callee == "+442079460000")),
        "{events:?}"
    );
}

#[test]
fn a_busy_number_is_busy_on_every_trunk_and_limits_refuse_unlisted_numbers() {
    let mut rig = rig_with(carriers());
    rig.timeout();
    let out = alice_calls(&mut rig, &format!("sip:+442079460000@{REALM}"), "busy-1");
    let to_a = request(&out, CARRIER_A, "INVITE");
    let out = rig.feed(CARRIER_A, &answer(&to_a, 486, "ca", "sip:x@192.0.2.50", ""));
    response(&out, ALICE, 486);
    assert!(out.iter().all(|(to, _)| to.to_string() != CARRIER_B), "no failover on busy");
    // +1 is not among the allowed destinations.
    let out = alice_calls(&mut rig, &format!("sip:0014155550100@{REALM}"), "fraud-1");
    response(&out, ALICE, 403);
    assert!(out.iter().all(|(to, _)| ![CARRIER_A, CARRIER_B, CARRIER_E].contains(&to.to_string().as_str())));
    // A number of our own rings its account, no carrier involved.
    let out = alice_calls(&mut rig, &format!("sip:02075550001@{REALM}"), "own-1");
    request(&out, BOB, "INVITE");
}

#[test]
fn a_carriers_call_to_our_number_rings_its_account() {
    let mut rig = rig_with(carriers());
    let call = |r_uri: &str, to: &str| {
        let token: String = to.chars().filter(char::is_ascii_alphanumeric).collect();
        let body = sdp("192.0.2.61", 9000, "0", "");
        format!(
            "INVITE {r_uri} SIP/2.0\r\nVia: SIP/2.0/UDP {CARRIER_B_MEDIA};branch=z9hG4bKin-{token}\r\nMax-Forwards: 70\r\n\
             To: <{to}>\r\nFrom: \"Carol Caller\" <sip:+14155550100@carrier-b.example>;tag=cb1\r\n\
             Call-ID: in-{token}@carrier-b\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@{CARRIER_B_MEDIA}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Known by its address: no challenge; the number is in To (the Request-URI names the trunk's
    // account, as after a registration).
    let out = rig.feed(CARRIER_B_MEDIA, &call(&format!("sip:acct-b@{REALM}"), &format!("sip:{BOB_NUMBER}@{REALM}")));
    response(&out, CARRIER_B_MEDIA, 100);
    let to_bob = request(&out, BOB, "INVITE");
    assert!(header(&to_bob, "From").unwrap().contains("sip:+14155550100@"), "{to_bob:?}");
    assert!(header(&to_bob, "From").unwrap().contains("Carol Caller"));
    // The number only in the carrier's Diversion (RFC 5806): the call was diverted to us.
    let diverted = call("sip:acct-b@sambung.example", "sip:acct-b@sambung.example").replace(
        "Content-Type: application/sdp",
        &format!("Diversion: <sip:{BOB_NUMBER}@carrier-b.example>;reason=no-answer\r\nContent-Type: application/sdp"),
    );
    let out = rig.feed(CARRIER_B_MEDIA, &diverted);
    request(&out, BOB, "INVITE");
    // A number that is none of ours.
    let out =
        rig.feed(CARRIER_B_MEDIA, &call("sip:+442079999999@sambung.example", "sip:+442079999999@sambung.example"));
    response(&out, CARRIER_B_MEDIA, 404);
    // The same INVITE from anywhere else is challenged like any call.
    let out = rig.feed("192.0.2.99:5060", &call(&format!("sip:{BOB_NUMBER}@{REALM}"), "sip:x@y"));
    response(&out, "192.0.2.99:5060", 407);
}

#[test]
fn an_emergency_call_goes_out_past_the_limits_with_the_callers_location() {
    let mut config = config(carriers());
    config.guard.fraud.max_calls_per_minute = 1;
    let mut rig = Rig::with_config(config);
    let accounts = Accounts::new(vec![account(1, "alice", Routing::default()), account(2, "bob", Routing::default())])
        .with_numbers([(ALICE_NUMBER.to_owned(), 1)]);
    rig.input(Input::Accounts(accounts));
    rig.timeout();
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "first");
    request(&out, BOB, "INVITE");
    let out = alice_calls(&mut rig, &format!("sip:bob@{REALM}"), "second");
    response(&out, ALICE, 403);
    // 999 still goes out, on the emergency trunk first, as dialled, with alice's address.
    let out = alice_calls(&mut rig, &format!("sip:999@{REALM}"), "sos");
    let to_e = request(&out, CARRIER_E, "INVITE");
    assert_eq!(to_e.uri.to_string(), "sip:999@192.0.2.70:5060;user=phone");
    let geolocation = header(&to_e, "Geolocation").unwrap();
    assert!(geolocation.starts_with("<cid:"), "{geolocation}");
    assert_eq!(header(&to_e, "Geolocation-Routing"), Some("yes"));
    let content_type = header(&to_e, "Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/mixed;boundary="), "{content_type}");
    let body = String::from_utf8(to_e.body.to_vec()).unwrap();
    let cid = geolocation.trim_start_matches("<cid:").trim_end_matches('>');
    assert!(body.contains(&format!("Content-ID: <{cid}>")), "{body}");
    assert!(body.contains("Content-Type: application/sdp") && body.contains("m=audio"), "{body}");
    assert!(body.contains("<ca:country>GB</ca:country><ca:A3>London</ca:A3><ca:RD>Whitehall</ca:RD>"), "{body}");
    // E fails: the other trunks are tried too, the caller's limits still not applied.
    let out = rig.feed(CARRIER_E, &answer(&to_e, 503, "ce", "sip:x@192.0.2.70", ""));
    request(&out, CARRIER_A, "INVITE");
}

#[test]
fn host_names_are_looked_up_and_their_addresses_failed_over() {
    let mut named = trunk("carrier-d", "sip:carrier.test");
    named.priority = 5;
    let mut rig = rig_with(vec![named]);
    let out = alice_calls(&mut rig, &format!("sip:+442079460000@{REALM}"), "dns-1");
    response(&out, ALICE, 100);
    let lookups: Vec<_> = rig
        .take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Resolve { lookup, query } => Some((lookup, query)),
            _ => None,
        })
        .collect();
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    let (lookup, query) = lookups[0].clone();
    assert!(matches!(lookup, Lookup::Call(_)));
    assert_eq!((query.host.as_str(), query.port, query.transport, query.secure), ("carrier.test", None, None, false));
    let target = |addr: &str| sambung_dns::Target {
        transport: sambung_dns::Transport::Udp,
        addr: addr.parse().unwrap(),
        server_name: "carrier.test".into(),
    };
    let out =
        rig.input(Input::Resolved { lookup, result: Ok(vec![target("192.0.2.80:5060"), target("192.0.2.81:5070")]) });
    let first = request(&out, "192.0.2.80:5060", "INVITE");
    assert_eq!(first.uri.to_string(), "sip:+442079460000@carrier.test;user=phone");
    let out = rig.feed("192.0.2.80:5060", &answer(&first, 503, "d1", "sip:x@192.0.2.80", ""));
    request(&out, "192.0.2.81:5070", "INVITE");

    // Another domain, dialled by an authenticated caller: looked up, then called; a name that
    // does not resolve fails the call.
    let out = alice_calls(&mut rig, "sip:bob@other.test", "dns-2");
    response(&out, ALICE, 100);
    let lookup = rig
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Resolve { lookup, query } if query.host == "other.test" => Some(lookup),
            _ => None,
        })
        .expect("other.test looked up");
    let out = rig.input(Input::Resolved { lookup, result: Ok(vec![target("192.0.2.90:5060")]) });
    let invite = request(&out, "192.0.2.90:5060", "INVITE");
    assert_eq!(invite.uri.to_string(), "sip:bob@other.test");
    let out = alice_calls(&mut rig, "sip:carol@other.test", "dns-3");
    response(&out, ALICE, 100);
    let lookup = rig
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Resolve { lookup, .. } => Some(lookup),
            _ => None,
        })
        .expect("looked up again");
    let out = rig.input(Input::Resolved { lookup, result: Err("not found".into()) });
    response(&out, ALICE, 404);
    // A domain the toll-fraud limits do not list is refused before anything is looked up.
    let out = alice_calls(&mut rig, "sip:bob@nowhere.test", "dns-4");
    response(&out, ALICE, 403);
    assert!(!rig.take_outputs().iter().any(|o| matches!(o, Output::Resolve { .. })));
}

#[test]
fn a_carrier_that_cannot_be_connected_to_is_failed_over_at_once() {
    let mut tcp = trunk("carrier-t", "sip:192.0.2.55:5060;transport=tcp");
    tcp.priority = 1;
    let mut carriers = carriers();
    carriers.insert(0, tcp);
    let mut rig = rig_with(carriers);
    rig.timeout();
    let out = alice_calls(&mut rig, &format!("sip:+442079460000@{REALM}"), "tcp-1");
    let to_t = request(&out, "192.0.2.55:5060", "INVITE");
    assert!(header(&to_t, "Via").unwrap().starts_with("SIP/2.0/TCP "), "{to_t:?}");
    // The driver could not connect: the next trunk gets the call without waiting for Timer B.
    let out = rig.input(Input::Unreachable {
        transport: sambung_sip::Transport::Tcp,
        remote: "192.0.2.55:5060".parse().unwrap(),
    });
    request(&out, CARRIER_A, "INVITE");
}

#[test]
fn a_trunk_is_offered_only_its_codecs() {
    let mut b = trunk("carrier-b", &format!("sip:{CARRIER_B}"));
    b.codecs = vec![sambung_media::codec::CodecKind::Pcma];
    let mut rig = rig_with(vec![b]);
    let out = alice_calls(&mut rig, &format!("sip:+442079460000@{REALM}"), "codec-1");
    let to_b = request(&out, CARRIER_B, "INVITE");
    let body = String::from_utf8(to_b.body.to_vec()).unwrap();
    let m_line = body.lines().find(|l| l.starts_with("m=audio")).unwrap();
    // alice offered PCMU; the relay transcodes to the carrier's PCMA (telephone events stay).
    let formats: Vec<&str> = m_line.split(' ').skip(3).collect();
    assert_eq!(formats[0], "8", "{body}");
    assert!(!formats.contains(&"0"), "{body}");
    for format in &formats[1..] {
        assert!(body.contains(&format!("a=rtpmap:{format} telephone-event/")), "{body}");
    }
}

#[test]
fn a_carrier_named_by_host_is_known_by_the_addresses_its_name_resolves_to() {
    let mut rig = rig_with(vec![trunk("carrier-n", "sip:sbc.carrier-n.test")]);
    let out = rig.timeout();
    assert!(out.is_empty());
    let lookup = rig
        .take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Resolve { lookup, query } if query.host == "sbc.carrier-n.test" => Some(lookup),
            _ => None,
        })
        .expect("the trunk's server is looked up at start");
    assert_eq!(lookup, Lookup::Trunk(0));
    let target = sambung_dns::Target {
        transport: sambung_dns::Transport::Udp,
        addr: "192.0.2.77:5060".parse().unwrap(),
        server_name: "sbc.carrier-n.test".into(),
    };
    rig.input(Input::Resolved { lookup, result: Ok(vec![target]) });
    let body = sdp("192.0.2.77", 9000, "0", "");
    let invite = format!(
        "INVITE sip:{BOB_NUMBER}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKn1\r\n\
         Max-Forwards: 70\r\nTo: <sip:{BOB_NUMBER}@{REALM}>\r\nFrom: <sip:+14155550100@carrier-n.test>;tag=n1\r\n\
         Call-ID: n1@carrier-n\r\nCSeq: 1 INVITE\r\nContact: <sip:gw@192.0.2.77:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = rig.feed("192.0.2.77:5060", &invite);
    request(&out, BOB, "INVITE");
    // Looked up again later.
    rig.ms += 300_000;
    rig.timeout();
    assert!(rig.take_outputs().iter().any(|o| matches!(o, Output::Resolve { lookup: Lookup::Trunk(0), .. })));
}

#[test]
fn a_carriers_challenge_is_never_passed_to_the_caller() {
    let mut rig = rig_with(carriers());
    rig.timeout();
    let out = alice_calls(&mut rig, &format!("sip:+442079460000@{REALM}"), "noauth-1");
    let to_a = request(&out, CARRIER_A, "INVITE");
    let out = rig.feed(CARRIER_A, &answer(&to_a, 503, "ca", "sip:x@192.0.2.50", ""));
    // Carrier B has no credentials for its challenge: the next trunk is tried.
    let to_b = request(&out, CARRIER_B, "INVITE");
    let challenge = Challenge::new("carrier-b.example", "b-n0nce", Algorithm::Md5);
    let challenged = answer(&to_b, 407, "cb", "sip:x@192.0.2.60", "")
        .replace("Content-Length: 0\r\n", &format!("Proxy-Authenticate: {challenge}\r\nContent-Length: 0\r\n"));
    let out = rig.feed(CARRIER_B, &challenged);
    assert!(
        out.iter().all(|(to, m)| !(to.to_string() == ALICE && matches!(m, Message::Response(r) if r.status == 407)))
    );
    let to_e = request(&out, CARRIER_E, "INVITE");
    // The last one fails too: the caller hears the service could not place the call.
    let out = rig.feed(CARRIER_E, &answer(&to_e, 500, "ce", "sip:x@192.0.2.70", ""));
    response(&out, ALICE, 500);
}

#[test]
fn a_caller_asking_for_privacy_goes_out_anonymous_with_an_asserted_identity() {
    let mut rig = rig_with(vec![trunk("carrier-b", &format!("sip:{CARRIER_B}"))]);
    let target = format!("sip:+442079460000@{REALM}");
    // alice's phone asks for privacy (RFC 3323 `Privacy: id`).
    let invite = |auth: &str, cseq: u32| {
        let body = alice_sdp();
        format!(
            "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKpriv-{cseq}\r\nMax-Forwards: 70\r\n\
             To: <{target}>\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al-priv\r\nCall-ID: priv-1\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:alice@{ALICE}>\r\nPrivacy: id\r\n{auth}\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let challenge = response(&rig.feed(ALICE, &invite("", 1)), ALICE, 407);
    let out = rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", &target), 2));
    let to_b = request(&out, CARRIER_B, "INVITE");
    let from = header(&to_b, "From").unwrap();
    assert!(from.contains("sip:anonymous@anonymous.invalid") && !from.contains(ALICE_NUMBER), "{from}");
    // The carrier (trusted, RFC 3325 §9.1) still learns who calls, and that it must not tell.
    assert!(header(&to_b, "P-Asserted-Identity").unwrap().contains(ALICE_NUMBER), "{to_b:?}");
    assert_eq!(header(&to_b, "Privacy"), Some("id"));
}
