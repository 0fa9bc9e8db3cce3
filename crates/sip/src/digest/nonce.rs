//! Nonces: issued with a MAC, checked for age, and their counts tracked against replay
//! (RFC 7616 §3.3, §3.4, §5.5).

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use super::{be_u64, from_hex, to_hex};

type HmacSha256 = Hmac<Sha256>;

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

#[cfg(test)]
mod tests {
    use super::*;

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
