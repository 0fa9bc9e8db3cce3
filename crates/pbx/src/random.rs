//! The randomness of call control: one cryptographically secure generator, seeded by the
//! driver (from the operating system in the server, fixed in tests), for tags, Call-IDs,
//! branches, nonce counters, RSeq values and SDES keys.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A seeded CSPRNG (ChaCha, through `rand`'s `StdRng`).
#[derive(Debug)]
pub struct Random(StdRng, String);

impl Random {
    /// A generator from 32 bytes of seed; the same seed gives the same sequence.
    pub fn from_seed(seed: [u8; 32]) -> Random {
        Random(StdRng::from_seed(seed), String::new())
    }

    /// A generator from a small seed, for tests.
    pub fn seeded(seed: u64) -> Random {
        Random(StdRng::seed_from_u64(seed), String::new())
    }

    pub fn u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        self.0.fill_bytes(bytes);
    }

    /// `bytes` random bytes as lower-case hex: tags, Call-IDs.
    pub fn token(&mut self, bytes: usize) -> String {
        let mut random = vec![0u8; bytes];
        self.fill(&mut random);
        sambung_sip::text::to_hex(&random)
    }

    /// The generator of shard `index`: the Call-IDs it makes name that shard
    /// ([`crate::shard`]).
    pub fn for_shard(self, index: usize) -> Random {
        Random(self.0, crate::shard::call_id_suffix(index))
    }

    /// A new Call-ID: 16 random bytes as hex, then the shard's marker.
    pub fn call_id(&mut self) -> String {
        let mut id = self.token(16);
        id.push_str(&self.1);
        id
    }

    /// Random bytes for a branch (RFC 3261 §8.1.1.7).
    pub fn branch(&mut self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        self.fill(&mut bytes);
        bytes
    }
}
