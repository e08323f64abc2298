//! The register machine of one replica (Gryff, NSDI 2020, section 4;
//! PROTOCOL.md 2, 3, 5, 6): constructors, the operations in flight, and the
//! dispatch of messages and timers to the phase handlers in `read`,
//! `write`, `replica` and `phase`.
//!
//! The machine does not own the register store: the EPaxos executor in
//! `consensus` applies RMW results to the same store, so every handler
//! takes `&mut RegisterStore`. It keeps only the operations it coordinates,
//! keyed by their sequence number.

use crate::carstamp::{Carstamp, Register};
use crate::config::{ConfigError, RegisterConfig};
use crate::effect::{Effect, Time};
use crate::ids::{Key, OpId, ReplicaId, Value};
use crate::msg::{OpRef, RegisterEffect, RegisterMsg, RegisterTimer};
use crate::op_seq::{OpSeqAllocator, RecoveredRegisterState};
use crate::phase::PhaseTracker;
use crate::stats::RegisterStats;
use crate::store::RegisterStore;
use std::collections::BTreeMap;

/// The register protocol of one replica: read and write coordinator and
/// replica side. Deterministic: the same inputs give the same effects.
#[derive(Clone, Debug)]
pub struct RegisterMachine {
    pub(crate) config: RegisterConfig,
    pub(crate) quorum: usize,
    pub(crate) seqs: OpSeqAllocator,
    /// Operations this replica coordinates, by sequence number. A BTreeMap
    /// so that any iteration is deterministic.
    pub(crate) in_flight: BTreeMap<u64, InFlight>,
    pub(crate) stats: RegisterStats,
}

/// One coordinated operation: its client op, key, current phase and the
/// state that phase accumulates.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    pub op: OpId,
    pub key: Key,
    pub phase: PhaseTracker,
    pub state: OpState,
}

#[derive(Clone, Debug)]
pub(crate) enum OpState {
    /// Largest register reported so far and every peer's carstamp.
    Read1 {
        best: Register,
        reported: Vec<(ReplicaId, Carstamp)>,
    },
    /// The register being written back; the phase tracker holds the peers
    /// known to hold it (from Read1 or a Read2 ack).
    Read2 { reg: Register },
    /// The value to write and the largest ts reported so far.
    Write1 { value: Option<Value>, max_ts: u64 },
    /// The register being written.
    Write2 { reg: Register },
}

impl RegisterMachine {
    /// A replica booting for the first time (nothing on disk).
    pub fn new(config: RegisterConfig) -> Result<RegisterMachine, ConfigError> {
        RegisterMachine::recover(config, RecoveredRegisterState::default())
    }

    /// A replica restarting from its durable records. The caller restores
    /// the store itself (e.g. with [`RecoveredRegisterState::replay`]);
    /// operations that were in flight before the crash are forgotten (their
    /// clients time out and retry), and their late replies are ignored.
    pub fn recover(
        config: RegisterConfig,
        recovered: RecoveredRegisterState,
    ) -> Result<RegisterMachine, ConfigError> {
        config.validate()?;
        Ok(RegisterMachine {
            quorum: config.quorum(),
            seqs: OpSeqAllocator::recovered(recovered.op_seq_reserved_up_to, config.op_seq_block),
            config,
            in_flight: BTreeMap::new(),
            stats: RegisterStats::default(),
        })
    }

    pub fn config(&self) -> &RegisterConfig {
        &self.config
    }

    pub fn me(&self) -> ReplicaId {
        self.config.me
    }

