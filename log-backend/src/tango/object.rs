//! The object side of Tango (Tango §3, LOGSTACK.md §2): a view folded from
//! the log by a deterministic `apply` upcall, plus the checkpoint/restore
//! pair that lets the log be trimmed (§4).

use std::any::Any;

use crate::types::Position;

/// One update as the runtime hands it to `apply`: the conflict key (the
/// unit of versioning for transactions) and the object-specific data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update<'a> {
    pub key: &'a [u8],
    pub data: &'a [u8],
}

/// A replicated object: an in-memory view rebuilt by playing its stream.
///
/// `apply` must be deterministic: every view that plays the same log
/// prefix must reach the same state. An update it rejects (bad encoding)
/// must be rejected by every view alike; the runtime then skips it.
pub trait TangoObject: Any + Send {
    /// Folds one committed update, at `position`, into the view.
    fn apply(&mut self, update: Update<'_>, position: Position) -> Result<(), String>;
    /// The full state, for a checkpoint.
    fn checkpoint(&self) -> Vec<u8>;
    /// Replaces the state with a checkpoint made by `checkpoint`.
    fn restore(&mut self, state: &[u8]) -> Result<(), String>;
}
