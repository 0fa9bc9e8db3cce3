//! SIP over WebSocket as the server reads it (crates/server/src/transport/ws.rs): arbitrary bytes
//! from a client, after the HTTP upgrade, read by the server side of the tungstenite version
//! axum runs, with the limits the server configures (frame and message both at most
//! `limits.max_message_size`, 65535 by default). Each text or binary message goes to the SIP
//! parser, as a datagram would; a message of only CR and LF is a keep-alive, answered with CRLF
//! when it is a ping (`\r\n\r\n`).
//!
//! Never a panic; no message longer than the limit is handed out; and reading a finite stream
//! ends with an error (the connection closed or reset), so the session loop ends.
//!
//! A first byte of 0x70-0x7F (RSV1-3 all set: a frame the server refuses) does not go to the
//! socket but picks a small limit, 8 to 128 bytes, so that the limits are reached with short
//! inputs too.
#![no_main]

use std::io::{self, Read, Write};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sambung_sip::Message as SipMessage;
use tungstenite::protocol::{Message, Role, WebSocket, WebSocketConfig};

/// The server's default `limits.max_message_size` (crates/server/src/default-config.toml).
const SERVER_LIMIT: usize = 65535;

/// The client's bytes to read; what the server writes is kept (and bounded by what it reads).
struct Client<'a> {
    input: &'a [u8],
    written: Vec<u8>,
}

impl Read for Client<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Client<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let (limit, input) = match data.split_first() {
        Some((&b, rest)) if b & 0xF0 == 0x70 => (usize::from(b & 0x0F) * 8 + 8, rest),
        _ => (SERVER_LIMIT, data),
    };
    // As axum's `WebSocketUpgrade::max_message_size` and `max_frame_size` set them, over the
    // defaults of everything else (masked client frames required).
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(limit);
    config.max_frame_size = Some(limit);
    // The server reads into a 128 KiB buffer (tungstenite's default), which takes any input in
    // one read. Zero-filling and freeing that buffer for every input made most of the time of a
    // run; one byte more than the input also takes it in one read, so the frames seen are the
    // same.
    config.read_buffer_size = (input.len() + 1).min(config.read_buffer_size);
    let mut socket = WebSocket::from_raw_socket(Client { input, written: Vec::new() }, Role::Server, Some(config));

    // Every message takes at least a 2-byte frame header, so a finite input gives few reads.
    let mut ended = false;
    for _ in 0..=input.len() / 2 + 2 {
        let bytes = match socket.read() {
            Ok(Message::Text(text)) => Bytes::from(text),
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Ping(payload) | Message::Pong(payload)) => {
                assert!(payload.len() <= 125, "control frame of {} bytes", payload.len());
                continue;
            }
            Ok(Message::Close(_)) => continue,
            Ok(Message::Frame(_)) => panic!("a raw frame was read"),
            Err(_) => {
                ended = true;
                break;
            }
        };
        assert!(bytes.len() <= limit, "a message of {} bytes passed the {limit}-byte limit", bytes.len());
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            if bytes.starts_with(b"\r\n\r\n") && socket.send(Message::text("\r\n")).is_err() {
                ended = true;
                break;
            }
            continue;
        }
        if let Ok(message) = SipMessage::parse(bytes) {
            let _ = message.to_bytes();
        }
    }
    assert!(ended, "reading a finite stream did not end");
});
