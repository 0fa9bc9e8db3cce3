use bytes::Bytes;
use sambung_sip::digest::{self, Algorithm, Challenge};
use sambung_sip::transaction::Peer;
use sambung_sip::{HeaderName, Message, NameAddr, Request, Transport};

use super::*;

const REALM: &str = "sambung.example";

fn accounts() -> Accounts {
    let account = |id, name: &str, ext: &str, pw: &str| Account {
        id,
        username: name.into(),
        display_name: name.into(),
        extension: Some(ext.into()),
        realm: REALM.into(),
        ha1_md5: digest::ha1(Algorithm::Md5, name, REALM, pw),
        ha1_sha256: digest::ha1(Algorithm::Sha256, name, REALM, pw),
        disabled: false,
        routing: Routing::default(),
    };
    Accounts::new([account(1, "alice", "1001", "alice-secret-1"), account(2, "bob", "1002", "bob-secret-22")])
}

fn peer() -> Peer {
    Peer { transport: Transport::Udp, addr: "192.0.2.7:5062".parse().unwrap(), flow: Some(0) }
}

fn register(user: &str, cseq: u32, contacts: &[&str], extra: &str) -> Request {
    let contacts: String = contacts.iter().map(|c| format!("Contact: {c}\r\n")).collect();
    let text = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:{user}@{REALM}>\r\nFrom: <sip:{user}@{REALM}>;tag=r1\r\n\
         Call-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\n{contacts}{extra}Content-Length: 0\r\n\r\n"
    );
    match Message::parse(Bytes::from(text)).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn alice(accounts: &Accounts) -> Account {
    (**accounts.by_username("alice").unwrap()).clone()
}

#[test]
fn binds_several_devices_with_q_and_reports_them_all() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    let (r, ch) =
        reg.register(&register("alice", 1, &["<sip:alice@192.0.2.7:5062>;q=0.5"], ""), &a, &accounts, &peer(), 1000);
    assert_eq!(r.status, 200);
    assert_eq!(ch.new_devices.len(), 1);
    let (r, _) = reg.register(
        &register("alice", 2, &["<sip:alice@192.0.2.8:5062>"], "Expires: 120\r\n"),
        &a,
        &accounts,
        &peer(),
        1000,
    );
    assert_eq!(r.status, 200);
    let contacts: Vec<NameAddr> = r.contacts().collect();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].params.value("expires"), Some("120"), "highest q first");
    assert_eq!(contacts[1].params.value("q"), Some("0.5"));
    assert_eq!(reg.location.read().bindings(1).len(), 2);
}

