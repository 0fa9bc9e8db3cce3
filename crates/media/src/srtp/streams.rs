//! The per-source state of a cryptographic context (RFC 3711 §3.2.3: a context is identified by
//! its SSRC, among others). A few sources per context is the rule, so a short list searched in
//! order beats a hash map; when it is full, the source heard from least recently makes room.
//! Only authenticated packets create state or count as a use (an unauthenticated packet is
//! checked with [`Streams::peek`]), so only the key holder can push a source out or decide
//! which one goes; a source pushed out starts again from its next packet, as a new one would.

/// How many sources one context keeps state for.
pub const MAX_SOURCES: usize = 32;

#[derive(Clone, Debug)]
struct Entry<T> {
    ssrc: u32,
    last_used: u64,
    state: T,
}

#[derive(Clone, Debug)]
pub(super) struct Streams<T> {
    entries: Vec<Entry<T>>,
    clock: u64,
}

impl<T> Streams<T> {
    pub(super) fn new() -> Streams<T> {
        Streams { entries: Vec::new(), clock: 0 }
    }

    /// The state of `ssrc`, if it has one, without counting as a use: for packets not yet
    /// authenticated.
    pub(super) fn peek(&self, ssrc: u32) -> Option<&T> {
        self.entries.iter().find(|e| e.ssrc == ssrc).map(|e| &e.state)
    }

    /// The state of `ssrc`, if it has one; counts as a use.
    pub(super) fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.iter_mut().find(|e| e.ssrc == ssrc).map(|e| {
            e.last_used = clock;
            &mut e.state
        })
    }

    /// Adds state for a source that has none, forgetting the least recently used source when
    /// [`MAX_SOURCES`] are already known.
    pub(super) fn insert(&mut self, ssrc: u32, state: T) {
        debug_assert!(self.entries.iter().all(|e| e.ssrc != ssrc));
        self.clock += 1;
        let entry = Entry { ssrc, last_used: self.clock, state };
        if self.entries.len() < MAX_SOURCES {
            self.entries.push(entry);
        } else if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_used) {
            *oldest = entry;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_source_makes_room() {
        let mut streams = Streams::new();
        for ssrc in 0..MAX_SOURCES as u32 {
            streams.insert(ssrc, ssrc * 10);
        }
        // Source 0 is used again, so source 1 is now the least recently used.
        assert_eq!(streams.get_mut(0), Some(&mut 0));
        streams.insert(1000, 7);
        assert_eq!(streams.len(), MAX_SOURCES);
        assert_eq!(streams.get_mut(1), None);
        assert_eq!(streams.get_mut(0), Some(&mut 0));
        assert_eq!(streams.get_mut(1000), Some(&mut 7));
        assert_eq!(streams.get_mut(2), Some(&mut 20));
    }

    #[test]
    fn a_peek_is_not_a_use() {
        let mut streams = Streams::new();
        for ssrc in 0..MAX_SOURCES as u32 {
            streams.insert(ssrc, ssrc);
        }
        // Looking at source 0 (as for a forged packet) does not keep it: it is still the
        // least recently used, and makes room.
        assert_eq!(streams.peek(0), Some(&0));
        streams.insert(1000, 7);
        assert_eq!(streams.peek(0), None);
        assert_eq!(streams.peek(1), Some(&1));
    }
}
