//! Explicit-prepare recovery (SOSP'13 Figure 3, simplified-EPaxos variant
//! with a fast quorum of `2f`; Sutra 2019's fix: the accepted ballot is
//! reported apart from the promised one). A replica that suspects an
//! instance is stuck takes a higher ballot, collects a majority of
//! PrepareOk (itself included) and keeps whatever may have been chosen —
//! the rule is [`choose`]; its correctness argument is in the crate docs.

use crate::instance::{Attrs, Ballot, Command, InstanceId, Status};
use crate::machine::{Epaxos, Leading, Phase};
use crate::messages::{EpaxosEffect, EpaxosMsg, RecoveredState};
use registers::{RegisterStore, ReplicaId, Time, max_by_cs};
use std::collections::BTreeMap;

/// What a recovering replica does with a majority of PrepareOk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Someone has it committed: commit the same value.
    Commit(Attrs),
    /// Run Accept at the recovery ballot with this value (an accepted
    /// value, or the original proposal that may have been fast-committed).
    Accept(Attrs),
    /// Nothing can have been chosen: run PreAccept again at the recovery
    /// ballot (slow path only), starting from these attributes.
    PreAccept(Attrs),
    /// No one in the quorum knows the command: commit a no-op (via Accept).
    Noop,
}

/// The recovery rule, over the replies of a majority `replies` (the
/// recovering replica's own state included) for instance `inst`.
///
/// 1. A committed value wins.
/// 2. Else the value accepted at the highest *accepted* ballot.
/// 3. Else, if the original leader is not among the repliers (a replier
///    leader has promised a higher ballot, so it can no longer decide the
///    fast path, and it persists a fast decision before acting on it) and
///    all but at most one replier pre-accepted the leader's proposal
///    unchanged at the initial ballot, that proposal may have been
///    fast-committed: keep it.
/// 4. Else re-run PreAccept with the command.
/// 5. Else a no-op.
pub fn choose(inst: InstanceId, replies: &BTreeMap<ReplicaId, RecoveredState>) -> Decision {
    let with_attrs = || {
        replies
            .values()
            .filter_map(|s| s.attrs.as_ref().map(|a| (s, a)))
    };
    if let Some((_, a)) = with_attrs().find(|(s, _)| s.status == Status::Committed) {
        return Decision::Commit(a.clone());
    }
    if let Some((_, a)) = with_attrs()
        .filter(|(s, _)| s.status == Status::Accepted)
        .max_by_key(|(s, _)| s.accepted)
    {
        return Decision::Accept(a.clone());
    }
    if !replies.contains_key(&inst.replica) {
        let unchanged: Vec<&Attrs> = with_attrs()
            .filter(|(s, _)| {
                s.status == Status::PreAccepted && s.unchanged && s.accepted.is_initial_for(inst)
            })
            .map(|(_, a)| a)
            .collect();
        let others = replies.len() - unchanged.len();
        if let Some(first) = unchanged.first().filter(|_| others <= 1) {
            return Decision::Accept((*first).clone());
        }
    }
    let mut known = with_attrs().filter(|(_, a)| a.cmd != Command::Noop);
    if let Some((_, first)) = known.next() {
        let mut attrs = first.clone();
        for (_, a) in known {
            attrs.seq = attrs.seq.max(a.seq);
            attrs.deps.merge(&a.deps);
            attrs.base = max_by_cs(&attrs.base, &a.base).clone();
        }
        return Decision::PreAccept(attrs);
    }
    Decision::Noop
}

impl Epaxos {
    /// What this replica would answer to a Prepare for `id`.
    pub(crate) fn recovered_state(&self, id: InstanceId) -> RecoveredState {
        match self.instances.get(&id) {
            Some(i) => RecoveredState {
                status: i.status,
                accepted: i.accepted,
                attrs: i.attrs.clone(),
                unchanged: i.unchanged,
            },
            None => RecoveredState {
                status: Status::Empty,
                accepted: Ballot::ZERO,
                attrs: None,
                unchanged: false,
            },
        }
    }

