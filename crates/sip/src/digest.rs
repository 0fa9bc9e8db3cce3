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

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

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

/// A digest challenge: the value of `WWW-Authenticate` or `Proxy-Authenticate`
/// (RFC 7616 §3.3, RFC 3261 §22.4 and §25.1 `digest-cln`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`: the protection space, usually the SIP domain (RFC 3261 §22.1).
    pub realm: String,
    /// `domain`: space-separated URIs of the protection space (RFC 7616 §3.3), rarely used in SIP.
    pub domain: Option<String>,
    /// `nonce`: server-chosen, opaque to the client (RFC 7616 §3.3).
    pub nonce: String,
    /// `opaque`: returned unchanged by the client (RFC 7616 §3.3).
    pub opaque: Option<String>,
    /// `stale`: the previous request had a valid response for an old nonce, retry without asking
    /// the user again (RFC 7616 §3.3).
    pub stale: bool,
    /// `algorithm` (RFC 7616 §3.3, RFC 8760 §2.1).
    pub algorithm: Algorithm,
    /// `qop`: `Some(Qop::Auth)` when the server offers `auth`; `None` for a legacy challenge
    /// without `qop` (RFC 2069 compatibility, RFC 7616 §3.4 / RFC 2617 §3.2.2.1).
    pub qop: Option<Qop>,
}

impl Challenge {
    /// A challenge with `qop="auth"`, no `opaque`, no `domain` and `stale=false`, as a
    /// registrar sends it (RFC 7616 §3.3).
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>, algorithm: Algorithm) -> Self {
        Challenge {
            realm: realm.into(),
            domain: None,
            nonce: nonce.into(),
            opaque: None,
            stale: false,
            algorithm,
            qop: Some(Qop::Auth),
        }
    }

    /// Sets the `stale` flag (RFC 7616 §3.3).
    pub fn with_stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    /// Sets `opaque` (RFC 7616 §3.3).
    pub fn with_opaque(mut self, opaque: impl Into<String>) -> Self {
        self.opaque = Some(opaque.into());
        self
    }

    /// Parses a `WWW-Authenticate` / `Proxy-Authenticate` header value (RFC 7616 §3.3,
    /// RFC 3261 §25.1 `challenge`).
    ///
    /// `realm` and `nonce` are required. `qop` is a quoted list (`"auth,auth-int"`): the
    /// challenge is accepted when it offers `auth`, refused with [`DigestError::UnsupportedQop`]
    /// when it offers only other values. Unknown parameters (`charset`, `userhash`, extensions)
    /// are ignored.
    ///
    /// # Errors
    ///
    /// [`DigestError::UnknownScheme`] for another scheme, and the other variants for a value
    /// that is malformed, lacks `realm` or `nonce`, or asks for an unsupported algorithm or qop.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = parse_digest_params(value)?;
        let mut realm = None;
        let mut domain = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut stale = None;
        let mut algorithm = None;
        let mut qop = None;
        for p in params {
            match p.name.as_str() {
                "realm" => realm = Some(p.value),
                "domain" => domain = Some(p.value),
                "nonce" => nonce = Some(p.value),
                "opaque" => opaque = Some(p.value),
                "stale" => {
                    stale = Some(if p.value.eq_ignore_ascii_case("true") {
                        true
                    } else if p.value.eq_ignore_ascii_case("false") {
                        false
                    } else {
                        return Err(DigestError::Malformed("stale is neither true nor false"));
                    })
                }
                "algorithm" => algorithm = Some(p.value.parse::<Algorithm>()?),
                "qop" => {
                    // RFC 7616 §3.3: qop-options = "qop" EQUAL DQUOTE qop-value *("," qop-value) DQUOTE
                    let offers_auth = p.value.split(',').any(|v| trim_lws(v).eq_ignore_ascii_case("auth"));
                    if !offers_auth {
                        return Err(DigestError::UnsupportedQop(p.value));
                    }
                    qop = Some(Qop::Auth);
                }
                _ => {}
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            domain,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            opaque,
            stale: stale.unwrap_or(false),
            algorithm: algorithm.unwrap_or_default(),
            qop,
        })
    }
}

