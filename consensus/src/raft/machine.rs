//! The raft engine of one replica: its state, construction and restart
//! from persisted records, the entry points (`propose`, `handle_message`,
//! `handle_timer`) and the checks on peer input. The phases live in
//! `propose` (the base's Read1 round, proposals, retries), `ready` (raft's
//! Ready loop turned into effects), `apply` (execution and replies) and
//! `leader` (ticks, the preferred leader).

use crate::config::ConfigError;
use crate::execute::RmwState;
use crate::machine::BadInput;
use crate::raft::config::{RaftConfig, raft_id, replica_of};
use crate::raft::messages::{RaftEffect, RaftMsg, RaftPersist, RaftTimer, ReadId};
use crate::raft::propose::Pending;
use crate::raft::storage::{LogStore, from_record};
use protobuf::Message as _;
use raft::eraftpb::{EntryType, Message, MessageType};
use raft::{RawNode, StateRole};
use registers::{ClientRequest, Key, OpId, Register, RegisterStore, ReplicaId, Time};
use std::collections::{BTreeMap, HashMap};

/// Counters for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStats {
    pub proposals: u64,
    /// Proposals of an op already in flight here (absorbed).
    pub duplicate_proposals: u64,
    /// Proposals raft refused (no leader known); retried later.
    pub proposals_dropped: u64,
    /// Proposals sent to raft again after `retry_timeout_us`.
    pub reproposals: u64,
    pub executed: u64,
    /// Executions that found their `(client, request)` already executed.
    pub duplicates_suppressed: u64,
    /// Peer messages refused (malformed, misaddressed, unexpected).
    pub bad_input: u64,
    /// Committed entries that do not decode (skipped everywhere alike).
    pub bad_entries: u64,
    /// Persisted records that could not be replayed.
    pub bad_records: u64,
    pub leader_transfers: u64,
}

/// Where raft stands at this replica (for tests and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    pub term: u64,
    pub leader: Option<ReplicaId>,
    pub is_leader: bool,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
}

/// One replica's raft ordering engine. Deterministic and I/O-free: the
/// driver supplies time and carries out the effects.
pub struct RaftEngine {
    pub(crate) cfg: RaftConfig,
    pub(crate) raw: RawNode<LogStore>,
    pub(crate) rmw: RmwState,
    /// Every committed entry up to here was executed at this replica.
    pub(crate) applied: u64,
    /// When raft's next tick is due, and when the Tick timer was set for.
    pub(crate) next_tick: Time,
    pub(crate) tick_set_for: Option<Time>,
    /// Ticks since the last leadership transfer attempt.
    pub(crate) ticks_since_transfer: usize,
    pub(crate) incarnation: u64,
    pub(crate) incarnation_persisted: bool,
    pub(crate) next_read_seq: u64,
    /// Client ops proposed here and not answered yet.
    pub(crate) pending: BTreeMap<OpId, Pending>,
    pub(crate) base_reads: HashMap<ReadId, OpId>,
    /// Per replica, the highest `Executed` watermark it reported.
    pub(crate) peer_applied: Vec<u64>,
    pub(crate) stats: RaftStats,
}

impl RaftEngine {
    /// A replica with nothing on disk, starting at `now`.
    pub fn start(
        cfg: RaftConfig,
        now: Time,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) -> Result<RaftEngine, ConfigError> {
        RaftEngine::recover(cfg, now, Vec::new(), store, out)
    }

