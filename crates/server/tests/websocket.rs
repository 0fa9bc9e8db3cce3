//! SIP over WebSocket and secure WebSocket (RFC 7118) against the built binary.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, options, response};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};

const WAIT: Duration = Duration::from_secs(5);

fn sip_request(url: &str, protocol: Option<&str>) -> tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    }
    request
}

/// Sends OPTIONS in one text frame and returns the answer's status.
async fn options_over<S>(ws: &mut WebSocketStream<S>, target: SocketAddr, transport: &str, call_id: &str) -> u16
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = String::from_utf8(options(target, transport, "192.0.2.1:1".parse().unwrap(), call_id)).unwrap();
    ws.send(Message::text(request)).await.unwrap();
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next()).await.expect("answer in time").expect("open").unwrap();
        match frame {
            Message::Text(_) | Message::Binary(_) => {
                let answer = response(&frame.into_data());
                assert_eq!(answer.call_id(), Some(call_id));
                return answer.status;
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn ws_options_with_sip_subprotocol() {
    let server = Server::start("");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.ports.ws));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, handshake) = client_async(sip_request(&format!("ws://{addr}/"), Some("sip")), tcp).await.unwrap();
    assert_eq!(handshake.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()), Some(&b"sip"[..]));
    assert_eq!(options_over(&mut ws, addr, "WS", "ws-1").await, 200);
    assert_eq!(options_over(&mut ws, addr, "WS", "ws-2").await, 200);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn ws_without_sip_subprotocol_is_refused() {
    let server = Server::start("");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.ports.ws));
    for protocol in [None, Some("chat")] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match client_async(sip_request(&format!("ws://{addr}/"), protocol), tcp).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("upgrade with subprotocol {protocol:?} was accepted"),
        }
    }
}

#[tokio::test]
async fn wss_options() {
    let server = Server::start("");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.ports.wss));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(server.certificate()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let url = format!("wss://localhost:{}/", server.ports.wss);
    let (mut ws, _) = client_async(sip_request(&url, Some("sip")), tls).await.unwrap();
    assert_eq!(options_over(&mut ws, addr, "WSS", "wss-1").await, 200);
}
