//! Gryff's shared registers (Burke, Cheng, Lloyd, NSDI 2020; PROTOCOL.md 1-3):
//! ids, carstamps, values, RMW functions and the effect vocabulary shared by
//! every protocol core, then the register store, the read and write
//! coordinators and the replica side. No I/O, no clocks, no randomness.

pub mod carstamp;
pub mod client;
pub mod effect;
pub mod ids;
pub mod rmw;
pub mod store;

pub use carstamp::{Carstamp, Register, max_by_cs};
pub use client::{ClientReply, ClientRequest};
pub use effect::{Effect, Time};
pub use ids::{ClientId, Key, OpId, ReplicaId, RequestId, Value, WriterId};
pub use rmw::{RmwOp, RmwOutcome};
pub use store::RegisterStore;
