//! A driver for call control in tests: a virtual clock, the devices' messages written out as a
//! phone would send them, and a media runtime that answers at once with made-up ports.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sambung_pbx::registrar::{Account, Accounts, Binding, Routing};
use sambung_pbx::{
    AppRequest, CallRecord, Event, Inbound, Input, MediaCommand, MediaEvent, Now, Output, Pbx, PbxConfig, StoreWrite,
};
use sambung_sip::digest::{self, Algorithm, Challenge};
use sambung_sip::transaction::Peer;
use sambung_sip::{HeaderName, Message, Request, Response, Transport};

pub const REALM: &str = "sambung.example";
pub const ALICE: &str = "192.0.2.10:5060";
pub const BOB: &str = "192.0.2.20:5070";
/// carol's phone, in [`Rig::office`].
pub const CAROL: &str = "192.0.2.30:5080";
/// The address the media runtime's ports are on.
pub const RELAY_IP: &str = "192.0.2.1";

/// An account of the realm whose password is `<name>-secret-1`.
pub fn account(id: i64, name: &str, routing: Routing) -> Account {
    let pw = format!("{name}-secret-1");
    Account {
        id,
        username: name.into(),
        display_name: name.into(),
        extension: Some(format!("100{id}")),
        realm: REALM.into(),
        ha1_md5: digest::ha1(Algorithm::Md5, name, REALM, &pw),
        ha1_sha256: digest::ha1(Algorithm::Sha256, name, REALM, &pw),
        disabled: false,
        routing,
    }
}

/// A binding of account `id` (`name`) at `addr` over UDP.
pub fn binding(id: i64, name: &str, addr: &str) -> Binding {
    Binding {
        account_id: id,
        aor: format!("sip:{name}@{REALM}"),
        uri: sambung_sip::Uri::parse(&format!("sip:{name}@{addr}")).unwrap(),
        instance: None,
        reg_id: None,
        q: 1000,
        call_id: format!("reg-{name}"),
        cseq: 1,
        expires_at: 1_700_003_600,
        source: Peer { transport: Transport::Udp, addr: addr.parse().unwrap(), flow: None },
        user_agent: None,
    }
}

pub struct Rig {
    pub pbx: Pbx,
    start: Instant,
    pub ms: u64,
    /// Outputs other than SIP, in order, since they were last taken.
    pub outputs: Vec<Output>,
    /// Answer the media runtime's Open (else it fails: no ports).
    pub media_ports: bool,
}

impl Default for Rig {
    fn default() -> Rig {
        Rig::new()
    }
}

impl Rig {
    /// alice (1) and bob (2, bound at [`BOB`]); the relay on [`RELAY_IP`].
    pub fn new() -> Rig {
        Rig::with_config(PbxConfig {
            domains: vec![REALM.into()],
            realm: REALM.into(),
            media_address: Some(RELAY_IP.parse().unwrap()),
            ..PbxConfig::default()
        })
    }

    pub fn with_config(config: PbxConfig) -> Rig {
        let pbx = Pbx::new(config, b"0123456789abcdef0123456789abcdef", [9; 32]);
        let mut rig =
            Rig { pbx, start: sambung_testkit::Clock::new().now(), ms: 0, outputs: Vec::new(), media_ports: true };
        rig.set_accounts(vec![account(1, "alice", Routing::default()), account(2, "bob", Routing::default())]);
        rig.input(Input::Bindings(vec![binding(2, "bob", BOB)]));
        rig.take_outputs();
        rig
    }

    /// alice (1), bob (2) and carol (3, at [`CAROL`]) on `config`, with the realm and the
    /// relay of [`Rig::new`], and the ring group `front` of bob and carol.
    pub fn office(config: PbxConfig) -> Rig {
        let mut rig = Rig::with_config(PbxConfig {
            domains: vec![REALM.into()],
            realm: REALM.into(),
            media_address: Some(RELAY_IP.parse().unwrap()),
            groups: sambung_pbx::groups::RingGroups {
                groups: vec![sambung_pbx::groups::RingGroup::new("front", &["bob", "carol"])],
            },
            ..config
        });
        rig.set_accounts(vec![
            account(1, "alice", Routing::default()),
            account(2, "bob", Routing::default()),
            account(3, "carol", Routing::default()),
        ]);
        rig.input(Input::Bindings(vec![binding(2, "bob", BOB), binding(3, "carol", CAROL)]));
        rig.take_outputs();
        rig
    }