    /// Takes a ballot above every one seen for `id` and sends Prepare.
    pub(crate) fn start_recovery(
        &mut self,
        now: Time,
        id: InstanceId,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let inst = self.instance_mut(id);
        if inst.is_committed() {
            return;
        }
        let round = inst
            .max_round_seen
            .max(inst.promised.round)
            .max(inst.accepted.round)
            + 1;
        let ballot = Ballot {
            round,
            replica: self.cfg.replica,
        };
        self.stats.recoveries_started += 1;
        self.promise(id, ballot);
        self.persist_instance(id, out);
        let mut replies = BTreeMap::new();
        replies.insert(self.cfg.replica, self.recovered_state(id));
        self.leading.insert(
            id,
            Leading {
                ballot,
                phase: Phase::Prepare { replies },
                retransmits: 0,
            },
        );
        self.broadcast(&EpaxosMsg::Prepare { inst: id, ballot }, out);
        self.set_phase_timer(now, id, ballot, out);
        self.check_prepare_quorum(now, id, store, out);
    }

    /// A replica's side of Prepare: promise (durably), then report.
    pub(crate) fn handle_prepare(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let inst = self.instance_mut(id);
        inst.saw(ballot);
        let committed = inst.is_committed();
        if !committed {
            if ballot < inst.promised {
                let promised = inst.promised;
                self.nack(from, id, ballot, promised, out);
                return;
            }
            if ballot > inst.promised {
                self.promise(id, ballot);
                self.persist_instance(id, out);
            }
        }
        let state = self.recovered_state(id);
        self.send(
            from,
            EpaxosMsg::PrepareOk {
                inst: id,
                ballot,
                state,
            },
            out,
        );
        if !committed {
            // The recoverer may die too: keep our own bounded wait.
            self.arm_recovery(now, id, out);
        }
    }

    /// The recovering replica collects one PrepareOk.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_prepare_ok(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        state: RecoveredState,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot: lead_ballot,
            phase: Phase::Prepare { replies },
            ..
        }) = self.leading.get_mut(&id)
        else {
            self.stats.stale_messages += 1;
            return;
        };
        if *lead_ballot != ballot || replies.contains_key(&from) {
            self.stats.stale_messages += 1;
            return;
        }
        replies.insert(from, state);
        self.check_prepare_quorum(now, id, store, out);
    }

    fn check_prepare_quorum(
        &mut self,
        now: Time,
        id: InstanceId,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot,
            phase: Phase::Prepare { replies },
            ..
        }) = self.leading.get(&id)
        else {
            return;
        };
        if replies.len() < self.cfg.majority() {
            return;
        }
        let ballot = *ballot;
        match choose(id, replies) {
            Decision::Commit(attrs) => {
                self.stats.recovery_commits += 1;
                self.commit_as_leader(now, id, attrs, false, store, out);
            }
            Decision::Accept(attrs) => self.start_accept(now, id, ballot, attrs, store, out),
            Decision::PreAccept(attrs) => {
                // Recovery never takes the fast path, so the starting
                // point only needs to cover what is known here.
                let attrs = self.local_update(&attrs, store);
                self.start_pre_accept(now, id, ballot, attrs, store, out);
            }
            Decision::Noop => self.start_accept(now, id, ballot, Attrs::noop(), store, out),
        }
    }

    /// Refuses a message whose ballot is below our promise.
    pub(crate) fn nack(
        &mut self,
        to: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        promised: Ballot,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.stats.nacks_sent += 1;
        self.send(
            to,
            EpaxosMsg::Nack {
                inst: id,
                ballot,
                promised,
            },
            out,
        );
    }

    /// Someone promised a higher ballot: stop leading at ours and leave
    /// the instance to the bounded wait (which recovers if still needed).
    pub(crate) fn handle_nack(
        &mut self,
        now: Time,
        id: InstanceId,
        ballot: Ballot,
        promised: Ballot,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.instance_mut(id).saw(promised);
        match self.leading.get(&id) {
            Some(l) if l.ballot == ballot && promised > ballot => {
                self.leading.remove(&id);
                self.arm_recovery(now, id, out);
            }
            _ => self.stats.stale_messages += 1,
        }
    }
}
