//! Gryff's shared registers (Burke, Cheng, Lloyd, NSDI 2020; PROTOCOL.md 1-3,
//! 5, 6): ids, carstamps, values, RMW functions and the effect vocabulary
//! shared by every protocol core, the register store, and the register
//! protocol of one replica as an I/O-free deterministic state machine.
//! No I/O, no clocks, no randomness.
//!
//! # Using the register machine
//!
//! [`RegisterMachine`] is one replica's read coordinator, write coordinator
//! and replica side. It does not own the [`RegisterStore`] (the EPaxos
//! executor in `consensus` applies RMW results to the same store); every
//! entry point takes the store and an output vector of [`RegisterEffect`]s:
//!
//! ```text
//! RegisterMachine::new(config) / ::recover(config, recovered)
//! start_get(now, op, key, &mut store, &mut out)
//! start_put(now, op, key, value /* None = delete */, &mut store, &mut out)
//! handle_message(now, from, msg, &mut store, &mut out)
//! handle_timer(now, timer, &mut store, &mut out)
//! ```
//!
//! The driver carries out the effects in order: `Send` a [`RegisterMsg`] to a
//! peer, `Persist` a [`RegisterPersist`] (a barrier, see [`Effect`]), `Reply`
//! a [`RegisterReply`] to the client op, `SetTimer` for a [`RegisterTimer`]
//! (deliver it back through `handle_timer` at or after `at`).
//!
//! After a crash, the driver folds every durable `RegisterPersist` through
//! [`RecoveredRegisterState::observe`] (or `replay`) to rebuild the store and
//! the sequence-number mark, then calls [`RegisterMachine::recover`].
//!
//! Protocol summary (details in each module):
//! - Read (`read`): Read1 carries the coordinator's register; receivers
//!   apply it, then reply theirs. At a quorum, `(v*, cs*)` = the largest;
//!   the coordinator applies it; if a quorum holds `cs*` the read returns
//!   after one round trip, otherwise Read2 writes it back first.
//! - Write (`write`): Write1 collects carstamps from a quorum; Write2
//!   installs `(T + 1, WriterId::new(me, seq), 0)` on a quorum.
//! - Phases (`phase`): thrifty phases go to the nearest peers that can make
//!   a quorum; a timeout re-sends to every peer that has not answered,
//!   every `phase_timeout_us`, until the phase completes.
//! - Writer ids and op sequence numbers are crash-safe (`op_seq`).
//! - Anything unexpected from the network is ignored and counted in
//!   [`RegisterStats`]; no input panics.

pub mod carstamp;
pub mod client;
pub mod config;
pub mod effect;
pub mod ids;
mod machine;
pub mod msg;
pub mod op_seq;
mod phase;
mod read;
mod replica;
pub mod rmw;
pub mod stats;
pub mod store;
#[cfg(test)]
mod test_util;
mod write;

pub use carstamp::{Carstamp, Register, max_by_cs};
pub use client::{ClientReply, ClientRequest};
pub use config::{ConfigError, RegisterConfig};
pub use effect::{Effect, Time};
pub use ids::{ClientId, Key, OpId, ReplicaId, RequestId, Value, WriterId};
pub use machine::RegisterMachine;
pub use msg::{
    OpRef, Phase, RegisterEffect, RegisterMsg, RegisterPersist, RegisterReply, RegisterTimer,
};
pub use op_seq::{OpSeqAllocator, RecoveredRegisterState};
pub use rmw::{RmwOp, RmwOutcome};
pub use stats::RegisterStats;
pub use store::RegisterStore;
