//! Client proposals (PROTOCOL.md 4, "Raft path"): a Gryff RMW first
//! collects its base from a quorum with a Read1 round (the proposer's own
//! register counts as one reply), then proposes `(cmd, base)` to raft; a
//! follower's proposal is forwarded to the leader by raft-rs. A baseline
//! op is proposed at once. Each step is retried after `retry_timeout_us`:
//! base reads go again to the silent peers, a proposal that raft dropped
//! or lost (no leader, a lost forward, a deposed leader) is proposed
//! again — a duplicate entry is harmless, since execution deduplicates by
//! `(client, request)` — and a proposer waiting for a majority's
//! `Executed` notices asks the silent peers again.
//!
//! Why the base is safe: a write or read that completed before the RMW
//! was invoked left its register on a quorum, an RMW that completed was
//! executed on a majority, and the base quorum meets each of them; the
//! entry then executes after every entry committed before it.

use crate::instance::Command;
use crate::raft::codec::Proposal;
use crate::raft::machine::RaftEngine;
use crate::raft::messages::{RaftEffect, RaftMsg, RaftPersist, RaftTimer, ReadId};
use registers::{
    ClientReply, Effect, Key, OpId, Register, RegisterStore, ReplicaId, Time, max_by_cs,
};
use std::collections::BTreeSet;

/// A client op this replica proposed and has not answered yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub cmd: Command,
    pub stage: Stage,
}

#[derive(Clone, Debug)]
pub(crate) enum Stage {
    /// Read1: the largest register reported so far (ours included).
    Base {
        req: ReadId,
        best: Register,
        replied: BTreeSet<ReplicaId>,
    },
    /// Handed to raft; waiting for the entry to execute here.
    Proposed { data: Vec<u8> },
    /// Executed here at `index`; waiting for a majority (Gryff only).
    Executed { index: u64, reply: ClientReply },
}

impl RaftEngine {
    /// Starts a new client op (its retry timer included).
    pub(crate) fn begin(
        &mut self,
        now: Time,
        op: OpId,
        cmd: Command,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) {
        let Some(key) = cmd.key().cloned() else {
            return;
        };
        out.push(Effect::SetTimer {
            at: now.plus_micros(self.cfg.retry_timeout_us),
            timer: RaftTimer::Retry { op },
        });
        if self.cfg.every_op {
            // The baselines execute on the store: no base to collect.
            self.submit(op, cmd, Register::default());
            return;
        }
        if !self.incarnation_persisted {
            out.push(Effect::Persist(RaftPersist::Incarnation(self.incarnation)));
            self.incarnation_persisted = true;
        }
        let req = ReadId {
            incarnation: self.incarnation,
            seq: self.next_read_seq,
        };
        self.next_read_seq += 1;
        self.base_reads.insert(req, op);
        self.pending.insert(
            op,
            Pending {
                cmd,
                stage: Stage::Base {
                    req,
                    best: store.get(&key),
                    replied: BTreeSet::new(),
                },
            },
        );
        let peers: Vec<ReplicaId> = self.cfg.peers().collect();
        for to in peers {
            self.send(
                to,
                RaftMsg::BaseRead {
                    req,
                    key: key.clone(),
                },
                out,
            );
        }
        self.maybe_finish_base(op);
    }

    /// A peer's side of Read1: report the register (no change, no
    /// Persist: whatever it holds was made durable before).
    pub(crate) fn handle_base_read(
        &mut self,
        from: ReplicaId,
        req: ReadId,
        key: Key,
        store: &RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) {
        let reg = store.get(&key);
        self.send(from, RaftMsg::BaseReadReply { req, key, reg }, out);
    }

    pub(crate) fn handle_base_read_reply(
        &mut self,
        from: ReplicaId,
        req: ReadId,
        key: Key,
        reg: Register,
    ) {
        let Some(op) = self.base_reads.get(&req).copied() else {
            return; // finished, or from an earlier incarnation
        };
        let Some(p) = self.pending.get_mut(&op) else {
            return;
        };
        if p.cmd.key() != Some(&key) {
            self.stats.bad_input += 1;
            return;
        }
        if let Stage::Base { best, replied, .. } = &mut p.stage
            && replied.insert(from)
        {
            *best = max_by_cs(best, &reg).clone();
        }
        self.maybe_finish_base(op);
    }

    /// Proposes once a quorum (this replica included) reported.
    fn maybe_finish_base(&mut self, op: OpId) {
        let majority = self.cfg.majority();
        let Some(p) = self.pending.get(&op) else {
            return;
        };
        let Stage::Base { req, best, replied } = &p.stage else {
            return;
        };
        if 1 + replied.len() < majority {
            return;
        }
        let (req, best, cmd) = (*req, best.clone(), p.cmd.clone());
        self.base_reads.remove(&req);
        self.submit(op, cmd, best);
    }

    /// Hands `(cmd, base)` to raft.
    fn submit(&mut self, op: OpId, cmd: Command, base: Register) {
        let data = Proposal {
            proposer: self.cfg.replica,
            cmd: cmd.clone(),
            base,
        }
        .encode();
        self.propose_to_raft(data.clone());
        self.pending.insert(
            op,
            Pending {
                cmd,
                stage: Stage::Proposed { data },
            },
        );
    }

    fn propose_to_raft(&mut self, data: Vec<u8>) {
        if self.raw.propose(Vec::new(), data).is_err() {
            self.stats.proposals_dropped += 1;
        }
    }

    /// The op's current step took `retry_timeout_us`: do it again.
    pub(crate) fn handle_retry(&mut self, now: Time, op: OpId, out: &mut Vec<RaftEffect>) {
        let Some(p) = self.pending.get(&op) else {
            return; // answered
        };
        match &p.stage {
            Stage::Base { req, replied, .. } => {
                let (req, replied) = (*req, replied.clone());
                let key = p.cmd.key().cloned().unwrap_or_else(|| Key(Vec::new()));
                let silent: Vec<ReplicaId> =
                    self.cfg.peers().filter(|r| !replied.contains(r)).collect();
                for to in silent {
                    self.send(
                        to,
                        RaftMsg::BaseRead {
                            req,
                            key: key.clone(),
                        },
                        out,
                    );
                }
            }
            Stage::Proposed { data } => {
                let data = data.clone();
                self.stats.reproposals += 1;
                self.propose_to_raft(data);
            }
            Stage::Executed { index, .. } => {
                let index = *index;
                let silent: Vec<ReplicaId> = self
                    .cfg
                    .peers()
                    .filter(|r| self.peer_applied[r.0 as usize] < index)
                    .collect();
                for to in silent {
                    self.send(to, RaftMsg::ExecutedQuery, out);
                }
            }
        }
        out.push(Effect::SetTimer {
            at: now.plus_micros(self.cfg.retry_timeout_us),
            timer: RaftTimer::Retry { op },
        });
    }
}
