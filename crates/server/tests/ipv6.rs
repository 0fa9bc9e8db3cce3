//! The built server on IPv6 loopback (`[::1]`) over UDP and TCP: REGISTER with digest
//! authentication and OPTIONS, answers routed back by the Via `received`/`rport` of an IPv6
//! source, and the server's own IPv6 address recognised in Request-URIs.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::clients::{REALM, User, server_config, server_dir_with_users, server_rtp_range};
use common::{Server, read_message, response};
use sambung_sip::digest::{self, Challenge};
use sambung_sip::{HeaderName, Response};

const WAIT: Duration = Duration::from_secs(5);
const ALICE: User<'static> = User::new("alice", "v6-secret");

fn server() -> Server {
    let extra = server_config(server_rtp_range());
    Server::start_on(IpAddr::V6(Ipv6Addr::LOCALHOST), server_dir_with_users(&extra, &[ALICE]), &extra)
}

/// One way to send a request and get its answer.
trait Channel {
    fn transport(&self) -> &'static str;
    fn local(&self) -> SocketAddr;
    fn exchange(&mut self, request: &str) -> Response;
}

struct Udp(UdpSocket, SocketAddr);

impl Channel for Udp {
    fn transport(&self) -> &'static str {
        "UDP"
    }
    fn local(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
    fn exchange(&mut self, request: &str) -> Response {
        self.0.send_to(request.as_bytes(), self.1).unwrap();
        let mut buf = vec![0u8; 65535];
        let (n, from) = self.0.recv_from(&mut buf).expect("an answer over UDP");
        assert_eq!(from, self.1, "the answer leaves from the socket the request came to");
        response(&buf[..n])
    }
}

struct Tcp(TcpStream, Vec<u8>);

impl Channel for Tcp {
    fn transport(&self) -> &'static str {
        "TCP"
    }
    fn local(&self) -> SocketAddr {
        self.0.local_addr().unwrap()
    }
    fn exchange(&mut self, request: &str) -> Response {
        self.0.write_all(request.as_bytes()).unwrap();
        response(&read_message(&mut self.0, &mut self.1, WAIT).expect("an answer over TCP"))
    }
}

fn request(method: &str, uri: &str, via_sent_by: &str, ch: &dyn Channel, cseq: u32, extra: &str) -> String {
    let local = ch.local();
    let t = ch.transport();
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/{t} {via_sent_by};rport;branch=z9hG4bK-v6-{t}-{method}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@[::1]>;tag=v6-{t}\r\n\
         To: <sip:alice@[::1]>\r\n\
         Call-ID: v6-{t}-{method}@[::1]\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@{local};transport={}>\r\n\
         {extra}Content-Length: 0\r\n\r\n",
        t.to_ascii_lowercase()
    )
}

/// The answer's top Via: `received` is the source address without brackets (RFC 3261's
/// via-received, RFC 5118 §4.5) and `rport` its port (RFC 3581).
fn check_via(resp: &Response, ch: &dyn Channel, sent_by: &str) {
    let via = resp.top_via().expect("the answer has our Via");
    let local = ch.local();
    assert_eq!(via.host.as_str(), sent_by.rsplit_once(':').unwrap().0, "{}: sent-by kept", ch.transport());
    assert_eq!(via.params.value("received"), Some("::1"), "{}: {via}", ch.transport());
    assert_eq!(via.params.value("rport"), Some(local.port().to_string().as_str()), "{}: {via}", ch.transport());
}

fn register_and_options(ch: &mut dyn Channel, server: SocketAddr) {
    let t = ch.transport();
    let uri = format!("sip:[::1]:{}", server.port());
    let sent_by = ch.local().to_string();
    let expires = "Expires: 300\r\n";

    let challenge = ch.exchange(&request("REGISTER", &uri, &sent_by, ch, 1, expires));
    assert_eq!(challenge.status, 401, "{t}: REGISTER to our own IPv6 address is challenged");
    check_via(&challenge, ch, &sent_by);
    let www = challenge.headers.get(HeaderName::from("WWW-Authenticate")).expect("a challenge");
    let parsed = Challenge::parse(www).expect("a digest challenge");
    assert_eq!(parsed.realm, REALM);
    let creds = digest::respond(&parsed, "REGISTER", &uri, ALICE.name, ALICE.password, "0a4f113b", 1);
    let authorization = format!("Authorization: {creds}\r\n{expires}");

    let ok = ch.exchange(&request("REGISTER", &uri, &sent_by, ch, 2, &authorization));
    assert_eq!(ok.status, 200, "{t}: {ok:?}");
    check_via(&ok, ch, &sent_by);
    let contacts: Vec<String> = ok.contacts().map(|c| c.uri.to_string()).collect();
    let ours = format!("sip:alice@{};transport={}", ch.local(), t.to_ascii_lowercase());
    // (Over TCP the UDP registration, another Call-ID, is listed too.)
    assert!(contacts.contains(&ours), "{t}: the IPv6 contact is bound and printed as a reference: {contacts:?}");

    // A Via that does not name the source: the answer still comes back, by received and rport.
    let elsewhere = "[2001:db8::9:1]:5099";
    let options = ch.exchange(&request("OPTIONS", &uri, elsewhere, ch, 3, ""));
    assert_eq!(options.status, 200, "{t}: OPTIONS to our own IPv6 address");
    check_via(&options, ch, elsewhere);

    // Another IPv6 literal is not ours: no relaying.
    let foreign = ch.exchange(&request("OPTIONS", "sip:[2001:db8::10]", &sent_by, ch, 4, ""));
    assert_eq!(foreign.status, 403, "{t}: a foreign IPv6 Request-URI");
}

#[test]
fn register_with_digest_and_options_over_ipv6_udp_and_tcp() {
    let server = server();
    assert!(server.udp_addr().is_ipv6());

    let socket = UdpSocket::bind("[::1]:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    register_and_options(&mut Udp(socket, server.udp_addr()), server.udp_addr());

    let stream = TcpStream::connect(server.tcp_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    register_and_options(&mut Tcp(stream, Vec::new()), server.tcp_addr());

    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}
