//! Typed errors of the log contract (LOGSTACK.md §1). Bad input is
//! rejected with one of these, never with a panic. The variants split
//! into what the caller can fix or expect (`is_fatal() == false`) and what
//! means the engine can no longer be trusted until it is reopened.

use crate::types::{ClientId, Position};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The payload is over `LogConfig::max_entry_bytes`.
    #[error("entry of {size} bytes is over the limit of {limit} bytes")]
    EntryTooLarge { size: usize, limit: usize },
    /// More streams than `LogConfig::max_streams_per_entry`.
    #[error("entry names {count} streams, the limit is {limit}")]
    TooManyStreams { count: usize, limit: usize },
    /// An append must name at least one stream.
    #[error("an append must name at least one stream")]
    NoStreams,
    /// The position is below the trim point: its entry is gone for good.
    #[error("position {position} is below the trim point {trim_point}")]
    Trimmed {
        position: Position,
        trim_point: Position,
    },
    /// The position is at or past the durable tail.
    #[error("position {position} is not written (tail {tail})")]
    NotWritten { position: Position, tail: Position },
    /// The log was sealed: no append can succeed any more.
    #[error("the log is sealed")]
    Sealed,
    /// `prefix_trim` past the tail.
    #[error("cannot trim to {requested}: the tail is {tail}")]
    TrimBeyondTail { requested: Position, tail: Position },
    /// The sequence number is below the dedup window of its client, so the
    /// log cannot tell whether it is a retry; it is refused rather than
    /// risk a second copy.
    #[error("sequence {seq} of client {client} is below its dedup window (floor {floor})")]
    SeqTooOld {
        client: ClientId,
        seq: u64,
        floor: u64,
    },
    /// An entry failed its checksum or framing check, or the storage
    /// engine reported corruption while reading it.
    #[error("entry at {position} is corrupted: {reason}")]
    Corrupted { position: Position, reason: String },
    /// Storage is damaged outside a single entry's frame: metadata, an
    /// index, or a block RocksDB reads while opening.
    #[error("log storage is corrupted: {0}")]
    CorruptedStore(String),
    /// An invalid configuration value.
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
    /// The storage engine failed (I/O, RocksDB status). The write path is
    /// poisoned after such a failure: reopen the log.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// The engine is shut down, or (memory engine) crashed before the
    /// append was synced.
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// True when the engine must be reopened (or the data repaired) before
    /// it can be trusted again; false for errors about one request.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            LogError::Corrupted { .. }
                | LogError::CorruptedStore(_)
                | LogError::Engine(_)
                | LogError::Closed
        )
    }
}

/// Maps a RocksDB status read at `position` to our error: RocksDB's own
/// block checksum failures are corruption, not a generic engine error.
pub(crate) fn rocks_read_error(position: Position, e: rocksdb::Error) -> LogError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => LogError::Corrupted {
            position,
            reason: e.into_string(),
        },
        _ => LogError::Engine(e.into_string()),
    }
}

pub(crate) fn rocks_error(e: rocksdb::Error) -> LogError {
    match e.kind() {
        rocksdb::ErrorKind::Corruption => LogError::CorruptedStore(e.into_string()),
        _ => LogError::Engine(e.into_string()),
    }
}
