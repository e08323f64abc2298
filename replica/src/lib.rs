//! One Gryff replica as a single deterministic state machine (Gryff, NSDI
//! 2020; PROTOCOL.md): the register protocol of `registers` for gets and
//! puts and EPaxos or raft with the base from `consensus` for
//! read-modify-writes, over one shared register store; or, for the
//! benchmark's comparison, one of the baselines that order every
//! operation (EPaxos-all, raft-all). [`Mode`] chooses. No I/O, clocks or randomness: the server
//! (kv-server), the simulator (geo-bench) and tests drive it by feeding
//! `(now, input)` and carrying out the effects in order, honouring
//! `Persist` as a barrier for every later send and reply.
//!
//! It is its own crate (rather than a module of kv-server) so the simulator
//! and the protocol tests can use it without linking RocksDB and tokio.

pub mod config;
pub mod machine;
pub mod mode;
pub mod vocabulary;

pub use config::{ConfigError, ReplicaConfig};
pub use machine::{Replica, ReplicaStats};
pub use mode::{Mode, RmwEngine};
pub use vocabulary::{PeerMsg, Record, ReplicaEffect, ReplicaTimer};
