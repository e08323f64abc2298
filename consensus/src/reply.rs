//! The leader's answer to its client (PROTOCOL.md 4): sent only once a
//! majority of distinct replicas — the leader among them — durably
//! executed the instance, so later quorum reads see the RMW's result. It
//! carries the observed old value. Peers report with `Executed` notices.

use crate::instance::Command;
use crate::instance::InstanceId;
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosReply, EpaxosTimer};
use registers::{Carstamp, Effect, OpId, ReplicaId, Time};
use std::collections::BTreeSet;

/// A client command this replica proposed and has not answered yet.
#[derive(Clone, Debug)]
pub(crate) struct Awaiting {
    pub op: OpId,
    pub cmd: Command,
    pub executed_by: BTreeSet<ReplicaId>,
    /// Set by the local execution (every replica computes the same).
    pub reply: Option<EpaxosReply>,
    /// Times the silent replicas were asked again.
    pub retries: u32,
}

impl Awaiting {
    pub(crate) fn new(op: OpId, cmd: Command) -> Awaiting {
        Awaiting {
            op,
            cmd,
            executed_by: BTreeSet::new(),
            reply: None,
            retries: 0,
        }
    }
}

impl Epaxos {
    /// Peer `from` durably executed `id`.
    pub(crate) fn handle_executed(
        &mut self,
        from: ReplicaId,
        id: InstanceId,
        out: &mut Vec<EpaxosEffect>,
    ) {
        match self.awaiting.get_mut(&id) {
            Some(a) => {
                a.executed_by.insert(from);
                self.maybe_reply(id, out);
            }
            None => self.stats.stale_messages += 1,
        }
    }

    /// This replica executed `id` (its record is already in `out`, before
    /// anything pushed here).
    pub(crate) fn executed_locally(
        &mut self,
        id: InstanceId,
        reply: EpaxosReply,
        out: &mut Vec<EpaxosEffect>,
    ) {
        if let Some(a) = self.awaiting.get_mut(&id) {
            a.executed_by.insert(self.cfg.replica);
            a.reply = Some(reply);
            self.maybe_reply(id, out);
        }
    }

    /// EPaxos-all answers a put once it is committed, as EPaxos answers
    /// writes: every command proposed after this reply depends on it
    /// (its commit quorum meets every later PreAccept quorum), so every
    /// later read executes after it. Execution gives it its carstamp
    /// later, so the reply carries [`Carstamp::ZERO`].
    pub(crate) fn reply_at_commit(&mut self, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        let committed_put = self
            .committed(id)
            .is_some_and(|a| matches!(a.cmd, Command::Put { .. }));
        let ours = self
            .awaiting
            .get(&id)
            .is_some_and(|a| Some(a.op) == self.committed(id).and_then(|c| c.cmd.op()));
        if !(self.cfg.every_op && committed_put && ours) {
            return;
        }
        if let Some(a) = self.awaiting.remove(&id) {
            self.in_flight.remove(&a.op);
            out.push(Effect::Reply {
                op: a.op,
                reply: EpaxosReply::Put { cs: Carstamp::ZERO },
            });
        }
    }

    /// Notices can be lost: while the client waits, the leader re-sends
    /// the Commit to the replicas it has not heard from (a replica that
    /// already executed answers with its notice again). The period starts
    /// at `phase_timeout_us` and doubles up to `recovery_timeout_us`; at
    /// most one such timer per waiting client op is outstanding.
    pub(crate) fn arm_reply_retry(&self, now: Time, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        let Some(a) = self.awaiting.get(&id) else {
            return;
        };
        let wait = self
            .cfg
            .phase_timeout_us
            .saturating_mul(1u64 << a.retries.min(20))
            .min(self.cfg.recovery_timeout_us.max(self.cfg.phase_timeout_us));
        out.push(Effect::SetTimer {
            at: now.plus_micros(wait),
            timer: EpaxosTimer::Reply { inst: id },
        });
    }

    pub(crate) fn handle_reply_timeout(
        &mut self,
        now: Time,
        id: InstanceId,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let Some(attrs) = self.committed(id).cloned() else {
            return;
        };
        let Some(a) = self.awaiting.get_mut(&id) else {
            return;
        };
        a.retries = a.retries.saturating_add(1);
        let silent: Vec<ReplicaId> = self
            .cfg
            .peers()
            .filter(|p| !a.executed_by.contains(p))
            .collect();
        for to in silent {
            self.send(
                to,
                EpaxosMsg::Commit {
                    inst: id,
                    attrs: attrs.clone(),
                },
                out,
            );
        }
        self.arm_reply_retry(now, id, out);
    }

    /// Gryff answers once a majority executed, so later quorum reads see
    /// the RMW; EPaxos-all once this leader executed, since every later
    /// operation is itself a command ordered after this one.
    fn maybe_reply(&mut self, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        let majority = if self.cfg.every_op {
            1
        } else {
            self.cfg.majority()
        };
        let ready = self
            .awaiting
            .get(&id)
            .is_some_and(|a| a.reply.is_some() && a.executed_by.len() >= majority);
        if !ready {
            return;
        }
        if let Some(Awaiting {
            op,
            reply: Some(reply),
            ..
        }) = self.awaiting.remove(&id)
        {
            self.in_flight.remove(&op);
            out.push(Effect::Reply { op, reply });
        }
    }
}
