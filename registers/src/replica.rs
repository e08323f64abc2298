//! The replica side of reads and writes (PROTOCOL.md 2, 3, 5): serve
//! Read1, Read2, Write1 and Write2 from any coordinator.
//!
//! Durability: whenever serving a request changed the store, the
//! `Persist(Applied)` comes before the reply in the effect list, so the
//! reply never promises a register a crash could lose. A request that does
//! not change the store emits no `Persist`: the register it reports was
//! made durable by the handler that applied it (the driver keeps a
//! `Persist` ahead of every later send, see `effect`).

use crate::carstamp::Register;
use crate::effect::Effect;
use crate::ids::{Key, ReplicaId};
use crate::machine::RegisterMachine;
use crate::msg::{OpRef, RegisterEffect, RegisterMsg};
use crate::store::RegisterStore;

impl RegisterMachine {
    /// Applies the coordinator's piggy-backed register, then reports ours
    /// (which may be newer than the coordinator's).
    pub(crate) fn handle_read1(
        &mut self,
        from: ReplicaId,
        op_ref: OpRef,
        key: Key,
        reg: Register,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.requests_served += 1;
        self.apply_and_persist(&key, &reg, store, out);
        out.push(Effect::Send {
            to: from,
            msg: RegisterMsg::Read1Reply {
                op_ref,
                reg: store.get(&key),
            },
        });
    }

    /// Write-back: take the register (if newer) and acknowledge.
    pub(crate) fn handle_read2(
        &mut self,
        from: ReplicaId,
        op_ref: OpRef,
        key: Key,
        reg: Register,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.requests_served += 1;
        self.apply_and_persist(&key, &reg, store, out);
        out.push(Effect::Send {
            to: from,
            msg: RegisterMsg::Read2Reply { op_ref },
        });
    }

    /// Report our carstamp so the writer can pick a larger one. Nothing
    /// changes, so nothing is persisted.
    pub(crate) fn handle_write1(
        &mut self,
        from: ReplicaId,
        op_ref: OpRef,
        key: Key,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.requests_served += 1;
        out.push(Effect::Send {
            to: from,
            msg: RegisterMsg::Write1Reply {
                op_ref,
                cs: store.get(&key).cs,
            },
        });
    }

