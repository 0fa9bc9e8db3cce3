//! Sans-IO SIP for Sambung.
//!
//! This crate parses and prints SIP messages (RFC 3261 §7, §20, §25), runs client and server
//! transactions (§17), tracks dialogs (§12) and checks digest credentials (RFC 7616, RFC 8760).
//! It never opens a socket and never reads a clock: every input that depends on time takes `now`
//! as an argument, and every timer is reported back to the driver as a deadline.
//!
//! # Run loop
//!
//! ```
//! use bytes::Bytes;
//! use sambung_sip::{Message, Method};
//!
//! // bytes arrive from a datagram socket (the driver owns the socket) ...
//! let datagram = Bytes::from_static(
//!     b"OPTIONS sip:sambung.example SIP/2.0\r\n\
//!       Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
//!       Max-Forwards: 70\r\n\
//!       To: <sip:sambung.example>\r\n\
//!       From: <sip:alice@example.com>;tag=1928301774\r\n\
//!       Call-ID: a84b4c76e66710\r\n\
//!       CSeq: 63104 OPTIONS\r\n\
//!       Content-Length: 0\r\n\r\n",
//! );
//! // ... the core parses them ...
//! let Message::Request(request) = Message::parse(datagram).unwrap() else { unreachable!() };
//! assert_eq!(request.method, Method::Options);
//! // ... and builds the answer, which the driver sends back the way the request came.
//! let response = request.reply(200, "OK");
//! let wire = Message::Response(response).to_bytes();
//! assert!(wire.starts_with(b"SIP/2.0 200 OK\r\n"));
//! ```
//!
//! Errors come from bad input and carry the answer the RFC asks for: see [`ParseError::status`].
//! Panics are bugs.

pub mod dialog;
pub mod digest;
mod error;
mod header;
mod message;
mod method;
mod parse;
mod print;
pub mod text;
pub mod transaction;
mod typed;
mod uri;
mod validate;

pub use error::{ErrorKind, ParseError};
pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Request, Response, reason_phrase};
pub use method::Method;
pub use parse::{FrameError, MAX_MESSAGE_SIZE, frame_stream};
pub use text::SipStr;
pub use typed::{CSeq, NameAddr, Transport, Via};
pub use uri::{Host, Param, Params, SipUri, Uri};
pub use validate::{Rejection, RequestPolicy};
