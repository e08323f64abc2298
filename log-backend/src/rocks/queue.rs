//! The bounded submission queue between appending threads (or futures) and
//! the group-commit thread (LOGSTACK.md §1, "its own group-commit window").
//! The writer sleeps until there is work, then waits for company only until
//! the oldest queued append has waited `max_delay`, or a record / byte bound
//! is reached. Submitters wake the writer only when it needs waking, so a
//! full batch costs one wakeup rather than one per append.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::completion::{BlockedSubmit, Completion};
use crate::config::GroupCommitConfig;
use crate::error::LogError;
use crate::types::{AppendId, Position, StreamId};

pub(crate) struct AppendOp {
    pub frame: Vec<u8>,
    pub streams: Vec<StreamId>,
    pub id: AppendId,
    pub payload_len: usize,
    pub enqueued: Instant,
    pub completion: Arc<Completion>,
}

/// Control operations go through the same single writer, so they are
/// ordered with appends: a seal is after every append queued before it.
pub(crate) enum Op {
    Append(AppendOp),
    Seal(Arc<Completion>),
    Trim(Position, Arc<Completion>),
}

impl Op {
    pub(crate) fn fail(self, e: LogError) {
        match self {
            Op::Append(a) => a.completion.complete(Err(e)),
            Op::Seal(c) | Op::Trim(_, c) => c.complete(Err(e)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterState {
    /// Writing a batch: submitters need not wake it.
    Busy,
    /// Asleep with nothing queued: the first submission wakes it.
    Idle,
    /// Waiting for company until a deadline: wake it only when a bound is
    /// reached.
    Filling,
}

struct Inner {
    ops: VecDeque<Op>,
    /// Payload bytes of queued appends.
    bytes: usize,
    /// Queued appends (control ops are not counted against the capacity).
    appends: usize,
    controls: usize,
    /// When the latest append was submitted.
    last_arrival: Instant,
    closed: bool,
    writer: WriterState,
    room_wakers: Vec<Waker>,
}

pub(crate) struct Queue {
    inner: Mutex<Inner>,
    work: Condvar,
    room: Condvar,
    config: GroupCommitConfig,
}

impl Queue {
    pub(crate) fn new(config: GroupCommitConfig) -> Arc<Queue> {
        Arc::new(Queue {
            inner: Mutex::new(Inner {
                ops: VecDeque::new(),
                bytes: 0,
                appends: 0,
                controls: 0,
                last_arrival: Instant::now(),
                closed: false,
                writer: WriterState::Busy,
                room_wakers: Vec::new(),
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            config,
        })
    }

    fn has_room(&self, inner: &Inner) -> bool {
        inner.appends < self.config.queue_capacity
    }

    fn push_locked(&self, inner: &mut Inner, op: Op) {
        match &op {
            Op::Append(a) => {
                inner.appends += 1;
                inner.bytes += a.payload_len;
                inner.last_arrival = a.enqueued;
            }
            _ => inner.controls += 1,
        }
        inner.ops.push_back(op);
        let wake = match inner.writer {
            WriterState::Busy => false,
            WriterState::Idle => true,
            WriterState::Filling => {
                inner.controls > 0
                    || inner.appends >= self.config.max_records
                    || inner.bytes >= self.config.max_bytes
            }
        };
        if wake {
            self.work.notify_one();
        }
    }

    /// Enqueues if there is room; otherwise gives the op back, after
    /// registering `waker` (if any) to be woken when room appears.
    pub(crate) fn try_push(&self, op: Op, waker: Option<&Waker>) -> Result<(), Op> {
        let mut inner = self.inner.lock();
        if inner.closed {
            drop(inner);
            op.fail(LogError::Closed);
            return Ok(());
        }
        let is_control = !matches!(op, Op::Append(_));
        if is_control || self.has_room(&inner) {
            self.push_locked(&mut inner, op);
            return Ok(());
        }
        if let Some(w) = waker {
            // A future re-registers on every poll; bound the list by waking
            // everyone (they re-poll and re-register) when it gets long.
            if inner.room_wakers.len() >= self.config.queue_capacity {
                for w in inner.room_wakers.drain(..) {
                    w.wake();
                }
            }
            inner.room_wakers.push(w.clone());
        }
        Err(op)
    }

    /// Enqueues, blocking while the queue is full.
    pub(crate) fn push_blocking(&self, op: Op) {
        let mut inner = self.inner.lock();
        while !inner.closed && !self.has_room(&inner) && matches!(op, Op::Append(_)) {
            self.room.wait(&mut inner);
        }
        if inner.closed {
            drop(inner);
            op.fail(LogError::Closed);
            return;
        }
        self.push_locked(&mut inner, op);
    }

    /// The writer's side: the next batch, or None once closed and drained.
    /// A batch is either appends only (up to the record and byte bounds) or
    /// a single control op.
    pub(crate) fn next_batch(&self, out: &mut Vec<Op>) -> bool {
        let ready_at = Instant::now();
        let mut inner = self.inner.lock();
        loop {
            let Some(front) = inner.ops.front() else {
                if inner.closed {
                    return false;
                }
                inner.writer = WriterState::Idle;
                self.work.wait(&mut inner);
                continue;
            };
            // Wait for company up to max_delay after the oldest append;
            // with a linger gap, close early once arrivals pause.
            let deadline = match front {
                Op::Append(a) => {
                    let hard = a.enqueued + self.config.max_delay();
                    if self.config.linger_gap_us == 0 {
                        hard
                    } else {
                        let soft = inner.last_arrival.max(ready_at) + self.config.linger_gap();
                        hard.min(soft)
                    }
                }
                _ => Instant::now(),
            };
            let full = inner.controls > 0
                || inner.appends >= self.config.max_records
                || inner.bytes >= self.config.max_bytes;
            if full || inner.closed || Instant::now() >= deadline {
                break;
            }
            inner.writer = WriterState::Filling;
            self.work.wait_until(&mut inner, deadline);
        }
        inner.writer = WriterState::Busy;
        self.take_batch(&mut inner, out);
        let wakers = std::mem::take(&mut inner.room_wakers);
        drop(inner);
        self.room.notify_all();
        for w in wakers {
            w.wake();
        }
        true
    }

    fn take_batch(&self, inner: &mut Inner, out: &mut Vec<Op>) {
        if let Some(Op::Append(_)) = inner.ops.front() {
            let mut bytes = 0;
            while let Some(Op::Append(a)) = inner.ops.front() {
                let fits = out.is_empty()
                    || (out.len() < self.config.max_records
                        && bytes + a.payload_len <= self.config.max_bytes);
                if !fits {
                    break;
                }
                bytes += a.payload_len;
                if let Some(op) = inner.ops.pop_front() {
                    out.push(op);
                }
            }
            inner.appends -= out.len();
            inner.bytes -= bytes;
        } else if let Some(op) = inner.ops.pop_front() {
            inner.controls -= 1;
            out.push(op);
        }
    }

    /// Stops accepting work; the writer drains what is queued, then exits.
    pub(crate) fn close(&self) {
        let mut inner = self.inner.lock();
        inner.closed = true;
        let wakers = std::mem::take(&mut inner.room_wakers);
        drop(inner);
        self.work.notify_all();
        self.room.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

/// A future's append waiting for room in the queue.
pub(crate) struct QueuedSubmit {
    pub queue: Arc<Queue>,
    pub op: Option<Op>,
}

impl BlockedSubmit for QueuedSubmit {
    fn try_submit(&mut self, waker: &Waker) -> bool {
        match self.op.take() {
            None => true,
            Some(op) => match self.queue.try_push(op, Some(waker)) {
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
            self.queue.push_blocking(op);
        }
    }
}
