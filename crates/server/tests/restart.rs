//! A restart loses nothing: accounts, registrations, stored messages and call records survive
//! `sambung serve` being stopped and started again on the same data directory, and they work:
//! a device registered before the restart is called after it without registering again, and a
//! message stored for an offline user is delivered when that user's device comes online.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::clients::{REALM, User, add_user, server_config, server_rtp_range};
use common::{Server, temp_dir};
use sambung_sip::digest::{self, Challenge};
use sambung_sip::{HeaderName, Message, Request, Response};

/// A bare-bones phone on a UDP socket: it writes requests and answers by hand, with digest.
struct Phone {
    user: &'static str,
    password: &'static str,
    socket: UdpSocket,
    /// Its RTP socket: the SDP names it (a port of its own, not a fixed one that another
    /// test's program might hold); nothing is sent on it.
    media: UdpSocket,
    cseq: u32,
}

impl Phone {
    fn new(user: &'static str, password: &'static str) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").unwrap();
        Phone { user, password, socket, media, cseq: 0 }
    }

    /// Its SDP: PCMU on its own media socket.
    fn sdp(&self) -> String {
        let port = self.media.local_addr().unwrap().port();
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n\
             a=rtpmap:0 PCMU/8000\r\n"
        )
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn request(&mut self, method: &str, uri: &str, to: &str, call_id: &str, extra: &str, body: &str) -> String {
        self.cseq += 1;
        let (user, addr, cseq) = (self.user, self.addr(), self.cseq);
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {addr};branch=z9hG4bK{call_id}-{cseq};rport\r\n\
             Max-Forwards: 70\r\nTo: {to}\r\nFrom: <sip:{user}@{REALM}>;tag={user}-tag\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:{user}@{addr}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn send(&self, server: SocketAddr, text: &str) {
        self.socket.send_to(text.as_bytes(), server).unwrap();
    }

    /// The next message for which `want` holds, within 5 s.
    fn next(&self, mut want: impl FnMut(&Message) -> bool) -> Message {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65535];
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.socket.recv_from(&mut buf)
                && let Ok(m) = Message::parse(Bytes::copy_from_slice(&buf[..n]))
                && want(&m)
            {
                return m;
            }
        }
        panic!("{}: nothing wanted arrived in 5 s", self.user);
    }

    fn final_response(&self, call_id: &str) -> Response {
        match self.next(|m| matches!(m, Message::Response(r) if r.status >= 200 && r.call_id() == Some(call_id))) {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    fn incoming(&self, method: &str) -> Request {
        match self.next(|m| matches!(m, Message::Request(r) if r.method.as_str() == method)) {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    /// Sends a request, answers the 401/407 with credentials, returns the final answer.
    fn authenticated(
        &mut self,
        server: SocketAddr,
        method: &str,
        uri: &str,
        to: &str,
        call_id: &str,
        body: &str,
    ) -> Response {
        let extra = if body.is_empty() { String::new() } else { "Content-Type: text/plain\r\n".into() };
        let first = self.request(method, uri, to, call_id, &extra, body);
        self.send(server, &first);
        let challenge = self.final_response(call_id);
        let header = match challenge.status {
            401 => (HeaderName::WwwAuthenticate, "Authorization"),
            407 => (HeaderName::ProxyAuthenticate, "Proxy-Authorization"),
            other => panic!("{method}: expected a challenge, got {other}"),
        };
        let c = Challenge::parse(challenge.headers.get(header.0).unwrap()).unwrap();
        let creds = digest::respond(&c, method, uri, self.user, self.password, "0a1b2c3d", 1);
        let second = self.request(method, uri, to, call_id, &format!("{}: {creds}\r\n{extra}", header.1), body);
        self.send(server, &second);
        self.final_response(call_id)
    }

    /// Answers `request` (a phone's 2xx or other final response).
    fn answer(&self, server: SocketAddr, request: &Request, status: u16, body: &str) {
        let vias: String = request.headers.get_all(HeaderName::Via).map(|v| format!("Via: {v}\r\n")).collect();
        let h = |n: HeaderName| request.headers.get(n).unwrap().to_string();
        let text = format!(
            "SIP/2.0 {status} Answer\r\n{vias}From: {}\r\nTo: {};tag={}-dev\r\nCall-ID: {}\r\nCSeq: {}\r\n\
             Contact: <sip:{}@{}>\r\n{}Content-Length: {}\r\n\r\n{body}",
            h(HeaderName::From),
            h(HeaderName::To),
            self.user,
            h(HeaderName::CallId),
            h(HeaderName::CSeq),
            self.user,
            self.addr(),
            if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
            body.len()
        );
        self.send(server, &text);
    }
}

/// The call records of alice's calls in the store of `dir` (the server may be running).
fn cdrs(dir: &std::path::Path) -> Vec<sambung_store::Cdr> {
    let url = format!("sqlite://{}", dir.join("data/sambung.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = sambung_store::Store::open(&url).await.unwrap();
        let cdrs = store.cdrs_for("alice", 10).await.unwrap();
        store.close().await;
        cdrs
    })
}

/// Waits until the call records of `call_ids` are in the store (the store task writes them
/// after the BYE); fails after 10 s.
fn wait_for_cdrs(dir: &std::path::Path, call_ids: &[&str], server: &Server) -> Vec<sambung_store::Cdr> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cdrs = cdrs(dir);
        if call_ids.iter().all(|id| cdrs.iter().any(|c| c.call_id == *id)) {
            return cdrs;
        }
        assert!(
            Instant::now() < deadline,
            "the call records of {call_ids:?} were not written within 10 s; in the store: {:?}\n{}",
            cdrs.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>(),
            common::clients::tail(&server.log(), 6000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn restart_keeps_accounts_bindings_messages_and_call_records() {
    let dir = temp_dir("restart");
    let extra = format!("domains = [\"{REALM}\"]\n{}", server_config(server_rtp_range()));
    let config = dir.join("sambung.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n{extra}\n", dir.join("data").display().to_string())).unwrap();
    for user in
        [User::new("alice", "wonderland-71"), User::new("bob", "builder-pass-22"), User::new("carol", "christmas-33")]
    {
        add_user(&config, &user);
    }
    let mut alice = Phone::new("alice", "wonderland-71");
    let mut bob = Phone::new("bob", "builder-pass-22");
    let mut carol = Phone::new("carol", "christmas-33");

    // Before: bob registers, alice leaves carol (offline) a message and calls bob.
    let mut server = Server::start_in(dir.clone(), &extra);
    let sip = server.udp_addr();
    let registrar = format!("sip:{REALM}");
    let ok = bob.authenticated(sip, "REGISTER", &registrar, &format!("<sip:bob@{REALM}>"), "reg-bob", "");
    assert_eq!(ok.status, 200, "{}", server.log());
    let carol_uri = format!("sip:carol@{REALM}");
    let stored = alice.authenticated(
        sip,
        "MESSAGE",
        &carol_uri,
        &format!("<{carol_uri}>"),
        "msg-1",
        "see you after the restart",
    );
    assert_eq!(stored.status, 202);
    call_and_hang_up(&mut alice, &bob, sip, "call-before");
    // the call record is written by the store task: wait for it, then stop cleanly
    wait_for_cdrs(&dir, &["call-before"], &server);
    assert_eq!(server.terminate(Duration::from_secs(10)).and_then(|s| s.code()), Some(0), "{}", server.log());

    // After: the same data directory, new ports.
    let server = Server::start_in(dir.clone(), &extra);
    let sip = server.udp_addr();
    assert!(server.log().contains("bindings=1"), "bob's binding restored:\n{}", server.log());
    // bob did not register again, yet his phone rings
    call_and_hang_up(&mut alice, &bob, sip, "call-after");
    // carol comes online and gets the message stored before the restart
    let ok = carol.authenticated(sip, "REGISTER", &registrar, &format!("<{carol_uri}>"), "reg-carol", "");
    assert_eq!(ok.status, 200);
    let message = carol.incoming("MESSAGE");
    assert_eq!(&message.body[..], b"see you after the restart");
    carol.answer(sip, &message, 200, "");

    // the call records of both calls are in the store
    let cdrs = wait_for_cdrs(&dir, &["call-before", "call-after"], &server);
    drop(server);
    assert!(cdrs.iter().all(|c| c.callee == "bob" && c.answered_at.is_some()));
    let _ = std::fs::remove_dir_all(dir);
}

/// alice calls bob, bob's phone answers, alice hangs up.
fn call_and_hang_up(alice: &mut Phone, bob: &Phone, sip: SocketAddr, call_id: &str) {
    let uri = format!("sip:bob@{REALM}");
    let to = format!("<{uri}>");
    let extra = "Content-Type: application/sdp\r\n";
    let invite = alice.request("INVITE", &uri, &to, call_id, extra, &alice.sdp());
    alice.send(sip, &invite);
    let challenge = alice.final_response(call_id);
    assert_eq!(challenge.status, 407);
    // the ACK for the 407: the INVITE's Via, CSeq number and the 407's To tag (RFC 3261 §17.1.1.3)
    let to_tag = challenge.to().unwrap().tag().unwrap().to_owned();
    let ack = invite
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace(" INVITE\r\n", " ACK\r\n")
        .replace(&format!("To: {to}\r\n"), &format!("To: {to};tag={to_tag}\r\n"));
    alice.send(sip, &ack);
    let c = Challenge::parse(challenge.headers.get(HeaderName::ProxyAuthenticate).unwrap()).unwrap();
    let creds = digest::respond(&c, "INVITE", &uri, "alice", alice.password, "0a1b2c3d", 1);
    let sdp = alice.sdp();
    let invite = alice.request("INVITE", &uri, &to, call_id, &format!("Proxy-Authorization: {creds}\r\n{extra}"), &sdp);
    let invite_cseq = alice.cseq;
    alice.send(sip, &invite);
    let ringing = bob.incoming("INVITE");
    assert!(!ringing.body.is_empty(), "the offer reaches bob");
    bob.answer(sip, &ringing, 200, &bob.sdp());
    let ok = alice.final_response(call_id);
    assert_eq!(ok.status, 200);
    let tag = ok.to().unwrap().tag().unwrap().to_owned();
    let dialog_to = format!("{to};tag={tag}");
    alice.cseq = invite_cseq - 1; // the ACK for a 2xx carries the INVITE's CSeq number
    let ack = alice.request("ACK", &uri, &dialog_to, call_id, "", "");
    alice.send(sip, &ack);
    let bye = alice.request("BYE", &uri, &dialog_to, call_id, "", "");
    alice.send(sip, &bye);
    let bye_at_bob = bob.incoming("BYE");
    bob.answer(sip, &bye_at_bob, 200, "");
    assert_eq!(alice.final_response(call_id).status, 200, "200 for the BYE");
}
