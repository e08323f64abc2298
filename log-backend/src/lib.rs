//! The shared log and Tango objects over it (`docs/LOGSTACK.md`, from the
//! Tango and Scalog papers).
//!
//! - [`Log`]: the contract (§1): atomic multi-stream append, exactly-once by
//!   `(client, seq)`, read, read_next, linearizable check_tail, prefix_trim,
//!   seal, subscribe. Appends are blocking (`append`) or futures
//!   (`append_async`) that need no async runtime.
//! - [`RocksLog`]: the embedded engine on RocksDB with its own group-commit
//!   window; [`MemLog`]: the same contract in memory, with `crash()`, for
//!   the simulator.
//! - [`tango`]: objects with an `apply` upcall, update/query helpers,
//!   optimistic transactions, checkpoints and trim (§2-§4).

mod codec;
mod completion;
mod config;
mod contract;
mod dedup;
mod error;
mod memory;
mod rocks;
mod subscribe;
pub mod tango;
mod types;

pub use completion::{AppendFuture, AppendResult};
pub use config::{DedupConfig, GroupCommitConfig, LogConfig};
pub use contract::{Log, SharedLog};
pub use error::LogError;
pub use memory::{MemLog, SyncMode};
pub use rocks::RocksLog;
pub use subscribe::Subscription;
pub use types::{AppendId, ClientId, Entry, LogStats, Position, StreamId, Tail};
