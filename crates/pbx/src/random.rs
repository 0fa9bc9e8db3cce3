//! The randomness of call control: one cryptographically secure generator, seeded by the
//! driver (from the operating system in the server, fixed in tests), for tags, Call-IDs,
//! branches, nonce counters, RSeq values and SDES keys.

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A seeded CSPRNG (ChaCha, through `rand`'s `StdRng`).
#[derive(Debug)]
pub struct Random(StdRng);

impl Random {
    /// A generator from 32 bytes of seed; the same seed gives the same sequence.
    pub fn from_seed(seed: [u8; 32]) -> Random {
        Random(StdRng::from_seed(seed))
    }

    /// A generator from a small seed, for tests.
    pub fn seeded(seed: u64) -> Random {
        Random(StdRng::seed_from_u64(seed))
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

    /// Random bytes for a branch (RFC 3261 §8.1.1.7).
    pub fn branch(&mut self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        self.fill(&mut bytes);
        bytes
    }
}