/// Prints the header value, e.g.
/// `Digest realm="example.com", nonce="…", opaque="…", algorithm=SHA-256, qop="auth", stale=true`
/// (RFC 7616 §3.3; `stale` only when true).
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest realm=")?;
        write_quoted(f, &self.realm)?;
        if let Some(domain) = &self.domain {
            f.write_str(", domain=")?;
            write_quoted(f, domain)?;
        }
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        write!(f, ", algorithm={}", self.algorithm)?;
        if let Some(qop) = self.qop {
            write!(f, ", qop=\"{qop}\"")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

/// Digest credentials: the value of `Authorization` or `Proxy-Authorization`
/// (RFC 7616 §3.4, RFC 3261 §22.4 and §25.1 `digest-response`).
///
/// Quoted values are stored unescaped, exactly as they enter the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username` (RFC 7616 §3.4).
    pub username: String,
    /// `realm`, echoed from the challenge.
    pub realm: String,
    /// `nonce`, echoed from the challenge.
    pub nonce: String,
    /// `uri`: the digest-uri, the Request-URI of the request (RFC 3261 §22.4).
    pub uri: String,
    /// `response`: the request-digest in hex (RFC 7616 §3.4.1).
    pub response: String,
    /// `algorithm`; MD5 when absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    /// `cnonce`: the client nonce, required with `qop` and with `-sess` algorithms.
    pub cnonce: Option<String>,
    /// `opaque`, echoed from the challenge.
    pub opaque: Option<String>,
    /// `qop`: `None` for a legacy RFC 2069 response.
    pub qop: Option<Qop>,
    /// `nc`: the nonce count, sent as 8 hex digits (RFC 7616 §3.4).
    pub nc: Option<u32>,
}