    /// Rebuilds a replica from `records` (in the order they were
    /// persisted): the log and hard state for raft, and the executions
    /// (re-applied to `store`). Committed entries after the last recorded
    /// execution are executed again by the Ready loop, with the same
    /// results, since execution is deterministic. Pushes the first tick
    /// and, at the preferred leader, a campaign.
    pub fn recover(
        cfg: RaftConfig,
        now: Time,
        records: impl IntoIterator<Item = RaftPersist>,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) -> Result<RaftEngine, ConfigError> {
        cfg.validate()?;
        let voters = (0..cfg.replicas).map(|r| raft_id(ReplicaId(r))).collect();
        let mut log = LogStore::new(voters);
        let mut rmw = RmwState::new(cfg.dedup_clients_per_key);
        let (mut applied, mut incarnation, mut bad_records) = (0, 0, 0);
        for rec in records {
            match rec {
                RaftPersist::Entries(es) => {
                    let es: Vec<_> = es.iter().map(from_record).collect();
                    if log.append(&es).is_err() {
                        bad_records += 1;
                    }
                }
                RaftPersist::HardState(hs) => log.set_hard_state(hs),
                RaftPersist::Executed { index, result } => {
                    rmw.replay(&result, store);
                    applied = applied.max(index);
                }
                RaftPersist::Incarnation(n) => incarnation = incarnation.max(n),
            }
        }
        // Records are a prefix of what was persisted in order, so these
        // hold already; clamping keeps raft-rs's own checks (which panic)
        // satisfied whatever the records say.
        let mut hs = log.hard_state();
        applied = applied.min(log.last_index());
        hs.commit = hs.commit.min(log.last_index()).max(applied);
        log.set_hard_state(hs);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&cfg.raft_config(applied), log, &logger)
            .map_err(|e| ConfigError::Raft(e.to_string()))?;
        let n = cfg.replicas as usize;
        let mut engine = RaftEngine {
            raw,
            rmw,
            applied,
            next_tick: now.plus_micros(cfg.tick_us),
            tick_set_for: None,
            ticks_since_transfer: 0,
            incarnation: incarnation + 1,
            incarnation_persisted: false,
            next_read_seq: 0,
            pending: BTreeMap::new(),
            base_reads: HashMap::new(),
            peer_applied: vec![0; n],
            stats: RaftStats {
                bad_records,
                ..RaftStats::default()
            },
            cfg,
        };
        if engine.cfg.preferred_leader == Some(engine.cfg.replica) {
            // Place the leader where it was asked for from the start.
            let _ = engine.raw.campaign();
        }
        engine.ensure_ticking(now, out);
        engine.drain_ready(store, out);
        Ok(engine)
    }

    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &RaftStats {
        &self.stats
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    pub fn status(&self) -> RaftStatus {
        RaftStatus {
            term: self.raw.raft.term,
            leader: replica_of(self.raw.raft.leader_id, self.cfg.replicas),
            is_leader: self.is_leader(),
            commit: self.raw.raft.raft_log.committed,
            applied: self.applied,
            last_index: self.raw.raft.raft_log.last_index(),
        }
    }

    /// `last_rmw[key]`: the result of the last RMW executed on the key.
    pub fn last_rmw(&self, key: &Key) -> Register {
        self.rmw.last_rmw(key)
    }

    /// Client ops proposed here and not answered yet.
    pub fn pending_replies(&self) -> usize {
        self.pending.len()
    }

    /// A client op arrives here. Gryff (default): an RMW; its base is
    /// read from a quorum, then `(cmd, base)` is proposed. raft-all
    /// (`every_op`): any op, proposed at once. The reply comes as an
    /// `Effect::Reply`; a retry of an op still pending here is absorbed.
    pub fn propose(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) -> Result<(), BadInput> {
        let cmd = crate::Command::from_request(op, req);
        if cmd.is_baseline_only() && !self.cfg.every_op {
            return Err(BadInput::BaselineOnly);
        }
        self.ensure_ticking(now, out);
        if self.pending.contains_key(&op) {
            self.stats.duplicate_proposals += 1;
            return Ok(());
        }
        self.stats.proposals += 1;
        self.begin(now, op, cmd, store, out);
        self.drain_ready(store, out);
        Ok(())
    }

    /// One message from peer `from`.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: RaftMsg,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) -> Result<(), BadInput> {
        self.ensure_ticking(now, out);
        if from.0 >= self.cfg.replicas {
            self.stats.bad_input += 1;
            return Err(BadInput::ReplicaOutOfRange(from));
        }
        if from == self.cfg.replica {
            self.stats.bad_input += 1;
            return Err(BadInput::FromSelf);
        }
        match msg {
            RaftMsg::Raft(bytes) => {
                let m = self.check_raft_message(from, &bytes).inspect_err(|_| {
                    self.stats.bad_input += 1;
                })?;
                // Errors here are raft's own refusals (a proposal with no
                // leader, a response from a stale term): nothing to do.
                let _ = self.raw.step(m);
            }
            RaftMsg::BaseRead { req, key } => self.handle_base_read(from, req, key, store, out),
            RaftMsg::BaseReadReply { req, key, reg } => {
                self.handle_base_read_reply(from, req, key, reg)
            }
            RaftMsg::Executed { up_to } => self.handle_executed(from, up_to, out),
            RaftMsg::ExecutedQuery => self.send(
                from,
                RaftMsg::Executed {
                    up_to: self.applied,
                },
                out,
            ),
        }
        self.drain_ready(store, out);
        Ok(())
    }

    /// A timer set earlier fired.
    pub fn handle_timer(
        &mut self,
        now: Time,
        timer: RaftTimer,
        store: &mut RegisterStore,
        out: &mut Vec<RaftEffect>,
    ) {
        match timer {
            RaftTimer::Tick => self.handle_tick(now),
            RaftTimer::Retry { op } => self.handle_retry(now, op, out),
        }
        self.ensure_ticking(now, out);
        self.drain_ready(store, out);
    }

    /// Decodes a raft message and refuses what raft-rs would mishandle:
    /// wrong addressing, snapshots (nothing is ever compacted), empty
    /// proposals, configuration changes, appends with gaps or that would
    /// rewrite committed entries, and commit or match indexes beyond the
    /// log.
    /// raft-rs panics on some of these; peers are trusted not to be
    /// malicious (crash faults), but no input may panic.
    fn check_raft_message(&self, from: ReplicaId, bytes: &[u8]) -> Result<Message, BadInput> {
        let m =
            Message::parse_from_bytes(bytes).map_err(|_| BadInput::Malformed("raft message"))?;
        if m.from != raft_id(from) {
            return Err(BadInput::Malformed("raft sender"));
        }
        if m.to != raft_id(self.cfg.replica) {
            return Err(BadInput::WrongRecipient(
                replica_of(m.to, self.cfg.replicas).unwrap_or(ReplicaId(u32::MAX)),
            ));
        }
        if m.entries
            .iter()
            .any(|e| e.entry_type != EntryType::EntryNormal)
        {
            return Err(BadInput::Malformed("raft configuration change"));
        }
        let log = &self.raw.raft.raft_log;
        match m.msg_type {
            MessageType::MsgSnapshot => return Err(BadInput::Malformed("raft snapshot")),
            // Never sent by this engine: no read index, and only a leader
            // starts a transfer (stepped locally).
            MessageType::MsgReadIndex
            | MessageType::MsgReadIndexResp
            | MessageType::MsgTransferLeader => {
                return Err(BadInput::Malformed("unused raft message type"));
            }
            // raft-rs puts its term on every message it sends except a
            // forwarded proposal, and asserts both ways; a term of 0 would
            // also make a message look local.
            t if (t == MessageType::MsgPropose) != (m.term == 0) => {
                return Err(BadInput::Malformed("raft message term"));
            }
            MessageType::MsgPropose if m.entries.is_empty() => {
                return Err(BadInput::Malformed("empty raft proposal"));
            }
            MessageType::MsgAppend => {
                // The entry before the appended ones has a real term
                // (index 0 alone has term 0); see below for why 0 matters.
                if (m.index == 0) != (m.log_term == 0) || m.log_term > m.term {
                    return Err(BadInput::Malformed("raft append with a bad previous entry"));
                }
                let mut prev_term = m.log_term;
                for (i, e) in m.entries.iter().enumerate() {
                    if Some(e.index) != m.index.checked_add(i as u64 + 1) {
                        return Err(BadInput::Malformed("raft append with a gap"));
                    }
                    // Terms grow along a log and never pass the leader's;
                    // raft-rs reads a missing entry's term as 0, so a 0
                    // would pass for an entry it does not have.
                    if e.term == 0 || e.term < prev_term || e.term > m.term {
                        return Err(BadInput::Malformed("raft append with bad terms"));
                    }
                    prev_term = e.term;
                    if e.index <= log.committed && self.raw.store().term_at(e.index) != Some(e.term)
                    {
                        return Err(BadInput::Malformed(
                            "raft append rewrites the committed log",
                        ));
                    }
                }
            }
            MessageType::MsgHeartbeat if m.commit > log.last_index() => {
                return Err(BadInput::Malformed("raft heartbeat beyond the log"));
            }
            // A leader would commit past its own log on such an answer.
            MessageType::MsgAppendResponse if !m.reject && m.index > log.last_index() => {
                return Err(BadInput::Malformed("raft append answer beyond the log"));
            }
            _ => {}
        }
        Ok(m)
    }

    pub(crate) fn send(&self, to: ReplicaId, msg: RaftMsg, out: &mut Vec<RaftEffect>) {
        out.push(registers::Effect::Send { to, msg });
    }
}
