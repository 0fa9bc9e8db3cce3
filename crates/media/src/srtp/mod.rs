//! SRTP and SRTCP (RFC 3711) with the two suites SDES offers everywhere,
//! `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2).
//!
//! An [`SrtpContext`] holds one direction of a master key: our outbound packets, or the peer's
//! inbound ones. It derives the session keys once (key derivation rate 0), and keeps per-SSRC
//! state: the rollover counter and, receiving, the replay window. Packets are transformed in
//! place in the caller's buffer; protecting appends the trailer, unprotecting verifies and cuts
//! it off. Nothing is allocated per packet as long as the buffer has room for
//! [`MAX_TRAILER_LEN`] more bytes (a new SSRC takes one slot of a small table).
//!
//! ```
//! use sambung_media::srtp::{MasterKey, SrtpContext, SrtpError, SrtpProfile};
//!
//! let key = MasterKey::from_bytes(&[7; 30]); // from SDES (`sdes`) or DTLS-SRTP
//! let mut outbound = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &key);
//! let mut inbound = SrtpContext::new(SrtpProfile::Aes128CmSha1_80, &key);
//!
//! let rtp = [&[0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0x12, 0x34][..], &[0xD5; 160]].concat();
//! let mut packet = Vec::with_capacity(1500);
//! packet.extend_from_slice(&rtp);
//! outbound.protect_rtp(&mut packet).unwrap();
//! assert_eq!(packet.len(), rtp.len() + 10);
//!
//! let mut received = packet.clone();
//! inbound.unprotect_rtp(&mut received).unwrap();
//! assert_eq!(received, rtp);
//! // The same packet again is a replay.
//! assert_eq!(inbound.unprotect_rtp(&mut packet), Err(SrtpError::Replayed));
//! ```

mod keys;
#[cfg(test)]
mod libre_tests;
mod replay;
mod streams;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroize;

use keys::{MAX_KEYSTREAM, SessionKeys, packet_iv};
pub use replay::REPLAY_WINDOW;
use replay::{ReplayWindow, estimate_index};
pub use streams::MAX_SOURCES;
use streams::Streams;

/// The SRTP protection profiles (crypto suites) supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1): 80-bit tags on SRTP and SRTCP.
    Aes128CmSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2): a 32-bit tag on SRTP, 80 bits on SRTCP.
    Aes128CmSha1_32,
}

impl SrtpProfile {
    /// Every supported profile, strongest first.
    pub const ALL: [SrtpProfile; 2] = [SrtpProfile::Aes128CmSha1_80, SrtpProfile::Aes128CmSha1_32];

    /// The crypto suite name used in SDP (RFC 4568 §6.2).
    pub fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::Aes128CmSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The profile a suite name stands for, if supported.
    pub fn from_name(name: &str) -> Option<SrtpProfile> {
        SrtpProfile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The length of the authentication tag on SRTP packets, in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpProfile::Aes128CmSha1_80 => 10,
            SrtpProfile::Aes128CmSha1_32 => 4,
        }
    }

    /// The length of the authentication tag on SRTCP packets, in bytes: 80 bits for both
    /// suites (RFC 4568 §6.2.2).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The most a protected packet grows by: the SRTCP index and an 80-bit tag.
pub const MAX_TRAILER_LEN: usize = SRTCP_INDEX_LEN + 10;

/// The `E` flag and 31-bit index that follow an SRTCP packet (RFC 3711 §3.4).
const SRTCP_INDEX_LEN: usize = 4;

/// The largest SRTP index (RFC 3711 §3.3.1: 48 bits).
const MAX_RTP_INDEX: u64 = (1 << 48) - 1;

/// The largest SRTCP index (RFC 3711 §3.4: 31 bits).
const MAX_RTCP_INDEX: u64 = (1 << 31) - 1;

/// A master key and master salt (RFC 3711 §3.2.1), 128 and 112 bits for both suites. Wiped
/// from memory when dropped; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; 16],
    salt: [u8; 14],
}

impl MasterKey {
    /// The length of key and salt together, as SDES carries them (RFC 4568 §6.1).
    pub const LEN: usize = 30;

    pub fn new(key: [u8; 16], salt: [u8; 14]) -> MasterKey {
        MasterKey { key, salt }
    }

