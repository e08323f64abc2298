//! The leader's answer to its client (PROTOCOL.md 4): sent only once a
//! majority of distinct replicas — the leader among them — durably
//! executed the instance, so later quorum reads see the RMW's result. It
//! carries the observed old value. Peers report with `Executed` notices.

use crate::instance::InstanceId;
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosReply};
use registers::{Effect, Key, OpId, ReplicaId, RmwOp};
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
}

impl Awaiting {
    pub(crate) fn new(op: OpId, key: Key, rmw: RmwOp) -> Awaiting {
        Awaiting {
            op,
            key,
            rmw,
            executed_by: BTreeSet::new(),
            reply: None,
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
