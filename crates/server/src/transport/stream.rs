//! One stream connection (TCP or TLS): framing, keep-alives, idle timeout, writes.
//!
//! RFC 3261 §18.3: on a stream, each message ends where its Content-Length says; a connection
//! that cannot be framed any more is answered if possible and closed. RFC 5626 §4.4.1: a
//! double CRLF is a keep-alive ping, answered with a single CRLF (pong).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, trace};

use super::tcp::Slot;
use super::{CONN_QUEUE, ConnCommand, ConnId, Connection, Event, Events, Inbound, TransportKind};
use crate::guard::SharedGate;
use crate::shutdown::Shutdown;

/// How long a connection waits for the answer to an unframeable message before closing.
const FRAMING_ERROR_LINGER: Duration = Duration::from_secs(2);

/// How much the read buffer grows at a time.
const READ_CHUNK: usize = 4096;

/// What a stream connection needs from its listener.
#[derive(Debug, Clone)]
pub struct StreamContext {
    pub events: Events,
    /// Asked about each connection and each framed message before it is parsed.
    pub gate: SharedGate,
    pub max_message_size: usize,
    pub idle_timeout: Duration,
    pub shutdown: Shutdown,
}

/// The peer of a connection and the listener it came through.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub transport: TransportKind,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// What [`next_frame`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete SIP message of this many bytes.
    Message(usize),
    /// A keep-alive ping (CRLF CRLF) of 4 bytes: answer with CRLF.
    Ping,
    /// A lone CRLF (a pong, or padding) of 2 bytes: drop it.
    Crlf,
    /// More bytes are needed.
    Incomplete,
    /// The stream cannot be framed.
    Error(sambung_sip::FrameError),
}

/// Frames the front of a stream buffer (RFC 3261 §18.3, RFC 5626 §4.4.1).
pub fn next_frame(buf: &[u8], max_size: usize) -> Frame {
    const PING: &[u8] = b"\r\n\r\n";
    if buf.starts_with(PING) {
        return Frame::Ping;
    }
    if buf.first() == Some(&b'\r') {
        if buf.len() < PING.len() && PING.starts_with(buf) {
            return Frame::Incomplete;
        }
        if buf.starts_with(b"\r\n") {
            return Frame::Crlf;
        }
    }
    match sambung_sip::frame_stream(buf, max_size) {
        Ok(Some(n)) => Frame::Message(n),
        Ok(None) => Frame::Incomplete,
        Err(e) => Frame::Error(e),
    }
}

/// Runs one connection until the peer closes it, it idles out, it breaks, or shutdown.
/// `permit` is its slot under the connection limit, released when it ends.
pub async fn run<S>(io: S, peer: Peer, ctx: StreamContext, permit: Slot)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    run_with(io, peer, ctx, Some(permit), mpsc::channel(CONN_QUEUE), None).await;
}

/// [`run`] with the connection's command queue made already (an outgoing connection takes
/// messages before it is up); `permit` is `None` for a connection we opened, which sends a
/// keep-alive ping (CRLF CRLF, RFC 5626 §4.4.1) every `keepalive` so that the far end and
/// the NATs on the way keep the flow open.
pub async fn run_with<S>(
    mut io: S,
    peer: Peer,
    mut ctx: StreamContext,
    permit: Option<Slot>,
    (tx, mut rx): (mpsc::Sender<ConnCommand>, mpsc::Receiver<ConnCommand>),
    keepalive: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = ConnId::next();
    let conn = Connection { id, transport: peer.transport, local: peer.local, remote: peer.remote, tx };
    if ctx.events.send(Event::Connected(conn)).await.is_err() {
        return;
    }
    debug!(conn = %id, transport = %peer.transport, remote = %peer.remote, "connection opened");
    let reason = serve(&mut io, id, peer, &mut ctx, &mut rx, keepalive).await;
    debug!(conn = %id, remote = %peer.remote, reason, "connection closed");
    let _ = ctx.events.send(Event::Disconnected(id)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
    drop(permit);
}

async fn serve<S>(
    io: &mut S,
    id: ConnId,
    peer: Peer,
    ctx: &mut StreamContext,
    rx: &mut mpsc::Receiver<ConnCommand>,
    keepalive: Option<Duration>,
) -> &'static str
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut deadline = Instant::now() + ctx.idle_timeout;
    // After a framing error: stop reading, wait briefly for the core's answer.
    let mut lingering = false;
    let mut ping_at = keepalive.map(|every| Instant::now() + every);
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            _ = ctx.shutdown.wait() => return "shutdown",
            cmd = rx.recv() => match cmd {
                Some(ConnCommand::Send(bytes)) => {
                    if io.write_all(&bytes).await.is_err() {
                        return "write failed";
                    }
                    if lingering {
                        // The answer to the unframeable message: done.
                        let _ = io.flush().await;
                        return "framing error";
                    }
                }
                Some(ConnCommand::Close) | None => return if lingering { "framing error" } else { "closed by core" },
            },
            read = io.read_buf(&mut buf), if !lingering => match read {
                Ok(0) => return "closed by peer",
                Err(_) => return "read failed",
                Ok(_) => {
                    deadline = Instant::now() + ctx.idle_timeout;
                    match drain(&mut buf, io, id, peer, ctx).await {
                        Ok(()) => {}
                        Err(Drained::Closed) => return "core stopped",
                        Err(Drained::Banned) => return "banned",
                        Err(Drained::WriteFailed) => return "write failed",
                        Err(Drained::FramingError) => {
                            lingering = true;
                            deadline = Instant::now() + FRAMING_ERROR_LINGER;
                        }
                    }
                }
            },
            _ = sleep_until(deadline) => return if lingering { "framing error" } else { "idle timeout" },
            _ = sleep_until(ping_at.unwrap_or(deadline)), if ping_at.is_some() && !lingering => {
                trace!(conn = %id, "keep-alive ping sent");
                if io.write_all(b"\r\n\r\n").await.is_err() {
                    return "write failed";
                }
                ping_at = keepalive.map(|every| Instant::now() + every);
            }
        }
    }
}