    /// Key and salt from their concatenation, `key || salt`.
    pub fn from_bytes(bytes: &[u8; MasterKey::LEN]) -> MasterKey {
        let mut key = MasterKey { key: [0; 16], salt: [0; 14] };
        key.key.copy_from_slice(&bytes[..16]);
        key.salt.copy_from_slice(&bytes[16..]);
        key
    }

    /// `key || salt`.
    pub fn to_bytes(&self) -> [u8; MasterKey::LEN] {
        let mut bytes = [0; MasterKey::LEN];
        bytes[..16].copy_from_slice(&self.key);
        bytes[16..].copy_from_slice(&self.salt);
        bytes
    }

    pub fn key(&self) -> &[u8; 16] {
        &self.key
    }

    pub fn salt(&self) -> &[u8; 14] {
        &self.salt
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
        self.salt.zeroize();
    }
}

/// Why a packet was not protected or not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("version {0} (only 2 is defined)")]
    Version(u8),
    #[error("RTP header (CSRC list or extension) runs past the end of the packet")]
    HeaderTruncated,
    #[error("payload of {0} bytes is longer than one keystream (1 MiB)")]
    TooLong(usize),
    #[error("authentication tag does not match")]
    AuthenticationFailed,
    #[error("packet index already received (replay)")]
    Replayed,
    #[error("packet index older than the replay window")]
    TooOld,
    #[error("master key exhausted: its packet indices or its lifetime are used up")]
    KeyExhausted,
}

/// One direction of an SRTP/SRTCP session under one master key (RFC 3711 §3.2): protects our
/// packets, or unprotects the peer's. Do not use one context for both directions with the
/// same key: each direction needs its own master key (RFC 4568 §6.1).
pub struct SrtpContext {
    profile: SrtpProfile,
    /// Shared with the contexts [`SrtpContext::fresh`] makes; never changed once derived.
    keys: Arc<SessionKeys>,
    /// Per SSRC, the highest SRTP index sent or received and, receiving, the replay window.
    rtp: Streams<ReplayWindow>,
    /// Per SSRC, the highest SRTCP index sent or received and, receiving, the replay window.
    rtcp: Streams<ReplayWindow>,
    /// The master key's lifetime in packets (RFC 4568 §6.1), counted for SRTP and SRTCP apart.
    lifetime: Option<u64>,
    rtp_packets: u64,
    rtcp_packets: u64,
}

impl SrtpContext {
    /// A context for `profile` under `master`, with its session keys derived (RFC 3711 §4.3).
    pub fn new(profile: SrtpProfile, master: &MasterKey) -> SrtpContext {
        SrtpContext {
            profile,
            keys: Arc::new(SessionKeys::derive(master)),
            rtp: Streams::new(),
            rtcp: Streams::new(),
            lifetime: None,
            rtp_packets: 0,
            rtcp_packets: 0,
        }
    }

    /// A new context under the same master key and profile, as [`SrtpContext::new`] makes it
    /// (no source known, no key lifetime), sharing this one's session keys instead of deriving
    /// them again. The same rule holds as for `new`: one context per direction of a key.
    pub fn fresh(&self) -> SrtpContext {
        SrtpContext {
            profile: self.profile,
            keys: Arc::clone(&self.keys),
            rtp: Streams::new(),
            rtcp: Streams::new(),
            lifetime: None,
            rtp_packets: 0,
            rtcp_packets: 0,
        }
    }

    /// Stops using the key after `packets` SRTP packets (and as many SRTCP packets): the
    /// lifetime that SDES may give a key (RFC 4568 §6.1). Without one, the index space is the
    /// limit (2^48 SRTP and 2^31 SRTCP packets per source, RFC 3711 §9.2).
    pub fn with_key_lifetime(mut self, packets: u64) -> SrtpContext {
        self.lifetime = Some(packets);
        self
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    fn check_lifetime(&self, used: u64) -> Result<(), SrtpError> {
        match self.lifetime {
            Some(lifetime) if used >= lifetime => Err(SrtpError::KeyExhausted),
            _ => Ok(()),
        }
    }

    /// Turns an RTP packet into an SRTP packet (RFC 3711 §3.3): encrypts the payload (padding
    /// included) and appends the authentication tag. The rollover counter of the packet's SSRC
    /// follows its sequence numbers. On error the packet is left as it was.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let header_len = rtp_header_len(packet)?;
        let payload_len = packet.len() - header_len;
        if payload_len > MAX_KEYSTREAM {
            return Err(SrtpError::TooLong(payload_len));
        }
        self.check_lifetime(self.rtp_packets)?;
        let (seq, ssrc) = (be16(packet, 2), be32(packet, 8));
        let index = match self.rtp.get_mut(ssrc) {
            Some(sent) => {
                let index = estimate_index(sent.highest(), seq);
                if index > MAX_RTP_INDEX {
                    return Err(SrtpError::KeyExhausted);
                }
                sent.accept(index);
                index
            }
            None => {
                self.rtp.insert(ssrc, ReplayWindow::starting_at(u64::from(seq)));
                u64::from(seq)
            }
        };
        self.keys.rtp_cipher.apply(packet_iv(&self.keys.rtp_salt, ssrc, index), &mut packet[header_len..]);
        let roc = (index >> 16) as u32;
        let tag = self.keys.rtp_auth.tag(packet, &roc.to_be_bytes());
        packet.extend_from_slice(&tag[..self.profile.rtp_tag_len()]);
        self.rtp_packets += 1;
        Ok(())
    }

