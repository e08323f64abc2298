//! The effect vocabulary of every protocol state machine (ARCHITECTURE.md,
//! "the one idea"): a handler takes `(now, input)` and returns effects; a
//! driver (the server, the simulator, a unit test) carries them out.

use crate::ids::{OpId, ReplicaId};
use serde::{Deserialize, Serialize};

/// Virtual or real time in microseconds since an arbitrary origin. The
/// protocol only compares and adds times; it never reads a clock.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    pub fn from_millis(ms: u64) -> Time {
        Time(ms * 1000)
    }

    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// `self + micros`, saturating.
    pub fn plus_micros(self, micros: u64) -> Time {
        Time(self.0.saturating_add(micros))
    }
}

/// One thing a state machine asks its driver to do.
///
/// Effects are ordered. `Persist` is a barrier: the driver must make it
/// durable before it performs any `Send` or `Reply` that comes after it in
/// the same batch *or in any later batch of the same machine* (PROTOCOL.md
/// 5: a reply never promises state that a crash could lose). Later batches
/// matter because a handler that finds the state already in memory (a
/// duplicate Write2, a Read1 that changes nothing) replies without a new
/// `Persist`, relying on the earlier one. Sends before the first pending
/// `Persist` may go at once; group commit keeps the barrier cheap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect<M, P, R, T> {
    /// Send a message to a peer replica.
    Send { to: ReplicaId, msg: M },
    /// Make a record durable before any later send or reply.
    Persist(P),
    /// Answer a client operation.
    Reply { op: OpId, reply: R },
    /// Deliver `timer` back to the machine at time `at` (or later).
    SetTimer { at: Time, timer: T },
}

impl<M, P, R, T> Effect<M, P, R, T> {
    /// Maps every payload type, e.g. to embed a sub-machine's effects in
    /// the combined replica's vocabulary.
    pub fn map<M2, P2, R2, T2>(
        self,
        fm: impl FnOnce(M) -> M2,
        fp: impl FnOnce(P) -> P2,
        fr: impl FnOnce(R) -> R2,
        ft: impl FnOnce(T) -> T2,
    ) -> Effect<M2, P2, R2, T2> {
        match self {
            Effect::Send { to, msg } => Effect::Send { to, msg: fm(msg) },
            Effect::Persist(p) => Effect::Persist(fp(p)),
            Effect::Reply { op, reply } => Effect::Reply {
                op,
                reply: fr(reply),
            },
            Effect::SetTimer { at, timer } => Effect::SetTimer {
                at,
                timer: ft(timer),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_variant_and_addressing() {
        let e: Effect<u8, u8, u8, u8> = Effect::Send {
            to: ReplicaId(2),
            msg: 7,
        };
        let m = e.map(|m| m as u32 + 1, |p| p, |r| r, |t| t);
        assert_eq!(
            m,
            Effect::Send {
                to: ReplicaId(2),
                msg: 8u32
            }
        );
    }
}
