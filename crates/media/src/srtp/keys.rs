//! The transforms of the two AES-CM/HMAC-SHA1 suites and their session keys: AES-128 in counter
//! mode (RFC 3711 §4.1.1), HMAC-SHA1 (§4.2.1) and the key derivation (§4.3) with the AES-CM PRF
//! (§4.3.3) and a key derivation rate of zero.

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use zeroize::Zeroize;

use super::MasterKey;

/// Session encryption key length of both suites, in bytes (RFC 4568 §6.2).
pub(super) const CIPHER_KEY_LEN: usize = 16;
/// Session salt length, in bytes (RFC 3711 §4.1.1: 112 bits).
pub(super) const SALT_LEN: usize = 14;
/// Session authentication key length, in bytes (RFC 3711 §4.2.1: 160 bits).
const AUTH_KEY_LEN: usize = 20;
/// The output of HMAC-SHA1, before truncation.
pub(super) const FULL_TAG_LEN: usize = 20;

/// The key derivation labels of RFC 3711 §4.3.1 and §4.3.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// AES-128 in counter mode (RFC 3711 §4.1.1).
pub(super) struct AesCm(EncryptingKey);

impl AesCm {
    pub(super) fn new(key: &[u8; CIPHER_KEY_LEN]) -> AesCm {
        let key = UnboundCipherKey::new(&AES_128, key).expect("16 bytes make an AES-128 key");
        AesCm(EncryptingKey::ctr(key).expect("AES-128 supports counter mode"))
    }

    /// XORs the keystream that starts at counter block `iv` into `data`. The counter runs over
    /// the whole 128-bit block; RFC 3711 counts in the low 16 bits only, which is the same for
    /// the 2^16 blocks (1 MiB) a packet may span ([`MAX_KEYSTREAM`]).
    pub(super) fn apply(&self, iv: [u8; 16], data: &mut [u8]) {
        debug_assert!(data.len() <= MAX_KEYSTREAM);
        let context = EncryptionContext::Iv128(FixedLength::from(iv));
        // Counter mode takes data of any length and this key is always given a 128-bit IV,
        // the only two ways the call can fail.
        self.0.less_safe_encrypt(data, context).expect("AES-CTR with a 128-bit IV");
    }
}

/// The longest keystream one IV gives before the 16-bit block counter of RFC 3711 §4.1.1 wraps.
pub(super) const MAX_KEYSTREAM: usize = 16 << 16;

/// The counter block for a packet (RFC 3711 §4.1.1):
/// `IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)` with the 48-bit SRTP index or the
/// 31-bit SRTCP index `i`.
pub(super) fn packet_iv(salt: &[u8; SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(salt);
    for (byte, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *byte ^= s;
    }
    for (byte, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *byte ^= i;
    }
    iv
}

/// HMAC-SHA1 with a session authentication key (RFC 3711 §4.2.1).
pub(super) struct HmacSha1(hmac::Key);

impl HmacSha1 {
    fn new(key: &[u8; AUTH_KEY_LEN]) -> HmacSha1 {
        HmacSha1(hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key))
    }

    /// The full 160-bit tag over `data` followed by `suffix` (the ROC for SRTP, nothing for
    /// SRTCP, whose index is part of the authenticated packet).
    pub(super) fn tag(&self, data: &[u8], suffix: &[u8]) -> [u8; FULL_TAG_LEN] {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(data);
        context.update(suffix);
        let mut tag = [0u8; FULL_TAG_LEN];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }
}

/// The PRF of RFC 3711 §4.3.3 with `key_derivation_rate` 0 (§4.3.1): `r` is zero, so
/// `x = (label << 48) XOR master_salt`, and the output is the AES-CM keystream from `x * 2^16`
/// under the master key.
pub(super) fn derive(master: &AesCm, master_salt: &[u8; SALT_LEN], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT_LEN].copy_from_slice(master_salt);
    // key_id = label || r is 56 bits, aligned to the right of the 112-bit salt: the label
    // lands in the eighth byte.
    iv[7] ^= label as u8;
    out.fill(0);
    master.apply(iv, out);
    iv.zeroize();
}

/// The session keys of one direction of SRTP and SRTCP (RFC 3711 §4.3.1, §4.3.2).
pub(super) struct SessionKeys {
    pub(super) rtp_cipher: AesCm,
    pub(super) rtp_auth: HmacSha1,
    pub(super) rtp_salt: [u8; SALT_LEN],
    pub(super) rtcp_cipher: AesCm,
    pub(super) rtcp_auth: HmacSha1,
    pub(super) rtcp_salt: [u8; SALT_LEN],
}

impl SessionKeys {
    pub(super) fn derive(master: &MasterKey) -> SessionKeys {
        let prf = AesCm::new(master.key());
        let salt = master.salt();
        let mut cipher_key = [0u8; CIPHER_KEY_LEN];
        let mut auth_key = [0u8; AUTH_KEY_LEN];

        derive(&prf, salt, Label::RtpEncryption, &mut cipher_key);
        derive(&prf, salt, Label::RtpAuthentication, &mut auth_key);
        let rtp_cipher = AesCm::new(&cipher_key);
        let rtp_auth = HmacSha1::new(&auth_key);
        let mut rtp_salt = [0u8; SALT_LEN];
        derive(&prf, salt, Label::RtpSalt, &mut rtp_salt);

        derive(&prf, salt, Label::RtcpEncryption, &mut cipher_key);
        derive(&prf, salt, Label::RtcpAuthentication, &mut auth_key);
        let rtcp_cipher = AesCm::new(&cipher_key);
        let rtcp_auth = HmacSha1::new(&auth_key);
        let mut rtcp_salt = [0u8; SALT_LEN];
        derive(&prf, salt, Label::RtcpSalt, &mut rtcp_salt);

        cipher_key.zeroize();
        auth_key.zeroize();
        SessionKeys { rtp_cipher, rtp_auth, rtp_salt, rtcp_cipher, rtcp_auth, rtcp_salt }
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        // The AES and HMAC states are wiped by aws-lc-rs; the salts are ours.
        self.rtp_salt.zeroize();
        self.rtcp_salt.zeroize();
    }
}
