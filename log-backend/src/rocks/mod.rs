//! The embedded RocksDB engine (LOGSTACK.md §1): column families for
//! entries, the stream index, the dedup table and metadata; appends go
//! through one group-commit thread (`writer`) that writes one synced
//! WriteBatch per group; reads go straight to RocksDB from any thread.

mod batcher;
mod keys;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use rocksdb::{
    ColumnFamilyDescriptor, DB, DBRecoveryMode, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions, compaction_filter::Decision,
};

use self::batcher::{AppendOp, Batcher, Op, QueuedSubmit};
use self::keys::{CF_DEDUP, CF_ENTRIES, CF_META, CF_STREAMS};
use self::writer::{Shared, Writer};
use crate::codec;
use crate::completion::{AppendFuture, Completion};
use crate::config::LogConfig;
use crate::contract::{Log, validate_append};
use crate::dedup::DedupTable;
use crate::error::{LogError, rocks_error, rocks_read_error};
use crate::subscribe::{Subscription, TailWatch};
use crate::types::{AppendId, ClientId, Entry, LogStats, Position, StreamId, Tail};

struct Inner {
    db: Arc<DB>,
    config: LogConfig,
    batcher: Arc<Batcher>,
    shared: Arc<Shared>,
    /// The writer and completer threads, joined in that order on drop.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Queued appends are still written; then the thread exits.
        self.batcher.close();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }
}

/// Handle to a RocksDB-backed log; clones share the engine. The writer
/// thread stops when the last handle (including subscriptions) is dropped.
#[derive(Clone)]
pub struct RocksLog {
    inner: Arc<Inner>,
}

fn cf_options(trim: Option<Arc<AtomicU64>>) -> Options {
    let mut o = Options::default();
    if let Some(trim) = trim {
        // Stream-index keys below the trim point are unreachable (reads
        // start at or above it); compaction drops them.
        o.set_compaction_filter("below-trim", move |_lvl: u32, key: &[u8], _v: &[u8]| {
            match keys::parse_pair(key) {
                Some((_, p)) if p < trim.load(Ordering::Acquire) => Decision::Remove,
                _ => Decision::Keep,
            }
        });
    }
    o
}

