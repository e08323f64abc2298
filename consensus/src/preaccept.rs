//! Phase 1, PreAccept (SOSP'13 Figure 2, steps 1-6; PROTOCOL.md 4): the
//! leader proposes `(cmd, seq, deps, base)`, each replica raises seq and
//! deps from its conflict index and takes `base' = max_by_cs(base, local
//! register)`; the leader commits on the fast path iff a fast quorum
//! (`2f`, itself included) returned its proposal unchanged, otherwise it
//! sends the merged tuple to Accept once a majority replied.

use crate::instance::{Attrs, Ballot, Command, Deps, InstanceId, Status};
use crate::machine::{Epaxos, Leading, Phase};
use crate::messages::{EpaxosEffect, EpaxosMsg};
use crate::reply::Awaiting;
use registers::{OpId, Register, RegisterStore, ReplicaId, Time, max_by_cs};
use std::collections::BTreeSet;

impl Epaxos {
    /// A new instance led by this replica for a client op (`cmd` carries
    /// the op and a key; the caller checked both).
    pub(crate) fn start_proposal(
        &mut self,
        now: Time,
        op: OpId,
        cmd: Command,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(key) = cmd.key().cloned() else {
            return;
        };
        let id = InstanceId::new(self.cfg.replica, self.next_slot);
        self.next_slot += 1;
        let (seq, deps) = self.index.local_attrs(&key);
        // EPaxos-all executes on the store itself: no base to agree on.
        let base = if self.cfg.every_op {
            Register::default()
        } else {
            store.get(&key)
        };
        let attrs = Attrs {
            cmd: cmd.clone(),
            seq,
            deps,
            base,
        };
        self.in_flight.insert(op, id);
        self.awaiting.insert(id, Awaiting::new(op, cmd));
        self.start_pre_accept(
            now,
            id,
            Ballot::initial(self.cfg.replica),
            attrs,
            store,
            out,
        );
    }

    /// Pre-accepts `attrs` locally at `ballot` (durably, before any peer
    /// can hear of it) and sends PreAccept to every peer. Used by the
    /// original leader and by recovery when no value can have been chosen.
    pub(crate) fn start_pre_accept(
        &mut self,
        now: Time,
        id: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.promise(id, ballot);
        let inst = self.instance_mut(id);
        inst.accepted = ballot;
        inst.status = Status::PreAccepted;
        inst.unchanged = ballot.is_initial_for(id);
        self.install_attrs(id, attrs.clone());
        self.persist_instance(id, out);
        self.broadcast(
            &EpaxosMsg::PreAccept {
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
                phase: Phase::PreAccept {
                    proposed: attrs.clone(),
                    merged: attrs,
                    replied: BTreeSet::new(),
                    unchanged: 0,
                    changed: 0,
                },
                retransmits: 0,
            },
        );
        self.set_phase_timer(now, id, ballot, out);
        self.check_pre_accept_quorum(now, id, false, store, out);
    }

