//! The hashes: the stored HA1, a response checked against it, and the client's response.

use super::{Algorithm, Challenge, Credentials, constant_time_eq};

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

impl Credentials {
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