    /// Majority quorum size.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    pub fn stats(&self) -> &RegisterStats {
        &self.stats
    }

    /// Number of operations this replica is coordinating.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// The sequence number (and writer counter) the next operation gets.
    pub fn next_op_seq(&self) -> u64 {
        self.seqs.peek()
    }

    /// Starts a client read of `key` coordinated here (PROTOCOL.md 2).
    /// The `Reply` for `op` comes from this call (n = 1) or a later handler.
    pub fn start_get(
        &mut self,
        now: Time,
        op: OpId,
        key: Key,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.gets_started += 1;
        let seq = self.next_seq(out);
        let mine = store.get(&key);
        let op = InFlight {
            op,
            key,
            phase: PhaseTracker::new(OpRef {
                seq,
                phase: crate::msg::Phase::Read1,
            }),
            // Our own register is the first reply (it is also what Read1
            // piggy-backs, so every peer's reply is at least this).
            state: OpState::Read1 {
                best: mine,
                reported: Vec::new(),
            },
        };
        self.open_phase(now, op, store, out);
    }

    /// Starts a client write of `value` to `key` (`None` deletes) coordinated
    /// here (PROTOCOL.md 3).
    pub fn start_put(
        &mut self,
        now: Time,
        op: OpId,
        key: Key,
        value: Option<Value>,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.puts_started += 1;
        let seq = self.next_seq(out);
        let op = InFlight {
            op,
            key,
            phase: PhaseTracker::new(OpRef {
                seq,
                phase: crate::msg::Phase::Write1,
            }),
            state: OpState::Write1 { value, max_ts: 0 },
        };
        self.open_phase(now, op, store, out);
    }

    /// A message from replica `from`. Requests are served as a replica,
    /// replies advance the operation they answer; anything unexpected is
    /// ignored and counted in [`RegisterStats`].
    pub fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: RegisterMsg,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        if !self.config.is_peer(from) {
            self.stats.ignored_unknown_sender += 1;
            return;
        }
        if msg.op_ref().phase != msg.phase() {
            self.stats.ignored_malformed += 1;
            return;
        }
        match msg {
            RegisterMsg::Read1 { op_ref, key, reg } => {
                self.handle_read1(from, op_ref, key, reg, store, out)
            }
            RegisterMsg::Read2 { op_ref, key, reg } => {
                self.handle_read2(from, op_ref, key, reg, store, out)
            }
            RegisterMsg::Write1 { op_ref, key } => {
                self.handle_write1(from, op_ref, key, store, out)
            }
            RegisterMsg::Write2 { op_ref, key, reg } => {
                self.handle_write2(from, op_ref, key, reg, store, out)
            }
            reply => self.handle_reply(now, from, reply, store, out),
        }
    }

    /// A timer this machine set earlier has fired.
    pub fn handle_timer(
        &mut self,
        now: Time,
        timer: RegisterTimer,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        match timer {
            RegisterTimer::PhaseTimeout { op_ref } => {
                self.handle_phase_timeout(now, op_ref, store, out)
            }
        }
    }

    /// Routes a reply to the phase it answers, counting each replica once
    /// per phase.
    fn handle_reply(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: RegisterMsg,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        let op_ref = msg.op_ref();
        let Some(mut op) = self.in_flight.remove(&op_ref.seq) else {
            self.stats.ignored_unknown_op += 1;
            return;
        };
        if op.phase.op_ref() != op_ref {
            self.stats.ignored_stale_phase += 1;
            self.in_flight.insert(op_ref.seq, op);
            return;
        }
        if op.phase.has_answered(from) {
            self.stats.ignored_duplicate += 1;
            self.in_flight.insert(op_ref.seq, op);
            return;
        }
        let matched = match (&mut op.state, msg) {
            (OpState::Read1 { best, reported }, RegisterMsg::Read1Reply { reg, .. }) => {
                reported.push((from, reg.cs));
                if reg.cs > best.cs {
                    *best = reg;
                }
                true
            }
            (OpState::Read2 { .. }, RegisterMsg::Read2Reply { .. })
            | (OpState::Write2 { .. }, RegisterMsg::Write2Reply { .. }) => true,
            (OpState::Write1 { max_ts, .. }, RegisterMsg::Write1Reply { cs, .. }) => {
                *max_ts = (*max_ts).max(cs.ts);
                true
            }
            // Unreachable while every state is created with its own phase;
            // kept total so that no input can panic.
            _ => false,
        };
        if matched {
            op.phase.record(from);
            self.progress(now, op, store, out);
        } else {
            self.stats.ignored_malformed += 1;
            self.in_flight.insert(op_ref.seq, op);
        }
    }

    /// Moves `op` on if its phase has a quorum (this replica counts
    /// itself), otherwise keeps waiting.
    pub(crate) fn progress(
        &mut self,
        now: Time,
        op: InFlight,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) {
        if !self.has_quorum(&op.phase) {
            self.in_flight.insert(op.phase.op_ref().seq, op);
            return;
        }
        let seq = op.phase.op_ref().seq;
        match op.state {
            OpState::Read1 { best, reported } => {
                self.finish_read1(now, op.op, op.key, seq, best, reported, store, out)
            }
            OpState::Read2 { reg } => self.finish_read2(op.op, reg, out),
            OpState::Write1 { value, max_ts } => {
                self.finish_write1(now, op.op, op.key, seq, value, max_ts, store, out)
            }
            OpState::Write2 { reg } => self.finish_write2(op.op, reg, out),
        }
    }

    /// This replica plus the peers that answered make a quorum.
    pub(crate) fn has_quorum(&self, phase: &PhaseTracker) -> bool {
        1 + phase.answered() >= self.quorum
    }

    fn next_seq(&mut self, out: &mut Vec<RegisterEffect>) -> u64 {
        let before = out.len();
        let seq = self.seqs.next(out);
        self.stats.persists += (out.len() - before) as u64;
        seq
    }

    /// Pushes `Persist(Applied)` iff applying `reg` changed the store.
    pub(crate) fn apply_and_persist(
        &mut self,
        key: &Key,
        reg: &Register,
        store: &mut RegisterStore,
        out: &mut Vec<RegisterEffect>,
    ) -> bool {
        let changed = store.apply(key, reg);
        if changed {
            self.persist_applied(key, reg, out);
        }
        changed
    }

    /// Pushes the durable record of `key` now holding `reg`.
    pub(crate) fn persist_applied(
        &mut self,
        key: &Key,
        reg: &Register,
        out: &mut Vec<RegisterEffect>,
    ) {
        self.stats.persists += 1;
        out.push(crate::op_seq::applied(key, reg));
    }

    pub(crate) fn reply(&self, op: OpId, reply: crate::msg::RegisterReply) -> RegisterEffect {
        Effect::Reply { op, reply }
    }
}
