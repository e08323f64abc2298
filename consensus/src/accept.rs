//! Phase 2, Paxos-Accept (SOSP'13 Figure 2, steps 16-21; PROTOCOL.md 4):
//! the slow path and every recovery that found a value to keep. The
//! leader accepts locally, then sends the tuple, base included, to every
//! peer; a majority of AcceptOk (itself counted) commits it. A replica
//! acknowledges only after persisting the ACCEPTED status together with
//! the accepted ballot.

use crate::instance::{Attrs, Ballot, InstanceId, Status};
use crate::machine::{Epaxos, Leading, Phase};
use crate::messages::{EpaxosEffect, EpaxosMsg};
use registers::{RegisterStore, ReplicaId, Time};
use std::collections::BTreeSet;

impl Epaxos {
    /// Accepts `attrs` at `ballot` locally and asks every peer to.
    pub(crate) fn start_accept(
        &mut self,
        now: Time,
        id: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.accept_locally(id, ballot, attrs.clone());
        self.persist_instance(id, out);
        self.broadcast(
            &EpaxosMsg::Accept {
                inst: id,
                ballot,
                attrs: attrs.clone(),
            },
            out,
        );
        self.leading.insert(
            id,
            Leading {
                ballot,
                phase: Phase::Accept {
                    attrs,
                    acked: BTreeSet::new(),
                },
                retransmits: 0,
            },
        );
        self.set_phase_timer(now, id, ballot, out);
        self.check_accept_quorum(now, id, store, out);
    }

    fn accept_locally(&mut self, id: InstanceId, ballot: Ballot, attrs: Attrs) {
        self.promise(id, ballot);
        let inst = self.instance_mut(id);
        inst.accepted = ballot;
        inst.status = Status::Accepted;
        inst.unchanged = false;
        self.install_attrs(id, attrs);
    }

    /// The common start of PreAccept and Accept at a replica: note the
    /// ballot, then answer without voting when the instance is already
    /// committed (send the Commit: helps a slow leader) or the ballot is
    /// below our promise (Nack). Returns whether it answered.
    pub(crate) fn answered_without_voting(
        &mut self,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        out: &mut Vec<EpaxosEffect>,
    ) -> bool {
        let inst = self.instance_mut(id);
        inst.saw(ballot);
        if let Some(committed) = inst.attrs.clone().filter(|_| inst.is_committed()) {
            self.send(
                from,
                EpaxosMsg::Commit {
                    inst: id,
                    attrs: committed,
                },
                out,
            );
            return true;
        }
        if ballot < inst.promised {
            let promised = inst.promised;
            self.nack(from, id, ballot, promised, out);
            return true;
        }
        false
    }

    /// A replica's side of Accept.
    pub(crate) fn handle_accept(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
        out: &mut Vec<EpaxosEffect>,
    ) {
        if self.answered_without_voting(from, id, ballot, out) {
            return;
        }
        let inst = self.instance_mut(id);
        let duplicate = inst.status == Status::Accepted
            && inst.accepted == ballot
            && inst.attrs.as_ref() == Some(&attrs);
        if !duplicate {
            self.accept_locally(id, ballot, attrs);
            self.persist_instance(id, out);
        }
        self.send(from, EpaxosMsg::AcceptOk { inst: id, ballot }, out);
        self.arm_recovery(now, id, out);
    }

    /// The leader collects one AcceptOk.
    pub(crate) fn handle_accept_ok(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot: lead_ballot,
            phase: Phase::Accept { acked, .. },
            ..
        }) = self.leading.get_mut(&id)
        else {
            self.stats.stale_messages += 1;
            return;
        };
        if *lead_ballot != ballot || !acked.insert(from) {
            self.stats.stale_messages += 1;
            return;
        }
        self.check_accept_quorum(now, id, store, out);
    }

    /// Commits once a majority (the leader included) accepted.
    fn check_accept_quorum(
        &mut self,
        now: Time,
        id: InstanceId,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot,
            phase: Phase::Accept { attrs, acked },
            ..
        }) = self.leading.get(&id)
        else {
            return;
        };
        if acked.len() + 1 < self.cfg.majority() {
            return;
        }
        let ballot = *ballot;
        let attrs = attrs.clone();
        let still_ours = self
            .instances
            .get(&id)
            .is_some_and(|i| i.promised == ballot && i.status == Status::Accepted);
        if !still_ours {
            self.leading.remove(&id);
            return;
        }
        if !ballot.is_initial_for(id) {
            self.stats.recovery_commits += 1;
        }
        self.commit_as_leader(now, id, attrs, false, store, out);
    }
}
