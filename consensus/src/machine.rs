//! The EPaxos replica state machine: its state, the entry points
//! (`propose`, `handle_message`, `handle_timer`), input validation and the
//! bookkeeping shared by every phase. The phases live in their own files
//! (preaccept, accept, commit, recovery, executor, execute, reply).

use crate::catch_up::CatchUpAsked;
use crate::config::{ConfigError, EpaxosConfig};
use crate::execute::RmwState;
use crate::executor::ExecState;
use crate::index::ConflictIndex;
use crate::instance::{Attrs, Ballot, Command, Instance, InstanceId, Status};
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosPersist, EpaxosTimer, InstanceRecord};
use crate::reply::Awaiting;
use registers::{Effect, Key, OpId, Register, RegisterStore, ReplicaId, RmwOp, Time};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use thiserror::Error;

/// Input the machine refused (it was counted and ignored; nothing changed).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BadInput {
    #[error("replica {0:?} is not part of the configuration")]
    ReplicaOutOfRange(ReplicaId),
    #[error("message from this replica to itself")]
    FromSelf,
    #[error("gets and puts are ordered only by the every-operation baselines")]
    BaselineOnly,
    #[error("a no-op is not a client command")]
    NotAClientCommand,
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("message addressed to replica {0:?}")]
    WrongRecipient(ReplicaId),
}

/// Counters for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpaxosStats {
    pub proposals: u64,
    /// Proposals of an op already in flight here (not proposed again).
    pub duplicate_proposals: u64,
    pub fast_commits: u64,
    pub slow_commits: u64,
    /// Commits decided by a recovery ballot (including no-ops).
    pub recovery_commits: u64,
    pub recoveries_started: u64,
    pub executed: u64,
    /// Executions that found their `(client, request)` already executed.
    pub duplicates_suppressed: u64,
    /// Replies for a phase or ballot no longer in progress.
    pub stale_messages: u64,
    pub bad_input: u64,
    /// Two different values for one instance (a commit that disagrees
    /// with the local commit, or a second command for one slot).
    pub conflicting_values: u64,
    pub nacks_sent: u64,
    pub retransmits: u64,
    /// Instances the executor examined, over all its passes (a measure
    /// of its work: it should grow with what is executed, not with how
    /// long things stay pending).
    pub executor_visits: u64,
    /// CatchUp requests sent, and Commits sent in answer to peers' ones.
    pub catch_ups_asked: u64,
    pub catch_up_commits_sent: u64,
}

/// What a leader (original or recovering) is waiting for at one ballot.
#[derive(Clone, Debug)]
pub(crate) struct Leading {
    pub ballot: Ballot,
    pub phase: Phase,
    pub retransmits: u32,
}

#[derive(Clone, Debug)]
pub(crate) enum Phase {
    PreAccept {
        /// What this leader proposed; replies equal to it are "unchanged".
        proposed: Attrs,
        merged: Attrs,
        replied: BTreeSet<ReplicaId>,
        unchanged: usize,
        changed: usize,
    },
    Accept {
        attrs: Attrs,
        acked: BTreeSet<ReplicaId>,
    },
    Prepare {
        replies: BTreeMap<ReplicaId, crate::messages::RecoveredState>,
    },
}

/// One replica's EPaxos with the RMW base. Deterministic and I/O-free:
/// every entry point takes the time and the register store (owned by the
/// combined replica) and pushes effects to `out`.
#[derive(Debug)]
pub struct Epaxos {
    pub(crate) cfg: EpaxosConfig,
    pub(crate) instances: BTreeMap<InstanceId, Instance>,
    pub(crate) index: ConflictIndex,
    pub(crate) next_slot: u64,
    pub(crate) leading: HashMap<InstanceId, Leading>,
    pub(crate) exec: ExecState,
    pub(crate) rmw: RmwState,
    pub(crate) awaiting: HashMap<InstanceId, Awaiting>,
    pub(crate) in_flight: HashMap<OpId, InstanceId>,
    pub(crate) recovery_armed: HashSet<InstanceId>,
    /// Per replica whose slots we miss: the last catch-up asked for.
    pub(crate) catch_up: HashMap<ReplicaId, CatchUpAsked>,
    pub(crate) stats: EpaxosStats,
}

impl Epaxos {
    /// A fresh replica with no history.
    pub fn new(cfg: EpaxosConfig) -> Result<Epaxos, ConfigError> {
        cfg.validate()?;
        Ok(Epaxos {
            exec: ExecState::new(cfg.replicas),
            rmw: RmwState::new(cfg.dedup_clients_per_key),
            cfg,
            instances: BTreeMap::new(),
            index: ConflictIndex::default(),
            next_slot: 0,
            leading: HashMap::new(),
            awaiting: HashMap::new(),
            in_flight: HashMap::new(),
            recovery_armed: HashSet::new(),
            catch_up: HashMap::new(),
            stats: EpaxosStats::default(),
        })
    }

    pub fn config(&self) -> &EpaxosConfig {
        &self.cfg
    }