enum Drained {
    Closed,
    Banned,
    WriteFailed,
    FramingError,
}

/// Hands every complete message in `buf` to the core and answers keep-alives.
async fn drain<S>(buf: &mut BytesMut, io: &mut S, id: ConnId, peer: Peer, ctx: &StreamContext) -> Result<(), Drained>
where
    S: AsyncWrite + Unpin,
{
    let inbound = |bytes: Bytes| Inbound {
        transport: peer.transport,
        local: peer.local,
        remote: peer.remote,
        conn: Some(id),
        account: None,
        bytes,
    };
    loop {
        match next_frame(buf, ctx.max_message_size) {
            Frame::Incomplete => return Ok(()),
            Frame::Ping => {
                let _ = buf.split_to(4);
                trace!(conn = %id, "keep-alive ping");
                io.write_all(b"\r\n").await.map_err(|_| Drained::WriteFailed)?;
            }
            Frame::Crlf => {
                let _ = buf.split_to(2);
            }
            Frame::Message(n) => {
                if !ctx.gate.admit(peer.remote.ip()) {
                    return Err(Drained::Banned);
                }
                let bytes = buf.split_to(n).freeze();
                ctx.events.send(Event::Inbound(inbound(bytes))).await.map_err(|_| Drained::Closed)?;
            }
            Frame::Error(e) => {
                debug!(conn = %id, remote = %peer.remote, error = %e, "unframeable stream");
                let bytes = buf.split().freeze();
                ctx.events.send(Event::FramingError(inbound(bytes), e)).await.map_err(|_| Drained::Closed)?;
                return Err(Drained::FramingError);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 65535;

    /// A connection we opened pings (CRLF CRLF) at its interval, and what it is told to send
    /// still goes out; its opening reaches call control like an accepted one's.
    #[tokio::test(start_paused = true)]
    async fn our_connections_ping_at_their_interval() {
        let (events, mut receivers) = Events::channels(1, 8);
        let controller = crate::shutdown::ShutdownController::new();
        let ctx = StreamContext {
            events,
            gate: SharedGate::new(Default::default()),
            max_message_size: MAX,
            idle_timeout: Duration::from_secs(600),
            shutdown: controller.handle(),
        };
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let peer = Peer { transport: TransportKind::Tcp, local: addr, remote: addr };
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        tx.send(ConnCommand::Send(Bytes::from_static(b"OPTIONS"))).await.unwrap();
        tokio::spawn(run_with(ours, peer, ctx, None, (tx, rx), Some(Duration::from_secs(100))));
        // Call control keeps the connection (its queue) while it is open.
        let Some(Event::Connected(_conn)) = receivers[0].recv().await else { panic!("no Connected") };
        let mut buf = vec![0u8; 64];
        let n = theirs.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"OPTIONS");
        let start = Instant::now();
        let n = theirs.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\r\n\r\n");
        assert!(start.elapsed() >= Duration::from_secs(99), "{:?}", start.elapsed());
        let n = theirs.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\r\n\r\n");
        assert!(start.elapsed() >= Duration::from_secs(199), "{:?}", start.elapsed());
    }

    #[test]
    fn keep_alives() {
        assert_eq!(next_frame(b"\r\n\r\n", MAX), Frame::Ping);
        assert_eq!(next_frame(b"\r\n\r\nOPTIONS", MAX), Frame::Ping);
        assert_eq!(next_frame(b"\r\n", MAX), Frame::Incomplete);
        assert_eq!(next_frame(b"\r\n\r", MAX), Frame::Incomplete);
        assert_eq!(next_frame(b"\r\nOPTIONS", MAX), Frame::Crlf);
        assert_eq!(next_frame(b"", MAX), Frame::Incomplete);
    }

    #[test]
    fn frames_by_content_length() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcNEXT";
        assert_eq!(next_frame(msg, MAX), Frame::Message(msg.len() - 4));
        assert_eq!(next_frame(&msg[..20], MAX), Frame::Incomplete);
    }

    #[test]
    fn negative_content_length_is_an_error() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n";
        assert!(matches!(next_frame(msg, MAX), Frame::Error(_)));
    }
}
