//! Digest authentication of requests from devices (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! A wrong password, an unknown user and a disabled account all get the same fresh challenge,
//! so the answers never tell which usernames exist.

use std::sync::Arc;

use sambung_sip::digest::{self, Algorithm, Challenge, Credentials, NonceCheck, NonceManager};
use sambung_sip::{HeaderName, Request, Response, SipStr};

use super::accounts::{Account, Accounts};
use crate::events::AuthFailure;

/// Who is asking: a registrar challenges with 401 and `WWW-Authenticate`, a server that
/// forwards the request with 407 and `Proxy-Authenticate` (RFC 3261 §22.2, §22.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Challenger {
    Registrar,
    Proxy,
}

/// The outcome of authenticating one request.
#[derive(Debug)]
pub enum AuthOutcome {
    Authenticated(Arc<Account>),
    /// Answer with this challenge (401 or 407). `failed` names the credentials that were
    /// offered and refused (not a first request without any), and why.
    Challenge {
        response: Response,
        failed: Option<(String, AuthFailure)>,
    },
}

/// Checks credentials against the account table and issues challenges.
#[derive(Debug)]
pub struct Authenticator {
    realm: String,
    nonces: NonceManager,
    /// Offered in this order, one challenge each.
    algorithms: Vec<Algorithm>,
}

impl Authenticator {
    /// Offers MD5 only; see [`Authenticator::with_algorithms`].
    pub fn new(realm: String, nonces: NonceManager) -> Authenticator {
        Authenticator { realm, nonces, algorithms: vec![Algorithm::Md5] }
    }

    /// The algorithms to offer, in order of preference (RFC 8760 §2.4). Many clients answer
    /// only the first challenge.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Authenticator {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Authenticates `request` (`now_secs` is Unix time, for nonce freshness). A username
    /// `locked` says is locked fails as [`AuthFailure::Locked`] before its password or nonce is
    /// looked at, so that its answer is the one a wrong password gets (never `stale`).
    pub fn authenticate(
        &mut self,
        request: &Request,
        accounts: &Accounts,
        challenger: Challenger,
        now_secs: u64,
        locked: &dyn Fn(&str) -> bool,
    ) -> AuthOutcome {
        let header = match challenger {
            Challenger::Registrar => HeaderName::Authorization,
            Challenger::Proxy => HeaderName::ProxyAuthorization,
        };
        let mut stale = false;
        let mut failed = None;
        // Several credentials may be present, one per realm (RFC 3261 §22.4): use ours.
        for value in request.headers.get_all(header) {
            let Ok(creds) = Credentials::parse(value) else { continue };
            if creds.realm != self.realm {
                continue;
            }
            match self.check(&creds, request, accounts, now_secs, locked) {
                Check::Ok(account) => return AuthOutcome::Authenticated(account),
                Check::Stale => stale = true,
                Check::Failed(why) => failed = Some((creds.username.to_string(), why)),
            }
        }
        AuthOutcome::Challenge { response: self.challenge(request, challenger, stale, now_secs), failed }
    }

    fn check(
        &mut self,
        creds: &Credentials,
        request: &Request,
        accounts: &Accounts,
        now_secs: u64,
        locked: &dyn Fn(&str) -> bool,
    ) -> Check {
        let Some(account) = accounts.by_username(&creds.username) else {
            return Check::Failed(AuthFailure::UnknownUser);
        };
        if account.disabled || account.realm != self.realm {
            return Check::Failed(AuthFailure::UnknownUser);
        }
        if locked(&account.username) {
            return Check::Failed(AuthFailure::Locked);
        }
        let ha1 = match creds.algorithm.base() {
            Algorithm::Sha256 => &account.ha1_sha256,
            _ => &account.ha1_md5,
        };
        if !digest::verify(creds, request.method.as_str(), ha1) {
            return Check::Failed(AuthFailure::WrongPassword);
        }
        // Only a correct answer may use up a nonce count (replay protection, RFC 7616 §3.4).
        match self.nonces.check(&creds.nonce, creds.nc, now_secs) {
            NonceCheck::Valid => Check::Ok(account.clone()),
            NonceCheck::Stale => Check::Stale,
            NonceCheck::Invalid | NonceCheck::Replay => Check::Failed(AuthFailure::BadNonce),
        }
    }

    /// A 401 or 407 with one challenge per configured algorithm (RFC 8760 §2.4).
    pub fn challenge(&mut self, request: &Request, challenger: Challenger, stale: bool, now_secs: u64) -> Response {
        let nonce = self.nonces.issue(now_secs);
        let (status, header) = match challenger {
            Challenger::Registrar => (401, HeaderName::WwwAuthenticate),
            Challenger::Proxy => (407, HeaderName::ProxyAuthenticate),
        };
        let mut response = request.reply(status, "");
        for &algorithm in &self.algorithms {
            let challenge = Challenge::new(self.realm.as_str(), nonce.as_str(), algorithm).with_stale(stale);
            crate::sip::insert(&mut response, header.clone(), SipStr::from(challenge.to_string()));
        }
        response
    }
}

enum Check {
    Ok(Arc<Account>),
    Stale,
    Failed(AuthFailure),
}
