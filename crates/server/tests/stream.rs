//! Stream transports against the built binary: TCP keep-alives, idle timeout, connection limit,
//! and OPTIONS over TLS.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, options, read_message, response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const READ: Duration = Duration::from_secs(5);

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.tcp_addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    stream
}

/// Sends OPTIONS on `stream` and returns the status of the answer, or `None` if the
/// connection was closed without one.
fn options_status(stream: &mut TcpStream, server: &Server, call_id: &str) -> Option<u16> {
    let local = stream.local_addr().unwrap();
    stream.write_all(&options(server.tcp_addr(), "TCP", local, call_id)).ok()?;
    let mut buf = Vec::new();
    read_message(stream, &mut buf, READ).map(|m| response(&m).status)
}

#[test]
fn tcp_options_and_crlf_keep_alive() {
    let server = Server::start("");
    let mut stream = connect(&server);
    assert_eq!(options_status(&mut stream, &server, "tcp-1"), Some(200));
    // RFC 5626 §4.4.1: a double CRLF ping is answered with a single CRLF pong.
    stream.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    stream.set_read_timeout(Some(READ)).unwrap();
    stream.read_exact(&mut pong).expect("pong");
    assert_eq!(&pong, b"\r\n");
    // The connection still carries SIP after the keep-alive, and a lone CRLF is ignored.
    stream.write_all(b"\r\n").unwrap();
    assert_eq!(options_status(&mut stream, &server, "tcp-2"), Some(200));
}

#[test]
fn idle_tcp_connection_is_closed() {
    let server = Server::start("[limits]\nidle_timeout = 1\n");
    let mut stream = connect(&server);
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let closed = match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let waited = start.elapsed();
    assert!(closed, "connection was not closed");
    assert!(waited >= Duration::from_millis(900), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(5), "closed too late: {waited:?}");
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let server = Server::start("[limits]\nmax_connections = 2\n");
    let mut first = connect(&server);
    let mut second = connect(&server);
    assert_eq!(options_status(&mut first, &server, "limit-1"), Some(200));
    assert_eq!(options_status(&mut second, &server, "limit-2"), Some(200));
    let mut third = connect(&server);
    assert_eq!(options_status(&mut third, &server, "limit-3"), None, "third connection was served");
    // Closing one frees its slot (the server notices the close asynchronously).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect(&server);
        if options_status(&mut again, &server, "limit-4") == Some(200) {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
    }
    assert_eq!(options_status(&mut second, &server, "limit-5"), Some(200));
}

#[test]
fn tls_options() {
    let server = Server::start("");
    let cert = CertificateDer::from_pem_file(server.certificate()).expect("generated certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server.tls_addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = tcp.local_addr().unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&options(server.tls_addr(), "TLS", local, "tls-1")).unwrap();
    let mut buf = Vec::new();
    let answer = read_message(&mut tls, &mut buf, READ).expect("answer over TLS");
    let answer = response(&answer);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.call_id(), Some("tls-1"));
}