    pub fn set_accounts(&mut self, accounts: Vec<Account>) {
        self.input(Input::Accounts(Accounts::new(accounts)));
    }

    pub fn now(&self) -> Now {
        Now { instant: self.start + Duration::from_millis(self.ms), unix_secs: 1_700_000_000 + self.ms / 1000 }
    }

    /// Feeds `input` and drains the outputs: SIP comes back parsed, with its destination;
    /// the media runtime's Open is answered at once; the rest is kept in [`Self::outputs`].
    pub fn input(&mut self, input: Input) -> Vec<(SocketAddr, Message)> {
        let now = self.now();
        self.pbx.handle_input(input, now);
        let mut sent = Vec::new();
        loop {
            match self.pbx.poll_output() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => sent.push((t.remote, Message::parse(t.bytes).expect("what is sent parses"))),
                Output::Media(MediaCommand::Open { session, streams, .. }) => {
                    self.outputs.push(Output::Media(MediaCommand::Open {
                        session,
                        streams,
                        address: RELAY_IP.parse().unwrap(),
                    }));
                    let event = if self.media_ports {
                        let ports =
                            |base: u16| (0..streams).map(|i| base + 2 * i as u16 + 8 * session as u16).collect();
                        MediaEvent::Opened { session, ports: Box::new([ports(30_000), ports(40_000)]) }
                    } else {
                        MediaEvent::Failed { session, reason: "no free RTP port pair".into() }
                    };
                    let now = self.now();
                    self.pbx.handle_input(Input::Media(event), now);
                }
                other => self.outputs.push(other),
            }
        }
        sent
    }

    /// Feeds `text` from `from` over UDP, 10 ms after the last input.
    pub fn feed(&mut self, from: &str, text: &str) -> Vec<(SocketAddr, Message)> {
        self.ms += 10;
        let inbound = Inbound {
            transport: Transport::Udp,
            local: "0.0.0.0:5060".parse().unwrap(),
            remote: from.parse().unwrap(),
            conn: None,
            account: None,
            bytes: Bytes::from(text.to_owned()),
        };
        self.input(Input::Message(inbound))
    }

    /// The timers due at the current time fire.
    pub fn timeout(&mut self) -> Vec<(SocketAddr, Message)> {
        self.input(Input::Timeout)
    }

    /// When call control next wants [`Input::Timeout`].
    pub fn next_timeout(&mut self) -> Option<Instant> {
        loop {
            match self.pbx.poll_output() {
                Output::Timeout(at) => return at,
                other => self.outputs.push(other),
            }
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub fn store_writes(&mut self) -> Vec<StoreWrite> {
        self.take_where(|o| match o {
            Output::Store(w) => Ok(w),
            other => Err(Box::new(other)),
        })
    }

    pub fn events(&mut self) -> Vec<Event> {
        self.take_where(|o| match o {
            Output::Event(e) => Ok(e),
            other => Err(Box::new(other)),
        })
    }

    pub fn app_requests(&mut self) -> Vec<AppRequest> {
        self.take_where(|o| match o {
            Output::App(r) => Ok(r),
            other => Err(Box::new(other)),
        })
    }

    pub fn media_commands(&mut self) -> Vec<MediaCommand> {
        self.take_where(|o| match o {
            Output::Media(c) => Ok(c),
            other => Err(Box::new(other)),
        })
    }

    /// The call records emitted since the events were last taken.
    pub fn records(&mut self) -> Vec<CallRecord> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::CallEnded(record) => Some(record),
                _ => None,
            })
            .collect()
    }

    fn take_where<T>(&mut self, mut pick: impl FnMut(Output) -> Result<T, Box<Output>>) -> Vec<T> {
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for output in self.outputs.drain(..) {
            match pick(output) {
                Ok(t) => taken.push(t),
                Err(other) => kept.push(*other),
            }
        }
        self.outputs = kept;
        taken
    }
}