impl Credentials {
    /// Parses an `Authorization` / `Proxy-Authorization` header value (RFC 7616 §3.4,
    /// RFC 3261 §25.1 `credentials`).
    ///
    /// The scheme `Digest` is matched case-insensitively; anything else gives
    /// [`DigestError::UnknownScheme`]. `username`, `realm`, `nonce`, `uri` and `response` are
    /// required; `cnonce` and `nc` are required with `qop` (RFC 7616 §3.4) and `cnonce` with a
    /// `-sess` algorithm (RFC 7616 §3.4.2). `qop`, `nc` and `algorithm` are tokens but are also
    /// accepted quoted. Unknown parameters are ignored (RFC 7616 §3.4 `auth-param`). Never
    /// panics.
    ///
    /// # Errors
    ///
    /// [`DigestError::UnknownScheme`] for another scheme (answer with a new challenge),
    /// [`DigestError::MissingParam`] for a missing required parameter,
    /// [`DigestError::UserhashUnsupported`] for `userhash=true`, and the other variants for
    /// malformed input or unsupported values.
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        let params = parse_digest_params(value)?;
        let mut username = None;
        let mut realm = None;
        let mut nonce = None;
        let mut uri = None;
        let mut response = None;
        let mut algorithm = None;
        let mut cnonce = None;
        let mut opaque = None;
        let mut qop = None;
        let mut nc = None;
        for p in params {
            match p.name.as_str() {
                "username" => username = Some(p.value),
                "realm" => realm = Some(p.value),
                "nonce" => nonce = Some(p.value),
                "uri" => uri = Some(p.value),
                "response" => response = Some(p.value),
                "algorithm" => algorithm = Some(p.value.parse::<Algorithm>()?),
                "cnonce" => cnonce = Some(p.value),
                "opaque" => opaque = Some(p.value),
                "qop" => {
                    if p.value.eq_ignore_ascii_case("auth") {
                        qop = Some(Qop::Auth);
                    } else {
                        return Err(DigestError::UnsupportedQop(p.value));
                    }
                }
                "nc" => nc = Some(parse_nc(&p.value)?),
                "userhash" => {
                    // RFC 7616 §3.4.4; "false" is the default and changes nothing.
                    if p.value.eq_ignore_ascii_case("true") {
                        return Err(DigestError::UserhashUnsupported);
                    } else if !p.value.eq_ignore_ascii_case("false") {
                        return Err(DigestError::Malformed("userhash is neither true nor false"));
                    }
                }
                _ => {}
            }
        }
        let creds = Credentials {
            username: username.ok_or(DigestError::MissingParam("username"))?,
            realm: realm.ok_or(DigestError::MissingParam("realm"))?,
            nonce: nonce.ok_or(DigestError::MissingParam("nonce"))?,
            uri: uri.ok_or(DigestError::MissingParam("uri"))?,
            response: response.ok_or(DigestError::MissingParam("response"))?,
            algorithm: algorithm.unwrap_or_default(),
            cnonce,
            opaque,
            qop,
            nc,
        };
        if creds.qop.is_some() {
            if creds.cnonce.is_none() {
                return Err(DigestError::MissingParam("cnonce"));
            }
            if creds.nc.is_none() {
                return Err(DigestError::MissingParam("nc"));
            }
        }
        if creds.algorithm.is_session() && creds.cnonce.is_none() {
            return Err(DigestError::MissingParam("cnonce"));
        }
        Ok(creds)
    }

    /// The request-digest these credentials should carry for `method` and the stored HA1
    /// (RFC 7616 §3.4.1), or `None` when the parameters for it are missing.
    fn expected_response(&self, method: &str, ha1_hex: &str) -> Option<String> {
        let alg = self.algorithm;
        let ha1 = if alg.is_session() {
            // RFC 7616 §3.4.2: A1 = H(username:realm:passwd):nonce-prime:cnonce-prime
            let cnonce = self.cnonce.as_deref()?;
            alg.hash_hex(&[ha1_hex.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()])
        } else {
            ha1_hex.to_owned()
        };
        // RFC 7616 §3.4.3: A2 = Method ":" request-uri (qop=auth or absent)
        let ha2 = alg.hash_hex(&[method.as_bytes(), self.uri.as_bytes()]);
        Some(match self.qop {
            // RFC 7616 §3.4.1: KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))
            Some(qop) => {
                let nc = format!("{:08x}", self.nc?);
                let cnonce = self.cnonce.as_deref()?;
                alg.hash_hex(&[
                    ha1.as_bytes(),
                    self.nonce.as_bytes(),
                    nc.as_bytes(),
                    cnonce.as_bytes(),
                    qop.as_str().as_bytes(),
                    ha2.as_bytes(),
                ])
            }
            // RFC 2069 / RFC 2617 §3.2.2.1 without qop: KD(H(A1), nonce ":" H(A2))
            None => alg.hash_hex(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        })
    }
}

/// Prints a valid `Authorization` / `Proxy-Authorization` header value (RFC 7616 §3.4,
/// RFC 3261 §25.1 `digest-response`): quoted strings for the quoted parameters (with `"` and
/// `\` escaped), tokens for `algorithm`, `qop` and `nc`.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        write_quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        f.write_str(", response=")?;
        write_quoted(f, &self.response)?;
        write!(f, ", algorithm={}", self.algorithm)?;
        if let Some(cnonce) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, cnonce)?;
        }
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        if let Some(qop) = self.qop {
            write!(f, ", qop={qop}")?;
        }
        if let Some(nc) = self.nc {
            write!(f, ", nc={nc:08x}")?;
        }
        Ok(())
    }
}

