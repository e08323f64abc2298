//! The group-commit thread of the RocksDB engine (LOGSTACK.md §1: "one
//! WriteBatch per group of appends ... acknowledged only after its batch
//! is synced"). It alone assigns positions and owns the write path, so
//! position order, dedup decisions and seal/trim ordering need no locks
//! beyond the queue's. Waking the acknowledged appenders is handed to a
//! completer thread, so that the next batch is collected and synced while
//! the previous one's appenders are being woken (on a small machine the
//! wake-ups cost about as much as the fsync).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use parking_lot::Mutex;
use rocksdb::{DB, WriteBatch, WriteOptions};

use super::keys::{self, CF_DEDUP, CF_ENTRIES, CF_META, CF_STREAMS};
use super::queue::{AppendOp, Op, Queue};
use crate::codec;
use crate::completion::{AppendResult, Completion};
use crate::dedup::{DedupTable, Lookup};
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
    pub sealed: AtomicBool,
    /// Set after a failed write: RocksDB's state after a failed sync is
    /// unknown (see "fsyncgate"), so every later write fails with it.
    pub poisoned: Mutex<Option<LogError>>,
    pub dedup: Mutex<DedupTable>,
    pub stats: Mutex<LogStats>,
    pub watch: Arc<TailWatch>,
}

pub(crate) struct Writer {
    pub db: Arc<DB>,
    pub queue: Arc<Queue>,
    pub shared: Arc<Shared>,
    pub sync: bool,
    /// The next position to assign.
    pub next: u64,
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
    pub(crate) fn run(mut self) {
        let mut batch = Vec::new();
        while self.queue.next_batch(&mut batch) {
            let poisoned = self.shared.poisoned.lock().clone();
            if let Some(e) = poisoned {
                for op in batch.drain(..) {
                    op.fail(e.clone());
                }
                continue;
            }
            match batch.first() {
                Some(Op::Seal(_)) | Some(Op::Trim(..)) => {
                    for op in batch.drain(..) {
                        self.control(op);
                    }
                }
                _ => self.appends(&mut batch),
            }
        }
    }

