//! Read-modify-write operations: deterministic functions of the old value
//! (PROTOCOL.md 4). Every replica runs the same function on the same
//! committed input, so the result never depends on where it executes.

use crate::ids::Value;
use serde::{Deserialize, Serialize};

/// The RMW kinds the store offers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RmwOp {
    /// Set the value to `new` iff the current value equals `expected`
    /// (`None` = the key is absent; `new: None` deletes).
    CompareAndSwap {
        expected: Option<Value>,
        new: Option<Value>,
    },
    /// Add `delta` (wrapping) to a 64-bit integer value, 8 bytes
    /// little-endian; an absent key counts as 0. A value of any other
    /// length is left unchanged and the outcome says `NotAnInteger`.
    FetchAdd { delta: i64 },
    /// Set the value iff the key is absent.
    PutIfAbsent { value: Value },
}

/// What an RMW did, as reported to its client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RmwOutcome {
    /// The value the RMW observed (its linearization point's old value).
    pub old: Option<Value>,
    /// The value after the RMW (equal to `old` when it did not apply).
    pub new: Option<Value>,
    /// Whether the RMW changed the value as asked (CAS matched, key was
    /// absent, value was an integer).
    pub applied: bool,
    /// Set when a fetch-and-add met a value that is not an 8-byte integer.
    pub not_an_integer: bool,
}

impl RmwOp {
    /// Runs the operation on `old`. Pure and total: never panics.
    pub fn apply(&self, old: Option<&Value>) -> RmwOutcome {
        let unchanged = |not_an_integer| RmwOutcome {
            old: old.cloned(),
            new: old.cloned(),
            applied: false,
            not_an_integer,
        };
        let changed = |new: Option<Value>| RmwOutcome {
            old: old.cloned(),
            new,
            applied: true,
            not_an_integer: false,
        };
        match self {
            RmwOp::CompareAndSwap { expected, new } => {
                if old == expected.as_ref() {
                    changed(new.clone())
                } else {
                    unchanged(false)
                }
            }
            RmwOp::FetchAdd { delta } => match old.map(Value::to_i64) {
                None => changed(Some(Value::from_i64(*delta))),
                Some(Some(n)) => changed(Some(Value::from_i64(n.wrapping_add(*delta)))),
                Some(None) => unchanged(true),
            },
            RmwOp::PutIfAbsent { value } => match old {
                None => changed(Some(value.clone())),
                Some(_) => unchanged(false),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_applies_only_on_match() {
        let op = RmwOp::CompareAndSwap {
            expected: Some(Value::from("a")),
            new: Some(Value::from("b")),
        };
        let hit = op.apply(Some(&Value::from("a")));
        assert!(hit.applied);
        assert_eq!(hit.new, Some(Value::from("b")));
        let miss = op.apply(Some(&Value::from("x")));
        assert!(!miss.applied);
        assert_eq!(miss.new, Some(Value::from("x")));
        assert_eq!(miss.old, Some(Value::from("x")));
        assert!(!op.apply(None).applied);
    }

    #[test]
    fn cas_on_absent_expects_none() {
        let op = RmwOp::CompareAndSwap {
            expected: None,
            new: Some(Value::from("v")),
        };
        assert!(op.apply(None).applied);
        assert!(!op.apply(Some(&Value::from("v"))).applied);
    }

    #[test]
    fn fetch_add_counts_from_zero_and_wraps() {
        let op = RmwOp::FetchAdd { delta: 3 };
        assert_eq!(op.apply(None).new, Some(Value::from_i64(3)));
        let out = op.apply(Some(&Value::from_i64(i64::MAX)));
        assert_eq!(out.new, Some(Value::from_i64(i64::MIN + 2)));
        assert_eq!(out.old, Some(Value::from_i64(i64::MAX)));
        let bad = op.apply(Some(&Value::from("abc")));
        assert!(!bad.applied && bad.not_an_integer);
        assert_eq!(bad.new, Some(Value::from("abc")));
    }

    #[test]
    fn put_if_absent_keeps_existing() {
        let op = RmwOp::PutIfAbsent {
            value: Value::from("n"),
        };
        assert_eq!(op.apply(None).new, Some(Value::from("n")));
        let kept = op.apply(Some(&Value::from("o")));
        assert!(!kept.applied);
        assert_eq!(kept.new, Some(Value::from("o")));
    }
}
