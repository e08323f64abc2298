//! Phases: who has answered, where a phase is sent first (thrifty: the
//! nearest replicas that can complete a quorum; otherwise every peer), and
//! the phase timeout that re-sends to every peer that has not answered
//! (PROTOCOL.md 2 "Thrifty" and 6: the paper's artifact had no such
//! timeout and hung on a dead peer).
//!
//! The timeout re-arms itself every `phase_timeout_us` until the phase
//! completes: the number of re-sends per period is bounded by the number of
//! peers, and an operation finishes as soon as a quorum is reachable again.
//! Giving up is the client's business (it times out and retries elsewhere).

use crate::effect::{Effect, Time};
use crate::ids::ReplicaId;
use crate::machine::{InFlight, OpState, RegisterMachine};
use crate::msg::{OpRef, RegisterEffect, RegisterMsg, RegisterTimer};
use crate::store::RegisterStore;

/// The peers that have answered one phase, each counted once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PhaseTracker {
    op_ref: OpRef,
    answered: Vec<ReplicaId>,
}

impl PhaseTracker {
    pub fn new(op_ref: OpRef) -> PhaseTracker {
        PhaseTracker {
            op_ref,
            answered: Vec::new(),
        }
    }

    pub fn op_ref(&self) -> OpRef {
        self.op_ref
    }

    /// Records `from`'s answer; false if it had already answered.
    pub fn record(&mut self, from: ReplicaId) -> bool {
        if self.has_answered(from) {
            return false;
        }
        self.answered.push(from);
        true
    }

    pub fn has_answered(&self, r: ReplicaId) -> bool {
        self.answered.contains(&r)
    }

    /// Number of peers that answered (this replica not included).
    pub fn answered(&self) -> usize {
        self.answered.len()
    }
}

impl RegisterMachine {
    /// Starts `op`'s current phase: completes it at once if this replica
    /// alone is a quorum, otherwise sends the first round and arms the
    /// timeout.
    pub(crate) fn open_phase(
        &mut self,
        now: Time,
        op: InFlight,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        if self.has_quorum(&op.phase) {
            self.progress(now, op, store, out);
            return;
        }
        self.send_first_round(&op, store, out);
        self.arm_phase_timer(now, op.phase.op_ref(), out);
        self.in_flight.insert(op.phase.op_ref().seq, op);
    }

    /// Sends the phase message to the peers it goes to first: all peers that
    /// have not answered, or (thrifty) only the nearest of them that are
    /// needed for a quorum.
    pub(crate) fn send_first_round(
        &self,
        op: &InFlight,
        store: &RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        let needed = self.quorum.saturating_sub(1 + op.phase.answered());
        let pending = self
            .config
            .peers_nearest_first
            .iter()
            .copied()
            .filter(|r| !op.phase.has_answered(*r));
        let limit = if self.config.thrifty {
            needed
        } else {
            usize::MAX
        };
        for to in pending.take(limit) {
            out.push(Effect::Send {
                to,
                msg: phase_message(op, store),
            });
        }
    }

    pub(crate) fn arm_phase_timer(&self, now: Time, op_ref: OpRef, out: &mut Vec<RegisterEffect>) {
        out.push(Effect::SetTimer {
            at: now.plus_micros(self.config.phase_timeout_us),
            timer: RegisterTimer::PhaseTimeout { op_ref },
        });
    }

    /// The phase has not completed in time: send it again to every peer
    /// that has not answered (in thrifty mode this is the fallback to all
    /// replicas) and wait another period.
    pub(crate) fn handle_phase_timeout(
        &mut self,
        now: Time,
        op_ref: OpRef,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        let Some(op) = self.in_flight.get(&op_ref.seq) else {
            self.stats.ignored_stale_timer += 1;
            return;
        };
        if op.phase.op_ref() != op_ref {
            self.stats.ignored_stale_timer += 1;
            return;
        }
        self.stats.phase_timeouts += 1;
        for to in self.config.peers_nearest_first.iter().copied() {
            if !op.phase.has_answered(to) {
                self.stats.resent_messages += 1;
                out.push(Effect::Send {
                    to,
                    msg: phase_message(op, store),
                });
            }
        }
        self.arm_phase_timer(now, op_ref, out);
    }
}

