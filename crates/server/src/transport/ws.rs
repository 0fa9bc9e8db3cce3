//! SIP over WebSocket and secure WebSocket (RFC 7118).
//!
//! The listeners speak HTTP/1.1 through hyper and route through axum [`Router`]s: a WebSocket
//! upgrade (outside `/api/`) goes to SIP, anything else to the web app and its API when the
//! listener serves them ([`Routes::web`], the secure listeners by default). The upgrade must offer the `sip` subprotocol, which is echoed
//! (RFC 7118 §4.1); without it the request is refused with 400. Each text or binary frame holds
//! exactly one SIP message (RFC 7118 §5), parsed like a datagram.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;
use tracing::debug;

use super::stream::{Peer, StreamContext};
use super::tcp::{Slot, accept_loop};
use super::tls;
use super::{CONN_QUEUE, ConnCommand, ConnId, Connection, Event, Inbound, TransportKind};
use crate::shutdown::Shutdown;
use crate::web::api::ClientAddr;

/// The WebSocket subprotocol of RFC 7118 §4.1.
pub const SUBPROTOCOL: &str = "sip";

/// Who is on the other end of an HTTP connection, and its slot under the connection limit
/// (held until both the HTTP connection and any WebSocket upgraded from it have ended).
#[derive(Debug, Clone)]
pub struct HttpPeer {
    pub peer: Peer,
    _permit: Arc<Slot>,
}

/// The routes of a WebSocket listener: every path upgrades to SIP over WebSocket.
pub fn router(ctx: StreamContext) -> Router {
    Router::new().fallback(upgrade).with_state(ctx)
}

/// What a listener serves: SIP over WebSocket, and maybe the web app and its API.
#[derive(Clone, Debug)]
pub struct Routes {
    pub sip: Router,
    pub web: Option<Router>,
}

impl Routes {
    /// The router for `request`: SIP for a WebSocket upgrade outside `/api/` (or when there is
    /// no web), else the web.
    fn pick<B>(&self, request: &hyper::Request<B>) -> &Router {
        let upgrade = request
            .headers()
            .get(hyper::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        match &self.web {
            Some(web) if !upgrade || request.uri().path().starts_with("/api/") => web,
            _ => &self.sip,
        }
    }
}

/// RFC 7118 §4.1: the handshake must offer `sip`, which the answer echoes.
async fn upgrade(
    State(ctx): State<StreamContext>,
    Extension(http_peer): Extension<HttpPeer>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        debug!(remote = %http_peer.peer.remote, "WebSocket upgrade without the sip subprotocol refused");
        return (StatusCode::BAD_REQUEST, "RFC 7118: the WebSocket subprotocol \"sip\" is required\n").into_response();
    }
    ws.max_message_size(ctx.max_message_size)
        .max_frame_size(ctx.max_message_size)
        .on_upgrade(move |socket| session(socket, http_peer, ctx, None))
}

/// One SIP-over-WebSocket connection, until closed, idle, or shutdown. `account` is the
/// account it was opened signed in as (the web app's session), for every message on it.
pub async fn session(mut socket: WebSocket, http_peer: HttpPeer, mut ctx: StreamContext, account: Option<i64>) {
    let peer = http_peer.peer;
    let id = ConnId::next();
    let (tx, mut rx) = mpsc::channel(CONN_QUEUE);
    let conn = Connection { id, transport: peer.transport, local: peer.local, remote: peer.remote, tx };
    if ctx.events.send(Event::Connected(conn)).await.is_err() {
        return;
    }
    debug!(conn = %id, transport = %peer.transport, remote = %peer.remote, "WebSocket connection opened");
    let mut deadline = Instant::now() + ctx.idle_timeout;
    let reason = loop {
        tokio::select! {
            biased;
            _ = ctx.shutdown.wait() => break "shutdown",
            cmd = rx.recv() => match cmd {
                Some(ConnCommand::Send(bytes)) => {
                    if socket.send(frame(bytes)).await.is_err() {
                        break "write failed";
                    }
                }
                Some(ConnCommand::Close) | None => break "closed by core",
            },
            received = socket.recv() => {
                let bytes = match received {
                    Some(Ok(WsMessage::Text(text))) => Bytes::from(text),
                    Some(Ok(WsMessage::Binary(bytes))) => bytes,
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {
                        deadline = Instant::now() + ctx.idle_timeout;
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | None => break "closed by peer",
                    Some(Err(_)) => break "read failed",
                };
                deadline = Instant::now() + ctx.idle_timeout;
                if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                    // A CRLF keep-alive inside a frame, as some clients send: ping gets a pong.
                    if bytes.starts_with(b"\r\n\r\n") && socket.send(WsMessage::Text(Utf8Bytes::from_static("\r\n"))).await.is_err() {
                        break "write failed";
                    }
                    continue;
                }
                if !ctx.gate.admit(peer.remote.ip()) {
                    break "banned";
                }
                let inbound = Inbound { transport: peer.transport, local: peer.local, remote: peer.remote, conn: Some(id), account, bytes };
                if ctx.events.send(Event::Inbound(inbound)).await.is_err() {
                    break "core stopped";
                }
            },
            _ = sleep_until(deadline) => break "idle timeout",
        }
    };
    debug!(conn = %id, remote = %peer.remote, reason, "WebSocket connection closed");
    let _ = ctx.events.send(Event::Disconnected(id)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(WsMessage::Close(None))).await;
}

/// A text frame when the message is UTF-8 (as SIP messages normally are), else binary.
fn frame(bytes: Bytes) -> WsMessage {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => WsMessage::Text(text),
        Err(_) => WsMessage::Binary(bytes),
    }
}

/// Serves HTTP (for WS) or HTTPS (for WSS, when `tls` is given) on `listener` with `router`.
pub async fn serve(
    listener: TcpListener,
    transport: TransportKind,
    tls: Option<Arc<ServerConfig>>,
    router: Routes,
    ctx: StreamContext,
    limit: Arc<Semaphore>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let idle = ctx.idle_timeout;
    accept_loop(listener, transport, limit, ctx.gate.clone(), ctx.shutdown.clone(), move |conn| {
        let peer = Peer { transport, local: conn.local, remote: conn.remote };
        let http_peer = HttpPeer { peer, _permit: Arc::new(conn.permit) };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let mut shutdown = ctx.shutdown.clone();
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return http(conn.stream, http_peer, router, idle, shutdown).await;
            };
            if let Some(tls) = tls::handshake(&acceptor, conn.stream, peer.remote, &mut shutdown).await {
                http(tls, http_peer, router, idle, shutdown).await;
            }
        });
    })
    .await;
}

/// One HTTP/1.1 connection, with upgrades, until it ends or shutdown.
async fn http<I>(io: I, http_peer: HttpPeer, routes: Routes, idle: Duration, mut shutdown: Shutdown)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ClientAddr(http_peer.peer.remote));
        request.extensions_mut().insert(http_peer.clone());
        let mut router = routes.pick(&request).clone();
        async move { router.call(request).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}