    /// Turns an SRTP packet back into RTP (RFC 3711 §3.3): estimates its index from the
    /// sequence number, checks the replay window and the tag (in constant time), decrypts, and
    /// cuts the tag off. The source's state changes only for an authentic packet; on error the
    /// packet is left as it was.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        let end = packet.len().checked_sub(tag_len).ok_or(SrtpError::TooShort(packet.len()))?;
        let header_len = rtp_header_len(&packet[..end]).map_err(|e| match e {
            SrtpError::TooShort(_) => SrtpError::TooShort(packet.len()),
            e => e,
        })?;
        if end - header_len > MAX_KEYSTREAM {
            return Err(SrtpError::TooLong(end - header_len));
        }
        self.check_lifetime(self.rtp_packets)?;
        let (seq, ssrc) = (be16(packet, 2), be32(packet, 8));
        // Not yet authenticated: looked at, not counted as a use of the source.
        let index = match self.rtp.peek(ssrc) {
            Some(window) => {
                let index = estimate_index(window.highest(), seq);
                window.check(index)?;
                index
            }
            // The first packet of a source: RFC 4568 §6.4 starts the rollover counter at zero.
            None => u64::from(seq),
        };
        if index > MAX_RTP_INDEX {
            return Err(SrtpError::KeyExhausted);
        }
        let roc = (index >> 16) as u32;
        let expected = self.keys.rtp_auth.tag(&packet[..end], &roc.to_be_bytes());
        verify_slices_are_equal(&expected[..tag_len], &packet[end..]).map_err(|_| SrtpError::AuthenticationFailed)?;
        self.keys.rtp_cipher.apply(packet_iv(&self.keys.rtp_salt, ssrc, index), &mut packet[header_len..end]);
        packet.truncate(end);
        match self.rtp.get_mut(ssrc) {
            Some(window) => window.accept(index),
            None => self.rtp.insert(ssrc, ReplayWindow::starting_at(index)),
        }
        self.rtp_packets += 1;
        Ok(())
    }

    /// Turns a compound RTCP packet into SRTCP (RFC 3711 §3.4): encrypts everything after the
    /// first header and SSRC, appends `E` (set) with the next index of that SSRC (0 first), and
    /// the tag. On error the packet is left as it was.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        rtcp_header(packet)?;
        if packet.len() - RTCP_HEADER_LEN > MAX_KEYSTREAM {
            return Err(SrtpError::TooLong(packet.len() - RTCP_HEADER_LEN));
        }
        self.check_lifetime(self.rtcp_packets)?;
        let ssrc = be32(packet, 4);
        let index = match self.rtcp.get_mut(ssrc) {
            Some(sent) => {
                let index = sent.highest() + 1;
                if index > MAX_RTCP_INDEX {
                    return Err(SrtpError::KeyExhausted);
                }
                sent.accept(index);
                index
            }
            None => {
                self.rtcp.insert(ssrc, ReplayWindow::starting_at(0));
                0
            }
        };
        self.keys.rtcp_cipher.apply(packet_iv(&self.keys.rtcp_salt, ssrc, index), &mut packet[RTCP_HEADER_LEN..]);
        packet.extend_from_slice(&(E_FLAG | index as u32).to_be_bytes());
        let tag = self.keys.rtcp_auth.tag(packet, &[]);
        packet.extend_from_slice(&tag[..self.profile.rtcp_tag_len()]);
        self.rtcp_packets += 1;
        Ok(())
    }

    /// Turns an SRTCP packet back into compound RTCP (RFC 3711 §3.4): checks the tag (in
    /// constant time) and then the replay window of the index, decrypts when `E` is set, and
    /// cuts index and tag off. A packet without `E` passed in the clear but is still
    /// authenticated. On error the packet is left as it was.
    ///
    /// Under `AES_CM_128_HMAC_SHA1_32` the SRTCP tag is 80 bits (RFC 4568 §6.2), but some
    /// implementations (libre, under baresip) send 32 bits, the SRTP tag length. Such packets
    /// are accepted too: a forgery then has the same odds as against this suite's SRTP.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let (full, short) = (self.profile.rtcp_tag_len(), self.profile.rtp_tag_len().min(self.profile.rtcp_tag_len()));
        if packet.len() < RTCP_HEADER_LEN + SRTCP_INDEX_LEN + short {
            return Err(SrtpError::TooShort(packet.len()));
        }
        rtcp_header(packet)?;
        self.check_lifetime(self.rtcp_packets)?;
        let authentic = |tag_len: usize| {
            let Some(end) = packet.len().checked_sub(tag_len).filter(|&end| end >= RTCP_HEADER_LEN + SRTCP_INDEX_LEN)
            else {
                return false;
            };
            let expected = self.keys.rtcp_auth.tag(&packet[..end], &[]);
            verify_slices_are_equal(&expected[..tag_len], &packet[end..]).is_ok()
        };
        let tag_len = if authentic(full) {
            full
        } else if short < full && authentic(short) {
            short
        } else {
            return Err(SrtpError::AuthenticationFailed);
        };
        let body_end = packet.len() - tag_len - SRTCP_INDEX_LEN;
        if body_end - RTCP_HEADER_LEN > MAX_KEYSTREAM {
            return Err(SrtpError::TooLong(body_end - RTCP_HEADER_LEN));
        }
        let trailer = be32(packet, body_end);
        let (encrypted, index) = (trailer & E_FLAG != 0, u64::from(trailer & !E_FLAG));
        let ssrc = be32(packet, 4);
        if let Some(window) = self.rtcp.peek(ssrc) {
            window.check(index)?;
        }
        if encrypted {
            let iv = packet_iv(&self.keys.rtcp_salt, ssrc, index);
            self.keys.rtcp_cipher.apply(iv, &mut packet[RTCP_HEADER_LEN..body_end]);
        }
        packet.truncate(body_end);
        match self.rtcp.get_mut(ssrc) {
            Some(window) => window.accept(index),
            None => self.rtcp.insert(ssrc, ReplayWindow::starting_at(index)),
        }
        self.rtcp_packets += 1;
        Ok(())
    }
}

