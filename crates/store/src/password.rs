//! The password policy, the Argon2id hash for web sign-in and the digest HA1 values for SIP.

use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use sambung_sip::digest::{Algorithm, ha1};

use crate::error::{PasswordError, StoreError};

/// Fewest characters of a password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters of a password.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The most common passwords of at least [`MIN_PASSWORD_CHARS`] characters, from published
/// leak statistics, compared without regard to case.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "12341234",
    "11223344",
    "12344321",
    "123123123",
    "123456789a",
    "qwertyui",
    "qwertyuiop",
    "qwerty12",
    "qwerty123",
    "qwerty1234",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "q1w2e3r4",
    "zaq12wsx",
    "1qaz2wsx",
    "asdfghjk",
    "asdfghjkl",
    "asdf1234",
    "abcd1234",
    "abc12345",
    "abcdefgh",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "starwars",
    "trustno1",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "dragon123",
    "monkey123",
    "computer",
    "internet",
    "whatever",
    "changeme",
    "secret123",
    "admin123",
    "administrator",
    "1234qwer",
    "michael1",
    "jennifer",
    "charlie1",
    "sambung1",
    "sambung123",
];

/// Checks `password` against the policy: at least [`MIN_PASSWORD_CHARS`] characters, not
/// containing `username`, not one character repeated, not a common password, no control
/// characters.
pub fn check_password(username: &str, password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacter);
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(PasswordError::ContainsUsername);
    }
    let mut it = password.chars();
    if let Some(first) = it.next()
        && it.all(|c| c == first)
    {
        return Err(PasswordError::OneCharacter);
    }
    if COMMON.contains(&lower.as_str()) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

/// Everything stored about a password.
#[derive(Clone)]
pub(crate) struct Secrets {
    /// Argon2id PHC string.
    pub password_hash: String,
    /// `MD5(username:realm:password)` in hex (RFC 3261 §22.4).
    pub ha1_md5: String,
    /// `SHA-256(username:realm:password)` in hex (RFC 8760).
    pub ha1_sha256: String,
}

impl Secrets {
    /// Checks the policy, then hashes on a blocking thread (Argon2 takes tens of milliseconds).
    pub async fn derive(username: &str, realm: &str, password: &str) -> Result<Secrets, StoreError> {
        check_password(username, password)?;
        let (username, realm, password) = (username.to_owned(), realm.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || {
            Ok(Secrets {
                password_hash: argon2_hash(&password)?,
                ha1_md5: ha1(Algorithm::Md5, &username, &realm, &password),
                ha1_sha256: ha1(Algorithm::Sha256, &username, &realm, &password),
            })
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?
    }
}

/// The Argon2id PHC string of `secret`, computed on a blocking thread (for voicemail PINs; the
/// policy of the secret is the caller's).
pub(crate) async fn hash(secret: &str) -> Result<String, StoreError> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || argon2_hash(&secret)).await.map_err(|e| StoreError::Hash(e.to_string()))?
}

/// Argon2id with the crate's default parameters and a random salt.
fn argon2_hash(secret: &str) -> Result<String, StoreError> {
    let hash: PasswordHash =
        Argon2::default().hash_password(secret.as_bytes()).map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the Argon2 PHC string `hash`, checked on a blocking thread.
pub(crate) async fn verify(hash: String, password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// Whether `password` matches the account's Argon2 PHC string (for web sign-in), checked on a
/// blocking thread.
pub async fn verify_password_hash(hash: &str, password: &str) -> bool {
    verify(hash.to_owned(), password).await
}

/// The hash of no one's password, with the parameters real ones have: checking a password
/// against it costs what a real check costs, so that the time of a failed sign-in does not tell
/// whether the username exists.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| argon2_hash("no account has this password").unwrap_or_default());
    &DUMMY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_says_why() {
        assert_eq!(check_password("alice", "short"), Err(PasswordError::TooShort));
        assert_eq!(check_password("alice", "xxAlice2024"), Err(PasswordError::ContainsUsername));
        assert_eq!(check_password("bob", "zzzzzzzzzz"), Err(PasswordError::OneCharacter));
        assert_eq!(check_password("bob", "Password1"), Err(PasswordError::Common));
        assert_eq!(check_password("bob", "tab\there!x"), Err(PasswordError::ControlCharacter));
        assert_eq!(check_password("bob", &"ab".repeat(200)), Err(PasswordError::TooLong));
        assert_eq!(check_password("bob", "correct horse"), Ok(()));
    }
}
