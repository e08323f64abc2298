//! The read coordinator (Gryff, NSDI 2020, section 4; PROTOCOL.md 2): ABD
//! with the coordinator's register piggy-backed on Read1, a one-round fast
//! path, and the Read2 write-back when a write was caught in flight.
//!
//! Read1 goes out from `RegisterMachine::start_get`; this file holds what
//! happens once a quorum (this replica included) has answered it, and once
//! enough replicas hold the result.

use crate::carstamp::{Carstamp, Register};
use crate::effect::Time;
use crate::ids::{Key, OpId, ReplicaId};
use crate::machine::{InFlight, OpState, RegisterMachine};
use crate::msg::{OpRef, Phase, RegisterEffect, RegisterReply};
use crate::phase::PhaseTracker;
use crate::store::RegisterStore;

impl RegisterMachine {
    /// A quorum answered Read1. Take the largest register `(v*, cs*)`,
    /// apply it here, and return it at once if a quorum already holds it;
    /// otherwise write it back with Read2 to the replicas not known to hold it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_read1(
        &mut self,
        now: Time,
        op: OpId,
        key: Key,
        seq: u64,
        best: Register,
        reported: Vec<(ReplicaId, Carstamp)>,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        // `best` is the largest reply; every peer applied our piggy-backed
        // register first, so it is at least what we held when Read1 went
        // out. After applying it we hold `best` or something newer, so we
        // count as a holder. If our register grew meanwhile (a concurrent
        // write reached us), we still return `best`: that write had not
        // completed when this read began (else a quorum member would have
        // reported it), so the read may be ordered before it. Answering with
        // our newer copy instead would force a write-back, costing a second
        // round trip on reads that the protocol serves in one.
        let changed = store.apply(&key, &best);
        // A peer that reported cs* holds it for good (stores only grow);
        // they, with this replica, are the holders Read2 does not need.
        let mut phase = PhaseTracker::new(OpRef {
            seq,
            phase: Phase::Read2,
        });
        for (peer, cs) in reported {
            if cs >= best.cs {
                phase.record(peer);
            }
        }
        let reg = best;
        let op = InFlight {
            op,
            key,
            phase,
            state: OpState::Read2 { reg: reg.clone() },
        };
        if self.has_quorum(&op.phase) {
            // Fast path: one round trip. Our own copy must be durable
            // before the reply counts on it.
            self.stats.reads_fast_path += 1;
            if changed {
                self.persist_applied(&op.key, &reg, out);
            }
            self.finish_read2(op.op, reg, out);
            return;
        }
        self.stats.reads_write_back += 1;
        // Sends first: they need nothing durable here, and the reply that
        // counts on our copy comes after this Persist in the effect stream.
        self.send_first_round(&op, store, out);
        if changed {
            self.persist_applied(&op.key, &reg, out);
        }
        self.arm_phase_timer(now, op.phase.op_ref(), out);
        self.in_flight.insert(seq, op);
    }

    /// A quorum holds `reg`: every later read will see it or something newer.
    pub(crate) fn finish_read2(&mut self, op: OpId, reg: Register, out: &mut Vec<RegisterEffect>) {
        self.stats.gets_completed += 1;
        out.push(self.reply(
            op,
            RegisterReply::Get {
                value: reg.value,
                cs: reg.cs,
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::effect::{Effect, Time};
    use crate::msg::{Phase, RegisterMsg, RegisterReply};
    use crate::store::RegisterStore;
    use crate::test_util::*;

    fn read1(seq: u64, v: &crate::carstamp::Register) -> RegisterMsg {
        RegisterMsg::Read1 {
            op_ref: opref(seq, Phase::Read1),
            key: k(),
            reg: v.clone(),
        }
    }

    fn read1_reply(seq: u64, v: &crate::carstamp::Register) -> RegisterMsg {
        RegisterMsg::Read1Reply {
            op_ref: opref(seq, Phase::Read1),
            reg: v.clone(),
        }
    }

    fn get_reply(i: u64, v: &crate::carstamp::Register) -> crate::msg::RegisterEffect {
        Effect::Reply {
            op: op(i),
            reply: RegisterReply::Get {
                value: v.value.clone(),
                cs: v.cs,
            },
        }
    }

    #[test]
    fn n3_read_stays_one_round_trip_when_a_write_reaches_the_coordinator_meanwhile() {
        // A concurrent Write2 lands at the coordinator after Read1 went out:
        // the read answers with the quorum's value in one round trip (it is
        // ordered before the unfinished write) instead of writing back.
        let mut m = machine(0, 3, false);
        let old = reg("old", 1, 1);
        let newer = reg("new", 2, 1);
        let mut store = RegisterStore::new();
        store.apply(&k(), &old);
        let mut out = Vec::new();
        m.start_get(Time(10), op(1), k(), &mut store, &mut out);
        out.clear();
        store.apply(&k(), &newer);
        m.handle_message(Time(20), r(2), read1_reply(0, &old), &mut store, &mut out);
        assert_eq!(take(&mut out), vec![get_reply(1, &old)]);
        assert_eq!(m.stats().reads_fast_path, 1);
        assert_eq!(store.get(&k()), newer, "the store never goes back");
    }

    #[test]
    fn n3_read_is_one_round_trip_to_the_nearest_peer() {
        let mut m = machine(0, 3, false);
        let v = reg("v", 1, 1);
        let mut store = RegisterStore::new();
        store.apply(&k(), &v);
        let mut out = Vec::new();
        m.start_get(Time(10), op(1), k(), &mut store, &mut out);
        assert_eq!(
            take(&mut out),
            vec![
                reserved(100),
                send(1, read1(0, &v)),
                send(2, read1(0, &v)),
                timer(10 + TIMEOUT_US, opref(0, Phase::Read1)),
            ]
        );
        m.handle_message(Time(20), r(2), read1_reply(0, &v), &mut store, &mut out);
        assert_eq!(take(&mut out), vec![get_reply(1, &v)]);
        assert_eq!(m.in_flight_len(), 0);
        assert_eq!(m.stats().reads_fast_path, 1);
        // The other peer's late reply is ignored.
        m.handle_message(Time(30), r(1), read1_reply(0, &v), &mut store, &mut out);
        assert!(out.is_empty());
        assert_eq!(m.stats().ignored_unknown_op, 1);
    }

    #[test]
    fn n3_read_adopts_a_newer_peer_value_persisting_before_the_reply() {
        let mut m = machine(0, 3, true);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        // Thrifty: only the nearest peer gets Read1.
        assert_eq!(
            take(&mut out),
            vec![
                reserved(100),
                send(1, read1(0, &Default::default())),
                timer(TIMEOUT_US, opref(0, Phase::Read1)),
            ]
        );
        let newer = reg("new", 3, 4);
        m.handle_message(Time(5), r(1), read1_reply(0, &newer), &mut store, &mut out);
        // The peer and this replica hold cs*: a quorum of 2, no write-back.
        assert_eq!(take(&mut out), vec![persist(&newer), get_reply(1, &newer)]);
        assert_eq!(store.get(&k()), newer);
    }

    #[test]
    fn n5_read_that_catches_a_write_in_flight_writes_back() {
        let mut m = machine(0, 5, false);
        let old = reg("old", 1, 1);
        let new = reg("new", 2, 1);
        let mut store = RegisterStore::new();
        store.apply(&k(), &old);
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        take(&mut out);
        m.handle_message(Time(1), r(1), read1_reply(0, &new), &mut store, &mut out);
        assert!(out.is_empty(), "two of three replies: wait");
        m.handle_message(Time(2), r(2), read1_reply(0, &old), &mut store, &mut out);
        // Holders of cs*: this replica (after applying) and replica 1.
        let read2 = RegisterMsg::Read2 {
            op_ref: opref(0, Phase::Read2),
            key: k(),
            reg: new.clone(),
        };
        assert_eq!(
            take(&mut out),
            vec![
                send(2, read2.clone()),
                send(3, read2.clone()),
                send(4, read2.clone()),
                persist(&new),
                timer(2 + TIMEOUT_US, opref(0, Phase::Read2)),
            ]
        );
        // A late Read1 reply belongs to the previous phase.
        m.handle_message(Time(3), r(3), read1_reply(0, &old), &mut store, &mut out);
        assert!(out.is_empty());
        assert_eq!(m.stats().ignored_stale_phase, 1);
        let ack = RegisterMsg::Read2Reply {
            op_ref: opref(0, Phase::Read2),
        };
        m.handle_message(Time(4), r(4), ack.clone(), &mut store, &mut out);
        assert_eq!(take(&mut out), vec![get_reply(1, &new)]);
        assert_eq!(m.stats().reads_write_back, 1);
        assert_eq!(m.stats().gets_completed, 1);
    }

    #[test]
    fn thrifty_write_back_goes_to_the_nearest_non_holders_needed() {
        let mut c = config(0, 5, true);
        c.peers_nearest_first = vec![r(3), r(1), r(4), r(2)];
        let mut m = crate::machine::RegisterMachine::new(c).unwrap();
        let new = reg("new", 2, 1);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        let first: Vec<_> = take(&mut out);
        assert_eq!(first[1], send(3, read1(0, &Default::default())));
        assert_eq!(first[2], send(1, read1(0, &Default::default())));
        assert_eq!(first.len(), 4);
        m.handle_message(Time(1), r(1), read1_reply(0, &new), &mut store, &mut out);
        m.handle_message(
            Time(2),
            r(3),
            read1_reply(0, &Default::default()),
            &mut store,
            &mut out,
        );
        // Holders: 0 and 1; one more needed, the nearest non-holder is 3.
        let read2 = RegisterMsg::Read2 {
            op_ref: opref(0, Phase::Read2),
            key: k(),
            reg: new.clone(),
        };
        assert_eq!(
            take(&mut out),
            vec![
                send(3, read2),
                persist(&new),
                timer(2 + TIMEOUT_US, opref(0, Phase::Read2)),
            ]
        );
    }

    #[test]
    fn duplicate_replies_are_counted_once() {
        let mut m = machine(0, 5, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        take(&mut out);
        let v = reg("v", 1, 1);
        m.handle_message(Time(1), r(1), read1_reply(0, &v), &mut store, &mut out);
        m.handle_message(Time(2), r(1), read1_reply(0, &v), &mut store, &mut out);
        assert!(out.is_empty(), "one peer twice is not a quorum of 3");
        assert_eq!(m.stats().ignored_duplicate, 1);
        m.handle_message(Time(3), r(2), read1_reply(0, &v), &mut store, &mut out);
        assert_eq!(take(&mut out), vec![persist(&v), get_reply(1, &v)]);
    }

    #[test]
    fn replies_for_unknown_ops_or_from_unknown_replicas_are_ignored() {
        let mut m = machine(0, 3, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        take(&mut out);
        let v = reg("v", 1, 1);
        m.handle_message(Time(1), r(1), read1_reply(77, &v), &mut store, &mut out);
        m.handle_message(Time(1), r(42), read1_reply(0, &v), &mut store, &mut out);
        m.handle_message(Time(1), r(0), read1_reply(0, &v), &mut store, &mut out);
        // The kind says Write1Reply, the op_ref says Read1.
        let bad = RegisterMsg::Write1Reply {
            op_ref: opref(0, Phase::Read1),
            cs: cs(9, 9),
        };
        m.handle_message(Time(1), r(1), bad, &mut store, &mut out);
        // Right phase tag, wrong operation kind: a write reply for a read.
        let wrong_kind = RegisterMsg::Write2Reply {
            op_ref: opref(0, Phase::Write2),
        };
        m.handle_message(Time(1), r(1), wrong_kind, &mut store, &mut out);
        assert!(out.is_empty());
        assert!(store.is_empty());
        let s = m.stats();
        assert_eq!(s.ignored_unknown_op, 1);
        assert_eq!(s.ignored_unknown_sender, 2);
        assert_eq!(s.ignored_malformed, 1);
        assert_eq!(s.ignored_stale_phase, 1);
        assert_eq!(m.in_flight_len(), 1, "the read is still waiting");
    }

    #[test]
    fn single_replica_read_answers_at_once() {
        let mut m = machine(0, 1, false);
        let v = reg("v", 1, 1);
        let mut store = RegisterStore::new();
        store.apply(&k(), &v);
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        assert_eq!(out, vec![reserved(100), get_reply(1, &v)]);
    }
}
