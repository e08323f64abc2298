//! Durability: where the replica's `Persist` records go (PROTOCOL.md 5),
//! and where a restarted replica gets them back from.
//!
//! The driver hands each group of records of one handler step (those
//! between two sends or replies) to [`Durability::submit`], which must not
//! block; the returned future resolves once the group is durable. Groups
//! are durable in submission order (the log's group commit writes a
//! prefix); the driver awaits the futures in order anyway, so a backend
//! that completes out of order is still safe. [`Durability::recover`]
//! returns records from which `Replica::recover` rebuilds the same state:
//! not necessarily the records as submitted (a backend may fold them into
//! objects), but an equivalent list.

mod mapping;
mod memory;
mod objects;
mod tango;

pub use memory::MemDurability;
pub use tango::{CheckpointPolicy, TangoDurability};

use std::future::Future;
use std::pin::Pin;

/// Why records could not be made durable or read back. Every variant is
/// fatal for the replica: it must not answer anyone on state it cannot
/// keep, so the server stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityError {
    #[error("cannot open the data directory {dir}: {reason}")]
    Open { dir: String, reason: String },
    #[error("the log failed an append: {0}")]
    Append(String),
    #[error("cannot read the replica's records back: {0}")]
    Recover(String),
    #[error("a record cannot be encoded: {0}")]
    Encode(String),
}

/// Resolves once the submitted records are durable.
pub type DurableFuture = Pin<Box<dyn Future<Output = Result<(), DurabilityError>> + Send>>;

/// A store of the replica's records.
pub trait Durability<R>: Send + 'static {
    /// Everything made durable so far, as records `Replica::recover` takes.
    fn recover(&mut self) -> Result<Vec<R>, DurabilityError>;

    /// Starts making `records` durable, atomically; never blocks.
    fn submit(&mut self, records: Vec<R>) -> DurableFuture;
}
