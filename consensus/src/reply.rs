//! The leader's answer to its client (PROTOCOL.md 4): sent only once a
//! majority of distinct replicas — the leader among them — durably
//! executed the instance, so later quorum reads see the RMW's result. It
//! carries the observed old value. Peers report with `Executed` notices.

use crate::instance::InstanceId;
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosReply, EpaxosTimer};
use registers::{Effect, Key, OpId, ReplicaId, RmwOp, Time};
use std::collections::BTreeSet;

/// A client RMW this replica proposed and has not answered yet.
#[derive(Clone, Debug)]
pub(crate) struct Awaiting {
    pub op: OpId,
    pub key: Key,
    pub rmw: RmwOp,
    pub executed_by: BTreeSet<ReplicaId>,
    /// Set by the local execution (every replica computes the same).
    pub reply: Option<EpaxosReply>,
    /// Times the silent replicas were asked again.
    pub retries: u32,
}

impl Awaiting {
    pub(crate) fn new(op: OpId, key: Key, rmw: RmwOp) -> Awaiting {
        Awaiting {
            op,
            key,
            rmw,
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

    fn maybe_reply(&mut self, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        let majority = self.cfg.majority();
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
