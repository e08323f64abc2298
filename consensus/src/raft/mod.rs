//! RMWs (and, in the raft-all baseline, every operation) ordered by a
//! raft group: tikv raft-rs 0.7's `RawNode` driven as a deterministic,
//! I/O-free state machine (Gryff, NSDI 2020, and PROTOCOL.md 4, "Raft
//! path" and "Baselines").
//!
//! # The path of an RMW
//! The proposer reads the key's register from a quorum (Read1, itself
//! included) and proposes `(cmd, base)`; raft-rs forwards a follower's
//! proposal to the leader. Every replica executes committed entries in
//! log order with EPaxos's execution rule (`execute`: `eff =
//! max_by_cs(base, last_rmw)`, `rmwc + 1`, apply-if-greater, dedup by
//! `(client, request)`), and the proposer answers once a majority has
//! executed the entry (`apply` argues why commit alone is not enough).
//! In raft-all, gets and puts are entries too, the store is the base, and
//! the proposer answers after its own execution.
//!
//! # Driving raft-rs without I/O
//! - Time: the driver's `now` becomes raft ticks (`leader`).
//! - raft messages travel as protobuf bytes inside [`RaftMsg::Raft`]
//!   (rust-protobuf `write_to_bytes` / `parse_from_bytes`).
//! - The Ready loop becomes effects (`ready`): entries and hard state are
//!   `Persist` records emitted before the messages that depend on them
//!   (raft's "persisted messages"); committed entries are executed.
//! - Storage: raft-rs's `Storage` trait over an in-memory log
//!   (`storage`), rebuilt after a restart from exactly the records the
//!   replica persisted ([`RaftPersist`]), which are what the server
//!   writes to its log stream.
//! - Determinism: raft-rs draws each election timeout from
//!   `[min_election_tick, max_election_tick)` with a thread RNG (it
//!   depends on `rand`). We set `max = min + 1`, so the draw has one
//!   possible value and runs are reproducible; candidates are staggered
//!   by per-replica configuration instead (`config`: the preferred leader
//!   first). raft-rs's maps are `FxHashMap`s (a fixed hash, no random
//!   seed), and it reads no clock.
//! - Logging: raft-rs logs through slog; the engine gives it
//!   `slog::Discard` (the default logger would start threads).
//!
//! # Durability and restart
//! Entries and hard state are durable before any vote or append
//! acknowledgement; the commit index is durable before the entries it
//! commits are executed; an execution that changed state is recorded
//! (`Executed`) before any notice or reply about it. A restarted replica
//! replays the records: raft state from the entries and hard state, the
//! store, `last_rmw` and the dedup table from the executions, and raft
//! resumes applying after the last recorded execution. A replica that
//! missed entries while down catches up through raft's own log repair
//! (the leader's appends back off to where the logs agree).
//!
//! # Limits
//! Membership is fixed (no configuration changes); the log is never
//! compacted, so no snapshots (memory and replay time grow with the log,
//! as with EPaxos's instances); reads in raft-all go through the log (no
//! read index or leases: fine for a baseline). raft-rs panics on some
//! inputs that only a buggy or malicious peer would send; the engine
//! refuses the ones it can check (`machine::check_raft_message`).

mod apply;
pub mod codec;
pub mod config;
mod leader;
pub mod machine;
pub mod messages;
mod propose;
mod ready;
pub mod storage;

pub use codec::{CodecError, Proposal};
pub use config::RaftConfig;
pub use machine::{RaftEngine, RaftStats, RaftStatus};
pub use messages::{
    HardStateRecord, LogEntry, RaftEffect, RaftMsg, RaftPersist, RaftTimer, ReadId,
};
