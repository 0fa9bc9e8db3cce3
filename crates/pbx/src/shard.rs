//! Call control on every core: shards.
//!
//! The driver runs one [`crate::Pbx`] per core and hands each received message to the shard
//! [`shard_of`] names from its Call-ID alone. Every message of a transaction and of a dialog
//! carries the same Call-ID, so one shard sees all of a call, a registration or a
//! subscription; Call-IDs that Sambung makes end in `~N`, the shard that made them, so the
//! answers to its own requests come back to it (as quinn's connection IDs carry their route).
//!
//! What every shard must see alike is shared, each piece behind its own lock, held only for
//! the operation and never while taking another (so no order between them can deadlock):
//! the location table (written by the registrar of whichever shard took the REGISTER, read by
//! every shard's calls and messages), the guard's watch (failures, lockouts and sweeps count
//! over all shards), the toll-fraud counters, and the messages waiting for the store or for a
//! device. Each shard keeps its own transactions, dialogs, calls, subscriptions and nonce
//! replay records (a nonce is answered only on the shard that issued it; another shard asks
//! for a fresh one with `stale=true`, RFC 7616 §3.3).

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Which shard, and how many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The only shard of an unsharded server.
    pub const ONE: Shard = Shard { index: 0, count: 1 };

    /// The shard that owns what is not split (binding expiry).
    pub fn is_home(self) -> bool {
        self.index == 0
    }
}

/// Something every shard shares, behind a lock. A shard that panicked while holding it leaves
/// it as it was: call control's state stays usable (the panic itself is the bug to fix).
#[derive(Debug, Default)]
pub struct Locked<T>(Arc<Mutex<T>>);

impl<T> Clone for Locked<T> {
    fn clone(&self) -> Self {
        Locked(self.0.clone())
    }
}

impl<T> Locked<T> {
    pub fn new(value: T) -> Locked<T> {
        Locked(Arc::new(Mutex::new(value)))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Something every shard reads and one at a time writes.
#[derive(Debug, Default)]
pub struct Shared<T>(Arc<RwLock<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(RwLock::new(value)))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The marker that ends the Call-IDs shard `index` makes.
pub fn call_id_suffix(index: usize) -> String {
    format!("~{index}")
}

/// The shard (of `count`) that takes the SIP message in `bytes`: the one its Call-ID names when
/// it ends in `~N` with `N < count`, else one picked by a hash of the Call-ID. Only the
/// header's value is looked for (`Call-ID` or its compact form `i`, at the start of a line of
/// the head, any case); a message without one goes to shard 0, which answers it as malformed.
pub fn shard_of(bytes: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let Some(call_id) = find_call_id(bytes) else { return 0 };
    if let Some(tilde) = call_id.iter().rposition(|&b| b == b'~') {
        let digits = &call_id[tilde + 1..];
        if !digits.is_empty() && digits.len() <= 4 && digits.iter().all(u8::is_ascii_digit) {
            let n = digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
            if n < count {
                return n;
            }
        }
    }
    // FNV-1a: fast, and an attacker who picks Call-IDs to load one shard gains nothing the
    // gate's per-source rate does not already bound.
    let hash = call_id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % count as u64) as usize
}

/// The Call-ID's value, trimmed, from the head of a message.
fn find_call_id(bytes: &[u8]) -> Option<&[u8]> {
    let mut rest = bytes;
    // skip the start line
    let first = rest.iter().position(|&b| b == b'\n')?;
    rest = &rest[first + 1..];
    loop {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of the head
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = trim(&line[..colon]);
            if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
                let value = trim(&line[colon + 1..]);
                return (!value.is_empty()).then_some(value);
            }
        }
        if end >= rest.len() {
            return None;
        }
        rest = &rest[end + 1..];
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(call_id_line: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             {call_id_line}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn our_call_ids_come_back_to_their_shard() {
        for count in 1..=8 {
            for index in 0..count {
                let line = format!("Call-ID: 0123456789abcdef{}", call_id_suffix(index));
                assert_eq!(shard_of(&message(&line), count), index);
                let compact = format!("i:0123456789abcdef{}", call_id_suffix(index));
                assert_eq!(shard_of(&message(&compact), count), index);
            }
        }
    }

    #[test]
    fn other_call_ids_are_spread_and_stable() {
        let mut seen = [0usize; 4];
        for n in 0..4000 {
            let line = format!("call-id:  a84b4c76e66710-{n}@pc33.example.com ");
            let shard = shard_of(&message(&line), 4);
            assert_eq!(shard, shard_of(&message(&format!("Call-ID: a84b4c76e66710-{n}@pc33.example.com")), 4));
            seen[shard] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        // A marker past the count, or not a number, is only part of the Call-ID.
        let past = shard_of(&message("Call-ID: abc~9"), 2);
        assert_eq!(past, shard_of(&message("Call-ID: abc~9"), 2));
        assert!(past < 2);
    }

    #[test]
    fn no_call_id_goes_to_the_first_shard() {
        assert_eq!(shard_of(b"", 4), 0);
        assert_eq!(shard_of(b"garbage without lines", 4), 0);
        assert_eq!(shard_of(b"OPTIONS sip:a SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\nCall-ID: in-the-body", 4), 0);
        assert_eq!(shard_of(b"OPTIONS sip:a SIP/2.0\r\nCall-ID:   \r\n\r\n", 4), 0);
    }
}
