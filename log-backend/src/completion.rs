//! Completion of an append: a hand-written one-shot future (LOGSTACK.md §1,
//! "acknowledged only after its batch is synced"). The group-commit thread
//! completes it; the caller either blocks (`wait`) or polls it from any
//! executor, so an async server needs no OS thread per pending append and
//! this crate needs no async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::LogError;
use crate::types::Position;

pub type AppendResult = Result<Position, LogError>;

#[derive(Default)]
struct Slot {
    result: Option<AppendResult>,
    waker: Option<Waker>,
    /// Set once the result was handed out, so a second poll is an error
    /// rather than a hang.
    taken: bool,
}

/// The shared cell between one append and its completer.
#[derive(Default)]
pub(crate) struct Completion {
    slot: Mutex<Slot>,
    ready: Condvar,
}

impl Completion {
    pub(crate) fn new() -> Arc<Completion> {
        Arc::new(Completion::default())
    }

    /// Delivers the result; later calls are ignored (first result wins).
    pub(crate) fn complete(&self, result: AppendResult) {
        let waker = {
            let mut slot = self.slot.lock();
            if slot.result.is_some() || slot.taken {
                return;
            }
            slot.result = Some(result);
            slot.waker.take()
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The pending result of `Log::append_async`.
///
/// Poll it as a `Future`, or call `wait` to block the current thread.
/// Dropping it does not cancel the append: it may still become durable.
#[must_use = "an append is acknowledged only through its future"]
pub struct AppendFuture {
    inner: FutureInner,
}

/// A request that could not enter a full submission queue yet. The future
/// keeps it and retries when the engine wakes it, so the queue bound holds
/// for async callers too without blocking their executor.
pub(crate) trait BlockedSubmit: Send {
    /// Tries to enqueue; on failure registers `waker` to be woken when the
    /// queue has room. True once the request is in the queue.
    fn try_submit(&mut self, waker: &Waker) -> bool;
    /// Enqueues, blocking the current thread while the queue is full.
    fn submit_blocking(&mut self);
}

enum FutureInner {
    Pending(Arc<Completion>),
    Blocked(Box<dyn BlockedSubmit>, Arc<Completion>),
    /// Rejected before reaching the engine (validation), or already known.
    Ready(Option<AppendResult>),
}

impl AppendFuture {
    pub(crate) fn pending(c: Arc<Completion>) -> AppendFuture {
        AppendFuture {
            inner: FutureInner::Pending(c),
        }
    }

    pub(crate) fn blocked(b: Box<dyn BlockedSubmit>, c: Arc<Completion>) -> AppendFuture {
        AppendFuture {
            inner: FutureInner::Blocked(b, c),
        }
    }

    pub(crate) fn ready(r: AppendResult) -> AppendFuture {
        AppendFuture {
            inner: FutureInner::Ready(Some(r)),
        }
    }

    /// Blocks the calling thread until the append is durable (or failed).
    pub fn wait(self) -> AppendResult {
        match self.inner {
            FutureInner::Ready(r) => r.unwrap_or(Err(LogError::Closed)),
            FutureInner::Blocked(mut b, c) => {
                b.submit_blocking();
                AppendFuture::pending(c).wait()
            }
            FutureInner::Pending(c) => {
                let mut slot = c.slot.lock();
                loop {
                    if let Some(r) = slot.result.take() {
                        slot.taken = true;
                        return r;
                    }
                    c.ready.wait(&mut slot);
                }
            }
        }
    }

    /// Like `wait`, but gives up after `timeout` and returns the future.
    /// Waiting for room in a full queue is not counted: it is short,
    /// because the writer drains the queue continuously.
    pub fn wait_timeout(mut self, timeout: Duration) -> Result<AppendResult, AppendFuture> {
        if let FutureInner::Blocked(b, c) = &mut self.inner {
            b.submit_blocking();
            self.inner = FutureInner::Pending(c.clone());
        }
        if let FutureInner::Pending(c) = &self.inner {
            let mut slot = c.slot.lock();
            if slot.result.is_none() {
                c.ready.wait_for(&mut slot, timeout);
            }
            if slot.result.is_none() {
                drop(slot);
                return Err(self);
            }
        }
        Ok(self.wait())
    }

    /// True once the result is available (polling would return Ready).
    pub fn is_ready(&self) -> bool {
        match &self.inner {
            FutureInner::Ready(_) => true,
            FutureInner::Blocked(..) => false,
            FutureInner::Pending(c) => c.slot.lock().result.is_some(),
        }
    }
}

impl Future for AppendFuture {
    type Output = AppendResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AppendResult> {
        // AppendFuture holds no self-references, so it is Unpin.
        let this = self.get_mut();
        if let FutureInner::Blocked(b, c) = &mut this.inner {
            if !b.try_submit(cx.waker()) {
                return Poll::Pending;
            }
            this.inner = FutureInner::Pending(c.clone());
        }
        match &mut this.inner {
            FutureInner::Blocked(..) => Poll::Pending,
            FutureInner::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(LogError::Closed))),
            FutureInner::Pending(c) => {
                let mut slot = c.slot.lock();
                if let Some(r) = slot.result.take() {
                    slot.taken = true;
                    return Poll::Ready(r);
                }
                if slot.taken {
                    return Poll::Ready(Err(LogError::Closed));
                }
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn poll_then_complete_wakes_once() {
        let c = Completion::new();
        let mut f = AppendFuture::pending(c.clone());
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        c.complete(Ok(Position(5)));
        c.complete(Ok(Position(6)));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(Pin::new(&mut f).poll(&mut cx), Poll::Ready(Ok(Position(5))));
    }

    #[test]
    fn wait_blocks_until_completed() {
        let c = Completion::new();
        let f = AppendFuture::pending(c.clone());
        let t = std::thread::spawn(move || f.wait());
        std::thread::sleep(Duration::from_millis(20));
        c.complete(Err(LogError::Sealed));
        assert_eq!(t.join().unwrap(), Err(LogError::Sealed));
    }

    #[test]
    fn wait_timeout_returns_the_future() {
        let c = Completion::new();
        let f = AppendFuture::pending(c.clone());
        let f = f.wait_timeout(Duration::from_millis(5)).unwrap_err();
        c.complete(Ok(Position(1)));
        assert_eq!(
            f.wait_timeout(Duration::from_millis(5)).ok(),
            Some(Ok(Position(1)))
        );
    }
}