    pub fn id(&self) -> ReplicaId {
        self.cfg.replica
    }

    pub fn stats(&self) -> &EpaxosStats {
        &self.stats
    }

    /// `last_rmw[key]`: the result of the last RMW executed on the key.
    pub fn last_rmw(&self, key: &Key) -> Register {
        self.rmw.last_rmw(key)
    }

    /// Status of an instance here, and whether it was executed.
    pub fn status(&self, inst: InstanceId) -> Option<(Status, bool)> {
        self.instances.get(&inst).map(|i| (i.status, i.executed))
    }

    /// The committed value of an instance, if committed here.
    pub fn committed(&self, inst: InstanceId) -> Option<&Attrs> {
        self.instances
            .get(&inst)
            .filter(|i| i.is_committed())
            .and_then(|i| i.attrs.as_ref())
    }

    /// Number of client RMWs proposed here and not yet answered.
    pub fn pending_replies(&self) -> usize {
        self.awaiting.len()
    }

    /// A client asks this replica to run `rmw` on `key`. The reply comes
    /// as an `Effect::Reply` once a majority executed it. A retry of an op
    /// still in flight here is absorbed; a retry arriving at another
    /// replica is proposed again and deduplicated at execution.
    pub fn propose(
        &mut self,
        now: Time,
        op: OpId,
        key: Key,
        rmw: RmwOp,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        // An RMW is a command in every mode: this cannot fail.
        let _ = self.propose_command(now, Command::Rmw { op, key, rmw }, store, out);
    }

    /// Like [`Epaxos::propose`] for any client command; gets and puts
    /// only in EPaxos-all (`every_op`).
    pub fn propose_command(
        &mut self,
        now: Time,
        cmd: Command,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) -> Result<(), BadInput> {
        let Some(op) = cmd.op() else {
            return Err(BadInput::NotAClientCommand);
        };
        if cmd.is_baseline_only() && !self.cfg.every_op {
            return Err(BadInput::BaselineOnly);
        }
        if self.in_flight.contains_key(&op) {
            self.stats.duplicate_proposals += 1;
            return Ok(());
        }
        self.stats.proposals += 1;
        self.start_proposal(now, op, cmd, store, out);
        Ok(())
    }

