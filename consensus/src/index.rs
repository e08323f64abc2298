//! The per-key conflict index (SOSP'13 section 4.3.1, "the highest
//! interfering instance per replica"): for each key, the highest slot this
//! replica has seen per replica and the highest seq. Commands conflict iff
//! they touch the same key, so an instance's local `(seq, deps)` are a
//! lookup here, and deps stay `O(n)` per command.

use crate::instance::{Deps, InstanceId};
use registers::Key;
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
struct KeyConflicts {
    max_seq: u64,
    last: Deps,
}

/// Everything this replica has seen, per key.
#[derive(Clone, Debug, Default)]
pub struct ConflictIndex {
    keys: HashMap<Key, KeyConflicts>,
}

impl ConflictIndex {
    /// The local attributes of a new command on `key`: `seq` is one above
    /// every seq seen on the key, `deps` every instance seen on it.
    pub fn local_attrs(&self, key: &Key) -> (u64, Deps) {
        match self.keys.get(key) {
            Some(k) => (k.max_seq.saturating_add(1), k.last.clone()),
            None => (1, Deps::new()),
        }
    }

    /// Merges the local view into a proposal; returns the updated pair.
    pub fn update(&self, key: &Key, seq: u64, deps: &Deps) -> (u64, Deps) {
        let (local_seq, local_deps) = self.local_attrs(key);
        let mut merged = deps.clone();
        merged.merge(&local_deps);
        (seq.max(local_seq), merged)
    }

    /// Records that instance `inst` on `key` was seen with `seq`.
    pub fn record(&mut self, inst: InstanceId, key: &Key, seq: u64) {
        let k = self.keys.entry(key.clone()).or_default();
        k.max_seq = k.max_seq.max(seq);
        k.last.include(inst.replica, inst.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::ReplicaId;

    #[test]
    fn conflicting_instances_raise_seq_and_deps() {
        let mut ix = ConflictIndex::default();
        let k = Key::from("k");
        assert_eq!(ix.local_attrs(&k), (1, Deps::new()));
        ix.record(InstanceId::new(ReplicaId(1), 4), &k, 3);
        ix.record(InstanceId::new(ReplicaId(1), 2), &k, 1);
        ix.record(InstanceId::new(ReplicaId(0), 7), &Key::from("other"), 9);
        let (seq, deps) = ix.update(&k, 2, &Deps::new());
        assert_eq!(seq, 4);
        assert_eq!(deps.get(ReplicaId(1)), Some(4));
        assert_eq!(deps.get(ReplicaId(0)), None);
        // A proposal already above the local view is unchanged.
        let mut high = Deps::new();
        high.include(ReplicaId(1), 9);
        assert_eq!(ix.update(&k, 10, &high), (10, high));
    }
}
