//! The raft engine's vocabulary: peer messages (raft-rs's own messages as
//! opaque protobuf bytes, the base's Read1 round, execution notices), the
//! records it persists (log entries, hard state, executions: the stream
//! the server writes to its log), and its timers.

use crate::messages::ExecResult;
use registers::{ClientReply, Effect, Key, OpId, Register};
use serde::{Deserialize, Serialize};

/// Messages between replicas' raft engines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMsg {
    /// One raft-rs message (`eraftpb::Message`), protobuf-encoded with
    /// rust-protobuf: raft's own wire format, carried opaquely.
    Raft(Vec<u8>),
    /// Read1 of an RMW's base (PROTOCOL.md 4, "Raft path"): what is your
    /// register for `key`?
    BaseRead { req: ReadId, key: Key },
    /// The receiver's register for `key` (durable: it is only ever
    /// changed by records persisted before this reply).
    BaseReadReply {
        req: ReadId,
        key: Key,
        reg: Register,
    },
    /// The sender has durably executed every committed entry up to
    /// `up_to` (Gryff: the proposer answers once a majority has).
    Executed { up_to: u64 },
    /// Please send an `Executed` notice (an earlier one may be lost).
    ExecutedQuery,
}

/// Names one base read of one proposer, unique across its restarts (a
/// reply from before a crash must never count for a later RMW: it could
/// miss a write that completed in between).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadId {
    /// Persisted before the first read of an incarnation goes out.
    pub incarnation: u64,
    pub seq: u64,
}

/// A log entry as persisted. Only normal entries exist: membership is
/// fixed, so no configuration change is ever proposed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// A [`crate::raft::Proposal`], or empty for a new leader's entry.
    pub data: Vec<u8>,
}

/// raft's hard state. `vote` is a raft-rs id (replica + 1; 0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardStateRecord {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

/// What the raft engine asks to be made durable before the sends and
/// replies after it. A restarted replica folds them in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftPersist {
    /// Entries appended from `entries[0].index` on, replacing whatever
    /// the log held from there (an uncommitted suffix a new leader
    /// overwrote).
    Entries(Vec<LogEntry>),
    HardState(HardStateRecord),
    /// Executing the committed entry `index` changed state here
    /// (`last_rmw`, the register, the dedup table). Entries whose
    /// execution changed nothing are not recorded; after a restart,
    /// execution resumes after the last recorded one.
    Executed {
        index: u64,
        result: ExecResult,
    },
    /// Base reads with this incarnation may have been sent; a restarted
    /// replica uses a higher one.
    Incarnation(u64),
}

/// Timers the engine sets; the driver hands them back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftTimer {
    /// Time to advance raft's logical clock (one timer outstanding).
    Tick,
    /// A client op has not finished its current step: send it again.
    Retry { op: OpId },
}

/// The effects of the raft engine.
pub type RaftEffect = Effect<RaftMsg, RaftPersist, ClientReply, RaftTimer>;
