//! SDP Security Descriptions (SDES, RFC 4568) for SRTP: the keys of `a=crypto` lines.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session params>]`
//! (RFC 4568 §9.1, §6.1). [`SdesCrypto`] is one such line that Sambung can honour: a suite of
//! [`SrtpProfile`], a single 30-byte inline key, no MKI, no key derivation rate and no session
//! parameter that changes the transform. Everything else is refused with a typed
//! [`SdesError`]: bad input never panics.
//!
//! Randomness comes from the caller (this crate is sans-IO): each new key is made from 30
//! random bytes it passes in.
//!
//! ```
//! use sambung_media::sdes::{self, SdesCrypto};
//! use sambung_media::srtp::SrtpProfile;
//!
//! // A caller offers two suites; we answer the first we support, with the same tag and our key.
//! let offer = [
//!     "1 AES_256_CM_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31",
//!     "2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
//!     "3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20",
//! ];
//! let our_random_bytes = [0x42; 30]; // from the server's CSPRNG
//! let answer = sdes::answer(offer, &our_random_bytes).unwrap();
//! assert_eq!((answer.remote.tag, answer.remote.profile), (3, SrtpProfile::Aes128CmSha1_32));
//! assert_eq!(answer.local.to_string(), "3 AES_CM_128_HMAC_SHA1_32 inline:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC");
//!
//! // Their key unprotects what they send; ours protects what we send.
//! let mut inbound = answer.remote.context();
//! let mut outbound = answer.local.context();
//! # let _ = (&mut inbound, &mut outbound);
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::sdp::{AttrError, Attribute, Crypto, MediaDescription};
use crate::srtp::{MasterKey, SrtpContext, SrtpProfile};

/// The attribute name (RFC 4568 §9.1).
pub const ATTRIBUTE: &str = "crypto";

/// The largest tag: at most nine digits (RFC 4568 §9.1).
pub const MAX_TAG: u32 = 999_999_999;

/// Why a `crypto` attribute cannot be used. Each one makes the attribute unacceptable; an
/// answerer that finds none acceptable refuses the media with `488 Not Acceptable Here`
/// ([`SdesError::status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error(transparent)]
    Syntax(#[from] AttrError),
    #[error("tag {0} is longer than nine digits")]
    Tag(u32),
    #[error("crypto suite `{0}` is not supported")]
    UnsupportedSuite(String),
    #[error("key method `{0}` is not `inline`")]
    KeyMethod(String),
    #[error("more than one key parameter (several keys need MKIs, which are not supported)")]
    MultipleKeys,
    #[error("master key identifiers (MKI) are not supported")]
    Mki,
    #[error("malformed inline key parameter")]
    KeyInfo,
    #[error("key and salt are not valid base64")]
    Base64,
    #[error("key and salt are {0} bytes, not 30")]
    KeyLength(usize),
    #[error("malformed or zero key lifetime")]
    Lifetime,
    #[error("a key derivation rate (KDR) is not supported")]
    KeyDerivationRate,
    #[error("session parameter `{0}` is not supported")]
    SessionParam(String),
    #[error("no acceptable crypto attribute")]
    NoAcceptableCrypto,
    #[error("the answer's tag or suite was not offered")]
    AnswerMismatch,
}

impl SdesError {
    /// The SIP status that refuses an offer for this reason: 488 (RFC 3261 §21.4.26).
    pub fn status(&self) -> u16 {
        488
    }
}

/// One usable `crypto` attribute: tag, suite, master key and its optional lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesCrypto {
    /// Identifies the attribute within the media section; an answer repeats it.
    pub tag: u32,
    pub profile: SrtpProfile,
    pub key: MasterKey,
    /// How many packets the key may protect (RFC 4568 §6.1), if limited.
    pub lifetime: Option<u64>,
}

