//! The guard inside call control: failed authentications ban a source and lock an account
//! (a locked account gets the very answer a wrong password gets), scanners are dropped
//! unanswered, sweeps of unknown users are banned, and toll-fraud limits refuse calls.

mod common;

use common::*;
use sambung_pbx::guard::FraudLimit;
use sambung_pbx::{AuthFailure, BanReason, Event, PbxConfig, StoreWrite};
use sambung_sip::digest::{self, Challenge};
use sambung_sip::{HeaderName, Response};

fn config(f: impl FnOnce(&mut PbxConfig)) -> PbxConfig {
    let mut config = Rig::new().pbx.config().clone();
    f(&mut config);
    config
}

/// alice's INVITE `call_id` answered with `password`, from `from`: what came back to her.
fn invite_with(rig: &mut Rig, from: &str, call_id: &str, password: &str) -> Response {
    let text = |auth: &str| invite(auth).replace("call-1", call_id).replace(ALICE, from);
    let challenge = response(&rig.feed(from, &text("")), from, 407);
    let c = Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let uri = format!("sip:bob@{REALM}");
    let creds = digest::respond(&c, "INVITE", &uri, "alice", password, "cafe01", 1);
    let out = rig.feed(from, &text(&format!("Proxy-Authorization: {creds}\r\n")));
    let to: std::net::SocketAddr = from.parse().unwrap();
    out.into_iter()
        .filter(|(a, _)| *a == to)
        .find_map(|(_, m)| match m {
            sambung_sip::Message::Response(r) if r.status >= 101 || r.status == 100 => Some(r),
            _ => None,
        })
        .expect("an answer")
}

fn bans(events: &[Event]) -> Vec<(std::net::IpAddr, BanReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SourceBanned { source, reason, .. } => Some((*source, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn wrong_passwords_ban_the_source_and_the_ban_is_stored() {
    let mut rig = Rig::new();
    for i in 0..4 {
        assert_eq!(invite_with(&mut rig, ALICE, &format!("w{i}"), "guess").status, 407);
    }
    let mut events = rig.events();
    assert!(bans(&events).is_empty(), "four failures are not yet a ban");
    assert_eq!(invite_with(&mut rig, ALICE, "w4", "guess").status, 407, "the fifth gets the same answer");
    events.extend(rig.events());
    assert_eq!(
        bans(&events),
        vec![(ALICE.parse::<std::net::SocketAddr>().unwrap().ip(), BanReason::AuthFailures { count: 5 })]
    );
    let failures =
        events.iter().filter(|e| matches!(e, Event::AuthFailed { reason: AuthFailure::WrongPassword, .. })).count();
    assert_eq!(failures, 5);
    let stored = rig.store_writes().into_iter().filter(|w| matches!(w, StoreWrite::Ban { .. })).count();
    assert_eq!(stored, 1);
}

#[test]
fn a_locked_account_gets_the_answer_of_a_wrong_password_until_the_lockout_ends() {
    let mut rig = Rig::with_config(config(|c| {
        c.guard.auth_failures_per_source = 0;
        c.guard.auth_failures_per_account = 3;
        c.guard.lockout = std::time::Duration::from_secs(60);
    }));
    // Three addresses guess: the account is locked, no address is banned.
    for (i, from) in ["192.0.2.31:5060", "192.0.2.32:5060", "192.0.2.33:5060"].iter().enumerate() {
        assert_eq!(invite_with(&mut rig, from, &format!("l{i}"), "guess").status, 407);
    }
    let events = rig.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::AccountLocked { username, failures: 3, .. } if username == "alice"))
    );
    assert!(bans(&events).is_empty());
    assert!(
        rig.store_writes().iter().any(|w| matches!(w, StoreWrite::Lockout { username, .. } if username == "alice"))
    );
    // The right password now gets what a wrong one gets: a fresh challenge.
    let locked = invite_with(&mut rig, ALICE, "l-right", "alice-secret-1");
    assert_eq!(locked.status, 407);
    assert!(locked.headers.get(HeaderName::ProxyAuthenticate).is_some());
    assert!(rig.events().iter().any(|e| matches!(e, Event::AuthFailed { reason: AuthFailure::Locked, .. })));
    // After the lockout the right password works again.
    rig.ms += 61_000;
    let open = invite_with(&mut rig, ALICE, "l-later", "alice-secret-1");
    assert_eq!(open.status, 100, "{open:?}");
}

