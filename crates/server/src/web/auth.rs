//! Who is calling the API: a signed-in browser (session cookie, with a CSRF token on writes) or
//! a script (personal API token as `Authorization: Bearer`). Secrets are random, shown once,
//! and stored only as their SHA-256.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sambung_store::{Account, ApiToken, WebSession};
use sha2::{Digest as _, Sha256};

use super::problem::Problem;
use super::{WebState, unix_now};

/// The session cookie. The `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no other site or subdomain can set it.
pub const SESSION_COOKIE: &str = "__Host-sambung-session";
/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// What personal API tokens start with (so that secret scanners can find leaked ones).
pub const TOKEN_PREFIX: &str = "sbg_";

/// A new random secret: 32 bytes, base64url.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a secret, lower-case hex: what the store keeps.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes the same time wherever the first difference is.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value that signs a browser in for `max_age` seconds.
pub fn session_cookie(secret: &str, max_age: u64) -> String {
    format!("{SESSION_COOKIE}={secret}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

/// The `Set-Cookie` value that signs a browser out.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The session cookie's value among the request's cookies.
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether a browser's request comes from a page of this server: its `Origin`, when sent, names
/// the host the request was sent to, and `Sec-Fetch-Site`, when sent, is not `cross-site`.
/// Requests from programs (no `Origin`) pass.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// How the caller proved who it is.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A browser's session cookie; the hash identifies the session.
    Session { secret_hash: String, session: WebSession },
    /// A personal API token.
    Token(ApiToken),
}

/// The signed-in caller of an API route. Extracting it answers 401 without valid credentials,
/// and 403 to a cookie-authenticated write without the session's CSRF token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: Account,
    pub credential: Credential,
}

impl Caller {
    /// The session's hash, when signed in with a cookie.
    pub fn session_hash(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { secret_hash, .. } => Some(secret_hash),
            Credential::Token(_) => None,
        }
    }
}

impl FromRequestParts<WebState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Caller, Problem> {
        let now = unix_now();
        let bearer = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Some(value) = bearer {
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| Problem::unauthorized("the Authorization header must be \"Bearer <token>\""))?;
            let found = state.store.api_token_by_secret(&hash_secret(token.trim()), now).await?;
            let (token, account) =
                found.ok_or_else(|| Problem::unauthorized("the API token is unknown, revoked or expired"))?;
            let key = LimitKey::Token(token.id);
            let instant = Instant::now();
            if let Err(wait) = state.limits.token_requests.check(&key, instant) {
                return Err(Problem::too_many("this token has made too many requests: wait", wait));
            }
            state.limits.token_requests.record(key, instant);
            if let Some(scopes) = &token.scopes {
                let path = parts.uri.path();
                let path = path.strip_prefix("/api/v1").unwrap_or(path);
                if let Some(needed) = scope_for(&parts.method, path)
                    && !scopes.split(' ').any(|s| s == needed)
                {
                    return Err(Problem::forbidden("scope", format!("this token's scopes do not include {needed}")));
                }
                if scope_for(&parts.method, path).is_none() && !(parts.method == Method::GET && path == "/me") {
                    return Err(Problem::forbidden("scope", "no scope of a token for software allows this"));
                }
            }
            return Ok(Caller { account, credential: Credential::Token(token) });
        }
        let secret = cookie_secret(&parts.headers).ok_or_else(|| Problem::unauthorized("sign in first"))?;
        let secret_hash = hash_secret(secret);
        let found = state.store.web_session(&secret_hash, now, now + state.session_seconds()).await?;
        let (session, account) =
            found.ok_or_else(|| Problem::unauthorized("the session has expired: sign in again"))?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !same_secret(sent, &session.csrf_token) || !same_origin(&parts.headers) {
                return Err(Problem::forbidden(
                    "csrf",
                    "a write signed in with the session cookie needs the session's X-CSRF-Token header",
                ));
            }
        }
        Ok(Caller { account, credential: Credential::Session { secret_hash, session } })
    }
}

impl OptionalFromRequestParts<WebState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Option<Caller>, Problem> {
        match <Caller as FromRequestParts<WebState>>::from_request_parts(parts, state).await {
            Ok(caller) => Ok(Some(caller)),
            Err(p) if p.status == 401 => Ok(None),
            Err(p) => Err(p),
        }
    }
}