impl SdesCrypto {
    /// A fresh attribute whose key and salt are the caller's 30 random bytes.
    pub fn new(tag: u32, profile: SrtpProfile, key_material: &[u8; MasterKey::LEN]) -> Result<SdesCrypto, SdesError> {
        if tag > MAX_TAG {
            return Err(SdesError::Tag(tag));
        }
        Ok(SdesCrypto { tag, profile, key: MasterKey::from_bytes(key_material), lifetime: None })
    }

    /// Parses the value of an `a=crypto` attribute and checks that it can be honoured.
    pub fn parse(value: &str) -> Result<SdesCrypto, SdesError> {
        SdesCrypto::from_crypto(&Crypto::parse(value)?)
    }

    /// Checks a parsed `crypto` attribute (RFC 4568 §6.1-§6.3).
    pub fn from_crypto(crypto: &Crypto) -> Result<SdesCrypto, SdesError> {
        let profile =
            SrtpProfile::from_name(&crypto.suite).ok_or_else(|| SdesError::UnsupportedSuite(crypto.suite.clone()))?;
        let [key_param] = crypto.key_params.as_slice() else {
            return Err(SdesError::MultipleKeys);
        };
        if key_param.method != "inline" {
            return Err(SdesError::KeyMethod(key_param.method.clone()));
        }
        let (key, lifetime) = parse_inline(&key_param.info)?;
        for param in &crypto.session_params {
            check_session_param(param)?;
        }
        Ok(SdesCrypto { tag: crypto.tag, profile, key, lifetime })
    }

    /// The attribute as an SDP line (`a=crypto:...`).
    pub fn to_attribute(&self) -> Attribute {
        Attribute::value(ATTRIBUTE, self.to_string())
    }

    /// An SRTP context for this key: ours protects what we send, the peer's unprotects what
    /// it sends. The lifetime, if any, is enforced.
    pub fn context(&self) -> SrtpContext {
        let context = SrtpContext::new(self.profile, &self.key);
        match self.lifetime {
            Some(lifetime) => context.with_key_lifetime(lifetime),
            None => context,
        }
    }
}

impl fmt::Display for SdesCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = BASE64.encode(self.key.to_bytes());
        write!(f, "{} {} inline:{key}", self.tag, self.profile)?;
        match self.lifetime {
            Some(lifetime) if lifetime.is_power_of_two() => write!(f, "|2^{}", lifetime.trailing_zeros()),
            Some(lifetime) => write!(f, "|{lifetime}"),
            None => Ok(()),
        }
    }
}

/// `<key||salt>[|<lifetime>][|<MKI>:<length>]` of the `inline` method (RFC 4568 §6.1).
fn parse_inline(info: &str) -> Result<(MasterKey, Option<u64>), SdesError> {
    let mut fields = info.split('|');
    let encoded = fields.next().unwrap_or_default();
    let mut lifetime = None;
    for (i, field) in fields.enumerate() {
        if field.contains(':') {
            return Err(SdesError::Mki);
        }
        if i > 0 {
            return Err(SdesError::KeyInfo);
        }
        lifetime = Some(parse_lifetime(field)?);
    }
    let bytes = BASE64.decode(encoded).map_err(|_| SdesError::Base64)?;
    let bytes: &[u8; MasterKey::LEN] = bytes.as_slice().try_into().map_err(|_| SdesError::KeyLength(bytes.len()))?;
    Ok((MasterKey::from_bytes(bytes), lifetime))
}