#[test]
fn a_scanner_gets_no_answer_and_is_banned() {
    let mut rig = Rig::new();
    let options = |ua: &str, branch: &str| {
        format!(
            "OPTIONS sip:100@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.66:5060;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\nTo: <sip:100@{REALM}>\r\nFrom: <sip:100@{REALM}>;tag=1\r\nCall-ID: {branch}\r\n\
             CSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    assert!(rig.feed("192.0.2.66:5060", &options("friendly-scanner", "s1")).is_empty(), "dropped unanswered");
    let banned = bans(&rig.events());
    assert!(matches!(&banned[..], [(_, BanReason::Scanner { tool, .. })] if tool == "friendly-scanner"), "{banned:?}");
    // An ordinary phone is answered.
    assert_eq!(
        response(&rig.feed("192.0.2.67:5060", &options("Linphone/5.2", "s2")), "192.0.2.67:5060", 200).status,
        200
    );
}

#[test]
fn a_sweep_of_users_is_banned_and_existing_names_count_like_unknown_ones() {
    let mut rig = Rig::new();
    let register = |user: &str| {
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.70:5060;branch=z9hG4bKr{user}\r\n\
             Max-Forwards: 70\r\nTo: <sip:{user}@{REALM}>\r\nFrom: <sip:{user}@{REALM}>;tag=1\r\n\
             Call-ID: r{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@192.0.2.70:5060>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // An existing name (alice) and unknown ones get the same answer, and count the same: the
    // ban cannot tell which names exist either.
    let known = response(&rig.feed("192.0.2.70:5060", &register("alice")), "192.0.2.70:5060", 401);
    for user in 100..108 {
        let unknown = response(&rig.feed("192.0.2.70:5060", &register(&user.to_string())), "192.0.2.70:5060", 401);
        assert_eq!(unknown.reason, known.reason, "no difference to learn from");
    }
    rig.feed("192.0.2.70:5060", &register("108"));
    assert!(bans(&rig.events()).is_empty(), "no name counts before its challenge could be answered");
    // None of the ten challenges is answered: after the grace they count, and that is a sweep.
    rig.ms += 5_000;
    rig.timeout();
    assert!(matches!(&bans(&rig.events())[..], [(_, BanReason::UnknownUsers { count: 10 })]));
}

#[test]
fn an_office_of_phones_behind_one_address_is_no_sweep() {
    let mut rig = Rig::new();
    let desks: Vec<String> = (1..=15).map(|i| format!("desk{i}")).collect();
    rig.set_accounts(desks.iter().zip(1..).map(|(name, id)| account(id, name, Default::default())).collect());
    // Fifteen phones behind one address, more than `unknown_users_per_source`: each names
    // itself, is challenged, and authenticates, twice. Names a source authenticated as never
    // count.
    for round in 0..2 {
        for user in desks.iter().map(String::as_str) {
            let id = format!("{user}-{round}");
            let text = |auth: &str| {
                format!(
                    "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.80:5060;branch=z9hG4bK{id}{}\r\n\
                     Max-Forwards: 70\r\nTo: <sip:{user}@{REALM}>\r\nFrom: <sip:{user}@{REALM}>;tag=1\r\n\
                     Call-ID: {id}\r\nCSeq: {} REGISTER\r\nContact: <sip:{user}@192.0.2.80:5060>\r\n{auth}\
                     Content-Length: 0\r\n\r\n",
                    auth.len(),
                    if auth.is_empty() { 1 } else { 2 }
                )
            };
            let challenge = response(&rig.feed("192.0.2.80:5060", &text("")), "192.0.2.80:5060", 401);
            let c = Challenge::parse(challenge.headers.get(HeaderName::WwwAuthenticate).unwrap()).unwrap();
            let creds = digest::respond(
                &c,
                "REGISTER",
                &format!("sip:{REALM}"),
                user,
                &format!("{user}-secret-1"),
                "c0ffee",
                1,
            );
            response(
                &rig.feed("192.0.2.80:5060", &text(&format!("Authorization: {creds}\r\n"))),
                "192.0.2.80:5060",
                200,
            );
        }
    }
    assert!(bans(&rig.events()).is_empty());
}

#[test]
fn calls_past_the_concurrent_and_per_minute_limits_are_refused() {
    let mut rig = Rig::with_config(config(|c| {
        c.guard.fraud.max_concurrent_calls = 2;
        c.guard.fraud.max_calls_per_minute = 3;
    }));
    assert_eq!(invite_with(&mut rig, ALICE, "f1", "alice-secret-1").status, 100);
    assert_eq!(invite_with(&mut rig, ALICE, "f2", "alice-secret-1").status, 100);
    let third = invite_with(&mut rig, ALICE, "f3", "alice-secret-1");
    assert_eq!((third.status, third.reason.to_string().as_str()), (403, "Too Many Calls"));
    let refused = rig.events().into_iter().find_map(|e| match e {
        Event::FraudRefused { username, limit, .. } => Some((username, limit)),
        _ => None,
    });
    assert_eq!(refused, Some(("alice".to_owned(), FraudLimit::Concurrent)));
}

#[test]
fn calls_past_the_per_minute_limit_are_refused_until_the_minute_is_over() {
    let mut rig = Rig::with_config(config(|c| {
        c.guard.fraud.max_concurrent_calls = 0;
        c.guard.fraud.max_calls_per_minute = 2;
    }));
    assert_eq!(invite_with(&mut rig, ALICE, "m1", "alice-secret-1").status, 100);
    assert_eq!(invite_with(&mut rig, ALICE, "m2", "alice-secret-1").status, 100);
    let third = invite_with(&mut rig, ALICE, "m3", "alice-secret-1");
    assert_eq!((third.status, third.reason.to_string().as_str()), (403, "Call Rate Exceeded"));
    rig.ms += 61_000;
    assert_eq!(invite_with(&mut rig, ALICE, "m4", "alice-secret-1").status, 100);
}

#[test]
fn unanswered_calls_from_one_address_are_capped() {
    let mut rig = Rig::with_config(config(|c| {
        c.guard.max_unanswered_per_source = 2;
        c.guard.fraud.max_concurrent_calls = 0;
    }));
    assert_eq!(invite_with(&mut rig, ALICE, "u1", "alice-secret-1").status, 100);
    assert_eq!(invite_with(&mut rig, ALICE, "u2", "alice-secret-1").status, 100);
    let third = invite_with(&mut rig, ALICE, "u3", "alice-secret-1");
    assert_eq!(third.status, 503);
    assert_eq!(third.headers.get(HeaderName::from("Retry-After")).map(|v| v.to_string()), Some("5".to_owned()));
    // Another address is not held back by this one's calls.
    assert_eq!(invite_with(&mut rig, "192.0.2.44:5060", "u4", "alice-secret-1").status, 100);
}

#[test]
fn a_locked_account_with_an_expired_nonce_is_not_told_stale() {
    let mut rig = Rig::with_config(config(|c| {
        c.guard.auth_failures_per_source = 0;
        c.guard.auth_failures_per_account = 3;
    }));
    for (i, from) in ["192.0.2.31:5060", "192.0.2.32:5060", "192.0.2.33:5060"].iter().enumerate() {
        invite_with(&mut rig, from, &format!("s{i}"), "guess");
    }
    // A challenge taken now, answered after its nonce went stale, with the right password: a
    // `stale=true` would say the password was right. The answer must be a wrong password's.
    let from = "192.0.2.34:5060";
    let text = |auth: &str| invite(auth).replace("call-1", "stale-1").replace(ALICE, from);
    let challenge = response(&rig.feed(from, &text("")), from, 407);
    rig.ms += (sambung_pbx::NONCE_LIFETIME_SECS + 5) * 1000;
    let c = Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, "INVITE", &format!("sip:bob@{REALM}"), "alice", "alice-secret-1", "cafe01", 1);
    let out = rig.feed(from, &text(&format!("Proxy-Authorization: {creds}\r\n")));
    let answer = response(&out, from, 407);
    let offered = answer.headers.get(HeaderName::ProxyAuthenticate).unwrap().to_string();
    assert!(!offered.to_ascii_lowercase().contains("stale"), "{offered}");
}
