//! The search's memory: the set of linearized operations as a bitset with an
//! incrementally maintained Zobrist hash, and the cache of visited
//! (linearized set, state) configurations that makes the Wing-Gong/Lowe
//! search polynomial on well-behaved histories (Lowe 2017, section 3;
//! Porcupine's `cache`).
//!
//! Cached sets are stored compressed. Completed operations are numbered by
//! call time and the search linearizes roughly in that order, so a set is
//! mostly "all of 0..w" plus a window of about the concurrency level. Each
//! entry keeps only the words from the first word that is not all ones to
//! the last word that is not zero, plus the (few) words of pending ops,
//! which makes an entry a handful of words even for long key histories.

use super::model::StateId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The linearized set of one search.
pub(crate) struct Linearized {
    /// Bits of completed operations `0..completed`.
    done: Vec<u64>,
    /// Bits of pending operations, numbered from `completed`.
    pending: Vec<u64>,
    completed: usize,
    zobrist_keys: Vec<u64>,
    hash: u64,
}

impl Linearized {
    pub(crate) fn new(ops: usize, completed: usize) -> Linearized {
        let zobrist_keys = (0..ops as u64).map(|i| splitmix64(i ^ 0x5eed)).collect();
        Linearized {
            done: vec![0; completed.div_ceil(64)],
            pending: vec![0; (ops - completed).div_ceil(64)],
            completed,
            zobrist_keys,
            hash: 0,
        }
    }

    /// Flips operation `op` in or out of the set.
    pub(crate) fn toggle(&mut self, op: usize) {
        let (words, bit) = if op < self.completed {
            (&mut self.done, op)
        } else {
            (&mut self.pending, op - self.completed)
        };
        words[bit / 64] ^= 1 << (bit % 64);
        self.hash ^= self.zobrist_keys[op];
    }

    pub(crate) fn contains(&self, op: usize) -> bool {
        let (words, bit) = if op < self.completed {
            (&self.done, op)
        } else {
            (&self.pending, op - self.completed)
        };
        words[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// The compressed window of `done`: its first word index and words.
    fn window(&self) -> (usize, &[u64]) {
        let base = self.done.iter().take_while(|&&w| w == !0).count();
        let end = self.done.len() - self.done.iter().rev().take_while(|&&w| w == 0).count();
        (base, &self.done[base..end.max(base)])
    }

    fn key_hash(&self, state: StateId) -> u64 {
        self.hash ^ splitmix64(u64::from(state) ^ 0x9e37_79b9_7f4a_7c15)
    }
}

struct Entry {
    offset: usize,
    state: StateId,
    base: u32,
    window_len: u32,
    /// Next entry with the same hash, or `NONE`.
    next: u32,
}

const NONE: u32 = u32::MAX;

/// Visited configurations.
#[derive(Default)]
pub(crate) struct Cache {
    heads: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    entries: Vec<Entry>,
    words: Vec<u64>,
}

impl Cache {
    /// Records (`set`, `state`); false if it was already there.
    pub(crate) fn insert(&mut self, set: &Linearized, state: StateId) -> bool {
        let hash = set.key_hash(state);
        let (base, window) = set.window();
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut cursor = head;
        while cursor != NONE {
            let e = &self.entries[cursor as usize];
            if e.state == state && e.base as usize == base && e.window_len as usize == window.len()
            {
                let len = e.window_len as usize;
                let stored = &self.words[e.offset..e.offset + len + set.pending.len()];
                let (stored_window, stored_pending) = stored.split_at(len);
                if stored_window == window && stored_pending == set.pending.as_slice() {
                    return false;
                }
            }
            cursor = e.next;
        }
        let offset = self.words.len();
        self.words.extend_from_slice(window);
        self.words.extend_from_slice(&set.pending);
        let index = u32::try_from(self.entries.len()).expect("state limit below 2^32");
        self.entries.push(Entry {
            offset,
            state,
            // A key history has fewer than 2^32 operations (op ids are u32).
            base: base as u32,
            window_len: window.len() as u32,
            next: head,
        });
        self.heads.insert(hash, index);
        true
    }
}

/// Hashes are already uniformly random (Zobrist), so the map uses them as is.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A fixed 64-bit mixer (Steele, Lea, Flood 2014), so runs are reproducible.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_set_reached_in_different_orders_is_a_hit() {
        let mut set = Linearized::new(200, 150);
        let mut cache = Cache::default();
        for op in [3, 70, 160] {
            set.toggle(op);
        }
        assert!(cache.insert(&set, 1));
        assert!(!cache.insert(&set, 1));
        assert!(cache.insert(&set, 2), "the state is part of the key");
        for op in [3, 70, 160] {
            set.toggle(op);
        }
        for op in [160, 3, 70] {
            set.toggle(op);
        }
        assert!(!cache.insert(&set, 1));
        set.toggle(71);
        assert!(cache.insert(&set, 1));
    }

    #[test]
    fn windows_skip_full_and_empty_words() {
        let mut set = Linearized::new(300, 300);
        for op in 0..130 {
            set.toggle(op);
        }
        let (base, window) = set.window();
        assert_eq!(base, 2);
        assert_eq!(window, &[0b11]);
        set.toggle(299);
        assert_eq!(set.window().1.len(), 3);
    }
}