/// A lifetime in packets, decimal or as a power of two: `1048576` or `2^20`.
fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let lifetime = match text.strip_prefix("2^") {
        Some(exponent) => digits(exponent).filter(|&e| e < 64).map(|e| 1u64 << e),
        None => digits(text),
    };
    lifetime.filter(|&l| l > 0).ok_or(SdesError::Lifetime)
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The SRTP session parameters (RFC 4568 §6.3) that do not change the transform Sambung
/// applies: a replay window hint (`WSH`, at least 64: ours is larger), the default FEC order,
/// and extensions marked optional with a leading `-` (RFC 4568 §6.3.7). A key derivation rate
/// (§6.3.1), unencrypted or unauthenticated SRTP (§6.3.2), or a separate FEC key (§6.3.5)
/// cannot be honoured, nor can unknown mandatory parameters.
fn check_session_param(param: &str) -> Result<(), SdesError> {
    let (name, value) = match param.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (param, None),
    };
    let honoured = match name {
        "KDR" => return Err(SdesError::KeyDerivationRate),
        "WSH" => value.and_then(digits).is_some_and(|w| w >= 64),
        "FEC_ORDER" => value == Some("FEC_SRTP"),
        _ => name.starts_with('-'),
    };
    if honoured { Ok(()) } else { Err(SdesError::SessionParam(param.to_owned())) }
}

/// What an answerer takes from an offer (RFC 4568 §5.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdesAnswer {
    /// The offered attribute we accepted: the offerer's key, which unprotects what it sends.
    pub remote: SdesCrypto,
    /// Our attribute for the answer: the same tag and suite with our own key, which protects
    /// what we send.
    pub local: SdesCrypto,
}

/// Answers an offer's `crypto` values (RFC 4568 §5.1.2): the first one, in the offerer's order
/// of preference, that can be honoured, answered with the same tag and suite and a key made of
/// the caller's 30 random bytes. [`SdesError::NoAcceptableCrypto`] when none can.
pub fn answer<'a>(
    offered: impl IntoIterator<Item = &'a str>,
    key_material: &[u8; MasterKey::LEN],
) -> Result<SdesAnswer, SdesError> {
    let remote =
        offered.into_iter().find_map(|value| SdesCrypto::parse(value).ok()).ok_or(SdesError::NoAcceptableCrypto)?;
    let local = SdesCrypto {
        tag: remote.tag,
        profile: remote.profile,
        key: MasterKey::from_bytes(key_material),
        lifetime: None,
    };
    Ok(SdesAnswer { remote, local })
}

/// [`answer`] for the `crypto` attributes of an offered media section.
pub fn answer_media(media: &MediaDescription, key_material: &[u8; MasterKey::LEN]) -> Result<SdesAnswer, SdesError> {
    answer(media.attributes_named(ATTRIBUTE).filter_map(|a| a.value.as_deref()), key_material)
}