/// A signed-in administrator: 403 for anyone else.
#[derive(Clone, Debug)]
pub struct Admin(pub Caller);

impl FromRequestParts<WebState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Admin, Problem> {
        let caller = <Caller as FromRequestParts<WebState>>::from_request_parts(parts, state).await?;
        if caller.account.admin {
            Ok(Admin(caller))
        } else {
            Err(Problem::forbidden("not_admin", "only administrators may do this"))
        }
    }
}

/// Counts events per key in a sliding window (sign-ups per source, failed sign-ins per source
/// and per username) and says when a key has had its fill.
#[derive(Debug)]
pub struct Limiter {
    window: Duration,
    max: u32,
    events: Mutex<HashMap<LimitKey, Vec<Instant>>>,
}

/// What a [`Limiter`] counts by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Source(IpAddr),
    User(String),
    /// An API token, by id.
    Token(i64),
}

/// The scopes a token for software may have.
pub const SCOPES: [&str; 5] = ["calls:read", "calls:control", "messages:send", "users:manage", "webhooks"];

/// The scope a request needs (its path without `/api/v1`), `None` when no scope allows it: a
/// scoped token may then only read `GET /me`.
pub fn scope_for(method: &Method, path: &str) -> Option<&'static str> {
    let read = *method == Method::GET;
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if read && (under("/calls") || path == "/me/calls" || path == "/registrations" || path == "/status") {
        return Some("calls:read");
    }
    if under("/calls") {
        return Some("calls:control");
    }
    if under("/me/conversations") && (read || path.ends_with("/messages") || path.ends_with("/read")) {
        return Some("messages:send");
    }
    if under("/users") || under("/invitations") {
        return Some("users:manage");
    }
    if under("/webhooks") {
        return Some("webhooks");
    }
    None
}

impl Limiter {
    /// At most `max` events per `window` and key; 0 means no limit.
    pub fn new(window: Duration, max: u32) -> Limiter {
        Limiter { window, max, events: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when `key` has had `max` events in the window.
    pub fn check(&self, key: &LimitKey, now: Instant) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(times) = events.get_mut(key) else { return Ok(()) };
        times.retain(|t| now.saturating_duration_since(*t) < self.window);
        if times.len() < self.max as usize {
            return Ok(());
        }
        let oldest = times.first().copied().unwrap_or(now);
        Err((self.window.saturating_sub(now.saturating_duration_since(oldest))).as_secs().max(1))
    }

    /// Counts one event of `key`.
    pub fn record(&self, key: LimitKey, now: Instant) {
        if self.max == 0 {
            return;
        }
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() > 100_000 {
            // Bounded memory under a spray of sources: forget what has aged out.
            let window = self.window;
            events.retain(|_, times| times.last().is_some_and(|t| now.saturating_duration_since(*t) < window));
        }
        events.entry(key).or_default().push(now);
    }

    /// Forgets `key` (a successful sign-in clears its username's failures).
    pub fn clear(&self, key: &LimitKey) {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn secrets() {
        let a = new_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_secret());
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "abcd"));
    }

    #[test]
    fn cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-sambung-session=s3cret; b=2"));
        assert_eq!(cookie_secret(&headers), Some("s3cret"));
        headers.insert(header::COOKIE, HeaderValue::from_static("__Host-sambung-session="));
        assert_eq!(cookie_secret(&headers), None);
        assert!(session_cookie("x", 60).contains("HttpOnly; Secure; SameSite=Strict"));
    }

    #[test]
    fn origins() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers), "a program sends no Origin");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7443"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://127.0.0.1:7443"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://127.0.0.1:7443"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn limiter_window() {
        let limiter = Limiter::new(Duration::from_secs(60), 2);
        let key = LimitKey::Source(IpAddr::from([127, 0, 0, 1]));
        let t0 = Instant::now();
        limiter.record(key.clone(), t0);
        limiter.record(key.clone(), t0 + Duration::from_secs(10));
        assert!(limiter.check(&LimitKey::User("x".into()), t0).is_ok());
        assert_eq!(limiter.check(&key, t0 + Duration::from_secs(20)), Err(40));
        assert!(limiter.check(&key, t0 + Duration::from_secs(61)).is_ok());
        limiter.clear(&key);
        assert!(limiter.check(&key, t0 + Duration::from_secs(20)).is_ok());
        assert!(Limiter::new(Duration::from_secs(1), 0).check(&key, t0).is_ok());
    }
}
