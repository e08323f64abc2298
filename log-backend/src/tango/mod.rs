//! Tango over the shared log (Tango, SOSP 2013; LOGSTACK.md §2-§4):
//! objects whose views are folded from their streams, update and query
//! helpers, optimistic transactions decided identically by every view, and
//! checkpoints that let the log be trimmed.
//!
//! - `object`: the `TangoObject` upcall trait.
//! - `record`: what goes in log payloads.
//! - `runtime`: hosting objects, helpers, views.
//! - `play`: playing the log forward, transaction decisions.
//! - `txn`: the transaction API.
//! - `checkpoint`: checkpoints, restore, trim.
//! - `map`, `register`: two objects.

mod checkpoint;
mod map;
mod object;
mod play;
pub mod record;
mod register;
mod runtime;
mod txn;

use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::types::{ClientId, Position, StreamId};

pub use checkpoint::CheckpointInfo;
pub use map::{MapState, TangoMap};
pub use object::{TangoObject, Update};
pub use register::{RegisterState, TangoRegister};
pub use runtime::{Runtime, RuntimeStats};
pub use txn::{Transaction, TxOutcome};

/// Names an object. Its updates live on stream `StreamId(id)`, its
/// checkpoints on a second stream with the top bit set, so ids must be
/// below 2^63.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId(pub u64);

const CHECKPOINT_BIT: u64 = 1 << 63;

impl ObjectId {
    pub fn stream(self) -> StreamId {
        StreamId(self.0)
    }

    pub fn checkpoint_stream(self) -> StreamId {
        StreamId(self.0 | CHECKPOINT_BIT)
    }

    pub fn is_valid(self) -> bool {
        self.0 & CHECKPOINT_BIT == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TangoError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("object {0:?} is not hosted by this runtime")]
    UnknownObject(ObjectId),
    #[error("object {0:?} is already hosted")]
    AlreadyHosted(ObjectId),
    #[error("object id {0:?} has the checkpoint bit set")]
    InvalidObjectId(ObjectId),
    #[error("object {0:?} is not of the requested type")]
    WrongType(ObjectId),
    /// The log was trimmed past the view and no checkpoint covers the gap.
    #[error(
        "view of {object:?} is behind the trim point {trim_point} with no checkpoint to restore"
    )]
    ViewLost {
        object: ObjectId,
        trim_point: Position,
    },
    #[error("object {0:?} has no checkpoint")]
    NoCheckpoint(ObjectId),
    #[error("checkpoint of {object:?} is unreadable: {reason}")]
    BadCheckpoint { object: ObjectId, reason: String },
    /// An update an object cannot decode.
    #[error("bad update for {object:?}: {reason}")]
    BadUpdate { object: ObjectId, reason: String },
    #[error("invalid runtime config: {0}")]
    InvalidConfig(String),
    /// The runtime could not learn the outcome of its own commit record
    /// (it was trimmed before being played).
    #[error("outcome of the commit at {0} is unknown")]
    OutcomeUnknown(Position),
}

/// Configuration of a Tango runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The client id of this runtime's appends (distinct per runtime).
    pub client: u64,
    /// Entries fetched per stream per read while playing (default 1024).
    pub read_batch: usize,
    /// How long a view waits for the decision record of a transaction it
    /// cannot decide before appending an abort decision itself, in ms
    /// (default 2000). Bounds the wait after a committer crashed.
    pub decision_timeout_ms: u64,
    /// Bytes of state per checkpoint entry (default 256 KiB); must fit the
    /// log's `max_entry_bytes` with headers.
    pub checkpoint_chunk_bytes: usize,
    /// Recent transaction decisions remembered (default 65536); a
    /// committer learns its outcome there.
    pub recent_decisions: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            client: 0,
            read_batch: 1024,
            decision_timeout_ms: 2000,
            checkpoint_chunk_bytes: 256 << 10,
            recent_decisions: 65536,
        }
    }
}

impl RuntimeConfig {
    pub fn with_client(client: u64) -> RuntimeConfig {
        RuntimeConfig {
            client,
            ..RuntimeConfig::default()
        }
    }

    pub fn client_id(&self) -> ClientId {
        ClientId(self.client)
    }

    pub fn validate(&self) -> Result<(), TangoError> {
        let bad = |s: &str| Err(TangoError::InvalidConfig(s.into()));
        if self.read_batch == 0 {
            return bad("read_batch must be > 0");
        }
        if self.checkpoint_chunk_bytes == 0 {
            return bad("checkpoint_chunk_bytes must be > 0");
        }
        if self.recent_decisions == 0 {
            return bad("recent_decisions must be > 0");
        }
        Ok(())
    }
}