/// `H(username ":" realm ":" password)` in lowercase hex: the HA1 a server stores instead of the
/// password (RFC 7616 §3.4.2, RFC 3261 §22.4).
///
/// For a `-sess` algorithm this is the HA1 of its [`Algorithm::base`]: the session HA1 is derived
/// from it at verification time with the nonce and cnonce, so one stored value per realm and hash
/// function (MD5, SHA-256) serves both variants.
#[must_use]
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.base().hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// Checks the `response` of `creds` for a request with `method` against the stored HA1
/// (RFC 7616 §3.4.1, RFC 3261 §22.4), requiring `qop=auth`.
///
/// `stored_ha1_hex` is [`ha1`] of the user for `creds.realm` and `creds.algorithm.base()`;
/// a value of the wrong length for the algorithm never verifies. The comparison of the response
/// takes the same time wherever the first difference is.
///
/// This checks only the hash: the caller also checks the nonce with [`NonceManager::check`],
/// that `realm` is its own and that `uri` names the Request-URI (RFC 3261 §22.4).
#[must_use]
pub fn verify(creds: &Credentials, method: &str, stored_ha1_hex: &str) -> bool {
    verify_with(creds, method, stored_ha1_hex, false)
}

/// Like [`verify`], and when `allow_no_qop` is true also accepts legacy responses without `qop`
/// (RFC 2069, RFC 2617 §3.2.2.1), which some old SIP phones send. Those responses carry no
/// nonce count, so replay within the nonce lifetime cannot be detected for them.
#[must_use]
pub fn verify_with(creds: &Credentials, method: &str, stored_ha1_hex: &str, allow_no_qop: bool) -> bool {
    if creds.qop.is_none() && !allow_no_qop {
        return false;
    }
    let alg = creds.algorithm;
    if stored_ha1_hex.len() != alg.hex_len() || !stored_ha1_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let ha1 = stored_ha1_hex.to_ascii_lowercase();
    let Some(expected) = creds.expected_response(method, &ha1) else {
        return false;
    };
    constant_time_eq(expected.as_bytes(), creds.response.to_ascii_lowercase().as_bytes())
}

/// Client side: answers `challenge` for a request `method uri` (RFC 7616 §3.4, RFC 3261 §22.4).
///
/// `cnonce` is a fresh random string from the caller (RFC 7616 §3.4: it should be unique per
/// nonce use); `nc` counts the requests sent with this nonce, starting at 1. When the challenge
/// offers no `qop` the legacy RFC 2069 response is built (and `cnonce` is sent only for a
/// `-sess` algorithm, which needs it).
#[must_use]
pub fn respond(
    challenge: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Credentials {
    let qop = challenge.qop;
    let mut creds = Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response: String::new(),
        algorithm: challenge.algorithm,
        cnonce: (qop.is_some() || challenge.algorithm.is_session()).then(|| cnonce.to_owned()),
        opaque: challenge.opaque.clone(),
        qop,
        nc: qop.map(|_| nc),
    };
    let stored = ha1(challenge.algorithm, username, &challenge.realm, password);
    // Every parameter expected_response needs was just set, so this is always Some.
    creds.response = creds.expected_response(method, &stored).unwrap_or_default();
    creds
}

/// Outcome of [`NonceManager::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonceCheck {
    /// Ours, fresh, and (when an `nc` was given) a nonce count higher than any accepted before.
    Valid,
    /// Ours but older than the lifetime (or its replay state was forgotten): answer 401 with
    /// `stale=true` if the response itself verified (RFC 7616 §3.3).
    Stale,
    /// Not a nonce this server issued: malformed, or its MAC does not match.
    Invalid,
    /// The `nc` is not greater than the highest already accepted for this nonce
    /// (RFC 7616 §3.4, §5.5): a replayed or reordered request.
    Replay,
}