#[test]
fn too_brief_is_423_with_min_expires_and_long_is_capped() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    let (r, _) =
        reg.register(&register("alice", 1, &["<sip:alice@192.0.2.7>;expires=10"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get(HeaderName::MinExpires).map(|v| &**v), Some("60"));
    let (r, _) =
        reg.register(&register("alice", 2, &["<sip:alice@192.0.2.7>;expires=99999"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.contacts().next().unwrap().params.value("expires"), Some("3600"));
}

#[test]
fn wildcard_removes_everything_only_with_expires_zero() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    reg.register(
        &register("alice", 1, &["<sip:alice@192.0.2.7>", "<sip:alice@192.0.2.9>"], ""),
        &a,
        &accounts,
        &peer(),
        0,
    );
    assert_eq!(reg.location.read().bindings(1).len(), 2);
    let (r, _) = reg.register(&register("alice", 2, &["*"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.status, 400);
    let (r, ch) = reg.register(&register("alice", 3, &["*"], "Expires: 0\r\n"), &a, &accounts, &peer(), 0);
    assert_eq!((r.status, ch.removed.len()), (200, 2));
    assert!(reg.location.read().bindings(1).is_empty());
    assert!(r.contacts().next().is_none());
}

#[test]
fn only_ones_own_address_and_in_order() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    let (r, _) = reg.register(&register("bob", 1, &["<sip:x@192.0.2.7>"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.status, 403);
    // the extension is alice's address too
    let (r, _) = reg.register(&register("1001", 2, &["<sip:x@192.0.2.7>"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.status, 200);
    let (r, _) = reg.register(&register("1001", 2, &["<sip:x@192.0.2.7>"], ""), &a, &accounts, &peer(), 0);
    assert_eq!(r.status, 500, "same Call-ID, CSeq not higher");
}

#[test]
fn bindings_expire_on_time() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    reg.register(&register("alice", 1, &["<sip:alice@192.0.2.7>;expires=60"], ""), &a, &accounts, &peer(), 100);
    reg.register(&register("alice", 2, &["<sip:alice@192.0.2.9>;expires=120"], ""), &a, &accounts, &peer(), 100);
    assert_eq!(reg.location.read().next_expiry(), Some(160));
    assert!(reg.location.write().expire(159).is_empty());
    assert_eq!(reg.location.write().expire(160).len(), 1);
    assert_eq!(reg.location.read().bindings(1).len(), 1);
    assert_eq!(reg.location.write().expire(220).len(), 1);
    assert!(reg.location.read().is_empty());
}

#[test]
fn digest_wrong_password_and_unknown_user_get_the_same_answer() {
    let accounts = accounts();
    let mut auth = Authenticator::new(REALM.into(), digest::NonceManager::new(b"k", 300))
        .with_algorithms(vec![Algorithm::Sha256, Algorithm::Md5]);
    let request = register("alice", 1, &["<sip:alice@192.0.2.7>"], "");
    let AuthOutcome::Challenge { response: c, failed: None } =
        auth.authenticate(&request, &accounts, Challenger::Registrar, 1000, &|_| false)
    else {
        panic!("no credentials must be challenged, and no failure reported")
    };
    assert_eq!(c.status, 401);
    let challenge = Challenge::parse(c.headers.get(HeaderName::WwwAuthenticate).unwrap()).unwrap();
    let answer = |user: &str, pw: &str, nc: u32| {
        let creds = digest::respond(&challenge, "REGISTER", &format!("sip:{REALM}"), user, pw, "c0ffee", nc);
        register("alice", 1, &["<sip:alice@192.0.2.7>"], &format!("Authorization: {creds}\r\n"))
    };
    let good =
        auth.authenticate(&answer("alice", "alice-secret-1", 1), &accounts, Challenger::Registrar, 1001, &|_| false);
    assert!(matches!(good, AuthOutcome::Authenticated(a) if a.username == "alice"));
    let replay =
        auth.authenticate(&answer("alice", "alice-secret-1", 1), &accounts, Challenger::Registrar, 1002, &|_| false);
    assert!(
        matches!(replay, AuthOutcome::Challenge { failed: Some((_, crate::AuthFailure::BadNonce)), .. }),
        "nonce count replay refused"
    );
    let wrong =
        auth.authenticate(&answer("alice", "nope-nope-nope", 2), &accounts, Challenger::Registrar, 1002, &|_| false);
    let unknown =
        auth.authenticate(&answer("mallory", "alice-secret-1", 3), &accounts, Challenger::Registrar, 1002, &|_| false);
    for (outcome, why) in [(wrong, crate::AuthFailure::WrongPassword), (unknown, crate::AuthFailure::UnknownUser)] {
        let AuthOutcome::Challenge { response: r, failed } = outcome else { panic!("must be challenged") };
        assert_eq!((r.status, r.headers.count(HeaderName::WwwAuthenticate)), (401, 2));
        assert_eq!(failed.map(|(_, reason)| reason), Some(why), "the event may say why; the answer does not");
    }
    let stale =
        auth.authenticate(&answer("alice", "alice-secret-1", 4), &accounts, Challenger::Registrar, 1000 + 301, &|_| {
            false
        });
    let AuthOutcome::Challenge { response: r, .. } = stale else { panic!() };
    assert!(r.headers.get(HeaderName::WwwAuthenticate).unwrap().contains("stale=true"));
}

#[test]
fn requests_go_to_the_contact_unless_the_device_is_behind_a_nat() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    // same IP as the source, another port: the Contact is reachable as written
    let source = Peer { transport: Transport::Udp, addr: "192.0.2.7:5061".parse().unwrap(), flow: Some(0) };
    reg.register(&register("alice", 1, &["<sip:alice@192.0.2.7:5070>"], ""), &a, &accounts, &source, 0);
    // a private address behind a NAT: only the source reaches it
    reg.register(&register("alice", 2, &["<sip:alice@10.0.0.5:5060>"], ""), &a, &accounts, &source, 0);
    let targets: Vec<String> = reg.location.read().bindings(1).iter().map(|b| b.target().addr.to_string()).collect();
    assert!(targets.contains(&"192.0.2.7:5070".to_owned()), "{targets:?}");
    assert!(targets.contains(&"192.0.2.7:5061".to_owned()), "{targets:?}");
    // a stream device is reached over its own connection
    let tcp = Peer { transport: Transport::Tcp, addr: "192.0.2.9:40000".parse().unwrap(), flow: Some(7) };
    reg.register(&register("alice", 3, &["<sip:alice@192.0.2.9:5060;transport=tcp>"], ""), &a, &accounts, &tcp, 0);
    let location = reg.location.read();
    let b = location.bindings(1).iter().find(|b| b.source.transport == Transport::Tcp).unwrap();
    assert_eq!(b.target(), tcp);
}

#[test]
fn a_refresh_that_changes_only_the_expiry_is_told_apart() {
    let accounts = accounts();
    let mut reg = Registrar::default();
    let a = alice(&accounts);
    let contact = "<sip:alice@192.0.2.7:5062>";
    let (_, ch) = reg.register(&register("alice", 1, &[contact], ""), &a, &accounts, &peer(), 1000);
    assert_eq!((ch.new_devices.len(), ch.expiry_only.len()), (1, 0), "a new device is no refresh");
    // The same device again, later: only the expiry (and the CSeq) moved.
    let (r, ch) = reg.register(&register("alice", 2, &[contact], ""), &a, &accounts, &peer(), 1600);
    assert_eq!(r.status, 200);
    assert_eq!(ch.upserted.len(), 1);
    assert_eq!(ch.expiry_only, [ch.upserted[0].key()]);
    assert_eq!(reg.location.read().bindings(1)[0].expires_at, 1600 + 3600);
    // A new source address, a new q or a new User-Agent is more than a refresh.
    let moved = Peer { addr: "192.0.2.7:6000".parse().unwrap(), ..peer() };
    let (_, ch) = reg.register(&register("alice", 3, &[contact], ""), &a, &accounts, &moved, 1700);
    assert!(ch.expiry_only.is_empty() && ch.upserted.len() == 1);
    let (_, ch) =
        reg.register(&register("alice", 4, &[contact], "User-Agent: Other/2\r\n"), &a, &accounts, &moved, 1800);
    assert!(ch.expiry_only.is_empty() && ch.upserted.len() == 1);
    let q = "<sip:alice@192.0.2.7:5062>;q=0.3";
    let (_, ch) = reg.register(&register("alice", 5, &[q], "User-Agent: Other/2\r\n"), &a, &accounts, &moved, 1900);
    assert!(ch.expiry_only.is_empty() && ch.upserted.len() == 1);
}