/// The request of `op`'s current phase. Read1 carries the coordinator's
/// register as it is now (it only grows, and any register in the store is
/// safe to spread by apply-if-greater).
fn phase_message(op: &InFlight, store: &RegisterStore) -> RegisterMsg {
    let op_ref = op.phase.op_ref();
    let key = op.key.clone();
    match &op.state {
        OpState::Read1 { .. } => RegisterMsg::Read1 {
            op_ref,
            reg: store.get(&key),
            key,
        },
        OpState::Read2 { reg } => RegisterMsg::Read2 {
            op_ref,
            key,
            reg: reg.clone(),
        },
        OpState::Write1 { .. } => RegisterMsg::Write1 { op_ref, key },
        OpState::Write2 { reg } => RegisterMsg::Write2 {
            op_ref,
            key,
            reg: reg.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Phase;

    #[test]
    fn tracker_counts_each_replica_once() {
        let mut t = PhaseTracker::new(OpRef {
            seq: 1,
            phase: Phase::Read1,
        });
        assert!(t.record(ReplicaId(2)));
        assert!(!t.record(ReplicaId(2)));
        assert!(t.record(ReplicaId(3)));
        assert_eq!(t.answered(), 2);
        assert!(t.has_answered(ReplicaId(3)));
        assert!(!t.has_answered(ReplicaId(4)));
    }
}

#[cfg(test)]
mod timeout_tests {
    use crate::effect::{Effect, Time};
    use crate::machine::RegisterMachine;
    use crate::msg::{Phase, RegisterMsg, RegisterReply, RegisterTimer};
    use crate::store::RegisterStore;
    use crate::test_util::*;

    fn read1(seq: u64) -> RegisterMsg {
        RegisterMsg::Read1 {
            op_ref: opref(seq, Phase::Read1),
            key: k(),
            reg: Default::default(),
        }
    }

    fn read1_reply(seq: u64) -> RegisterMsg {
        RegisterMsg::Read1Reply {
            op_ref: opref(seq, Phase::Read1),
            reg: Default::default(),
        }
    }

    fn fire(seq: u64, phase: Phase) -> RegisterTimer {
        RegisterTimer::PhaseTimeout {
            op_ref: opref(seq, phase),
        }
    }

    #[test]
    fn thrifty_timeout_falls_back_to_every_replica_that_has_not_answered() {
        let mut c = config(0, 5, true);
        c.peers_nearest_first = vec![r(3), r(1), r(4), r(2)];
        let mut m = RegisterMachine::new(c).unwrap();
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_get(Time(0), op(1), k(), &mut store, &mut out);
        assert_eq!(
            take(&mut out),
            vec![
                reserved(100),
                send(3, read1(0)),
                send(1, read1(0)),
                timer(TIMEOUT_US, opref(0, Phase::Read1)),
            ]
        );
        // Replica 1 (a near one) is dead; replica 3 answers.
        m.handle_message(Time(5), r(3), read1_reply(0), &mut store, &mut out);
        assert!(out.is_empty());
        m.handle_timer(
            Time(TIMEOUT_US),
            fire(0, Phase::Read1),
            &mut store,
            &mut out,
        );
        assert_eq!(
            take(&mut out),
            vec![
                send(1, read1(0)),
                send(4, read1(0)),
                send(2, read1(0)),
                timer(2 * TIMEOUT_US, opref(0, Phase::Read1)),
            ]
        );
        assert_eq!(m.stats().phase_timeouts, 1);
        assert_eq!(m.stats().resent_messages, 3);
        m.handle_message(Time(1500), r(2), read1_reply(0), &mut store, &mut out);
        assert_eq!(
            take(&mut out),
            vec![Effect::Reply {
                op: op(1),
                reply: RegisterReply::Get {
                    value: None,
                    cs: cs(0, 0)
                }
            }]
        );
        // The re-armed timer is now stale.
        m.handle_timer(
            Time(2 * TIMEOUT_US),
            fire(0, Phase::Read1),
            &mut store,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(m.stats().ignored_stale_timer, 1);
    }

    #[test]
    fn non_thrifty_timeout_resends_every_period_until_a_quorum_answers() {
        let mut m = machine(0, 3, false);
        let mut store = RegisterStore::new();
        let mut out = Vec::new();
        m.start_put(Time(0), op(1), k(), None, &mut store, &mut out);
        take(&mut out);
        let w1 = RegisterMsg::Write1 {
            op_ref: opref(0, Phase::Write1),
            key: k(),
        };
        for period in 1..=3 {
            let now = period * TIMEOUT_US;
            m.handle_timer(Time(now), fire(0, Phase::Write1), &mut store, &mut out);
            assert_eq!(
                take(&mut out),
                vec![
                    send(1, w1.clone()),
                    send(2, w1.clone()),
                    timer(now + TIMEOUT_US, opref(0, Phase::Write1)),
                ]
            );
        }
        // A quorum is reachable again: the write proceeds.
        let reply = RegisterMsg::Write1Reply {
            op_ref: opref(0, Phase::Write1),
            cs: cs(0, 0),
        };
        m.handle_message(Time(3500), r(2), reply, &mut store, &mut out);
        assert!(matches!(
            out[0],
            Effect::Send {
                msg: RegisterMsg::Write2 { .. },
                ..
            }
        ));
        // The Write1 timer is stale now that the op is in Write2.
        out.clear();
        m.handle_timer(
            Time(4 * TIMEOUT_US),
            fire(0, Phase::Write1),
            &mut store,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(m.stats().ignored_stale_timer, 1);
    }
}
