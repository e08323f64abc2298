//! The register store of one replica (PROTOCOL.md 1): every key's
//! `(value, carstamp)`, changed only by apply-if-greater. Shared by the
//! register protocol and by RMW execution in `consensus`.

use crate::carstamp::Register;
use crate::ids::Key;
use std::collections::HashMap;

/// All registers of one replica. A missing key reads as absent at `(0,0,0)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterStore {
    registers: HashMap<Key, Register>,
}

impl RegisterStore {
    pub fn new() -> RegisterStore {
        RegisterStore::default()
    }

    /// The register of `key` (absent at carstamp zero if never written).
    pub fn get(&self, key: &Key) -> Register {
        self.registers.get(key).cloned().unwrap_or_default()
    }

    /// Applies `reg` to `key` iff its carstamp is strictly greater than the
    /// stored one. Returns whether the store changed, which is what tells
    /// the caller that a `Persist` is needed before replying.
    pub fn apply(&mut self, key: &Key, reg: &Register) -> bool {
        match self.registers.get_mut(key) {
            Some(cur) => cur.apply_if_greater(reg),
            None if reg.cs > Register::default().cs => {
                self.registers.insert(key.clone(), reg.clone());
                true
            }
            None => false,
        }
    }

    /// Number of keys ever written.
    pub fn len(&self) -> usize {
        self.registers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.registers.is_empty()
    }

    /// Every stored register, in no particular order (for checkpoints and
    /// for convergence checks).
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Register)> {
        self.registers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::carstamp::Carstamp;
    use crate::ids::{Value, WriterId};

    fn reg(v: &str, ts: u64) -> Register {
        Register::new(
            Some(Value::from(v)),
            Carstamp {
                ts,
                writer: WriterId(1),
                rmwc: 0,
            },
        )
    }

    #[test]
    fn store_is_monotonic_per_key() {
        let mut s = RegisterStore::new();
        let k = Key::from("k");
        assert_eq!(s.get(&k), Register::default());
        assert!(s.apply(&k, &reg("b", 2)));
        assert!(!s.apply(&k, &reg("a", 1)));
        assert!(!s.apply(&k, &reg("c", 2)));
        assert_eq!(s.get(&k), reg("b", 2));
        assert!(!s.apply(&Key::from("other"), &Register::default()));
        assert_eq!(s.len(), 1);
    }
}