/// Issues and checks server nonces without a table of issued nonces (RFC 7616 §3.3, §5.4).
///
/// A nonce is the lowercase hex of `issued (8 bytes, big-endian Unix seconds) ‖ salt (8 bytes) ‖
/// tag (16 bytes)`, where the tag is HMAC-SHA256 with the server secret over a label and the
/// first 16 bytes, truncated to 128 bits. The server recognises its own nonces from the tag, and
/// a restart with the same secret (or another node sharing it) accepts them while they are
/// fresh.
///
/// For replay protection the highest `nc` accepted per nonce is remembered in a map ordered by
/// issue time, bounded to [`NonceManager::DEFAULT_MAX_TRACKED`] entries by default: entries whose
/// nonce has expired are dropped, and when the map is full the oldest entry is dropped and every
/// nonce issued no later than it is answered [`NonceCheck::Stale`] from then on (its replay state
/// is gone, so the client is sent a new nonce). That state lives in memory only: after a restart
/// a request captured before it could be replayed until its nonce expires, so keep the lifetime
/// short (a few minutes).
#[derive(Clone)]
pub struct NonceManager {
    mac: HmacSha256,
    lifetime_secs: u64,
    counter: u64,
    max_tracked: usize,
    /// Highest accepted nc, keyed by (issued, salt), so the first entry is the oldest nonce.
    seen: BTreeMap<(u64, u64), u32>,
    /// The largest key dropped because the map was full; nonces at or below it are stale.
    forgotten_up_to: Option<(u64, u64)>,
    /// Which of several managers sharing the secret this is, and how many there are: each
    /// issues only salts that leave `index` modulo `count`, and takes counted answers only to
    /// its own nonces, since only it tracks their counts.
    shard: (u64, u64),
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the keyed MAC state.
        f.debug_struct("NonceManager")
            .field("lifetime_secs", &self.lifetime_secs)
            .field("max_tracked", &self.max_tracked)
            .field("tracked", &self.seen.len())
            .finish_non_exhaustive()
    }
}

/// Domain separation for the nonce MAC, in case the secret is shared with other uses.
const NONCE_MAC_LABEL: &[u8] = b"sambung-sip digest nonce v1\0";
/// Bytes of a decoded nonce: issued (8) + salt (8) + tag (16).
const NONCE_LEN: usize = 32;
/// How far in the future an issue time may be (clock steps, nodes sharing a secret) before the
/// nonce is treated as stale rather than fresh.
const MAX_FUTURE_SKEW_SECS: u64 = 60;

impl NonceManager {
    /// Default bound of the replay map.
    pub const DEFAULT_MAX_TRACKED: usize = 100_000;

    /// A manager keyed with `secret` (use at least 32 random bytes, kept across restarts) whose
    /// nonces are fresh for `lifetime_secs` seconds after issue.
    pub fn new(secret: &[u8], lifetime_secs: u64) -> Self {
        NonceManager {
            mac: hmac_from_secret(secret),
            lifetime_secs,
            counter: 0,
            max_tracked: Self::DEFAULT_MAX_TRACKED,
            seen: BTreeMap::new(),
            forgotten_up_to: None,
            shard: (0, 1),
        }
    }

    /// Makes this manager shard `index` of `count` managers sharing the secret (call control
    /// on several cores): its nonces carry the shard in their salt, and a counted answer to
    /// another shard's nonce is [`NonceCheck::Stale`], so the client answers a fresh challenge
    /// instead of this manager accepting a count it cannot check for replay.
    pub fn with_shard(mut self, index: usize, count: usize) -> Self {
        let count = count.max(1) as u64;
        self.shard = ((index as u64).min(count - 1), count);
        self
    }

    /// Sets the bound of the replay map (at least 1).
    pub fn with_max_tracked(mut self, max_tracked: usize) -> Self {
        self.max_tracked = max_tracked.max(1);
        self
    }

    /// Starts the salt counter of [`issue`](Self::issue) at `seed`. Seed it with random bytes
    /// at start-up so that nonces issued in the same second before and after a restart differ.
    pub fn with_counter_seed(mut self, seed: u64) -> Self {
        self.counter = seed;
        self
    }

