//! The vocabulary of the EPaxos machine: peer messages (SOSP'13 Figures
//! 2-3 plus Gryff's base, PROTOCOL.md 4), the records it asks to persist
//! (PROTOCOL.md 5), the client reply and its timers. All are serde enums:
//! they travel over gRPC and into the log as opaque bytes.

use crate::instance::{Attrs, Ballot, Deps, InstanceId, Status};
use registers::{Carstamp, ClientReply, Effect, Key, OpId, Register, RmwOutcome, Value};
use serde::{Deserialize, Serialize};

/// What one replica reports about an instance in a PrepareOk: everything
/// explicit-prepare recovery needs, with `accepted` (the ballot the
/// attributes were accepted at) apart from the promised ballot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredState {
    pub status: Status,
    pub accepted: Ballot,
    /// `None` iff `status == Empty`. Carries the base like every tuple.
    pub attrs: Option<Attrs>,
    /// Pre-accepted at the initial ballot without changing the proposal.
    pub unchanged: bool,
}

/// Messages between replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpaxosMsg {
    /// Phase 1: the leader's (or a recovering replica's) proposal.
    PreAccept {
        inst: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
    },
    /// The replica's updated `(seq, deps, base)`, durable before it was sent.
    PreAcceptOk {
        inst: InstanceId,
        ballot: Ballot,
        seq: u64,
        deps: Deps,
        base: Register,
    },
    /// Paxos-Accept of the merged tuple (slow path and recovery).
    Accept {
        inst: InstanceId,
        ballot: Ballot,
        attrs: Attrs,
    },
    AcceptOk {
        inst: InstanceId,
        ballot: Ballot,
    },
    /// The chosen value; the base travels with it.
    Commit {
        inst: InstanceId,
        attrs: Attrs,
    },
    /// Explicit prepare of a recovery ballot.
    Prepare {
        inst: InstanceId,
        ballot: Ballot,
    },
    PrepareOk {
        inst: InstanceId,
        ballot: Ballot,
        state: RecoveredState,
    },
    /// A refused PreAccept, Accept or Prepare: `promised` beats `ballot`.
    Nack {
        inst: InstanceId,
        ballot: Ballot,
        promised: Ballot,
    },
    /// To an instance's original leader: the sender durably executed it.
    Executed {
        inst: InstanceId,
    },
    /// "Send me the commits you hold of `from.replica`'s slots from
    /// `from.slot` on" (catch-up after a gap; answered with Commits).
    CatchUp {
        from: InstanceId,
    },
}

impl EpaxosMsg {
    /// The instance the message is about.
    pub fn inst(&self) -> InstanceId {
        match self {
            EpaxosMsg::PreAccept { inst, .. }
            | EpaxosMsg::PreAcceptOk { inst, .. }
            | EpaxosMsg::Accept { inst, .. }
            | EpaxosMsg::AcceptOk { inst, .. }
            | EpaxosMsg::Commit { inst, .. }
            | EpaxosMsg::Prepare { inst, .. }
            | EpaxosMsg::PrepareOk { inst, .. }
            | EpaxosMsg::Nack { inst, .. }
            | EpaxosMsg::Executed { inst }
            | EpaxosMsg::CatchUp { from: inst } => *inst,
        }
    }
}

/// The full durable state of one instance at one replica. The latest
/// record of an instance supersedes the earlier ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub inst: InstanceId,
    pub promised: Ballot,
    pub accepted: Ballot,
    pub status: Status,
    pub attrs: Option<Attrs>,
    pub unchanged: bool,
}

/// A client's latest RMW on one key, as remembered for deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    pub op: OpId,
    pub outcome: RmwOutcome,
    pub cs: Carstamp,
}

/// What executing one instance did at this replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecResult {
    /// A no-op, or a command whose client already ran a newer request on
    /// this key (stale retry): nothing changed.
    Nothing,
    /// A retry of an RMW already executed on this key: nothing changed,
    /// the recorded outcome is reported again.
    Duplicate(DedupEntry),
    /// The RMW ran: `last_rmw[key]` became `last_rmw`, the register
    /// store holds `register` for the key afterwards (apply-if-greater of
    /// `last_rmw`), and the dedup table remembers `entry`.
    Applied {
        key: Key,
        last_rmw: Register,
        register: Register,
        entry: DedupEntry,
    },
    /// Baselines only: a put wrote `register` (apply-if-greater; its
    /// carstamp follows the key's register at execution) and the dedup
    /// table remembers `entry`.
    Written {
        key: Key,
        register: Register,
        entry: DedupEntry,
    },
    /// Baselines only: a get read `register`; nothing changed.
    Read(Register),
}

impl ExecResult {
    /// Whether executing changed the replica's state (and so must be
    /// durable before anyone hears of it).
    pub fn changed_state(&self) -> bool {
        matches!(
            self,
            ExecResult::Applied { .. } | ExecResult::Written { .. }
        )
    }
}

/// The durable record of one execution: ONE record per instance, so that
/// it can become one log transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub inst: InstanceId,
    pub result: ExecResult,
}

/// What the machine asks its driver to make durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpaxosPersist {
    Instance(InstanceRecord),
    Executed(ExecutionRecord),
}

/// The answer to a client's RMW.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EpaxosReply {
    /// Executed on a majority: the observed old value, the result, and
    /// the RMW's carstamp.
    Rmw { outcome: RmwOutcome, cs: Carstamp },
    /// EPaxos-all: a get executed here.
    Get { value: Option<Value>, cs: Carstamp },
    /// EPaxos-all: a put committed (answered at commit, as EPaxos answers
    /// writes, before execution gives it a carstamp: `cs` is then
    /// [`Carstamp::ZERO`]) or executed.
    Put { cs: Carstamp },
    /// The client already ran a newer request on this key, so this one
    /// was never applied (a client that moved on does not wait for it).
    Superseded,
}

impl EpaxosReply {
    /// The client-facing form, if this reply carries an outcome.
    pub fn into_client_reply(self) -> Option<ClientReply> {
        match self {
            EpaxosReply::Rmw { outcome, cs } => Some(ClientReply::Rmw { outcome, cs }),
            EpaxosReply::Get { value, cs } => Some(ClientReply::Get { value, cs }),
            EpaxosReply::Put { cs } => Some(ClientReply::Put { cs }),
            EpaxosReply::Superseded => None,
        }
    }
}

/// Timers the machine sets; the driver hands them back via `handle_timer`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EpaxosTimer {
    /// A leader's phase at `ballot` waited `phase_timeout_us`.
    Phase { inst: InstanceId, ballot: Ballot },
    /// The instance may still be uncommitted here: recover it if so.
    Recover { inst: InstanceId },
    /// A committed instance whose client still waits for a majority of
    /// Executed notices: ask the silent replicas again.
    Reply { inst: InstanceId },
}

/// The effects of the EPaxos machine.
pub type EpaxosEffect = Effect<EpaxosMsg, EpaxosPersist, EpaxosReply, EpaxosTimer>;
