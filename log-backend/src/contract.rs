//! The log contract every engine implements (LOGSTACK.md §1 table): atomic
//! multi-stream append with exactly-once retries, read, per-stream
//! read_next, linearizable check_tail, prefix_trim, seal and subscribe.

use std::sync::Arc;

use crate::completion::AppendFuture;
use crate::error::LogError;
use crate::subscribe::Subscription;
use crate::types::{AppendId, ClientId, Entry, LogStats, Position, StreamId, Tail};

/// A totally ordered, durable, shared log.
///
/// All methods take `&self` and are safe to call from many threads.
pub trait Log: Send + Sync + 'static {
    /// Submits an append without blocking: `payload` goes to every stream
    /// in `streams` atomically, at one position. The returned future
    /// resolves once the entry is durable. A retry with the same `id`
    /// resolves to the first position and writes nothing (the first
    /// payload is kept). Validation errors resolve immediately.
    fn append_async(&self, streams: &[StreamId], payload: &[u8], id: AppendId) -> AppendFuture;

    /// Blocking append: `append_async(..).wait()`.
    fn append(
        &self,
        streams: &[StreamId],
        payload: &[u8],
        id: AppendId,
    ) -> Result<Position, LogError> {
        self.append_async(streams, payload, id).wait()
    }

    /// The entry at `position`, checksum verified; `Trimmed` below the trim
    /// point, `NotWritten` at or past the tail, `Corrupted` if it fails its
    /// checks.
    fn read(&self, position: Position) -> Result<Entry, LogError>;

    /// Up to `limit` (capped by `max_read_batch`) entries of `stream` at
    /// positions `>= from` and below the durable tail, in order, without
    /// scanning other streams. `Trimmed` if `from` is below the trim point:
    /// the caller would otherwise silently miss entries.
    fn read_next(
        &self,
        stream: StreamId,
        from: Position,
        limit: usize,
    ) -> Result<Vec<Entry>, LogError>;

    /// A linearizable snapshot of the tail and of the last position of each
    /// requested stream: every append acknowledged before this call is
    /// below `tail`, and everything below `tail` stays readable until
    /// trimmed.
    fn check_tail(&self, streams: &[StreamId]) -> Result<Tail, LogError>;

    /// Forgets every entry below `below`. Monotonic: a lower value is a
    /// no-op. `TrimBeyondTail` past the tail. Durable when it returns.
    fn prefix_trim(&self, below: Position) -> Result<(), LogError>;

    /// Seals the log and returns its final tail: appends submitted before
    /// are durable or failed, every append after fails with `Sealed`.
    /// Durable; idempotent.
    fn seal(&self) -> Result<Position, LogError>;

    /// A tailing feed of the entries from `from` on, resumable from any
    /// position (keep `Subscription::next_position`).
    fn subscribe(&self, from: Position) -> Subscription;

    /// The highest sequence number of `client` the dedup table remembers,
    /// so a restarted writer can continue its sequence.
    fn last_seq(&self, client: ClientId) -> Result<Option<u64>, LogError>;

    /// Engine counters.
    fn stats(&self) -> LogStats;
}

/// Shared handle to any engine.
pub type SharedLog = Arc<dyn Log>;

/// Checks the parts of an append request that do not depend on the log's
/// state, and returns the normalized stream list.
pub(crate) fn validate_append(
    config: &crate::config::LogConfig,
    streams: &[StreamId],
    payload: &[u8],
) -> Result<Vec<StreamId>, LogError> {
    if payload.len() > config.max_entry_bytes {
        return Err(LogError::EntryTooLarge {
            size: payload.len(),
            limit: config.max_entry_bytes,
        });
    }
    if streams.is_empty() {
        return Err(LogError::NoStreams);
    }
    let streams = crate::codec::normalize_streams(streams);
    if streams.len() > config.max_streams_per_entry {
        return Err(LogError::TooManyStreams {
            count: streams.len(),
            limit: config.max_streams_per_entry,
        });
    }
    Ok(streams)
}
