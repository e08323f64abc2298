//! Carstamps and registers (Gryff, NSDI 2020, section 4; PROTOCOL.md 1):
//! the total order that lets reads, writes and RMWs share one register.

use crate::ids::{Value, WriterId};
use serde::{Deserialize, Serialize};

/// `(ts, writer, rmwc)`, ordered lexicographically. The derived `Ord`
/// relies on the field order below; do not reorder the fields.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Carstamp {
    pub ts: u64,
    pub writer: WriterId,
    pub rmwc: u32,
}

impl Carstamp {
    /// The carstamp of a key never written: `(0, 0, 0)`.
    pub const ZERO: Carstamp = Carstamp {
        ts: 0,
        writer: WriterId(0),
        rmwc: 0,
    };

    /// The carstamp of a write whose first phase saw `max_ts` on a quorum.
    pub fn for_write(max_ts: u64, writer: WriterId) -> Carstamp {
        Carstamp {
            ts: max_ts + 1,
            writer,
            rmwc: 0,
        }
    }

    /// The carstamp of an RMW whose effective base carries `self`: it sorts
    /// after `self` and before every write newer than `self`.
    pub fn rmw_successor(self) -> Carstamp {
        Carstamp {
            rmwc: self.rmwc + 1,
            ..self
        }
    }
}

/// A register's state at one replica: a value (`None` = absent) and its carstamp.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Register {
    pub value: Option<Value>,
    pub cs: Carstamp,
}

impl Register {
    pub fn new(value: Option<Value>, cs: Carstamp) -> Register {
        Register { value, cs }
    }

    /// The only way a register changes: take `other` iff its carstamp is
    /// strictly greater. Returns whether it changed.
    pub fn apply_if_greater(&mut self, other: &Register) -> bool {
        if other.cs > self.cs {
            *self = other.clone();
            true
        } else {
            false
        }
    }
}

/// The register with the larger carstamp (the first on a tie, which only
/// happens for equal registers since carstamps are unique per value).
pub fn max_by_cs<'a>(a: &'a Register, b: &'a Register) -> &'a Register {
    if b.cs > a.cs { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ReplicaId;

    fn cs(ts: u64, w: u64, rmwc: u32) -> Carstamp {
        Carstamp {
            ts,
            writer: WriterId(w),
            rmwc,
        }
    }

    #[test]
    fn order_is_lexicographic() {
        assert!(cs(1, 9, 9) < cs(2, 0, 0));
        assert!(cs(2, 1, 9) < cs(2, 2, 0));
        assert!(cs(2, 2, 0) < cs(2, 2, 1));
        assert_eq!(Carstamp::default(), Carstamp::ZERO);
    }

    #[test]
    fn rmw_successor_sits_between_its_base_and_any_newer_write() {
        // The lemma of PROTOCOL.md 1, on a grid of bases and writes.
        for b in [cs(0, 0, 0), cs(3, 5, 0), cs(3, 5, 4), cs(7, 1, 2)] {
            for t in 0..10 {
                for w in 0..4 {
                    let write = cs(t, w, 0);
                    if b < write {
                        assert!(b < b.rmw_successor());
                        assert!(b.rmw_successor() < write, "{b:?} -> {write:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn write_carstamp_exceeds_everything_with_smaller_ts() {
        let w = Carstamp::for_write(4, WriterId::new(ReplicaId(0), 1));
        assert!(w > cs(4, u64::MAX, u32::MAX));
    }

    #[test]
    fn apply_if_greater_is_strict() {
        let mut r = Register::new(Some(Value::from("a")), cs(2, 1, 0));
        assert!(!r.apply_if_greater(&Register::new(Some(Value::from("b")), cs(2, 1, 0))));
        assert!(!r.apply_if_greater(&Register::new(None, cs(1, 9, 9))));
        assert_eq!(r.value, Some(Value::from("a")));
        assert!(r.apply_if_greater(&Register::new(None, cs(2, 1, 1))));
        assert_eq!(r.value, None);
    }
}
