//! raft-rs's `Storage` over an in-memory log (raft-rs's "Storage"
//! contract; PROTOCOL.md 5): the entries and hard state that the engine
//! persisted as [`crate::raft::RaftPersist`] records, rebuilt from those records after
//! a restart. The log is never compacted (like EPaxos instances; a
//! checkpoint protocol is future work), so no snapshot is ever needed.

use crate::raft::messages::{HardStateRecord, LogEntry};
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// The durable raft state of one replica, in memory.
#[derive(Clone, Debug)]
pub struct LogStore {
    hard_state: HardState,
    conf_state: ConfState,
    /// `entries[i].index == i + 1`.
    entries: Vec<Entry>,
}

/// An append that would leave a gap in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("append at {first} leaves a gap after {last}")]
pub struct LogGap {
    pub first: u64,
    pub last: u64,
}

impl LogStore {
    /// An empty log of a cluster whose members are raft ids `voters`.
    pub fn new(voters: Vec<u64>) -> LogStore {
        LogStore {
            hard_state: HardState::default(),
            conf_state: ConfState {
                voters,
                ..ConfState::default()
            },
            entries: Vec::new(),
        }
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn hard_state(&self) -> HardStateRecord {
        HardStateRecord {
            term: self.hard_state.term,
            vote: self.hard_state.vote,
            commit: self.hard_state.commit,
        }
    }

    pub fn set_hard_state(&mut self, hs: HardStateRecord) {
        self.hard_state.term = hs.term;
        self.hard_state.vote = hs.vote;
        self.hard_state.commit = hs.commit;
    }

    /// Appends `ents` (contiguous, starting at most one past the end),
    /// dropping whatever the log held from `ents[0].index` on.
    pub fn append(&mut self, ents: &[Entry]) -> Result<(), LogGap> {
        let Some(first) = ents.first().map(|e| e.index) else {
            return Ok(());
        };
        let contiguous = ents
            .iter()
            .enumerate()
            .all(|(i, e)| e.index == first + i as u64);
        if first == 0 || first > self.last_index() + 1 || !contiguous {
            return Err(LogGap {
                first,
                last: self.last_index(),
            });
        }
        self.entries.truncate((first - 1) as usize);
        self.entries.extend_from_slice(ents);
        Ok(())
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let i = index.checked_sub(1)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// Term of the entry at `index` (0 for index 0), if the log holds it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        self.entry(index).map(|e| e.term)
    }
}

/// The record form of a raft entry.
pub fn to_record(e: &Entry) -> LogEntry {
    LogEntry {
        index: e.index,
        term: e.term,
        data: e.data.to_vec(),
    }
}

/// The raft entry of a record.
pub fn from_record(r: &LogEntry) -> Entry {
    Entry {
        index: r.index,
        term: r.term,
        data: r.data.clone().into(),
        ..Entry::default()
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low == 0 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut ents = self.entries[(low - 1) as usize..(high - 1) as usize].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.term_at(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(LogStore::last_index(self))
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Never needed: nothing is compacted, so raft always has the
        // entries a follower lacks.
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn e(index: u64, term: u64) -> Entry {
        from_record(&LogEntry {
            index,
            term,
            data: vec![index as u8],
        })
    }

    #[test]
    fn appends_replace_the_suffix_and_refuse_gaps() {
        let mut s = LogStore::new(vec![1, 2, 3]);
        s.append(&[e(1, 1), e(2, 1), e(3, 1)]).unwrap();
        s.append(&[e(2, 2)]).unwrap();
        assert_eq!(Storage::last_index(&s).unwrap(), 2);
        assert_eq!(s.term(2).unwrap(), 2);
        assert_eq!(s.term(0).unwrap(), 0);
        assert!(s.term(3).is_err());
        assert_eq!(s.append(&[e(4, 2)]), Err(LogGap { first: 4, last: 2 }));
        assert!(s.append(&[e(3, 2), e(5, 2)]).is_err());
        assert!(s.append(&[e(0, 2)]).is_err());
        assert_eq!(
            s.entries(1, 3, None, GetEntriesContext::empty(false))
                .unwrap()
                .len(),
            2
        );
        assert!(
            s.entries(1, 4, None, GetEntriesContext::empty(false))
                .is_err()
        );
        assert!(
            s.entries(0, 1, None, GetEntriesContext::empty(false))
                .is_err()
        );
    }

    #[test]
    fn records_round_trip_and_initial_state_has_the_voters() {
        let r = LogEntry {
            index: 3,
            term: 2,
            data: b"x".to_vec(),
        };
        assert_eq!(to_record(&from_record(&r)), r);
        let mut s = LogStore::new(vec![1, 2, 3]);
        s.set_hard_state(HardStateRecord {
            term: 4,
            vote: 2,
            commit: 0,
        });
        let st = s.initial_state().unwrap();
        assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
        assert_eq!(st.hard_state.term, 4);
        assert_eq!(s.hard_state().vote, 2);
    }
}
