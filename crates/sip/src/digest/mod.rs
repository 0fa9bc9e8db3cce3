//! Digest access authentication for SIP: RFC 3261 §22.4, RFC 7616 (HTTP Digest) and RFC 8760
//! (SHA-256 for SIP digest).
//!
//! Server side: a registrar or proxy builds a [`Challenge`] with a nonce from a [`NonceManager`],
//! prints it into `WWW-Authenticate` / `Proxy-Authenticate`, parses the answer with
//! [`Credentials::parse`], looks up the stored HA1 (see [`ha1`]) for the user, realm and
//! [`Algorithm::base`], calls [`verify`] and then [`NonceManager::check`]:
//!
//! ```
//! use sambung_sip::digest::{self, Algorithm, Challenge, Credentials, NonceCheck, NonceManager};
//!
//! let mut nonces = NonceManager::new(b"a long random server secret, 32+ bytes", 300);
//! let now = 1_700_000_000;
//! let challenge = Challenge::new("sambung.example", nonces.issue(now), Algorithm::Sha256);
//! let header = challenge.to_string(); // sent in a 401 response
//!
//! // The phone answers (here: our own client side) ...
//! let challenge = Challenge::parse(&header).unwrap();
//! let creds = digest::respond(&challenge, "REGISTER", "sip:sambung.example", "alice", "secret",
//!                             "0a4f113b", 1);
//! let authorization = creds.to_string();
//!
//! // ... and the registrar checks the answer against the HA1 it stored, never the password.
//! let stored = digest::ha1(Algorithm::Sha256, "alice", "sambung.example", "secret");
//! let creds = Credentials::parse(&authorization).unwrap();
//! assert!(digest::verify(&creds, "REGISTER", &stored));
//! assert_eq!(nonces.check(&creds.nonce, creds.nc, now + 1), NonceCheck::Valid);
//! ```
//!
//! Nothing here reads a clock or a random source: time is passed in as Unix seconds and the
//! client nonce (`cnonce`) and server secret come from the caller.
//!
//! The parts: [`Challenge`] and [`Credentials`], the header values (`header.rs`); [`ha1`],
//! [`verify`] and [`respond`], the hashes (`compute.rs`); [`NonceManager`], the nonces and their
//! replay records (`nonce.rs`).

mod compute;
mod header;
mod nonce;

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use sha2::Sha256;

pub use compute::{ha1, respond, verify, verify_with};
pub use header::{Challenge, Credentials};
pub use nonce::{NonceCheck, NonceManager};

/// Why a digest header value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The header uses another authentication scheme than `Digest` (RFC 3261 §22.4): a
    /// registrar answers with a fresh challenge.
    #[error("authentication scheme is not Digest")]
    UnknownScheme,
    /// The header value does not follow the `auth-param` grammar (RFC 3261 §25.1,
    /// RFC 7616 §3.4); the text says where it went wrong.
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
    /// A parameter the RFC requires is absent (RFC 7616 §3.4, RFC 3261 §25.1 `dig-resp`).
    #[error("missing digest parameter `{0}`")]
    MissingParam(&'static str),
    /// A parameter appears twice, which would make the credentials ambiguous.
    #[error("digest parameter `{0}` appears more than once")]
    DuplicateParam(String),
    /// An `algorithm` other than MD5, MD5-sess, SHA-256 and SHA-256-sess (RFC 8760 §2.1).
    #[error("unsupported digest algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// A `qop` other than `auth` (RFC 7616 §3.3); `auth-int` is not supported.
    #[error("unsupported qop `{0}`")]
    UnsupportedQop(String),
    /// `nc` is not exactly 8 hexadecimal digits (RFC 7616 §3.4).
    #[error("invalid nonce count `{0}`")]
    InvalidNonceCount(String),
    /// `userhash=true` (RFC 7616 §3.4.4) is not supported yet.
    #[error("userhash=true is not supported")]
    UserhashUnsupported,
}

/// The hash algorithm of a digest exchange: RFC 7616 §3.3, RFC 8760 §2.1.
///
/// A missing `algorithm` parameter means [`Algorithm::Md5`] (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5` (RFC 7616 §3.3, RFC 3261 §22.4).
    #[default]
    Md5,
    /// `MD5-sess`: MD5 with the session HA1 of RFC 7616 §3.4.2.
    Md5Sess,
    /// `SHA-256` (RFC 8760 §2.1).
    Sha256,
    /// `SHA-256-sess`: SHA-256 with the session HA1 of RFC 7616 §3.4.2.
    Sha256Sess,
}

impl Algorithm {
    /// Every supported algorithm, in the server's order of preference (RFC 8760 §2.4: SHA-256
    /// first).
    pub const ALL: [Algorithm; 4] = [Algorithm::Sha256, Algorithm::Sha256Sess, Algorithm::Md5, Algorithm::Md5Sess];

    /// The canonical name as printed in headers (RFC 7616 §3.3, RFC 8760 §2.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses a name case-insensitively (RFC 7616 §3.3: the values are case-insensitive).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// True for the `-sess` variants, whose HA1 is bound to the nonce and cnonce
    /// (RFC 7616 §3.4.2).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The non-session algorithm with the same hash function: the one under which the server
    /// stores the user's HA1 (a `-sess` exchange derives its session HA1 from that).
    pub fn base(self) -> Algorithm {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Length of a hash of this algorithm in lowercase hex digits (32 or 64).
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Sha256 => 64,
            _ => 32,
        }
    }

    /// `H(parts joined by ":")` in lowercase hex: the `H` and `KD` of RFC 7616 §3.4.1.
    fn hash_hex(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut h = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p);
            }
            to_hex(&h.finalize())
        }
        match self.base() {
            Algorithm::Sha256 => run::<Sha256>(parts),
            _ => run::<Md5>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| DigestError::UnsupportedAlgorithm(s.to_owned()))
    }
}

/// Quality of protection (RFC 7616 §3.3). Only `auth` is supported: `auth-int` would need the
/// message body, and SIP deployments do not use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication only (RFC 7616 §3.3).
    Auth,
}

impl Qop {
    /// The token as printed in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

pub(crate) fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string().to_ascii_lowercase().parse::<Algorithm>(), Ok(alg));
        }
        assert_eq!("md5-SESS".parse::<Algorithm>(), Ok(Algorithm::Md5Sess));
        assert_eq!("SHA-512-256".parse::<Algorithm>(), Err(DigestError::UnsupportedAlgorithm("SHA-512-256".into())));
        assert_eq!(Algorithm::default(), Algorithm::Md5);
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(to_hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex::<3>("00ABff"), Some([0x00, 0xab, 0xff]));
        assert_eq!(from_hex::<3>("00abf"), None);
        assert_eq!(from_hex::<2>("0g00"), None);
        assert_eq!(from_hex::<2>("+1+1"), None);
        // A multibyte character must not make slicing panic.
        assert_eq!(from_hex::<2>("é00"), None);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