impl fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("rtp_sources", &self.rtp.len())
            .field("rtcp_sources", &self.rtcp.len())
            .field("lifetime", &self.lifetime)
            .field("rtp_packets", &self.rtp_packets)
            .field("rtcp_packets", &self.rtcp_packets)
            .finish_non_exhaustive()
    }
}

/// The `E` flag in front of the SRTCP index (RFC 3711 §3.4).
const E_FLAG: u32 = 1 << 31;

/// The first RTCP header and the sender's SSRC, which SRTCP leaves in the clear.
const RTCP_HEADER_LEN: usize = 8;

const RTP_FIXED_HEADER_LEN: usize = 12;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The length of the RTP header (fixed part, CSRCs, extension: RFC 3550 §5.1, §5.3.1), which
/// SRTP leaves in the clear. Padding is not checked: it is encrypted.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_FIXED_HEADER_LEN {
        return Err(SrtpError::TooShort(packet.len()));
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(SrtpError::Version(version));
    }
    let mut len = RTP_FIXED_HEADER_LEN + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        if packet.len() < len + 4 {
            return Err(SrtpError::HeaderTruncated);
        }
        len += 4 + 4 * usize::from(be16(packet, len + 2));
    }
    if packet.len() < len {
        return Err(SrtpError::HeaderTruncated);
    }
    Ok(len)
}

/// Checks that `packet` starts with an RTCP header and the sender's SSRC.
fn rtcp_header(packet: &[u8]) -> Result<(), SrtpError> {
    if packet.len() < RTCP_HEADER_LEN {
        return Err(SrtpError::TooShort(packet.len()));
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(SrtpError::Version(version));
    }
    Ok(())
}