    /// A replica's side of PreAccept.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_pre_accept(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        if self.answered_without_voting(from, id, ballot, out) {
            return;
        }
        let inst = self.instance_mut(id);
        if inst.status == Status::Accepted && inst.accepted >= ballot {
            // A late PreAccept must never erase an Accept of its ballot.
            self.stats.stale_messages += 1;
            return;
        }
        if let Some(stored) = inst.attrs.as_ref() {
            if conflicting_commands(&stored.cmd, &attrs.cmd) {
                self.stats.conflicting_values += 1;
                return;
            }
            if inst.status == Status::PreAccepted && inst.accepted == ballot {
                // A duplicate: answer what was answered (and persisted)
                // before; recomputing could change a reply the leader
                // may already have counted toward its fast quorum.
                let reply = EpaxosMsg::PreAcceptOk {
                    inst: id,
                    ballot,
                    seq: stored.seq,
                    deps: stored.deps.clone(),
                    base: stored.base.clone(),
                };
                self.send(from, reply, out);
                return;
            }
        }
        let updated = self.local_update(&attrs, store);
        let unchanged = ballot.is_initial_for(id)
            && updated.seq == attrs.seq
            && updated.deps == attrs.deps
            && updated.base == attrs.base;
        self.promise(id, ballot);
        let inst = self.instance_mut(id);
        inst.accepted = ballot;
        inst.status = Status::PreAccepted;
        inst.unchanged = unchanged;
        let reply = EpaxosMsg::PreAcceptOk {
            inst: id,
            ballot,
            seq: updated.seq,
            deps: updated.deps.clone(),
            base: updated.base.clone(),
        };
        self.install_attrs(id, updated);
        self.persist_instance(id, out);
        self.send(from, reply, out);
        self.arm_recovery(now, id, out);
    }

    /// `attrs` raised by this replica's view: seq and deps from the
    /// conflict index, `base' = max_by_cs(base, local register)`.
    pub(crate) fn local_update(&self, attrs: &Attrs, store: &RegisterStore) -> Attrs {
        match attrs.cmd.key() {
            Some(key) => {
                let (seq, deps) = self.index.update(key, attrs.seq, &attrs.deps);
                let base = if self.cfg.every_op {
                    attrs.base.clone()
                } else {
                    max_by_cs(&attrs.base, &store.get(key)).clone()
                };
                Attrs {
                    cmd: attrs.cmd.clone(),
                    seq,
                    deps,
                    base,
                }
            }
            None => attrs.clone(),
        }
    }

    /// The leader collects one PreAcceptOk.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_pre_accept_ok(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        ballot: Ballot,
        seq: u64,
        deps: Deps,
        base: Register,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot: lead_ballot,
            phase:
                Phase::PreAccept {
                    proposed,
                    merged,
                    replied,
                    unchanged,
                    changed,
                },
            ..
        }) = self.leading.get_mut(&id)
        else {
            self.stats.stale_messages += 1;
            return;
        };
        if *lead_ballot != ballot || !replied.insert(from) {
            self.stats.stale_messages += 1;
            return;
        }
        if seq == proposed.seq && deps == proposed.deps && base == proposed.base {
            *unchanged += 1;
        } else {
            *changed += 1;
        }
        merged.seq = merged.seq.max(seq);
        merged.deps.merge(&deps);
        merged.base = max_by_cs(&merged.base, &base).clone();
        self.check_pre_accept_quorum(now, id, false, store, out);
    }

    /// Decides the fast or the slow path once enough replies are in.
    /// `timed_out`: the phase timer fired, so a majority is enough even
    /// if no reply differed.
    pub(crate) fn check_pre_accept_quorum(
        &mut self,
        now: Time,
        id: InstanceId,
        timed_out: bool,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(Leading {
            ballot,
            phase:
                Phase::PreAccept {
                    proposed,
                    merged,
                    replied,
                    unchanged,
                    changed,
                },
            ..
        }) = self.leading.get(&id)
        else {
            return;
        };
        let ballot = *ballot;
        let still_ours = self.instances.get(&id).is_some_and(|i| {
            i.promised == ballot && i.accepted == ballot && i.status == Status::PreAccepted
        });
        if !still_ours {
            self.leading.remove(&id);
            return;
        }
        // Fast path: only the original leader, only at its own ballot,
        // only if it still has not promised anyone else (checked above).
        if ballot.is_initial_for(id) && *unchanged + 1 >= self.cfg.fast_quorum() {
            let attrs = proposed.clone();
            self.commit_as_leader(now, id, attrs, true, store, out);
            return;
        }
        let majority_replied = replied.len() + 1 >= self.cfg.majority();
        let fast_hopeless = !ballot.is_initial_for(id) || *changed > 0;
        if majority_replied && (fast_hopeless || timed_out) {
            let attrs = merged.clone();
            self.start_accept(now, id, ballot, attrs, store, out);
        }
    }
}

/// Two different client commands for one instance: impossible unless a
/// peer is buggy (the leader persists its command before sending it).
fn conflicting_commands(a: &Command, b: &Command) -> bool {
    *a != Command::Noop && *b != Command::Noop && a != b
}