    /// The configured nonce lifetime in seconds.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime_secs
    }

    /// Number of nonces whose highest `nc` is being tracked.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// Issues a nonce at `now_secs` (Unix seconds) with a salt from an internal counter.
    pub fn issue(&mut self, now_secs: u64) -> String {
        let (index, count) = self.shard;
        let base = self.counter - self.counter % count;
        let salt = base.checked_add(index).unwrap_or(index);
        self.counter = self.counter.wrapping_add(count);
        self.issue_with_salt(now_secs, salt.to_be_bytes())
    }

    /// Issues a nonce at `now_secs` (Unix seconds) with a salt chosen by the caller, e.g. random
    /// bytes.
    pub fn issue_with_salt(&self, now_secs: u64, salt: [u8; 8]) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&now_secs.to_be_bytes());
        raw[8..16].copy_from_slice(&salt);
        let tag = self.tag(&raw[..16]);
        raw[16..].copy_from_slice(&tag[..16]);
        to_hex(&raw)
    }

    /// Checks a nonce returned by a client at `now_secs` (Unix seconds), and when `nc` is given
    /// records it as the highest accepted count for that nonce if the outcome is
    /// [`NonceCheck::Valid`] (RFC 7616 §3.4, §5.5).
    ///
    /// Call it after [`verify`] succeeded, so that a forged request cannot use up counts.
    /// Without `nc` (legacy responses without `qop`) only authenticity and age are checked.
    /// `nc` 0 is never valid: counting starts at 1.
    #[must_use = "a nonce that is not Valid must be answered with a new challenge"]
    pub fn check(&mut self, nonce: &str, nc: Option<u32>, now_secs: u64) -> NonceCheck {
        let Some(raw) = from_hex::<NONCE_LEN>(nonce) else {
            return NonceCheck::Invalid;
        };
        let mut mac = self.mac.clone();
        mac.update(NONCE_MAC_LABEL);
        mac.update(&raw[..16]);
        if mac.verify_truncated_left(&raw[16..]).is_err() {
            return NonceCheck::Invalid;
        }
        let issued = be_u64(&raw[..8]);
        let salt = be_u64(&raw[8..16]);
        if issued > now_secs.saturating_add(MAX_FUTURE_SKEW_SECS)
            || now_secs.saturating_sub(issued) > self.lifetime_secs
        {
            return NonceCheck::Stale;
        }
        let Some(nc) = nc else {
            return NonceCheck::Valid;
        };
        if salt % self.shard.1 != self.shard.0 {
            return NonceCheck::Stale;
        }
        let key = (issued, salt);
        self.expire(now_secs);
        if let Some(highest) = self.seen.get_mut(&key) {
            if nc <= *highest {
                return NonceCheck::Replay;
            }
            *highest = nc;
            return NonceCheck::Valid;
        }
        if self.forgotten_up_to.is_some_and(|f| key <= f) {
            return NonceCheck::Stale;
        }
        if nc == 0 {
            return NonceCheck::Replay;
        }
        self.seen.insert(key, nc);
        // Keys at or below the floor are never inserted, so what is dropped here is always above
        // it and the floor only rises. If the new key itself is dropped (it is the oldest), this
        // use is still valid and any later use of that nonce is stale.
        while self.seen.len() > self.max_tracked {
            match self.seen.pop_first() {
                Some((old, _)) => self.forgotten_up_to = Some(old),
                None => break,
            }
        }
        NonceCheck::Valid
    }

    /// Drops the entries whose nonce is past its lifetime at `now_secs`.
    fn expire(&mut self, now_secs: u64) {
        while let Some((&(issued, _), _)) = self.seen.first_key_value() {
            if now_secs.saturating_sub(issued) > self.lifetime_secs {
                self.seen.pop_first();
            } else {
                break;
            }
        }
    }

    fn tag(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(NONCE_MAC_LABEL);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 keyed with `secret`, built without a fallible constructor: the key block is the
/// secret zero-padded, or its SHA-256 when longer than a block, exactly as RFC 2104 §2 does.
fn hmac_from_secret(secret: &[u8]) -> HmacSha256 {
    let mut key = hmac::digest::Key::<HmacSha256>::default();
    if secret.len() <= key.len() {
        key[..secret.len()].copy_from_slice(secret);
    } else {
        let digest = Sha256::digest(secret);
        key[..digest.len()].copy_from_slice(&digest);
    }
    <HmacSha256 as hmac::digest::KeyInit>::new(&key)
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
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

/// `nc-value = 8LHEX` (RFC 7616 §3.4); upper case is tolerated.
fn parse_nc(value: &str) -> Result<u32, DigestError> {
    if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DigestError::InvalidNonceCount(value.to_owned()));
    }
    u32::from_str_radix(value, 16).map_err(|_| DigestError::InvalidNonceCount(value.to_owned()))
}

