//! The group-commit thread of the RocksDB engine (LOGSTACK.md §1: "one
//! WriteBatch per group of appends ... acknowledged only after its batch
//! is synced"). It takes the open batch assembled by the appenders (see
//! `batcher`), writes it with one fsync, publishes the new tail, and hands
//! the acknowledgements to a completer thread, so that the next batch is
//! synced while the previous one's appenders are being woken (on a small
//! machine the wake-ups cost about as much as the fsync).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use parking_lot::Mutex;
use rocksdb::{DB, WriteBatch, WriteOptions};

use super::batcher::{Batch, Batcher, Work};
use super::keys::{self, CF_ENTRIES, CF_META};
use crate::completion::{AppendResult, Completion};
use crate::error::{LogError, rocks_error};
use crate::subscribe::TailWatch;
use crate::types::{LogStats, Position};

/// State shared between the writer and readers.
pub(crate) struct Shared {
    /// One past the last synced position; stored before acknowledging, so
    /// `check_tail` covers every acknowledged append.
    pub durable_tail: AtomicU64,
    /// Shared with the stream-index compaction filter.
    pub trim_point: Arc<AtomicU64>,
    /// Set once the seal is durable.
    pub sealed: AtomicBool,
    pub stats: Mutex<LogStats>,
    pub watch: Arc<TailWatch>,
}

pub(crate) struct Writer {
    pub db: Arc<DB>,
    pub batcher: Arc<Batcher>,
    pub shared: Arc<Shared>,
    pub sync: bool,
    /// Batches of results for the completer thread (bounded).
    pub done: SyncSender<Done>,
}

/// Results to deliver, in order.
pub(crate) type Done = Vec<(Arc<Completion>, AppendResult)>;

/// Makes short timed waits precise on this thread: the batching window is
/// tens of microseconds, and Linux's default 50 µs timer slack would
/// stretch it. Best effort; other systems keep their default.
pub(crate) fn precise_timers() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes an integer and touches only
    // this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// The completer thread: delivers results until the writer hangs up.
pub(crate) fn run_completer(rx: Receiver<Done>) {
    for batch in rx {
        for (c, r) in batch {
            c.complete(r);
        }
    }
}

impl Writer {
    pub(crate) fn run(self) {
        while let Some(work) = self.batcher.next_work() {
            match work {
                Work::Batch(b) => self.write(b),
                Work::Seal(c) => {
                    let r = self.seal();
                    self.finish(vec![(c, r)]);
                }
                Work::Trim(below, c) => {
                    let r = self.trim(below);
                    self.finish(vec![(c, r)]);
                }
            }
        }
    }

    fn write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        wo
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, LogError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| LogError::Engine(format!("column family {name} missing")))
    }

    /// Writes a batch with one synced WriteBatch, then acknowledges it.
    fn write(&self, mut b: Batch) {
        let mut write_micros = 0;
        if b.written > 0 {
            let result = self.cf(CF_META).and_then(|meta| {
                b.wb.put_cf(meta, keys::META_TAIL, keys::u64_value(b.end));
                let started = Instant::now();
                let r = self
                    .db
                    .write_opt(std::mem::take(&mut b.wb), &self.write_options())
                    .map_err(rocks_error);
                write_micros = started.elapsed().as_micros() as u64;
                r
            });
            if let Err(e) = result {
                self.batcher.poison(&e);
                self.finish(
                    b.done
                        .into_iter()
                        .map(|(c, _)| (c, Err(e.clone())))
                        .collect(),
                );
                return;
            }
            self.shared.durable_tail.store(b.end, Ordering::Release);
            self.shared.watch.publish(Position(b.end));
        }
        {
            let mut st = self.shared.stats.lock();
            if b.written > 0 {
                st.batches += 1;
            }
            st.records += b.written;
            st.payload_bytes += b.payload_bytes;
            st.deduplicated += b.deduplicated;
            st.max_batch_records = st.max_batch_records.max(b.written);
            st.write_micros += write_micros;
        }
        self.finish(b.done);
    }

    /// Hands results to the completer; delivers them here if it is gone.
    fn finish(&self, done: Done) {
        if let Err(e) = self.done.send(done) {
            for (c, r) in e.0 {
                c.complete(r);
            }
        }
    }

    fn tail(&self) -> u64 {
        self.shared.durable_tail.load(Ordering::Acquire)
    }

    fn seal(&self) -> Result<Position, LogError> {
        if !self.shared.sealed.load(Ordering::Acquire) {
            let mut wb = WriteBatch::default();
            wb.put_cf(self.cf(CF_META)?, keys::META_SEALED, [1u8]);
            self.write_control(wb)?;
            self.shared.sealed.store(true, Ordering::Release);
        }
        Ok(Position(self.tail()))
    }

    fn trim(&self, below: Position) -> Result<Position, LogError> {
        let tail = self.tail();
        if below.0 > tail {
            return Err(LogError::TrimBeyondTail {
                requested: below,
                tail: Position(tail),
            });
        }
        let old = self.shared.trim_point.load(Ordering::Acquire);
        if below.0 <= old {
            return Ok(Position(old));
        }
        let mut wb = WriteBatch::default();
        wb.put_cf(self.cf(CF_META)?, keys::META_TRIM, keys::u64_value(below.0));
        // Entries go at once with one range tombstone; stream-index keys
        // below the trim point are never read and go at compaction (see
        // the filter installed in `open`).
        wb.delete_range_cf(
            self.cf(CF_ENTRIES)?,
            keys::entry_key(Position(old)),
            keys::entry_key(below),
        );
        self.write_control(wb)?;
        self.shared.trim_point.store(below.0, Ordering::Release);
        Ok(below)
    }

    fn write_control(&self, wb: WriteBatch) -> Result<(), LogError> {
        self.db.write_opt(wb, &self.write_options()).map_err(|e| {
            let e = rocks_error(e);
            self.batcher.poison(&e);
            e
        })
    }
}
