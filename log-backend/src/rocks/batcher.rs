//! The open batch of the RocksDB engine's group commit (LOGSTACK.md §1,
//! "its own group-commit window"). Appending threads (or futures) add their
//! entry to the open WriteBatch themselves, under one short lock: dedup
//! lookup, position, the entry / stream-index / dedup puts. So while the
//! writer thread syncs one batch, the next one is being assembled, and the
//! writer only swaps it out and writes it.
//!
//! The writer takes the open batch when it is free and the window closes:
//! at once by default, or after up to `max_delay_us` for the oldest entry
//! (closed early by a `linger_gap_us` pause in arrivals), or when the
//! record / byte bound is reached. Adders wake the writer only when it
//! needs waking. A full open batch makes adders wait (blocking) or stay
//! pending (futures): that is the bound on queued work.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use rocksdb::{DB, WriteBatch};

use super::keys::{self, CF_DEDUP, CF_ENTRIES, CF_STREAMS};
use super::writer::{Done, Shared};
use crate::codec;
use crate::completion::{AppendResult, BlockedSubmit, Completion};
use crate::config::GroupCommitConfig;
use crate::dedup::{DedupTable, Lookup};
use crate::error::LogError;
use crate::types::{AppendId, ClientId, Position, StreamId};

pub(crate) struct AppendOp {
    pub frame: Vec<u8>,
    pub streams: Vec<StreamId>,
    pub id: AppendId,
    pub payload_len: usize,
    pub enqueued: Instant,
    pub completion: Arc<Completion>,
}

/// A submission. Seal and trim go to the single writer too, so they are
/// ordered with appends: a seal comes after every append added before it.
pub(crate) enum Op {
    Append(AppendOp),
    Seal(Arc<Completion>),
    Trim(Position, Arc<Completion>),
}

impl Op {
    fn completion(&self) -> &Arc<Completion> {
        match self {
            Op::Append(a) => &a.completion,
            Op::Seal(c) | Op::Trim(_, c) => c,
        }
    }
}

/// What the writer takes next.
pub(crate) enum Work {
    Batch(Batch),
    Seal(Arc<Completion>),
    Trim(Position, Arc<Completion>),
}