/// The offerer's check of an answer's `crypto` value (RFC 4568 §5.1.3): it must be usable,
/// with a tag we offered and that tag's suite. Returns our offered attribute (our key, for
/// protecting) and the answer's (the answerer's key, for unprotecting).
pub fn accept_answer<'a>(offered: &'a [SdesCrypto], answered: &str) -> Result<(&'a SdesCrypto, SdesCrypto), SdesError> {
    let answer = SdesCrypto::parse(answered)?;
    let ours =
        offered.iter().find(|o| o.tag == answer.tag && o.profile == answer.profile).ok_or(SdesError::AnswerMismatch)?;
    Ok((ours, answer))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::sdp::SessionDescription;

    // RFC 4568 §8.1's example key (30 bytes).
    const RFC_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    #[test]
    fn parses_and_prints_the_rfc_example() {
        let value = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20");
        let crypto = SdesCrypto::parse(&value).unwrap();
        assert_eq!(crypto.tag, 1);
        assert_eq!(crypto.profile, SrtpProfile::Aes128CmSha1_80);
        assert_eq!(crypto.lifetime, Some(1 << 20));
        assert_eq!(crypto.key.to_bytes().to_vec(), BASE64.decode(RFC_KEY).unwrap());
        assert_eq!(crypto.to_string(), value);
        assert_eq!(crypto.to_attribute(), Attribute::value("crypto", value));
    }

    #[test]
    fn decimal_lifetimes_and_optional_session_params() {
        let crypto = SdesCrypto::parse(&format!(
            "42 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}|1000 WSH=128 -X-NICE FEC_ORDER=FEC_SRTP"
        ))
        .unwrap();
        assert_eq!((crypto.tag, crypto.lifetime), (42, Some(1000)));
        assert_eq!(crypto.to_string(), format!("42 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}|1000"));
        assert_eq!(SdesCrypto::parse(&format!("7 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}")).unwrap().lifetime, None);
    }

    #[test]
    fn refuses_what_cannot_be_honoured() {
        let with = |rest: &str| SdesCrypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {rest}"));
        let key = format!("inline:{RFC_KEY}");
        assert_eq!(with(&format!("{key}|2^20|1:4")), Err(SdesError::Mki));
        assert_eq!(with(&format!("{key}|1:4")), Err(SdesError::Mki));
        assert_eq!(with(&format!("{key}|2^20|1:4;{key}|2^20|2:4")), Err(SdesError::MultipleKeys));
        assert_eq!(with(&format!("{key} KDR=0")), Err(SdesError::KeyDerivationRate));
        assert_eq!(with(&format!("{key} KDR=10")), Err(SdesError::KeyDerivationRate));
        for param in ["UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "FEC_KEY=x", "WSH=32", "BOGUS"] {
            assert_eq!(with(&format!("{key} {param}")), Err(SdesError::SessionParam(param.into())), "{param}");
        }
        assert_eq!(with(&format!("{key}|2^20|2^20")), Err(SdesError::KeyInfo));
        assert_eq!(with(&format!("{key}|0")), Err(SdesError::Lifetime));
        assert_eq!(with(&format!("{key}|2^64")), Err(SdesError::Lifetime));
        assert_eq!(with(&format!("{key}|2^")), Err(SdesError::Lifetime));
        assert_eq!(with(&format!("{key}|99999999999999999999")), Err(SdesError::Lifetime));
        assert_eq!(with("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB!"), Err(SdesError::Base64));
        assert_eq!(with("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB="), Err(SdesError::Base64));
        // 46 bytes (an AES-256 key) and 15 bytes.
        assert_eq!(with(&format!("inline:{}", BASE64.encode([1; 46]))), Err(SdesError::KeyLength(46)));
        assert_eq!(with(&format!("inline:{}", BASE64.encode([1; 15]))), Err(SdesError::KeyLength(15)));
        assert_eq!(with(&format!("uri:{RFC_KEY}")), Err(SdesError::KeyMethod("uri".into())));
        assert_eq!(
            SdesCrypto::parse(&format!("1 F8_128_HMAC_SHA1_80 inline:{RFC_KEY}")),
            Err(SdesError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()))
        );
        assert!(matches!(SdesCrypto::parse("1 AES_CM_128_HMAC_SHA1_80"), Err(SdesError::Syntax(_))));
        assert!(matches!(
            SdesCrypto::parse(&format!("1234567890 AES_CM_128_HMAC_SHA1_80 {key}")),
            Err(SdesError::Syntax(_))
        ));
        assert!(SdesError::Mki.status() == 488);
    }

    #[test]
    fn fresh_attributes_carry_the_callers_key_material() {
        let material: [u8; 30] = std::array::from_fn(|i| i as u8);
        let crypto = SdesCrypto::new(5, SrtpProfile::Aes128CmSha1_32, &material).unwrap();
        assert_eq!(crypto.key.to_bytes(), material);
        assert_eq!(crypto.to_string(), format!("5 AES_CM_128_HMAC_SHA1_32 inline:{}", BASE64.encode(material)));
        assert_eq!(SdesCrypto::parse(&crypto.to_string()).unwrap(), crypto);
        assert_eq!(
            SdesCrypto::new(MAX_TAG + 1, SrtpProfile::Aes128CmSha1_80, &material),
            Err(SdesError::Tag(MAX_TAG + 1))
        );
    }

    #[test]
    fn answers_the_first_usable_offer_with_its_tag() {
        let offer = [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:4"),
            format!("2 AEAD_AES_128_GCM inline:{RFC_KEY}"),
            format!("3 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY} KDR=1"),
            format!("4 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}|2^31"),
            format!("5 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}"),
        ];
        let answer = answer(offer.iter().map(String::as_str), &[9; 30]).unwrap();
        assert_eq!(answer.remote, SdesCrypto::parse(&offer[3]).unwrap());
        assert_eq!(answer.local.tag, 4);
        assert_eq!(answer.local.profile, SrtpProfile::Aes128CmSha1_32);
        assert_eq!(answer.local.key, MasterKey::from_bytes(&[9; 30]));
        assert_eq!(answer.local.lifetime, None);
        assert_eq!(super::answer(offer[..3].iter().map(String::as_str), &[9; 30]), Err(SdesError::NoAcceptableCrypto));
    }

    #[test]
    fn answers_a_media_section_and_the_offerer_accepts_the_answer() {
        let ours = [
            SdesCrypto::new(1, SrtpProfile::Aes128CmSha1_80, &[1; 30]).unwrap(),
            SdesCrypto::new(2, SrtpProfile::Aes128CmSha1_32, &[2; 30]).unwrap(),
        ];
        let mut sdp = String::from(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
        );
        for crypto in &ours {
            sdp.push_str(&format!("a=crypto:{crypto}\r\n"));
        }
        let offer: SessionDescription = sdp.parse().unwrap();
        let answer = answer_media(&offer.media[0], &[3; 30]).unwrap();
        assert_eq!(answer.remote, ours[0]);

        let (offered, answered) = accept_answer(&ours, &answer.local.to_string()).unwrap();
        assert_eq!(offered, &ours[0]);
        assert_eq!(answered, answer.local);

        // Each side's keys now meet: the offerer protects with its own key, we unprotect with
        // the remote one, and the other way round.
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0xBB];
        offered.context().protect_rtp(&mut packet).unwrap();
        answer.remote.context().unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet, [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0xBB]);

        let wrong_suite = format!("1 AES_CM_128_HMAC_SHA1_32 inline:{RFC_KEY}");
        assert_eq!(accept_answer(&ours, &wrong_suite), Err(SdesError::AnswerMismatch));
        let unknown_tag = format!("9 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}");
        assert_eq!(accept_answer(&ours, &unknown_tag), Err(SdesError::AnswerMismatch));
    }

    #[test]
    fn a_limited_lifetime_reaches_the_context() {
        let crypto = SdesCrypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^0")).unwrap();
        let mut context = crypto.context();
        let packet = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        context.protect_rtp(&mut packet.clone()).unwrap();
        assert_eq!(context.protect_rtp(&mut packet.clone()), Err(crate::srtp::SrtpError::KeyExhausted));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(value in ".*") {
            let _ = SdesCrypto::parse(&value);
        }

        #[test]
        fn near_miss_attributes_never_panic(
            tag in "[0-9]{0,11}",
            suite in prop::sample::select(vec!["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "X", ""]),
            info in "[A-Za-z0-9+/=|:^;]{0,60}",
            params in "[ A-Z_=0-9-]{0,30}",
        ) {
            let _ = SdesCrypto::parse(&format!("{tag} {suite} inline:{info} {params}"));
        }

        #[test]
        fn print_then_parse_is_identity(
            tag in 0..=MAX_TAG,
            material in prop::array::uniform30(any::<u8>()),
            short in any::<bool>(),
            lifetime in prop::option::of(1u64..),
        ) {
            let profile = if short { SrtpProfile::Aes128CmSha1_32 } else { SrtpProfile::Aes128CmSha1_80 };
            let crypto = SdesCrypto { lifetime, ..SdesCrypto::new(tag, profile, &material).unwrap() };
            prop_assert_eq!(SdesCrypto::parse(&crypto.to_string()), Ok(crypto));
        }
    }
}
