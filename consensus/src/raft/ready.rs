//! raft-rs's Ready loop as effects (raft-rs, "RawNode" docs; PROTOCOL.md
//! 5). For each Ready, in order:
//!
//! 1. `messages()`: sends that need nothing durable here (a leader's
//!    appends may leave before its own copy is on disk);
//! 2. new entries, then the hard state: `Persist` records, so every later
//!    send and reply waits until they are durable;
//! 3. `persisted_messages()`: votes and append acknowledgements, which
//!    promise what step 2 persisted;
//! 4. committed entries (raft-rs hands out only entries that are also
//!    persisted here) are executed (`apply`);
//! 5. `advance`, then the light ready: a new commit index (persisted
//!    before the entries it commits are executed), its messages and its
//!    committed entries.
//!
//! Persisting the commit index before executing keeps a restart
//! consistent: a durable execution record never lies beyond the durable
//! commit index.

use crate::raft::config::replica_of;
use crate::raft::machine::RaftEngine;
use crate::raft::messages::{RaftEffect, RaftMsg, RaftPersist};
use crate::raft::storage::to_record;
use protobuf::Message as _;
use raft::eraftpb::Message;
use registers::{Effect, RegisterStore};

/// Bound on Ready rounds per input (each round consumes raft's output;
/// in practice one or two suffice).
const MAX_READY_ROUNDS: usize = 64;

impl RaftEngine {
    /// Turns everything raft has ready into effects.
    pub(crate) fn drain_ready(&mut self, store: &mut RegisterStore, out: &mut Vec<RaftEffect>) {
        for _ in 0..MAX_READY_ROUNDS {
            if !self.raw.has_ready() {
                return;
            }
            let mut rd = self.raw.ready();
            self.send_raft(rd.take_messages(), out);
            // Snapshots never occur: nothing is compacted (see `storage`).
            let entries = rd.take_entries();
            if !entries.is_empty() {
                if self.raw.mut_store().append(&entries).is_err() {
                    // raft-rs hands out contiguous entries; count, never panic.
                    self.stats.bad_records += 1;
                }
                out.push(Effect::Persist(RaftPersist::Entries(
                    entries.iter().map(to_record).collect(),
                )));
            }
            if let Some(hs) = rd.hs() {
                let rec = crate::raft::messages::HardStateRecord {
                    term: hs.term,
                    vote: hs.vote,
                    commit: hs.commit,
                };
                self.raw.mut_store().set_hard_state(rec);
                out.push(Effect::Persist(RaftPersist::HardState(rec)));
            }
            self.send_raft(rd.take_persisted_messages(), out);
            let committed = rd.take_committed_entries();
            self.apply_committed(committed, store, out);
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                let mut rec = self.raw.store().hard_state();
                rec.commit = commit;
                self.raw.mut_store().set_hard_state(rec);
                out.push(Effect::Persist(RaftPersist::HardState(rec)));
            }
            self.send_raft(light.take_messages(), out);
            let committed = light.take_committed_entries();
            self.apply_committed(committed, store, out);
            self.raw.advance_apply();
        }
    }

    /// raft-rs messages go out as protobuf bytes.
    fn send_raft(&mut self, msgs: Vec<Message>, out: &mut Vec<RaftEffect>) {
        for m in msgs {
            let Some(to) = replica_of(m.to, self.cfg.replicas) else {
                continue;
            };
            match m.write_to_bytes() {
                Ok(bytes) => self.send(to, RaftMsg::Raft(bytes), out),
                Err(_) => self.stats.bad_input += 1,
            }
        }
    }
}
