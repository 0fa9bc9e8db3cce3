//! SRTCP (RFC 3711 §3.4) under a fixed master key: the receiving side of a call, fed arbitrary
//! datagrams and authentic ones in an order the fuzzer picks.
//!
//! The first byte picks the suite. The rest is a list of records `[op][len][len bytes]` (the
//! last record takes what is left when `len` runs past the end). By `op & 3`:
//! - 0: the bytes go to `unprotect_rtcp` as received: an error leaves them untouched, and a
//!   packet accepted loses its index and tag (14 bytes, or 8 for a short tag) and keeps its
//!   first header and SSRC;
//! - 1: the sending context protects the bytes first (when it accepts them as RTCP), then the
//!   receiving context unprotects them: it must give back the original bytes (SRTCP indices
//!   only grow, and both sides see the same authentic packets, so there is no replay). A
//!   datagram of op 0 may itself be authentic (the seeds hold some, protected under the same
//!   key): once one is accepted, the receiver may be ahead of the sender, and then an authentic
//!   packet may also be refused as a replay or as too old;
//! - 2: as 1, but a bit of the protected packet (picked by `op`) is flipped first: the packet
//!   must be refused and left untouched, and the authentic packet that follows it must still be
//!   accepted;
//! - 3: the bytes follow a receiver report of a fresh pair of contexts: protect keeps the
//!   first header and SSRC in the clear and appends `E` with index 0 and the tag; unprotect
//!   gives the packet back.
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
use sambung_media::srtp::{MAX_TRAILER_LEN, MasterKey, SrtpContext, SrtpError, SrtpProfile};

/// Key and salt of RFC 3711 Appendix B.3.
const MASTER: [u8; 30] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39, 0x0E, 0xC6, 0x75,
    0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6,
];

/// The SRTCP index with its `E` flag, then the 80-bit tag.
const TRAILER: usize = 4 + 10;

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
                if sender.protect_rtcp(&mut packet).is_err() {
                    assert_eq!(packet, bytes, "a refused packet was changed");
                    continue;
                }
                assert_eq!(packet.len(), bytes.len() + TRAILER);
                assert_eq!(packet[..8], bytes[..8], "the first header and SSRC are sent in the clear");
                if op & 3 == 2 {
                    let mut tampered = packet.clone();
                    let bit = usize::from(op >> 2) * 8 + usize::from(*len) % 8;
                    let at = bit / 8 % tampered.len();
                    tampered[at] ^= 1 << (bit % 8);
                    let copy = tampered.clone();
                    assert!(receiver.unprotect_rtcp(&mut tampered).is_err(), "a tampered packet was accepted");
                    assert_eq!(tampered, copy, "a refused packet was changed");
                }
                match receiver.unprotect_rtcp(&mut packet) {
                    Ok(()) => assert_eq!(packet, bytes, "unprotect did not give back the packet"),
                    Err(SrtpError::Replayed | SrtpError::TooOld) if !in_step => {}
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
    match receiver.unprotect_rtcp(&mut packet) {
        Ok(()) => {
            let cut = bytes.len() - packet.len();
            assert!(cut == TRAILER || cut == 4 + profile.rtp_tag_len(), "{cut} bytes cut off");
            assert_eq!(packet[..8], bytes[..8], "the first header and SSRC changed");
        }
        Err(_) => assert_eq!(packet, bytes, "a refused packet was changed"),
    }
    packet.len() < bytes.len()
}

/// `body` after a receiver report of a new source, through a fresh pair of contexts.
fn round_trip(keyed: &SrtpContext, body: &[u8]) {
    let mut rtcp = vec![0x80, 201, 0, 1, 0xCA, 0xFE, 0xBA, 0xBE];
    rtcp.extend_from_slice(body);
    let mut packet = rtcp.clone();
    keyed.fresh().protect_rtcp(&mut packet).expect("an RTCP packet is protected");
    assert_eq!(packet.len(), rtcp.len() + TRAILER);
    assert_eq!(packet[..8], rtcp[..8]);
    assert_eq!(packet[rtcp.len()..rtcp.len() + 4], [0x80, 0, 0, 0], "E set, index 0");
    keyed.fresh().unprotect_rtcp(&mut packet).expect("an authentic packet is accepted");
    assert_eq!(packet, rtcp);
}