    /// One message from peer `from`.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: EpaxosMsg,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) -> Result<(), BadInput> {
        if let Err(e) = self.validate(from, &msg) {
            self.stats.bad_input += 1;
            return Err(e);
        }
        match msg {
            EpaxosMsg::PreAccept {
                inst,
                ballot,
                attrs,
            } => self.handle_pre_accept(now, from, inst, ballot, attrs, store, out),
            EpaxosMsg::PreAcceptOk {
                inst,
                ballot,
                seq,
                deps,
                base,
            } => self.handle_pre_accept_ok(now, from, inst, ballot, seq, deps, base, store, out),
            EpaxosMsg::Accept {
                inst,
                ballot,
                attrs,
            } => self.handle_accept(now, from, inst, ballot, attrs, out),
            EpaxosMsg::AcceptOk { inst, ballot } => {
                self.handle_accept_ok(now, from, inst, ballot, store, out)
            }
            EpaxosMsg::Commit { inst, attrs } => {
                self.handle_commit(now, from, inst, attrs, store, out)
            }
            EpaxosMsg::Prepare { inst, ballot } => {
                self.handle_prepare(now, from, inst, ballot, out)
            }
            EpaxosMsg::PrepareOk {
                inst,
                ballot,
                state,
            } => self.handle_prepare_ok(now, from, inst, ballot, state, store, out),
            EpaxosMsg::Nack {
                inst,
                ballot,
                promised,
            } => self.handle_nack(now, inst, ballot, promised, out),
            EpaxosMsg::Executed { inst } => self.handle_executed(from, inst, out),
            EpaxosMsg::CatchUp { from: first } => self.handle_catch_up(from, first, out),
        }
        Ok(())
    }

    /// A timer set earlier fired.
    pub fn handle_timer(
        &mut self,
        now: Time,
        timer: EpaxosTimer,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        match timer {
            EpaxosTimer::Phase { inst, ballot } => {
                self.handle_phase_timeout(now, inst, ballot, store, out)
            }
            EpaxosTimer::Recover { inst } => self.handle_recover_timeout(now, inst, store, out),
            EpaxosTimer::Reply { inst } => self.handle_reply_timeout(now, inst, out),
        }
    }

    fn validate(&self, from: ReplicaId, msg: &EpaxosMsg) -> Result<(), BadInput> {
        let check = |r: ReplicaId| {
            if self.cfg.contains(r) {
                Ok(())
            } else {
                Err(BadInput::ReplicaOutOfRange(r))
            }
        };
        check(from)?;
        if from == self.cfg.replica {
            return Err(BadInput::FromSelf);
        }
        check(msg.inst().replica)?;
        let attrs = match msg {
            EpaxosMsg::PreAccept { ballot, attrs, .. }
            | EpaxosMsg::Accept { ballot, attrs, .. } => {
                check(ballot.replica)?;
                Some(attrs)
            }
            EpaxosMsg::Commit { attrs, .. } => Some(attrs),
            EpaxosMsg::PrepareOk { ballot, state, .. } => {
                check(ballot.replica)?;
                check(state.accepted.replica)?;
                state.attrs.as_ref()
            }
            EpaxosMsg::PreAcceptOk { ballot, deps, .. } => {
                check(ballot.replica)?;
                deps.iter().try_for_each(|(r, _)| check(r))?;
                None
            }
            EpaxosMsg::Prepare { ballot, .. } | EpaxosMsg::AcceptOk { ballot, .. } => {
                check(ballot.replica)?;
                None
            }
            EpaxosMsg::Nack {
                ballot, promised, ..
            } => {
                check(ballot.replica)?;
                check(promised.replica)?;
                None
            }
            EpaxosMsg::Executed { .. } | EpaxosMsg::CatchUp { .. } => None,
        };
        if let Some(a) = attrs {
            a.deps.iter().try_for_each(|(r, _)| check(r))?;
            if a.cmd.is_baseline_only() && !self.cfg.every_op {
                return Err(BadInput::BaselineOnly);
            }
        }
        Ok(())
    }

    // ---- bookkeeping shared by the phases ----

    pub(crate) fn instance_mut(&mut self, id: InstanceId) -> &mut Instance {
        if id.replica == self.cfg.replica && id.slot >= self.next_slot {
            // Never reuse a slot someone else already speaks about.
            self.next_slot = id.slot.saturating_add(1);
        }
        self.instances
            .entry(id)
            .or_insert_with(|| Instance::empty(id))
    }

    /// Raises the promise for `id` to `b`; a leader whose ballot is now
    /// beaten stops leading.
    pub(crate) fn promise(&mut self, id: InstanceId, b: Ballot) {
        let inst = self.instance_mut(id);
        inst.saw(b);
        if b > inst.promised {
            inst.promised = b;
        }
        let promised = inst.promised;
        if self.leading.get(&id).is_some_and(|l| l.ballot < promised) {
            self.leading.remove(&id);
        }
    }

    /// Sets the attributes of `id` and keeps the conflict index and the
    /// executor's per-key view in step with them.
    pub(crate) fn install_attrs(&mut self, id: InstanceId, attrs: Attrs) {
        self.exec.note_deps(&attrs.deps);
        let inst = self.instance_mut(id);
        let old_key = inst.key().cloned();
        let executed = inst.executed;
        let new_key = attrs.cmd.key().cloned();
        let seq = attrs.seq;
        inst.attrs = Some(attrs);
        if let Some(k) = old_key.filter(|k| Some(k) != new_key.as_ref()) {
            self.exec.forget(id, &k);
        }
        if let Some(k) = new_key {
            if !executed {
                self.exec.remember(id, &k);
            }
            self.index.record(id, &k, seq);
        }
        self.exec.advance_contig(id.replica, &self.instances);
    }

    /// The durable form of an instance's current state.
    pub(crate) fn record(&self, id: InstanceId) -> Option<InstanceRecord> {
        self.instances.get(&id).map(|i| InstanceRecord {
            inst: id,
            promised: i.promised,
            accepted: i.accepted,
            status: i.status,
            attrs: i.attrs.clone(),
            unchanged: i.unchanged,
        })
    }

    pub(crate) fn persist_instance(&self, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        if let Some(r) = self.record(id) {
            out.push(Effect::Persist(EpaxosPersist::Instance(r)));
        }
    }

    pub(crate) fn broadcast(&self, msg: &EpaxosMsg, out: &mut Vec<EpaxosEffect>) {
        for to in self.cfg.peers() {
            out.push(Effect::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    pub(crate) fn send(&self, to: ReplicaId, msg: EpaxosMsg, out: &mut Vec<EpaxosEffect>) {
        out.push(Effect::Send { to, msg });
    }

    pub(crate) fn set_phase_timer(
        &self,
        now: Time,
        inst: InstanceId,
        ballot: Ballot,
        out: &mut Vec<EpaxosEffect>,
    ) {
        out.push(Effect::SetTimer {
            at: now.plus_micros(self.cfg.phase_timeout_us),
            timer: EpaxosTimer::Phase { inst, ballot },
        });
    }

    /// Bounded wait: if `id` is still not committed here after
    /// `(1 + rank) * recovery_timeout_us`, explicit-prepare recovery starts.
    /// At most one such timer per instance is outstanding.
    pub(crate) fn arm_recovery(&mut self, now: Time, id: InstanceId, out: &mut Vec<EpaxosEffect>) {
        if self.instances.get(&id).is_some_and(Instance::is_committed) {
            return;
        }
        if !self.recovery_armed.insert(id) {
            return;
        }
        let rank = self.cfg.rank_after(id.replica);
        let wait = self.cfg.recovery_timeout_us.saturating_mul(1 + rank);
        out.push(Effect::SetTimer {
            at: now.plus_micros(wait),
            timer: EpaxosTimer::Recover { inst: id },
        });
    }
}
