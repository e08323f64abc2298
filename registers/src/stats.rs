//! Counters of the register machine: operations, which read path they
//! took, timeouts, and every input that was ignored (duplicates, stale or
//! unknown replies, malformed messages). Bad input is counted, never a panic.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterStats {
    pub gets_started: u64,
    pub gets_completed: u64,
    pub puts_started: u64,
    pub puts_completed: u64,
    /// Reads answered after Read1 alone (a quorum already held the value).
    pub reads_fast_path: u64,
    /// Reads that needed the Read2 write-back.
    pub reads_write_back: u64,
    /// Phase timeouts that fired while the phase was still open.
    pub phase_timeouts: u64,
    /// Messages sent again because of a phase timeout.
    pub resent_messages: u64,
    /// `Persist` effects emitted (register changes and seq reservations).
    pub persists: u64,
    /// Requests served as a replica (Read1, Read2, Write1, Write2).
    pub requests_served: u64,
    /// A message from an id that is not another replica of this cluster.
    pub ignored_unknown_sender: u64,
    /// A message whose `op_ref.phase` does not match its kind.
    pub ignored_malformed: u64,
    /// A reply for an operation that is not in flight: it finished (late
    /// replies are normal when phases go to more than a quorum), or it was
    /// started before a restart, or the reply is bogus.
    pub ignored_unknown_op: u64,
    /// A reply to an earlier phase of an operation still in flight.
    pub ignored_stale_phase: u64,
    /// A second reply from the same replica to the same phase.
    pub ignored_duplicate: u64,
    /// A timer for a phase that already completed.
    pub ignored_stale_timer: u64,
}

impl RegisterStats {
    /// Every ignored input, for a single health counter.
    pub fn ignored_total(&self) -> u64 {
        self.ignored_unknown_sender
            + self.ignored_malformed
            + self.ignored_unknown_op
            + self.ignored_stale_phase
            + self.ignored_duplicate
            + self.ignored_stale_timer
    }
}
