//! Identifiers and value types of the shared-log contract (LOGSTACK.md §1):
//! positions, stream ids, the `(client, seq)` pair that makes appends
//! exactly-once, entries, and the answer of `check_tail`.

use std::fmt;

/// A slot in the totally ordered log. Positions are dense: every position
/// below the tail holds exactly one entry (or was trimmed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(pub u64);

impl Position {
    /// The first position of a fresh log.
    pub const ZERO: Position = Position(0);

    /// The position right after this one.
    pub fn next(self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// A stream: the subsequence of entries of one object (Tango §3 "streams").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// Who appends. Together with a per-client sequence number it names one
/// logical append, so that a retry is recognised and not applied twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// The exactly-once key of an append: `(client, seq)`.
///
/// A client should use increasing sequence numbers; the log remembers a
/// bounded window of recent ones per client (see `DedupConfig`). After a
/// restart a writer resumes from `Log::last_seq(client) + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppendId {
    pub client: ClientId,
    pub seq: u64,
}

impl AppendId {
    pub fn new(client: ClientId, seq: u64) -> AppendId {
        AppendId { client, seq }
    }
}

/// One entry as read back from the log, checksum verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    /// The streams the entry was appended to, sorted, without duplicates.
    pub streams: Vec<StreamId>,
    pub id: AppendId,
    pub payload: Vec<u8>,
}

impl Entry {
    pub fn is_on(&self, stream: StreamId) -> bool {
        self.streams.binary_search(&stream).is_ok()
    }
}

/// The answer of `check_tail`: a linearizable snapshot of the log's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// One past the last durable position: every acknowledged append is
    /// below it, and every position below it (and at or above the trim
    /// point) is readable.
    pub tail: Position,
    /// The trim point at the time of the snapshot.
    pub trim_point: Position,
    /// For each requested stream, in request order, the last position of
    /// that stream below `tail` and not trimmed (`None` if there is none).
    pub streams: Vec<(StreamId, Option<Position>)>,
    pub sealed: bool,
}

impl Tail {
    /// The last position of `stream` in this snapshot, if it was asked for.
    pub fn last_of(&self, stream: StreamId) -> Option<Position> {
        self.streams
            .iter()
            .find(|(s, _)| *s == stream)
            .and_then(|(_, p)| *p)
    }
}

/// Counters of an engine, for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Synced write batches (RocksDB) or sync calls that made entries
    /// durable (memory engine).
    pub batches: u64,
    /// Entries made durable.
    pub records: u64,
    /// Payload bytes made durable.
    pub payload_bytes: u64,
    /// Appends answered from the dedup table instead of being written.
    pub deduplicated: u64,
    /// The largest number of entries in one batch.
    pub max_batch_records: u64,
    /// Time spent inside synced batch writes (RocksDB write + fsync), µs.
    pub write_micros: u64,
}

impl LogStats {
    /// Mean entries per synced batch (0 when nothing was written).
    pub fn records_per_batch(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.records as f64 / self.batches as f64
        }
    }
}
