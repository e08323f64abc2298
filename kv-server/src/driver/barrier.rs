//! The persist barrier of the effect contract (core docs/ARCHITECTURE.md,
//! "The effect contract"; PROTOCOL.md 5): a `Persist` must be durable
//! before any later `Send` or `Reply` of the same replica is carried out,
//! in the same batch or any later one.
//!
//! Every submission to the log gets the next sequence number; the log
//! completes them in order, so "durable" is a prefix `1..=durable`. A send
//! or reply records the last sequence number issued before it and waits in
//! a FIFO until that one is durable. The FIFO's requirements never
//! decrease, so releasing from its front keeps the effects in their order.

use std::collections::VecDeque;

/// Sequencing of persists and of the sends and replies that wait on them.
#[derive(Debug)]
pub struct Barrier<A> {
    /// The last sequence number handed to a submission (0 = none yet).
    issued: u64,
    /// Every submission up to and including this one is durable.
    durable: u64,
    waiting: VecDeque<(u64, A)>,
}

impl<A> Default for Barrier<A> {
    fn default() -> Self {
        Barrier {
            issued: 0,
            durable: 0,
            waiting: VecDeque::new(),
        }
    }
}

impl<A> Barrier<A> {
    /// A new submission to the log: its sequence number.
    pub fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// A send or reply: returned at once if everything issued before it is
    /// durable, otherwise held until it is.
    pub fn gate(&mut self, action: A) -> Option<A> {
        if self.durable >= self.issued {
            debug_assert!(self.waiting.is_empty());
            return Some(action);
        }
        self.waiting.push_back((self.issued, action));
        None
    }

    /// The oldest pending submission became durable: the actions it
    /// released, in order.
    pub fn advance(&mut self) -> Vec<A> {
        assert!(
            self.durable < self.issued,
            "a durability completion arrived for a submission never issued"
        );
        self.durable += 1;
        let mut released = Vec::new();
        while let Some((need, _)) = self.waiting.front() {
            if *need > self.durable {
                break;
            }
            if let Some((_, a)) = self.waiting.pop_front() {
                released.push(a);
            }
        }
        released
    }

    pub fn issued(&self) -> u64 {
        self.issued
    }

    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Sends and replies waiting for durability.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_pending_passes_at_once() {
        let mut b = Barrier::default();
        assert_eq!(b.gate("a"), Some("a"));
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn actions_wait_for_every_earlier_persist_and_keep_their_order() {
        let mut b = Barrier::default();
        let s1 = b.issue();
        assert_eq!(b.gate("after-1"), None);
        let s2 = b.issue();
        assert_eq!((s1, s2), (1, 2));
        assert_eq!(b.gate("after-2a"), None);
        assert_eq!(b.gate("after-2b"), None);
        assert_eq!(b.advance(), vec!["after-1"]);
        // A later action (e.g. a duplicate answered without a new persist)
        // still waits behind the persist issued before it.
        assert_eq!(b.gate("later"), None);
        assert_eq!(b.advance(), vec!["after-2a", "after-2b", "later"]);
        assert_eq!(b.gate("free"), Some("free"));
        assert_eq!((b.issued(), b.durable()), (2, 2));
    }

    #[test]
    #[should_panic(expected = "never issued")]
    fn a_completion_without_a_submission_is_a_bug() {
        let mut b: Barrier<()> = Barrier::default();
        b.advance();
    }
}
