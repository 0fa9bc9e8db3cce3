//! SDES keys (RFC 4568) for the legs that use SRTP: the peer's key read from its SDP, ours
//! made fresh for each leg from the operating system's random source.

use sambung_media::sdes::SdesCrypto;
use sambung_media::sdp::MediaDescription;
use sambung_media::srtp::{MasterKey, SrtpProfile};

/// The suite we offer when we choose: the one every SDES implementation has.
pub const DEFAULT_SUITE: SrtpProfile = SrtpProfile::Aes128CmSha1_80;

/// A new key of `profile` under `tag`, from 30 random bytes.
pub fn fresh(tag: u32, profile: SrtpProfile) -> SdesCrypto {
    let mut material = [0u8; MasterKey::LEN];
    rand::fill(&mut material);
    let tag = tag.clamp(1, sambung_media::sdes::MAX_TAG);
    match SdesCrypto::new(tag, profile, &material) {
        Ok(key) => key,
        // Only an out-of-range tag is refused, and the tag was clamped into range.
        Err(_) => SdesCrypto { tag: 1, profile, key: MasterKey::from_bytes(&material), lifetime: None },
    }
}

/// The usable keys of a media section, in the sender's order of preference; attributes we
/// cannot honour (unknown suite, MKI, ...) are skipped.
pub fn from_media(media: &MediaDescription) -> Vec<SdesCrypto> {
    media.crypto().iter().filter_map(|c| SdesCrypto::from_crypto(c).ok()).collect()
}
