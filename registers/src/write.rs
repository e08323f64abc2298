//! The write coordinator (Gryff, NSDI 2020, section 4; PROTOCOL.md 3): two
//! rounds. Write1 learns the largest ts on a quorum; Write2 installs the
//! value under `(T + 1, unique writer id, 0)` on a quorum.
//!
//! Write1 goes out from `RegisterMachine::start_put`; this file holds the
//! two phase completions. The writer id is `WriterId::new(me, seq)` where
//! `seq` is the operation's crash-safe sequence number (see `op_seq`).

use crate::carstamp::{Carstamp, Register};
use crate::effect::Time;
use crate::ids::{Key, OpId, Value, WriterId};
use crate::machine::{InFlight, OpState, RegisterMachine};
use crate::msg::{OpRef, Phase, RegisterEffect, RegisterReply};
use crate::phase::PhaseTracker;
use crate::store::RegisterStore;

impl RegisterMachine {
    /// A quorum answered Write1: pick the carstamp, apply it here and send
    /// Write2.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn finish_write1(
        &mut self,
        now: Time,
        op: OpId,
        key: Key,
        seq: u64,
        value: Option<Value>,
        max_ts: u64,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        // This replica is one of the quorum; its current ts is at least what
        // it was when Write1 went out.
        let max_ts = max_ts.max(store.get(&key).cs.ts);
        let cs = Carstamp::for_write(max_ts, WriterId::new(self.config.me, seq));
        let reg = Register::new(value, cs);
        // Always a change: cs.ts exceeds our own ts.
        let changed = store.apply(&key, &reg);
        let op = InFlight {
            op,
            key,
            phase: PhaseTracker::new(OpRef {
                seq,
                phase: Phase::Write2,
            }),
            state: OpState::Write2 { reg: reg.clone() },
        };
        if self.has_quorum(&op.phase) {
            if changed {
                self.persist_applied(&op.key, &reg, out);
            }
            self.finish_write2(op.op, reg, out);
            return;
        }
        // Sends first (the receivers persist before acking); our own copy is
        // durable before the reply, which comes later in the effect stream.
        self.send_first_round(&op, store, out);
        if changed {
            self.persist_applied(&op.key, &reg, out);
        }
        self.arm_phase_timer(now, op.phase.op_ref(), out);
        self.in_flight.insert(seq, op);
    }

    /// A quorum holds the write.
    pub(crate) fn finish_write2(&mut self, op: OpId, reg: Register, out: &mut Vec<RegisterEffect>) {
        self.stats.puts_completed += 1;
        out.push(self.reply(op, RegisterReply::Put { cs: reg.cs }));
    }
}

#[cfg(test)]
mod tests {
    use crate::carstamp::{Carstamp, Register};
    use crate::effect::{Effect, Time};
    use crate::ids::{Value, WriterId};
    use crate::msg::{Phase, RegisterMsg, RegisterReply};
    use crate::store::RegisterStore;
    use crate::test_util::*;

    fn put_reply(i: u64, cs: Carstamp) -> crate::msg::RegisterEffect {
        Effect::Reply {
            op: op(i),
            reply: RegisterReply::Put { cs },
        }
    }

    #[test]
    fn write_takes_two_rounds_and_picks_a_carstamp_above_the_quorum() {
        let mut m = machine(1, 3, false);
        let mut store = RegisterStore::new();
        store.apply(&k(), &reg("old", 2, 0));
        let mut out = Vec::new();
        m.start_put(
            Time(0),
            op(1),
            k(),
            Some(Value::from("x")),
            &mut store,
            &mut out,
        );
        let w1 = RegisterMsg::Write1 {
            op_ref: opref(0, Phase::Write1),
            key: k(),
        };
        assert_eq!(
            take(&mut out),
            vec![
                reserved(100),
                send(0, w1.clone()),
                send(2, w1),
                timer(TIMEOUT_US, opref(0, Phase::Write1)),
            ]
        );
        let reply = RegisterMsg::Write1Reply {
            op_ref: opref(0, Phase::Write1),
            cs: cs(5, 3),
        };
        m.handle_message(Time(7), r(2), reply, &mut store, &mut out);
        let written = Register::new(
            Some(Value::from("x")),
            Carstamp::for_write(5, WriterId::new(r(1), 0)),
        );
        assert_eq!(written.cs.ts, 6);
        let w2 = RegisterMsg::Write2 {
            op_ref: opref(0, Phase::Write2),
            key: k(),
            reg: written.clone(),
        };
        assert_eq!(
            take(&mut out),
            vec![
                send(0, w2.clone()),
                send(2, w2),
                persist(&written),
                timer(7 + TIMEOUT_US, opref(0, Phase::Write2)),
            ]
        );
        assert_eq!(store.get(&k()), written);
        let ack = RegisterMsg::Write2Reply {
            op_ref: opref(0, Phase::Write2),
        };
        m.handle_message(Time(9), r(0), ack.clone(), &mut store, &mut out);
        assert_eq!(take(&mut out), vec![put_reply(1, written.cs)]);
        m.handle_message(Time(9), r(2), ack, &mut store, &mut out);
        assert!(out.is_empty());
        assert_eq!(m.stats().puts_completed, 1);
        assert_eq!(m.stats().ignored_unknown_op, 1);
    }

    #[test]
    fn own_carstamp_counts_in_write1() {
        // The coordinator holds ts 9, the peer reports 4: T = 9.
        let mut m = machine(0, 3, true);
        let mut store = RegisterStore::new();
        store.apply(&k(), &reg("mine", 9, 0));
        let mut out = Vec::new();
        m.start_put(Time(0), op(1), k(), None, &mut store, &mut out);
        take(&mut out);
        let reply = RegisterMsg::Write1Reply {
            op_ref: opref(0, Phase::Write1),
            cs: cs(4, 3),
        };
        m.handle_message(Time(1), r(1), reply, &mut store, &mut out);
        let got = store.get(&k());
        assert_eq!(got.cs.ts, 10);
        assert_eq!(got.value, None, "a delete writes absence");
        // Thrifty Write2 goes only to the nearest peer.
        let sends = out
            .iter()
            .filter(|e| matches!(e, Effect::Send { .. }))
            .count();
        assert_eq!(sends, 1);
    }

    #[test]
    fn single_replica_write_answers_at_once() {
        let mut m = machine(0, 1, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_put(
            Time(0),
            op(1),
            k(),
            Some(Value::from("v")),
            &mut store,
            &mut out,
        );
        let written = Register::new(
            Some(Value::from("v")),
            Carstamp::for_write(0, WriterId::new(r(0), 0)),
        );
        assert_eq!(
            out,
            vec![reserved(100), persist(&written), put_reply(1, written.cs)]
        );
    }

    #[test]
    fn successive_writes_of_one_coordinator_get_distinct_writer_ids() {
        let mut m = machine(0, 1, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for i in 0..5 {
            m.start_put(
                Time(0),
                op(i),
                k(),
                Some(Value::from("v")),
                &mut store,
                &mut out,
            );
            seen.push(store.get(&k()).cs.writer);
        }
        let mut dedup = seen.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 5, "{seen:?}");
        assert!(seen.iter().all(|w| w.replica() == r(0)));
    }
}
