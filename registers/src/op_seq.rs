//! Crash-safe operation sequence numbers, and with them unique writer ids
//! (PROTOCOL.md 1: `(ts, writer)` must be unique per write, "even across a
//! crash and restart of the coordinator").
//!
//! The scheme: every operation a replica coordinates gets a sequence
//! number `seq` from one counter. The counter hands out numbers only below
//! a durable "reserved up to" mark; when it reaches the mark it reserves a
//! new block of `op_seq_block` numbers by emitting
//! `Persist(OpSeqReserved { up_to })` *before* any message that carries a
//! number from the new block (the Persist is a barrier). A restarted replica
//! continues from the largest mark it finds on disk, which is above every
//! number it ever sent. At most one block is skipped per restart.
//!
//! The number serves twice:
//! - in [`crate::msg::OpRef`], so a reply to an operation from before a
//!   crash can never be counted for a new operation with the same number;
//! - as the writer counter: a write's carstamp uses
//!   `WriterId::new(me, seq)`, unique per write cluster-wide because the
//!   replica id is in the high bits. `WriterId` keeps 40 counter bits, so
//!   uniqueness holds for the first 2^40 operations of a replica.

use crate::carstamp::Register;
use crate::effect::Effect;
use crate::msg::{RegisterEffect, RegisterPersist};
use crate::store::RegisterStore;

/// Hands out operation sequence numbers below a durably reserved mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSeqAllocator {
    next: u64,
    reserved_up_to: u64,
    block: u64,
}

impl OpSeqAllocator {
    /// Continues after a durable mark (0 on first boot); the first number
    /// handed out triggers a fresh reservation.
    pub fn recovered(reserved_up_to: u64, block: u64) -> OpSeqAllocator {
        OpSeqAllocator {
            next: reserved_up_to,
            reserved_up_to,
            block: block.max(1),
        }
    }

    /// The next sequence number. Pushes the reservation `Persist` first
    /// when the number opens a new block, so it precedes every send that
    /// carries the number.
    pub fn next(&mut self, out: &mut Vec<RegisterEffect>) -> u64 {
        if self.next >= self.reserved_up_to {
            self.reserved_up_to = self.next.saturating_add(self.block);
            out.push(Effect::Persist(RegisterPersist::OpSeqReserved {
                up_to: self.reserved_up_to,
            }));
        }
        let seq = self.next;
        self.next = self.next.saturating_add(1);
        seq
    }

    /// The number the next operation will get.
    pub fn peek(&self) -> u64 {
        self.next
    }

    pub fn reserved_up_to(&self) -> u64 {
        self.reserved_up_to
    }
}

/// What a restarted replica's register machine needs besides its store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveredRegisterState {
    /// The largest `OpSeqReserved` mark on disk (0 if none).
    pub op_seq_reserved_up_to: u64,
}

impl RecoveredRegisterState {
    /// Folds one durable record into the recovered state and the store.
    /// Order does not matter: registers go through apply-if-greater and the
    /// mark is a maximum, so replaying a log or a snapshot both work.
    pub fn observe(&mut self, rec: &RegisterPersist, store: &mut RegisterStore) {
        match rec {
            RegisterPersist::Applied { key, reg } => {
                store.apply(key, reg);
            }
            RegisterPersist::OpSeqReserved { up_to } => {
                self.op_seq_reserved_up_to = self.op_seq_reserved_up_to.max(*up_to);
            }
        }
    }

    /// Rebuilds the store and the recovered state from all durable records.
    pub fn replay<'a>(
        records: impl IntoIterator<Item = &'a RegisterPersist>,
    ) -> (RegisterStore, RecoveredRegisterState) {
        let mut store = RegisterStore::new();
        let mut state = RecoveredRegisterState::default();
        for rec in records {
            state.observe(rec, &mut store);
        }
        (store, state)
    }
}

/// The record for a register the store just took.
pub(crate) fn applied(key: &crate::ids::Key, reg: &Register) -> RegisterEffect {
    Effect::Persist(RegisterPersist::Applied {
        key: key.clone(),
        reg: reg.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(out: &[RegisterEffect]) -> Vec<RegisterPersist> {
        out.iter()
            .filter_map(|e| match e {
                Effect::Persist(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn reserves_a_block_before_its_first_number() {
        let mut a = OpSeqAllocator::recovered(0, 2);
        let mut out = Vec::new();
        assert_eq!(a.next(&mut out), 0);
        assert_eq!(
            persisted(&out),
            vec![RegisterPersist::OpSeqReserved { up_to: 2 }]
        );
        out.clear();
        assert_eq!(a.next(&mut out), 1);
        assert!(
            out.is_empty(),
            "second number of the block needs no persist"
        );
        assert_eq!(a.next(&mut out), 2);
        assert_eq!(
            persisted(&out),
            vec![RegisterPersist::OpSeqReserved { up_to: 4 }]
        );
    }

    #[test]
    fn restart_continues_above_every_number_used() {
        let mut a = OpSeqAllocator::recovered(0, 3);
        let mut out = Vec::new();
        let used: Vec<u64> = (0..4).map(|_| a.next(&mut out)).collect();
        let (_, state) = RecoveredRegisterState::replay(&persisted(&out));
        let mut b = OpSeqAllocator::recovered(state.op_seq_reserved_up_to, 3);
        let mut out2 = Vec::new();
        let n = b.next(&mut out2);
        assert!(used.iter().all(|u| *u < n), "{used:?} then {n}");
        assert_eq!(
            persisted(&out2),
            vec![RegisterPersist::OpSeqReserved { up_to: n + 3 }]
        );
    }

    #[test]
    fn replay_applies_registers_in_any_order() {
        use crate::carstamp::Carstamp;
        use crate::ids::{Key, Value, WriterId};
        let k = Key::from("k");
        let r = |ts| {
            Register::new(
                Some(Value::from("v")),
                Carstamp {
                    ts,
                    writer: WriterId(1),
                    rmwc: 0,
                },
            )
        };
        let recs = vec![
            RegisterPersist::Applied {
                key: k.clone(),
                reg: r(5),
            },
            RegisterPersist::OpSeqReserved { up_to: 9 },
            RegisterPersist::Applied {
                key: k.clone(),
                reg: r(3),
            },
            RegisterPersist::OpSeqReserved { up_to: 4 },
        ];
        let (store, state) = RecoveredRegisterState::replay(&recs);
        assert_eq!(store.get(&k), r(5));
        assert_eq!(state.op_seq_reserved_up_to, 9);
    }
}
