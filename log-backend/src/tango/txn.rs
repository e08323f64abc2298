//! Optimistic transactions (Tango §3, LOGSTACK.md §3): reads record
//! `(object, key, version)`, writes are buffered, commit appends one commit
//! record to the streams of every object involved, and the outcome is
//! whatever the views decide when they play it (see `play`).

use std::collections::HashSet;

use super::object::TangoObject;
use super::record::{CommitRecord, ReadItem, Record, WriteItem};
use super::runtime::Runtime;
use super::{ObjectId, TangoError};
use crate::types::{Position, StreamId};

/// The outcome of `Transaction::commit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// Applied at the commit record's position.
    Committed(Position),
    /// A key of the read set changed before the commit record (or the
    /// transaction was aborted by a decision record).
    Aborted(Position),
    /// Nothing written: nothing appended, always succeeds.
    ReadOnly,
}

impl TxOutcome {
    pub fn is_committed(self) -> bool {
        !matches!(self, TxOutcome::Aborted(_))
    }
}

/// A transaction in progress on one runtime. Dropping it aborts it.
pub struct Transaction<'a> {
    rt: &'a Runtime,
    reads: Vec<ReadItem>,
    read_keys: HashSet<(ObjectId, Vec<u8>)>,
    writes: Vec<WriteItem>,
}

impl Runtime {
    /// Starts a transaction on views synced to the current tail, so its
    /// reads are fresh (fewer aborts); correctness does not depend on it.
    pub fn begin(&self) -> Result<Transaction<'_>, TangoError> {
        self.query_helper()?;
        Ok(Transaction {
            rt: self,
            reads: Vec::new(),
            read_keys: HashSet::new(),
            writes: Vec::new(),
        })
    }
}

impl Transaction<'_> {
    /// Reads `key` of the hosted object `object` through `f`, recording the
    /// key's version in the read set (the first read of a key counts).
    pub fn read_with<T: TangoObject, R>(
        &mut self,
        object: ObjectId,
        key: &[u8],
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, TangoError> {
        let (version, r) = self.rt.view_versioned(object, key, f)?;
        if self.read_keys.insert((object, key.to_vec())) {
            self.reads.push(ReadItem {
                object,
                key: key.to_vec(),
                version,
            });
        }
        Ok(r)
    }

    /// Buffers an update of `key` of `object` (hosted here or not).
    pub fn write(&mut self, object: ObjectId, key: &[u8], data: &[u8]) -> Result<(), TangoError> {
        if !object.is_valid() {
            return Err(TangoError::InvalidObjectId(object));
        }
        self.writes.push(WriteItem {
            object,
            key: key.to_vec(),
            data: data.to_vec(),
        });
        Ok(())
    }

    /// The data of the last buffered write of `key`, for read-your-writes.
    pub fn buffered(&self, object: ObjectId, key: &[u8]) -> Option<&[u8]> {
        self.writes
            .iter()
            .rev()
            .find(|w| w.object == object && w.key == key)
            .map(|w| w.data.as_slice())
    }

    /// Appends the commit record and plays the log until its outcome is
    /// known. Read-only transactions append nothing.
    pub fn commit(self) -> Result<TxOutcome, TangoError> {
        if self.writes.is_empty() {
            return Ok(TxOutcome::ReadOnly);
        }
        let record = CommitRecord {
            reads: self.reads,
            writes: self.writes,
        };
        let streams: Vec<StreamId> = record.objects().iter().map(|o| o.stream()).collect();
        let write_only = record.reads.is_empty();
        let p = self.rt.append_record(&streams, &Record::Commit(record))?;
        if write_only {
            return Ok(TxOutcome::Committed(p));
        }
        self.rt.sync_to(p.next())?;
        match self.rt.decision(p) {
            Some(true) => Ok(TxOutcome::Committed(p)),
            Some(false) => Ok(TxOutcome::Aborted(p)),
            None => Err(TangoError::OutcomeUnknown(p)),
        }
    }
}