/// A closed batch: its WriteBatch and the results to deliver once synced.
pub(crate) struct Batch {
    pub wb: WriteBatch,
    pub done: Done,
    /// One past the last position in the batch: the tail once written.
    pub end: u64,
    pub written: u64,
    pub payload_bytes: u64,
    pub deduplicated: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterState {
    /// Writing: adders need not wake it.
    Busy,
    /// Asleep with nothing to do: the first addition wakes it.
    Idle,
    /// Waiting for the window to close: wake it only at a bound.
    Filling,
}

struct Open {
    batch: Batch,
    /// Payload bytes in the open batch (dedup hits included).
    bytes: usize,
    first_arrival: Option<Instant>,
    last_arrival: Instant,
    /// The next position to assign.
    next: u64,
    dedup: DedupTable,
    /// Set when a seal is requested: later appends fail.
    sealed: bool,
    controls: VecDeque<Op>,
    closed: bool,
    /// After a failed write nothing more is written (see `Shared`).
    poisoned: Option<LogError>,
    writer: WriterState,
    room_wakers: Vec<Waker>,
}

fn empty_batch(end: u64) -> Batch {
    Batch {
        wb: WriteBatch::default(),
        done: Vec::new(),
        end,
        written: 0,
        payload_bytes: 0,
        deduplicated: 0,
    }
}

pub(crate) struct Batcher {
    db: Arc<DB>,
    shared: Arc<Shared>,
    config: GroupCommitConfig,
    open: Mutex<Open>,
    work: Condvar,
    room: Condvar,
}

/// Results to deliver after the lock is released: a waker may poll
/// inline and come back into the batcher.
type Immediate = Vec<(Arc<Completion>, AppendResult)>;

fn deliver(now: Immediate) {
    for (c, r) in now {
        c.complete(r);
    }
}

impl Batcher {
    pub(crate) fn new(
        db: Arc<DB>,
        shared: Arc<Shared>,
        config: GroupCommitConfig,
        tail: u64,
        sealed: bool,
        dedup: DedupTable,
    ) -> Arc<Batcher> {
        Arc::new(Batcher {
            db,
            shared,
            config,
            open: Mutex::new(Open {
                batch: empty_batch(tail),
                bytes: 0,
                first_arrival: None,
                last_arrival: Instant::now(),
                next: tail,
                dedup,
                sealed,
                controls: VecDeque::new(),
                closed: false,
                poisoned: None,
                writer: WriterState::Busy,
                room_wakers: Vec::new(),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
        })
    }

    pub(crate) fn last_seq(&self, client: ClientId) -> Option<u64> {
        self.open.lock().dedup.last_seq(client)
    }

    fn full(&self, o: &Open, len: usize) -> bool {
        !o.batch.done.is_empty()
            && (o.batch.done.len() >= self.config.max_records
                || o.bytes + len > self.config.max_bytes)
    }

    /// Adds `op` if there is room; otherwise gives it back, after
    /// registering `waker` (if any) to be woken when room appears.
    pub(crate) fn try_push(&self, op: Op, waker: Option<&Waker>) -> Result<(), Op> {
        let mut now = Vec::new();
        let mut o = self.open.lock();
        if let Op::Append(a) = &op
            && self.full(&o, a.payload_len)
            && !o.closed
            && o.poisoned.is_none()
        {
            let mut wake_now = Vec::new();
            if let Some(w) = waker {
                // A future re-registers on every poll; bound the list by
                // waking everyone (they re-poll) when it gets long.
                if o.room_wakers.len() >= self.config.max_records {
                    wake_now = std::mem::take(&mut o.room_wakers);
                }
                o.room_wakers.push(w.clone());
            }
            drop(o);
            wake_now.into_iter().for_each(Waker::wake);
            return Err(op);
        }
        self.add(&mut o, op, &mut now);
        drop(o);
        deliver(now);
        Ok(())
    }

    /// Adds `op`, blocking while the open batch is full.
    pub(crate) fn push_blocking(&self, op: Op) {
        let mut now = Vec::new();
        let mut o = self.open.lock();
        if let Op::Append(a) = &op {
            while self.full(&o, a.payload_len) && !o.closed && o.poisoned.is_none() {
                self.room.wait(&mut o);
            }
        }
        self.add(&mut o, op, &mut now);
        drop(o);
        deliver(now);
    }

    fn add(&self, o: &mut Open, op: Op, now: &mut Immediate) {
        if o.closed {
            now.push((op.completion().clone(), Err(LogError::Closed)));
            return;
        }
        if let Some(e) = &o.poisoned {
            now.push((op.completion().clone(), Err(e.clone())));
            return;
        }
        let a = match op {
            Op::Append(a) => a,
            control => {
                if matches!(control, Op::Seal(_)) {
                    o.sealed = true;
                }
                o.controls.push_back(control);
                if o.writer != WriterState::Busy {
                    self.work.notify_one();
                }
                return;
            }
        };
        if o.sealed {
            now.push((a.completion, Err(LogError::Sealed)));
            return;
        }
        let enqueued = a.enqueued;
        match o.dedup.lookup(a.id) {
            Lookup::TooOld { floor } => {
                let e = LogError::SeqTooOld {
                    client: a.id.client,
                    seq: a.id.seq,
                    floor,
                };
                now.push((a.completion, Err(e)));
                return;
            }
            Lookup::Hit(p) if p.0 < self.shared.durable_tail.load(Ordering::Acquire) => {
                now.push((a.completion, Ok(p)));
                self.shared.stats.lock().deduplicated += 1;
                return;
            }
            // The first copy is not synced yet: answer with this batch.
            Lookup::Hit(p) => {
                o.batch.deduplicated += 1;
                o.batch.done.push((a.completion, Ok(p)));
            }
            Lookup::Miss => self.put_entry(o, a),
        }
        if o.first_arrival.is_none() {
            o.first_arrival = Some(enqueued);
        }
        o.last_arrival = o.last_arrival.max(enqueued);
        let wake = match o.writer {
            WriterState::Busy => false,
            WriterState::Idle => true,
            WriterState::Filling => self.full(o, 0),
        };
        if wake {
            self.work.notify_one();
        }
    }

    fn put_entry(&self, o: &mut Open, mut a: AppendOp) {
        let p = Position(o.next);
        o.next += 1;
        codec::set_position(&mut a.frame, p);
        let cf = |name: &str| {
            // Created at open; their absence is a bug in `open`.
            self.db
                .cf_handle(name)
                .unwrap_or_else(|| panic!("column family {name} missing after open"))
        };
        let b = &mut o.batch;
        b.wb.put_cf(cf(CF_ENTRIES), keys::entry_key(p), &a.frame);
        for s in &a.streams {
            b.wb.put_cf(cf(CF_STREAMS), keys::stream_key(*s, p), []);
        }
        b.wb.put_cf(cf(CF_DEDUP), keys::dedup_key(a.id), keys::u64_value(p.0));
        let mut evicted = Vec::new();
        o.dedup.insert(a.id, p, &mut evicted);
        for id in evicted {
            o.batch.wb.delete_cf(cf(CF_DEDUP), keys::dedup_key(id));
        }
        let b = &mut o.batch;
        b.written += 1;
        b.payload_bytes += a.payload_len as u64;
        b.end = o.next;
        b.done.push((a.completion, Ok(p)));
        o.bytes += a.payload_len;
    }

    /// The writer's side: the next work, or None once closed and drained.
    pub(crate) fn next_work(&self) -> Option<Work> {
        let ready_at = Instant::now();
        let mut o = self.open.lock();
        loop {
            if let Some(first) = o.first_arrival {
                let hard = first + self.config.max_delay();
                let deadline = if self.config.linger_gap_us == 0 {
                    hard
                } else {
                    hard.min(o.last_arrival.max(ready_at) + self.config.linger_gap())
                };
                let flush = !o.controls.is_empty()
                    || o.closed
                    || self.full(&o, 0)
                    || Instant::now() >= deadline;
                if flush {
                    let next = o.next;
                    let batch = std::mem::replace(&mut o.batch, empty_batch(next));
                    o.bytes = 0;
                    o.first_arrival = None;
                    o.writer = WriterState::Busy;
                    let wakers = std::mem::take(&mut o.room_wakers);
                    drop(o);
                    self.room.notify_all();
                    wakers.into_iter().for_each(Waker::wake);
                    return Some(Work::Batch(batch));
                }
                o.writer = WriterState::Filling;
                self.work.wait_until(&mut o, deadline);
                continue;
            }
            if let Some(op) = o.controls.pop_front() {
                o.writer = WriterState::Busy;
                return Some(match op {
                    Op::Seal(c) => Work::Seal(c),
                    Op::Trim(p, c) => Work::Trim(p, c),
                    Op::Append(a) => Work::Batch(Batch {
                        done: vec![(
                            a.completion,
                            Err(LogError::Engine("append queued as control".into())),
                        )],
                        ..empty_batch(o.next)
                    }),
                });
            }
            if o.closed {
                return None;
            }
            o.writer = WriterState::Idle;
            self.work.wait(&mut o);
        }
    }

    /// After a failed write: fail what is open or queued, and everything
    /// submitted later.
    pub(crate) fn poison(&self, e: &LogError) {
        let mut o = self.open.lock();
        o.poisoned = Some(e.clone());
        let next = o.next;
        let batch = std::mem::replace(&mut o.batch, empty_batch(next));
        o.first_arrival = None;
        o.bytes = 0;
        let controls: Vec<Op> = o.controls.drain(..).collect();
        let wakers = std::mem::take(&mut o.room_wakers);
        drop(o);
        self.room.notify_all();
        wakers.into_iter().for_each(Waker::wake);
        for (c, _) in batch.done {
            c.complete(Err(e.clone()));
        }
        for op in controls {
            op.completion().complete(Err(e.clone()));
        }
    }

    /// Stops accepting work; the writer drains what is open, then exits.
    pub(crate) fn close(&self) {
        let mut o = self.open.lock();
        o.closed = true;
        let wakers = std::mem::take(&mut o.room_wakers);
        drop(o);
        self.work.notify_all();
        self.room.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// A future's append waiting for room in the open batch.
pub(crate) struct QueuedSubmit {
    pub batcher: Arc<Batcher>,
    pub op: Option<Op>,
}

impl BlockedSubmit for QueuedSubmit {
    fn try_submit(&mut self, waker: &Waker) -> bool {
        match self.op.take() {
            None => true,
            Some(op) => match self.batcher.try_push(op, Some(waker)) {
                Ok(()) => true,
                Err(op) => {
                    self.op = Some(op);
                    false
                }
            },
        }
    }

    fn submit_blocking(&mut self) {
        if let Some(op) = self.op.take() {
            self.batcher.push_blocking(op);
        }
    }
}