    /// Take the written register (if newer; a newer one already here wins
    /// and the write is linearized before it) and acknowledge.
    pub(crate) fn handle_write2(
        &mut self,
        from: ReplicaId,
        op_ref: OpRef,
        key: Key,
        reg: Register,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.requests_served += 1;
        self.apply_and_persist(&key, &reg, store, out);
        out.push(Effect::Send {
            to: from,
            msg: RegisterMsg::Write2Reply { op_ref },
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::effect::Time;
    use crate::msg::{Phase, RegisterMsg};
    use crate::store::RegisterStore;
    use crate::test_util::*;

    fn store_with(reg: &crate::carstamp::Register) -> RegisterStore {
        let mut s = RegisterStore::new();
        s.apply(&k(), reg);
        s
    }

    #[test]
    fn read1_at_a_replica_that_is_behind_applies_persists_then_replies() {
        let mut m = machine(1, 3, false);
        let mut store = store_with(&reg("old", 1, 5));
        let mut out = Vec::new();
        let op_ref = opref(4, Phase::Read1);
        let theirs = reg("new", 2, 5);
        m.handle_message(
            Time(0),
            r(0),
            RegisterMsg::Read1 {
                op_ref,
                key: k(),
                reg: theirs.clone(),
            },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                persist(&theirs),
                send(
                    0,
                    RegisterMsg::Read1Reply {
                        op_ref,
                        reg: theirs.clone()
                    }
                ),
            ]
        );
        assert_eq!(store.get(&k()), theirs);
    }

    #[test]
    fn read1_at_a_replica_that_is_ahead_replies_its_own_without_persist() {
        let mut m = machine(1, 3, false);
        let ours = reg("newer", 3, 5);
        let mut store = store_with(&ours);
        let mut out = Vec::new();
        let op_ref = opref(4, Phase::Read1);
        m.handle_message(
            Time(0),
            r(2),
            RegisterMsg::Read1 {
                op_ref,
                key: k(),
                reg: reg("older", 2, 9),
            },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![send(
                2,
                RegisterMsg::Read1Reply {
                    op_ref,
                    reg: ours.clone()
                }
            )]
        );
        assert_eq!(store.get(&k()), ours);
    }

    #[test]
    fn write1_reports_the_carstamp_and_changes_nothing() {
        let mut m = machine(2, 3, false);
        let ours = reg("v", 7, 3);
        let mut store = store_with(&ours);
        let mut out = Vec::new();
        let op_ref = opref(1, Phase::Write1);
        m.handle_message(
            Time(0),
            r(0),
            RegisterMsg::Write1 { op_ref, key: k() },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![send(
                0,
                RegisterMsg::Write1Reply {
                    op_ref,
                    cs: ours.cs
                }
            )]
        );
        // An unknown key reports carstamp zero.
        let mut out = Vec::new();
        m.handle_message(
            Time(0),
            r(0),
            RegisterMsg::Write1 {
                op_ref,
                key: "other".into(),
            },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![send(
                0,
                RegisterMsg::Write1Reply {
                    op_ref,
                    cs: cs(0, 0)
                }
            )]
        );
    }

    #[test]
    fn write2_persists_before_the_ack_and_only_when_the_store_changes() {
        let mut m = machine(1, 3, false);
        let mut store = store_with(&reg("old", 1, 1));
        let op_ref = opref(9, Phase::Write2);
        let w = reg("new", 2, 1);
        let msg = RegisterMsg::Write2 {
            op_ref,
            key: k(),
            reg: w.clone(),
        };
        let mut out = Vec::new();
        m.handle_message(Time(0), r(0), msg.clone(), &mut store, &mut out);
        let ack = send(0, RegisterMsg::Write2Reply { op_ref });
        assert_eq!(out, vec![persist(&w), ack.clone()]);
        // A duplicate changes nothing: ack without a new Persist.
        let mut out = Vec::new();
        m.handle_message(Time(0), r(0), msg, &mut store, &mut out);
        assert_eq!(out, vec![ack]);
        // An older write loses to the newer register and is still acked.
        let mut out = Vec::new();
        let older = opref(10, Phase::Write2);
        m.handle_message(
            Time(0),
            r(2),
            RegisterMsg::Write2 {
                op_ref: older,
                key: k(),
                reg: reg("stale", 1, 9),
            },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![send(2, RegisterMsg::Write2Reply { op_ref: older })]
        );
        assert_eq!(store.get(&k()), w);
    }

    #[test]
    fn read2_applies_persists_and_acks() {
        let mut m = machine(0, 5, false);
        let mut store = RegisterStore::new();
        let op_ref = opref(2, Phase::Read2);
        let v = reg("v", 4, 2);
        let mut out = Vec::new();
        m.handle_message(
            Time(0),
            r(3),
            RegisterMsg::Read2 {
                op_ref,
                key: k(),
                reg: v.clone(),
            },
            &mut store,
            &mut out,
        );
        assert_eq!(
            out,
            vec![persist(&v), send(3, RegisterMsg::Read2Reply { op_ref })]
        );
        assert_eq!(m.stats().requests_served, 1);
    }

    #[test]
    fn requests_with_a_mismatched_phase_or_from_strangers_are_ignored() {
        let mut m = machine(0, 3, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        let bad = RegisterMsg::Write2 {
            op_ref: opref(1, Phase::Read1),
            key: k(),
            reg: reg("x", 1, 1),
        };
        m.handle_message(Time(0), r(1), bad, &mut store, &mut out);
        let stranger = RegisterMsg::Write1 {
            op_ref: opref(1, Phase::Write1),
            key: k(),
        };
        m.handle_message(Time(0), r(3), stranger.clone(), &mut store, &mut out);
        m.handle_message(Time(0), r(0), stranger, &mut store, &mut out);
        assert!(out.is_empty());
        assert!(store.is_empty());
        assert_eq!(m.stats().ignored_malformed, 1);
        assert_eq!(m.stats().ignored_unknown_sender, 2);
    }
}