/// A description with one audio stream of `formats` at `ip`:`port`.
pub fn sdp(ip: &str, port: u16, formats: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n{extra}"
    )
}

/// alice's offer: PCMU at 192.0.2.10:4000.
pub fn alice_sdp() -> String {
    sdp("192.0.2.10", 4000, "0", "")
}

/// bob's answer: PCMU at 192.0.2.20:5000.
pub fn bob_sdp() -> String {
    sdp("192.0.2.20", 5000, "0", "")
}

/// alice's INVITE to bob with her offer, and credentials when `auth` is not empty.
pub fn invite(auth: &str) -> String {
    let body = alice_sdp();
    format!(
        "INVITE sip:bob@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKcall-1-{}\r\nMax-Forwards: 70\r\n\
         To: <sip:bob@{REALM}>\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al1\r\nCall-ID: call-1@alice\r\n\
         CSeq: {} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        auth.len(),
        if auth.is_empty() { 1 } else { 2 },
        body.len()
    )
}

/// alice's INVITE to `target` (a Request-URI) with her offer, challenged, then sent again with
/// credentials: what call control sent then.
pub fn alice_calls(rig: &mut Rig, target: &str, call_id: &str) -> Vec<(SocketAddr, Message)> {
    let invite = |auth: &str, cseq: u32| {
        let body = alice_sdp();
        format!(
            "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{call_id}-{cseq}\r\nMax-Forwards: 70\r\n\
             To: <{target}>\r\nFrom: \"Alice\" <sip:alice@{REALM}>;tag=al-{call_id}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: <sip:alice@{ALICE}>\r\n{auth}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let challenge = response(&rig.feed(ALICE, &invite("", 1)), ALICE, 407);
    rig.feed(ALICE, &invite(&proxy_auth(&challenge, "INVITE", target), 2))
}

pub fn proxy_auth(challenge: &Response, method: &str, uri: &str) -> String {
    proxy_auth_as(challenge, method, uri, "alice")
}

pub fn proxy_auth_as(challenge: &Response, method: &str, uri: &str, user: &str) -> String {
    let c = Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, method, uri, user, &format!("{user}-secret-1"), "cafe01", 1);
    format!("Proxy-Authorization: {creds}\r\n")
}

/// What a device answers to `request`: its Via, From, To (with `tag`), Call-ID, CSeq.
pub fn answer(request: &Request, status: u16, tag: &str, contact: &str, body: &str) -> String {
    let h = |n: HeaderName| request.headers.get(n).unwrap().to_string();
    let vias: String = request.headers.get_all(HeaderName::Via).map(|v| format!("Via: {v}\r\n")).collect();
    format!(
        "SIP/2.0 {status} X\r\n{vias}From: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
         Contact: <{contact}>\r\nContent-Length: {}\r\n{}\r\n{body}",
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
        body.len(),
        if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
    )
}

pub fn response(out: &[(SocketAddr, Message)], to: &str, status: u16) -> Response {
    out.iter()
        .find_map(|(a, m)| match m {
            Message::Response(r) if a.to_string() == to && r.status == status => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status} to {to} in {out:#?}"))
}

pub fn request(out: &[(SocketAddr, Message)], to: &str, method: &str) -> Request {
    out.iter()
        .find_map(|(a, m)| match m {
            Message::Request(r) if a.to_string() == to && r.method.as_str() == method => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {method} to {to} in {out:#?}"))
}

/// The `c=` address and the first `m=` port of a description.
pub fn media_address(body: &[u8]) -> (String, u16) {
    let text = String::from_utf8_lossy(body);
    let ip = text.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).unwrap_or_default().trim().to_owned();
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    (ip, port)
}
