//! SRTP (RFC 3711 §3.3) under a fixed master key: the receiving side of a call, fed arbitrary
//! datagrams and authentic ones in an order the fuzzer picks.
//!
//! The first byte picks the suite. The rest is a list of records `[op][len][len bytes]` (the
//! last record takes what is left when `len` runs past the end). By `op & 3`:
//! - 0: the bytes go to `unprotect_rtp` as received: an error leaves them untouched, and a
//!   packet accepted loses exactly its tag and keeps its header;
//! - 1: the sending context protects the bytes first (when it accepts them as RTP), then the
//!   receiving context unprotects them: it must give back the original bytes, or refuse them as
//!   a replay or as too old, never as inauthentic (both sides track the same indices);
//! - 2: as 1, but a bit of the protected packet (picked by `op`) is flipped first: the packet
//!   must be refused and left untouched, and the authentic packet that follows it must still be
//!   accepted as under 1 (a forgery does not move the replay window).
//!
//! With more than `MAX_SOURCES` sources the two sides may forget different ones (refused
//! packets of a known source count as a use on the receiving side), and a datagram of op 0 may
//! itself be authentic (the seeds hold some, protected under the same key) and move the
//! receiver's indices ahead of the sender's: after either, an authentic packet may also be
//! refused as inauthentic (the two sides guess different rollover counters).
//! - 3: the bytes are the payload of a packet of a fresh pair of contexts: protect, then
//!   unprotect, gives them back.
//!
//! Whatever protect refuses it leaves untouched too.
//!
//! The session keys of both suites are derived once per process; every context (the pair of
//! each input, the fresh pair of each record of op 3) starts as `SrtpContext::fresh` makes it,
//! which is what `SrtpContext::new` makes under the same key (a unit test in `sambung-media`
//! holds them to that), without deriving the keys again.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sambung_media::srtp::{MAX_SOURCES, MAX_TRAILER_LEN, MasterKey, SrtpContext, SrtpError, SrtpProfile};

/// Key and salt of RFC 3711 Appendix B.3.
const MASTER: [u8; 30] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39, 0x0E, 0xC6, 0x75,
    0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6,
];

/// A context of each suite (`SrtpProfile::ALL`) under [`MASTER`], made once: every context of
/// the runs is a fresh one of these.
fn prepared() -> &'static [SrtpContext; 2] {
    static CONTEXTS: OnceLock<[SrtpContext; 2]> = OnceLock::new();
    CONTEXTS.get_or_init(|| SrtpProfile::ALL.map(|profile| SrtpContext::new(profile, &MasterKey::from_bytes(&MASTER))))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    let keyed = &prepared()[usize::from(first & 1)];
    let profile = keyed.profile();
    let mut sender = keyed.fresh();
    let mut receiver = keyed.fresh();
    let mut sources: Vec<[u8; 4]> = Vec::new();
    let mut in_step = true;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        match op & 3 {
            0 => in_step &= !received(&mut receiver, profile, bytes),
            1 | 2 => {
                let mut packet = Vec::with_capacity(bytes.len() + MAX_TRAILER_LEN);
                packet.extend_from_slice(bytes);
                if sender.protect_rtp(&mut packet).is_err() {
                    assert_eq!(packet, bytes, "a refused packet was changed");
                    continue;
                }
                assert_eq!(packet.len(), bytes.len() + profile.rtp_tag_len());
                assert_eq!(packet[..12], bytes[..12], "the header is sent in the clear");
                let ssrc = [bytes[8], bytes[9], bytes[10], bytes[11]];
                if !sources.contains(&ssrc) {
                    sources.push(ssrc);
                }
                if op & 3 == 2 {
                    let mut tampered = packet.clone();
                    let bit = usize::from(op >> 2) * 8 + usize::from(*len) % 8;
                    let at = bit / 8 % tampered.len();
                    tampered[at] ^= 1 << (bit % 8);
                    let copy = tampered.clone();
                    assert!(receiver.unprotect_rtp(&mut tampered).is_err(), "a tampered packet was accepted");
                    assert_eq!(tampered, copy, "a refused packet was changed");
                }
                match receiver.unprotect_rtp(&mut packet) {
                    Ok(()) => assert_eq!(packet, bytes, "unprotect did not give back the packet"),
                    Err(SrtpError::Replayed | SrtpError::TooOld) => {}
                    Err(SrtpError::AuthenticationFailed) if sources.len() > MAX_SOURCES || !in_step => {}
                    Err(e) => panic!("an authentic packet was refused: {e}"),
                }
            }
            _ => round_trip(keyed, bytes),
        }
    }
});

/// Unprotects a datagram as received; true when it was accepted.
fn received(receiver: &mut SrtpContext, profile: SrtpProfile, bytes: &[u8]) -> bool {
    let mut packet = bytes.to_vec();
    match receiver.unprotect_rtp(&mut packet) {
        Ok(()) => {
            assert_eq!(packet.len(), bytes.len() - profile.rtp_tag_len());
            assert_eq!(packet[..12], bytes[..12], "the header changed");
        }
        Err(_) => assert_eq!(packet, bytes, "a refused packet was changed"),
    }
    packet.len() < bytes.len()
}

/// `payload` in an RTP packet of a new source, through a fresh pair of contexts.
fn round_trip(keyed: &SrtpContext, payload: &[u8]) {
    let mut rtp = vec![0x80, 0x00, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xCA, 0xFE, 0xBA, 0xBE];
    rtp.extend_from_slice(payload);
    let mut packet = rtp.clone();
    keyed.fresh().protect_rtp(&mut packet).expect("a well-formed RTP packet is protected");
    assert_eq!(packet[..12], rtp[..12], "the header is sent in the clear");
    keyed.fresh().unprotect_rtp(&mut packet).expect("an authentic packet is accepted");
    assert_eq!(packet, rtp);
}
