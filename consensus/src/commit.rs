//! Commit (SOSP'13 Figure 2, steps 7-8 and 22-23; PROTOCOL.md 4-5): the
//! chosen tuple, base included, becomes durable, is broadcast, and only
//! then is handed to the executor — a leader never executes a command
//! (fast path or not) before its commit is durable and on its way.

use crate::instance::{Attrs, InstanceId, Status};
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg};
use registers::{RegisterStore, ReplicaId, Time};

impl Epaxos {
    /// The leader (original or recovering) learned that `attrs` is chosen.
    pub(crate) fn commit_as_leader(
        &mut self,
        now: Time,
        id: InstanceId,
        attrs: Attrs,
        fast: bool,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.leading.remove(&id);
        if fast {
            self.stats.fast_commits += 1;
        } else {
            self.stats.slow_commits += 1;
        }
        if !self.commit_locally(now, id, attrs.clone(), out) {
            return;
        }
        // Effects are ordered and Persist is a barrier: the Commit sends
        // below leave only after the commit record is durable, and the
        // executor's effects come after the sends.
        self.broadcast(&EpaxosMsg::Commit { inst: id, attrs }, out);
        self.try_execute(now, store, out);
    }

    /// A peer tells us the chosen value. A Commit from the instance's
    /// leader for an instance already executed here is the leader asking
    /// again for our Executed notice (the first one may have been lost).
    pub(crate) fn handle_commit(
        &mut self,
        now: Time,
        from: ReplicaId,
        id: InstanceId,
        attrs: Attrs,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.leading.remove(&id);
        if self.commit_locally(now, id, attrs, out) {
            self.try_execute(now, store, out);
            return;
        }
        let executed_rmw = self
            .instances
            .get(&id)
            .is_some_and(|i| i.executed && i.key().is_some());
        if executed_rmw && from == id.replica {
            self.send(from, EpaxosMsg::Executed { inst: id }, out);
        }
    }

    /// Marks `id` committed with `attrs` and persists it. Returns false
    /// (and changes nothing) if it was already committed; a different
    /// value for an already committed instance is counted.
    pub(crate) fn commit_locally(
        &mut self,
        now: Time,
        id: InstanceId,
        attrs: Attrs,
        out: &mut Vec<EpaxosEffect>,
    ) -> bool {
        let inst = self.instance_mut(id);
        if inst.is_committed() {
            if inst.attrs.as_ref() != Some(&attrs) {
                self.stats.conflicting_values += 1;
            }
            return false;
        }
        inst.status = Status::Committed;
        inst.unchanged = false;
        let executed = inst.executed;
        self.install_attrs(id, attrs);
        if !executed {
            self.exec.committed_pending.insert(id);
        }
        self.exec.unblock(id);
        self.recovery_armed.remove(&id);
        self.persist_instance(id, out);
        if self.cfg.every_op {
            self.reply_at_commit(id, out);
        } else if self.awaiting.contains_key(&id) {
            self.arm_reply_retry(now, id, out);
        }
        true
    }
}
