//! `subscribe`: a resumable tailing feed of the log (LOGSTACK.md §1), and
//! the tail watch engines use to wake subscribers when entries become
//! durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::contract::Log;
use crate::error::LogError;
use crate::types::{Entry, Position};

/// Publishes the durable tail to waiting subscribers.
#[derive(Default)]
pub(crate) struct TailWatch {
    tail: Mutex<u64>,
    moved: Condvar,
}

impl TailWatch {
    pub(crate) fn new(tail: Position) -> Arc<TailWatch> {
        Arc::new(TailWatch {
            tail: Mutex::new(tail.0),
            moved: Condvar::new(),
        })
    }

    pub(crate) fn publish(&self, tail: Position) {
        let mut t = self.tail.lock();
        if tail.0 > *t {
            *t = tail.0;
            drop(t);
            self.moved.notify_all();
        }
    }

    /// Waits until the tail passes `position` or `deadline` is reached.
    pub(crate) fn wait_past(&self, position: Position, deadline: Instant) {
        let mut t = self.tail.lock();
        while *t <= position.0 {
            if self.moved.wait_until(&mut t, deadline).timed_out() {
                return;
            }
        }
    }
}

/// A cursor over the log that follows its tail.
pub struct Subscription {
    log: Arc<dyn Log>,
    watch: Arc<TailWatch>,
    next: Position,
}

impl Subscription {
    pub(crate) fn new(log: Arc<dyn Log>, watch: Arc<TailWatch>, from: Position) -> Subscription {
        Subscription {
            log,
            watch,
            next: from,
        }
    }

    /// The position the next entry will have; pass it to `subscribe` to
    /// resume after a restart.
    pub fn next_position(&self) -> Position {
        self.next
    }

    /// The next entry if it is already durable, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Entry>, LogError> {
        match self.log.read(self.next) {
            Ok(e) => {
                self.next = self.next.next();
                Ok(Some(e))
            }
            Err(LogError::NotWritten { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next entry, waiting up to `timeout` for it to become durable.
    /// `Ok(None)` on timeout. `Trimmed` if the cursor fell below the trim
    /// point: resume from `Tail::trim_point` (after loading a checkpoint).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Entry>, LogError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_next()? {
                return Ok(Some(e));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.watch.wait_past(self.next, deadline);
        }
    }
}
