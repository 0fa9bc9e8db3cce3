//! Sans-IO media for Sambung.
//!
//! This crate parses and prints session descriptions (SDP, RFC 8866), rewrites them for a
//! back-to-back user agent that relays media (offer/answer, RFC 3264), and decides which
//! source each relayed leg latches to (symmetric RTP, RFC 4961). It never opens a socket and
//! never reads a clock: the server's relay owns the sockets and asks this crate what to do.
//!
//! # Relaying a call's media
//!
//! ```
//! use std::net::IpAddr;
//! use sambung_media::latch::Latch;
//! use sambung_media::offer_answer::{has_common_codec, remote_media, rewrite_for_relay};
//! use sambung_media::sdp::SessionDescription;
//!
//! // Alice's offer arrives in an INVITE ...
//! let offer: SessionDescription = "v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns= \r\n\
//!     c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
//!     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
//!     .parse()
//!     .expect("a well-formed offer"); // a parse error carries its status: `SdpError::status`
//!
//! // ... the relay allocates a port pair for Bob's leg and the B2BUA offers Bob the relay.
//! let relay: IpAddr = "198.51.100.1".parse().unwrap();
//! let to_bob = rewrite_for_relay(&offer, relay, &[30000]);
//! assert!(to_bob.to_string().contains("m=audio 30000 RTP/AVP 0 101\r\n"));
//! assert_eq!(to_bob.origin.session_version, 2890844527);
//!
//! // Alice's leg latches to her packets, coming from her SDP address or her SIP source.
//! let mut latch = Latch::new();
//! let alice = remote_media(&offer, &offer.media[0]).unwrap();
//! latch.set_peer(Some(alice.rtp), Some("192.0.2.10".parse().unwrap()));
//! assert!(latch.on_packet("192.0.2.10:49170".parse().unwrap()).accepted());
//!
//! // Bob's answer must share a codec with the offer, or the call is refused with 488.
//! let answer: SessionDescription = "v=0\r\no=bob 1 1 IN IP4 203.0.113.5\r\ns=-\r\n\
//!     c=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
//!     .parse()
//!     .unwrap();
//! assert!(has_common_codec(&offer, &answer));
//! ```
//!
//! Errors come from bad input and say which line is wrong; panics are bugs.
#![forbid(unsafe_code)]

pub mod codec;
pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod jitter;
pub mod latch;
pub mod mixer;
pub mod negotiate;
pub mod offer_answer;
pub mod plc;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod sdes;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod tone;
pub mod transcode;
pub mod wav;
pub mod webrtc;

pub use sdp::{SdpError, SessionDescription};