    fn write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        wo
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // The column families are created at open; their absence would be
        // a bug in `open`, not bad input.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} missing after open"))
    }

    fn appends(&mut self, batch: &mut Vec<Op>) {
        let mut wb = WriteBatch::default();
        let mut done: Vec<(Arc<Completion>, AppendResult)> = Vec::with_capacity(batch.len());
        let first = self.next;
        let sealed = self.shared.sealed.load(Ordering::Acquire);
        let mut payload_bytes = 0u64;
        let mut deduplicated = 0u64;
        let mut write_micros = 0u64;
        {
            let mut dedup = self.shared.dedup.lock();
            let mut evicted = Vec::new();
            for op in batch.drain(..) {
                let Op::Append(mut a) = op else {
                    // Batches are homogeneous (see Queue::take_batch).
                    op.fail(LogError::Engine("control op inside an append batch".into()));
                    continue;
                };
                if sealed {
                    done.push((a.completion, Err(LogError::Sealed)));
                    continue;
                }
                match dedup.lookup(a.id) {
                    Lookup::Hit(p) => {
                        deduplicated += 1;
                        done.push((a.completion, Ok(p)));
                    }
                    Lookup::TooOld { floor } => {
                        let e = LogError::SeqTooOld {
                            client: a.id.client,
                            seq: a.id.seq,
                            floor,
                        };
                        done.push((a.completion, Err(e)));
                    }
                    Lookup::Miss => {
                        let p = Position(self.next);
                        self.next += 1;
                        payload_bytes += a.payload_len as u64;
                        self.put_entry(&mut wb, &mut a, p);
                        dedup.insert(a.id, p, &mut evicted);
                        done.push((a.completion, Ok(p)));
                    }
                }
            }
            for id in evicted {
                wb.delete_cf(self.cf(CF_DEDUP), keys::dedup_key(id));
            }
        }
        let written = self.next - first;
        if written > 0 {
            wb.put_cf(
                self.cf(CF_META),
                keys::META_TAIL,
                keys::u64_value(self.next),
            );
            let started = std::time::Instant::now();
            let result = self.db.write_opt(wb, &self.write_options());
            write_micros = started.elapsed().as_micros() as u64;
            if let Err(e) = result {
                let e = rocks_error(e);
                *self.shared.poisoned.lock() = Some(e.clone());
                let failed = done.into_iter().map(|(c, _)| (c, Err(e.clone()))).collect();
                self.finish(failed);
                return;
            }
            self.shared.durable_tail.store(self.next, Ordering::Release);
            self.shared.watch.publish(Position(self.next));
        }
        {
            let mut st = self.shared.stats.lock();
            if written > 0 {
                st.batches += 1;
            }
            st.records += written;
            st.payload_bytes += payload_bytes;
            st.deduplicated += deduplicated;
            st.max_batch_records = st.max_batch_records.max(written);
            st.write_micros += write_micros;
        }
        self.finish(done);
    }

    /// Hands results to the completer; delivers them here if it is gone.
    fn finish(&self, done: Done) {
        if let Err(e) = self.done.send(done) {
            for (c, r) in e.0 {
                c.complete(r);
            }
        }
    }

    fn put_entry(&self, wb: &mut WriteBatch, a: &mut AppendOp, p: Position) {
        codec::set_position(&mut a.frame, p);
        wb.put_cf(self.cf(CF_ENTRIES), keys::entry_key(p), &a.frame);
        for s in &a.streams {
            wb.put_cf(self.cf(CF_STREAMS), keys::stream_key(*s, p), []);
        }
        wb.put_cf(
            self.cf(CF_DEDUP),
            keys::dedup_key(a.id),
            keys::u64_value(p.0),
        );
    }

    fn control(&mut self, op: Op) {
        match op {
            Op::Seal(c) => {
                let r = self.seal();
                self.finish(vec![(c, r)]);
            }
            Op::Trim(below, c) => {
                let r = self.trim(below);
                self.finish(vec![(c, r)]);
            }
            Op::Append(a) => a.completion.complete(Err(LogError::Engine(
                "append inside a control batch".into(),
            ))),
        }
    }

    fn seal(&mut self) -> Result<Position, LogError> {
        if !self.shared.sealed.load(Ordering::Acquire) {
            let mut wb = WriteBatch::default();
            wb.put_cf(self.cf(CF_META), keys::META_SEALED, [1u8]);
            self.db
                .write_opt(wb, &self.write_options())
                .map_err(|e| self.poison(e))?;
            self.shared.sealed.store(true, Ordering::Release);
        }
        Ok(Position(self.next))
    }

    fn trim(&mut self, below: Position) -> Result<Position, LogError> {
        if below.0 > self.next {
            return Err(LogError::TrimBeyondTail {
                requested: below,
                tail: Position(self.next),
            });
        }
        let old = self.shared.trim_point.load(Ordering::Acquire);
        if below.0 <= old {
            return Ok(Position(old));
        }
        let mut wb = WriteBatch::default();
        wb.put_cf(self.cf(CF_META), keys::META_TRIM, keys::u64_value(below.0));
        // Entries go at once with one range tombstone; stream-index keys
        // below the trim point are never read and go at compaction (see
        // the filter installed in `open`).
        wb.delete_range_cf(
            self.cf(CF_ENTRIES),
            keys::entry_key(Position(old)),
            keys::entry_key(below),
        );
        self.db
            .write_opt(wb, &self.write_options())
            .map_err(|e| self.poison(e))?;
        self.shared.trim_point.store(below.0, Ordering::Release);
        Ok(below)
    }

    fn poison(&self, e: rocksdb::Error) -> LogError {
        let e = rocks_error(e);
        *self.shared.poisoned.lock() = Some(e.clone());
        e
    }
}