/// Writes `s` as a quoted-string, escaping `"` and `\` (RFC 3261 §25.1 `quoted-pair`).
///
/// CR and LF cannot appear in a quoted-string, not even escaped, and would split the header:
/// they are left out.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars().filter(|&c| c != '\r' && c != '\n') {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn trim_lws(s: &str) -> &str {
    s.trim_matches(is_lws_char)
}

fn is_lws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `token` characters (RFC 3261 §25.1).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// One `auth-param`, with its name lower-cased and its value unquoted and unescaped.
struct Param {
    name: String,
    value: String,
}

/// Most parameters a digest header may carry: far more than any real one.
const MAX_PARAMS: usize = 64;

/// Splits `Digest name=value, name="quoted", …` into its parameters (RFC 3261 §25.1
/// `challenge` / `credentials`, RFC 7616 §3.3 and §3.4).
///
/// The scheme is matched case-insensitively. LWS (including folded lines) is allowed around `=`
/// and `,`, empty list elements are skipped (RFC 7230 §7 `#rule`), quoted values may hold
/// `\`-escapes, and unquoted values run to the next LWS or comma. A parameter given twice is an
/// error.
fn parse_digest_params(value: &str) -> Result<Vec<Param>, DigestError> {
    let s = trim_lws(value);
    if s.is_empty() {
        return Err(DigestError::Malformed("empty header value"));
    }
    let bytes = s.as_bytes();
    let scheme_end = bytes.iter().position(|&b| !is_token_byte(b)).unwrap_or(bytes.len());
    let scheme = &s[..scheme_end];
    if scheme.is_empty() {
        return Err(DigestError::Malformed("missing authentication scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError::UnknownScheme);
    }
    let mut pos = scheme_end;
    if pos < bytes.len() && !is_lws_char(char::from(bytes[pos])) {
        return Err(DigestError::Malformed("no space after the scheme"));
    }

    let skip_lws = |mut p: usize| {
        while p < bytes.len() && is_lws_char(char::from(bytes[p])) {
            p += 1;
        }
        p
    };

    let mut params: Vec<Param> = Vec::new();
    loop {
        pos = skip_lws(pos);
        if pos >= bytes.len() {
            break;
        }
        if bytes[pos] == b',' {
            pos += 1;
            continue;
        }
        let name_start = pos;
        while pos < bytes.len() && is_token_byte(bytes[pos]) {
            pos += 1;
        }
        if pos == name_start {
            return Err(DigestError::Malformed("expected a parameter name"));
        }
        let name = s[name_start..pos].to_ascii_lowercase();
        pos = skip_lws(pos);
        if pos >= bytes.len() || bytes[pos] != b'=' {
            return Err(DigestError::Malformed("expected `=` after a parameter name"));
        }
        pos = skip_lws(pos + 1);
        if pos >= bytes.len() {
            return Err(DigestError::Malformed("missing parameter value"));
        }
        let value = if bytes[pos] == b'"' {
            let (v, end) = parse_quoted(s, pos)?;
            pos = end;
            v
        } else {
            let start = pos;
            while pos < bytes.len() && !matches!(bytes[pos], b',' | b'"') && !is_lws_char(char::from(bytes[pos])) {
                pos += 1;
            }
            if pos == start {
                return Err(DigestError::Malformed("missing parameter value"));
            }
            s[start..pos].to_owned()
        };
        pos = skip_lws(pos);
        if pos < bytes.len() && bytes[pos] != b',' {
            return Err(DigestError::Malformed("expected `,` between parameters"));
        }
        if params.iter().any(|p| p.name == name) {
            return Err(DigestError::DuplicateParam(name));
        }
        if params.len() >= MAX_PARAMS {
            return Err(DigestError::Malformed("too many parameters"));
        }
        params.push(Param { name, value });
    }
    Ok(params)
}

/// Parses the quoted-string starting at the `"` at byte `open` of `s`; returns the unescaped
/// content and the byte index just past the closing quote (RFC 3261 §25.1 `quoted-string`).
fn parse_quoted(s: &str, open: usize) -> Result<(String, usize), DigestError> {
    let Some(rest) = s.get(open + 1..) else {
        return Err(DigestError::Malformed("unterminated quoted string"));
    };
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, open + 1 + i + 1)),
            '\\' => match chars.next() {
                Some((_, escaped)) => out.push(escaped),
                None => break,
            },
            _ => out.push(c),
        }
    }
    Err(DigestError::Malformed("unterminated quoted string"))
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
    fn nc_parsing() {
        assert_eq!(parse_nc("00000001"), Ok(1));
        assert_eq!(parse_nc("0000000A"), Ok(10));
        assert_eq!(parse_nc("ffffffff"), Ok(u32::MAX));
        for bad in ["1", "000000001", "+0000001", "0000000g", ""] {
            assert!(matches!(parse_nc(bad), Err(DigestError::InvalidNonceCount(_))), "{bad}");
        }
    }

    #[test]
    fn hmac_key_matches_new_from_slice() {
        for secret in [&b""[..], b"short", &[7u8; 64], &[9u8; 200]] {
            let mut a = hmac_from_secret(secret);
            let mut b = <HmacSha256 as Mac>::new_from_slice(secret).expect("any length");
            a.update(b"x");
            b.update(b"x");
            assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
        }
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn full_map_forgets_oldest_and_answers_stale() {
        let mut m = NonceManager::new(b"secret", 300).with_max_tracked(2);
        let n1 = m.issue(1000);
        let n2 = m.issue(1001);
        let n3 = m.issue(1002);
        assert_eq!(m.check(&n1, Some(1), 1010), NonceCheck::Valid);
        assert_eq!(m.check(&n2, Some(1), 1010), NonceCheck::Valid);
        assert_eq!(m.check(&n3, Some(1), 1010), NonceCheck::Valid);
        assert_eq!(m.tracked(), 2);
        // n1's state was dropped: it could be a replay now, so it is stale.
        assert_eq!(m.check(&n1, Some(2), 1010), NonceCheck::Stale);
        assert_eq!(m.check(&n2, Some(1), 1010), NonceCheck::Replay);
        assert_eq!(m.check(&n3, Some(2), 1010), NonceCheck::Valid);
    }

    #[test]
    fn expired_entries_are_dropped() {
        let mut m = NonceManager::new(b"secret", 60);
        let old = m.issue(1000);
        assert_eq!(m.check(&old, Some(1), 1000), NonceCheck::Valid);
        assert_eq!(m.tracked(), 1);
        let new = m.issue(2000);
        assert_eq!(m.check(&new, Some(1), 2000), NonceCheck::Valid);
        assert_eq!(m.tracked(), 1);
    }
}
