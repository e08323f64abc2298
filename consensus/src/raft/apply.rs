//! Executing committed entries (PROTOCOL.md 4 and 5, "Raft path"): the
//! same execution rule as EPaxos (`execute`), in log order; a durable
//! record of every execution that changed state; and the proposer's
//! reply.
//!
//! When to answer. Gryff: only once a majority — the proposer among them
//! — has executed the entry (peers report `Executed { up_to }`
//! watermarks), exactly as the EPaxos path does: gets and puts do not go
//! through raft, so a later quorum read must find the RMW's result on a
//! quorum. Commit plus the proposer's own execution would not do: a read
//! served by the other replicas of a quorum could still miss it.
//! raft-all: after the proposer's own execution. Every op is an entry, so
//! every op invoked after the reply gets a later log position, and so
//! observes this one; the entry is committed, so it can never be lost.

use crate::execute::{ExecContext, reply_for};
use crate::instance::Command;
use crate::messages::ExecResult;
use crate::raft::codec::Proposal;
use crate::raft::machine::RaftEngine;
use crate::raft::messages::{RaftEffect, RaftMsg, RaftPersist};
use crate::raft::propose::Stage;
use raft::eraftpb::{Entry, EntryType};
use registers::{Effect, OpId, RegisterStore, ReplicaId, WriterId};
use std::collections::BTreeSet;

impl RaftEngine {
    /// Executes committed entries in order and answers or notifies.
    pub(crate) fn apply_committed(
        &mut self,
        entries: Vec<Entry>,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) {
        if entries.is_empty() {
            return;
        }
        let mut notify: BTreeSet<ReplicaId> = BTreeSet::new();
        for e in entries {
            if e.index <= self.applied {
                continue; // executed before a restart (recorded)
            }
            self.applied = e.index;
            if e.data.is_empty() || e.entry_type != EntryType::EntryNormal {
                continue; // a new leader's empty entry
            }
            let Some(p) = self.decode_entry(&e.data) else {
                self.stats.bad_entries += 1;
                continue;
            };
            let ctx = ExecContext {
                every_op: self.cfg.every_op,
                writer: WriterId::new(p.proposer, e.index),
            };
            let result = self.rmw.execute(&p.cmd, &p.base, ctx, store);
            self.stats.executed += 1;
            if matches!(result, ExecResult::Duplicate(_)) {
                self.stats.duplicates_suppressed += 1;
            }
            if result.changed_state() {
                out.push(Effect::Persist(RaftPersist::Executed {
                    index: e.index,
                    result: result.clone(),
                }));
            }
            if p.proposer == self.cfg.replica {
                self.executed_own(e.index, &p.cmd, &result, out);
            } else if !self.cfg.every_op {
                notify.insert(p.proposer);
            }
        }
        let up_to = self.applied;
        for to in notify {
            self.send(to, RaftMsg::Executed { up_to }, out);
        }
        self.reply_where_majority_executed(out);
    }

    /// The entry's command, if it decodes and this mode may run it. A bad
    /// entry is skipped by every replica alike (same bytes, same config).
    fn decode_entry(&self, data: &[u8]) -> Option<Proposal> {
        let p = Proposal::decode(data).ok()?;
        let allowed = p.proposer.0 < self.cfg.replicas
            && p.cmd != Command::Noop
            && (self.cfg.every_op || !p.cmd.is_baseline_only());
        allowed.then_some(p)
    }

    /// This replica's own op executed here at `index`.
    fn executed_own(
        &mut self,
        index: u64,
        cmd: &Command,
        result: &ExecResult,
        out: &mut Vec<RaftEffect>,
    ) {
        let Some(op) = cmd.op() else { return };
        let waiting = self
            .pending
            .get(&op)
            .is_some_and(|p| !matches!(p.stage, Stage::Executed { .. }) && p.cmd == *cmd);
        if !waiting {
            return; // a duplicate entry of an op already answered
        }
        let reply = reply_for(cmd, result).and_then(|r| r.into_client_reply());
        match reply {
            // The client already ran a newer request: nobody waits.
            None => self.finish(op),
            Some(reply) if self.cfg.every_op => {
                self.finish(op);
                out.push(Effect::Reply { op, reply });
            }
            Some(reply) => {
                if let Some(p) = self.pending.get_mut(&op) {
                    p.stage = Stage::Executed { index, reply };
                }
            }
        }
    }

    /// Peer `from` executed everything committed up to `up_to`.
    pub(crate) fn handle_executed(
        &mut self,
        from: ReplicaId,
        up_to: u64,
        out: &mut Vec<RaftEffect>,
    ) {
        let Some(w) = self.peer_applied.get_mut(from.0 as usize) else {
            return;
        };
        *w = (*w).max(up_to);
        self.reply_where_majority_executed(out);
    }

    /// Answers every op that a majority (this replica included) executed.
    fn reply_where_majority_executed(&mut self, out: &mut Vec<RaftEffect>) {
        let majority = self.cfg.majority();
        let me = self.cfg.replica.0 as usize;
        let done: Vec<OpId> = self
            .pending
            .iter()
            .filter_map(|(op, p)| match &p.stage {
                Stage::Executed { index, .. } => {
                    let others = self
                        .peer_applied
                        .iter()
                        .enumerate()
                        .filter(|(r, w)| *r != me && **w >= *index)
                        .count();
                    (1 + others >= majority).then_some(*op)
                }
                _ => None,
            })
            .collect();
        for op in done {
            if let Some(Stage::Executed { reply, .. }) =
                self.pending.get(&op).map(|p| p.stage.clone())
            {
                self.finish(op);
                out.push(Effect::Reply { op, reply });
            }
        }
    }

    /// Forgets a finished op.
    fn finish(&mut self, op: OpId) {
        if let Some(p) = self.pending.remove(&op)
            && let Stage::Base { req, .. } = p.stage
        {
            self.base_reads.remove(&req);
        }
    }
}