impl RocksLog {
    /// Opens (or creates) the log in directory `path` and recovers its
    /// tail, trim point, seal flag and dedup table.
    pub fn open(path: impl AsRef<Path>, config: LogConfig) -> Result<RocksLog, LogError> {
        config.validate()?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // A torn WAL tail (crash mid-write) is cut at the last whole record:
        // that record was never acknowledged, since acks follow the sync.
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        let trim = Arc::new(AtomicU64::new(0));
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_ENTRIES, cf_options(None)),
            ColumnFamilyDescriptor::new(CF_STREAMS, cf_options(Some(trim.clone()))),
            ColumnFamilyDescriptor::new(CF_DEDUP, cf_options(None)),
            ColumnFamilyDescriptor::new(CF_META, cf_options(None)),
        ];
        let db = Arc::new(DB::open_cf_descriptors(&opts, path, cfs).map_err(rocks_error)?);
        let meta = |k: &[u8]| -> Result<Option<u64>, LogError> {
            let cf = db
                .cf_handle(CF_META)
                .ok_or(LogError::CorruptedStore("no meta".into()))?;
            match db.get_cf(cf, k).map_err(rocks_error)? {
                None => Ok(None),
                Some(v) if k == keys::META_SEALED => {
                    Ok(Some(v.first().copied().unwrap_or(0) as u64))
                }
                Some(v) => keys::parse_u64(&v, "meta").map(Some),
            }
        };
        let tail = meta(keys::META_TAIL)?.unwrap_or(0);
        let trim_point = meta(keys::META_TRIM)?.unwrap_or(0);
        let sealed = meta(keys::META_SEALED)?.unwrap_or(0) == 1;
        trim.store(trim_point, Ordering::Release);
        check_tail_consistent(&db, tail, trim_point)?;
        let dedup = load_dedup(&db, &config)?;
        let shared = Arc::new(Shared {
            durable_tail: AtomicU64::new(tail),
            trim_point: trim,
            sealed: AtomicBool::new(sealed),
            stats: Mutex::new(LogStats::default()),
            watch: TailWatch::new(Position(tail)),
        });
        let batcher = Batcher::new(
            db.clone(),
            shared.clone(),
            config.group_commit.clone(),
            tail,
            sealed,
            dedup,
        );
        // A few batches of slack between writer and completer; beyond it
        // the writer waits, which bounds the results in flight.
        let (done, done_rx) = std::sync::mpsc::sync_channel(4);
        let w = Writer {
            db: db.clone(),
            batcher: batcher.clone(),
            shared: shared.clone(),
            sync: config.group_commit.sync,
            done,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| LogError::Engine(format!("cannot start thread {name}: {e}")))
        };
        let completer = spawn(
            "log-completer",
            Box::new(move || writer::run_completer(done_rx)),
        )?;
        let writer = match spawn(
            "log-group-commit",
            Box::new(move || {
                writer::precise_timers();
                w.run()
            }),
        ) {
            Ok(h) => h,
            Err(e) => {
                // Dropping the writer closure hung up; the completer exits.
                let _ = completer.join();
                return Err(e);
            }
        };
        Ok(RocksLog {
            inner: Arc::new(Inner {
                db,
                config,
                batcher,
                shared,
                threads: Mutex::new(vec![writer, completer]),
            }),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// Flushes memtables to SST files (tests use it to corrupt files).
    pub fn flush(&self) -> Result<(), LogError> {
        for name in [CF_ENTRIES, CF_STREAMS, CF_DEDUP, CF_META] {
            let cf = self.cf(name)?;
            self.inner.db.flush_cf(cf).map_err(rocks_error)?;
        }
        Ok(())
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, LogError> {
        self.inner
            .db
            .cf_handle(name)
            .ok_or_else(|| LogError::Engine(format!("column family {name} missing")))
    }

    fn trim_point(&self) -> u64 {
        self.inner.shared.trim_point.load(Ordering::Acquire)
    }

    fn tail(&self) -> u64 {
        self.inner.shared.durable_tail.load(Ordering::Acquire)
    }

    fn trimmed(&self, position: Position) -> LogError {
        LogError::Trimmed {
            position,
            trim_point: Position(self.trim_point()),
        }
    }

    /// Reads one frame known to be below the tail.
    fn read_frame(&self, position: Position) -> Result<Entry, LogError> {
        let cf = self.cf(CF_ENTRIES)?;
        match self.inner.db.get_pinned_cf(cf, keys::entry_key(position)) {
            Ok(Some(v)) => codec::decode(position, &v),
            // Trimmed between our check and the read.
            Ok(None) if position.0 < self.trim_point() => Err(self.trimmed(position)),
            Ok(None) => Err(LogError::Corrupted {
                position,
                reason: "entry missing below the tail".into(),
            }),
            Err(e) => Err(rocks_read_error(position, e)),
        }
    }

    fn submit(&self, op: Op) -> AppendFuture {
        let completion = match &op {
            Op::Append(a) => a.completion.clone(),
            Op::Seal(c) | Op::Trim(_, c) => c.clone(),
        };
        match self.inner.batcher.try_push(op, None) {
            Ok(()) => AppendFuture::pending(completion),
            Err(op) => AppendFuture::blocked(
                Box::new(QueuedSubmit {
                    batcher: self.inner.batcher.clone(),
                    op: Some(op),
                }),
                completion,
            ),
        }
    }
}

/// The meta tail and the entries must agree: they are written in one
/// batch. Point lookups only, so a damaged block elsewhere does not stop
/// the open (its entry reads as `Corrupted` later).
fn check_tail_consistent(db: &DB, tail: u64, trim: u64) -> Result<(), LogError> {
    let cf = db
        .cf_handle(CF_ENTRIES)
        .ok_or(LogError::CorruptedStore("no entries column family".into()))?;
    let exists = |p: u64| -> Result<bool, LogError> {
        Ok(db
            .get_pinned_cf(cf, keys::entry_key(Position(p)))
            .map_err(rocks_error)?
            .is_some())
    };
    if tail > trim && !exists(tail - 1)? {
        return Err(LogError::CorruptedStore(format!(
            "tail {tail} but no entry at {}",
            tail - 1
        )));
    }
    if exists(tail)? {
        return Err(LogError::CorruptedStore(format!(
            "an entry exists at the tail {tail}"
        )));
    }
    Ok(())
}

fn load_dedup(db: &DB, config: &LogConfig) -> Result<DedupTable, LogError> {
    let cf = db
        .cf_handle(CF_DEDUP)
        .ok_or(LogError::CorruptedStore("no dedup column family".into()))?;
    let mut table = DedupTable::new(config.dedup.clone());
    let mut records = Vec::new();
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item.map_err(rocks_error)?;
        records.push(keys::parse_dedup(&k, &v)?);
    }
    // Replay in log order so the recency order of clients is the original.
    records.sort_by_key(|(_, p)| *p);
    let mut evicted = Vec::new();
    for (id, p) in records {
        table.load(id, p, &mut evicted);
    }
    table.finish_load();
    if !evicted.is_empty() {
        // The bounds shrank since the table was written.
        let mut wb = WriteBatch::default();
        for id in evicted {
            wb.delete_cf(cf, keys::dedup_key(id));
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(wb, &wo).map_err(rocks_error)?;
    }
    Ok(table)
}

impl Log for RocksLog {
    fn append_async(&self, streams: &[StreamId], payload: &[u8], id: AppendId) -> AppendFuture {
        let streams = match validate_append(&self.inner.config, streams, payload) {
            Ok(s) => s,
            Err(e) => return AppendFuture::ready(Err(e)),
        };
        if self.inner.shared.sealed.load(Ordering::Acquire) {
            return AppendFuture::ready(Err(LogError::Sealed));
        }
        // Framing and checksumming happen here, on the caller's thread, so
        // the single writer thread only assembles the batch.
        let frame = codec::encode(&streams, id, payload);
        self.submit(Op::Append(AppendOp {
            frame,
            streams,
            id,
            payload_len: payload.len(),
            enqueued: Instant::now(),
            completion: Completion::new(),
        }))
    }

    fn read(&self, position: Position) -> Result<Entry, LogError> {
        if position.0 < self.trim_point() {
            return Err(self.trimmed(position));
        }
        let tail = self.tail();
        if position.0 >= tail {
            return Err(LogError::NotWritten {
                position,
                tail: Position(tail),
            });
        }
        self.read_frame(position)
    }

    fn read_next(
        &self,
        stream: StreamId,
        from: Position,
        limit: usize,
    ) -> Result<Vec<Entry>, LogError> {
        if from.0 < self.trim_point() {
            return Err(self.trimmed(from));
        }
        let tail = Position(self.tail());
        let limit = limit.min(self.inner.config.max_read_batch);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::stream_key(stream, tail).to_vec());
        let start = keys::stream_key(stream, from);
        let it = self.inner.db.iterator_cf_opt(
            self.cf(CF_STREAMS)?,
            ro,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it.take(limit) {
            let (k, _) = item.map_err(|e| rocks_read_error(from, e))?;
            let (_, p) = keys::parse_pair(&k).ok_or_else(|| LogError::Corrupted {
                position: from,
                reason: "malformed stream index key".into(),
            })?;
            let e = self.read_frame(Position(p))?;
            if !e.is_on(stream) {
                return Err(LogError::Corrupted {
                    position: Position(p),
                    reason: format!("indexed under {stream} but not on it"),
                });
            }
            out.push(e);
        }
        Ok(out)
    }

    fn check_tail(&self, streams: &[StreamId]) -> Result<Tail, LogError> {
        // Tail first: the stream answers are then taken below it, so the
        // snapshot is a consistent prefix.
        let tail = self.tail();
        let trim = self.trim_point();
        let sealed = self.inner.shared.sealed.load(Ordering::Acquire);
        let cf = self.cf(CF_STREAMS)?;
        let mut out = Vec::with_capacity(streams.len());
        for s in streams {
            let mut last = None;
            if tail > 0 {
                let key = keys::stream_key(*s, Position(tail - 1));
                let mut it = self
                    .inner
                    .db
                    .iterator_cf(cf, IteratorMode::From(&key, Direction::Reverse));
                if let Some(item) = it.next() {
                    let (k, _) = item.map_err(rocks_error)?;
                    if let Some((stream, p)) = keys::parse_pair(&k)
                        && stream == s.0
                        && p >= trim
                    {
                        last = Some(Position(p));
                    }
                }
            }
            out.push((*s, last));
        }
        Ok(Tail {
            tail: Position(tail),
            trim_point: Position(trim),
            streams: out,
            sealed,
        })
    }

    fn prefix_trim(&self, below: Position) -> Result<(), LogError> {
        self.submit(Op::Trim(below, Completion::new()))
            .wait()
            .map(|_| ())
    }

    fn seal(&self) -> Result<Position, LogError> {
        self.submit(Op::Seal(Completion::new())).wait()
    }

    fn subscribe(&self, from: Position) -> Subscription {
        Subscription::new(
            Arc::new(self.clone()),
            self.inner.shared.watch.clone(),
            from,
        )
    }

    fn last_seq(&self, client: ClientId) -> Result<Option<u64>, LogError> {
        Ok(self.inner.batcher.last_seq(client))
    }

    fn stats(&self) -> LogStats {
        *self.inner.shared.stats.lock()
    }
}
