//! Playing the log into hosted views, and deciding transactions (Tango §3
//! "transactions over streams", LOGSTACK.md §3). Hosted streams are merged
//! in log order, so a commit record on several streams is applied at one
//! position to every hosted object it writes, and every view decides from
//! the same log prefix:
//!
//! - single-object (and write-only) transactions are decided by each view:
//!   commit iff every key read still has the version recorded in the read
//!   set (no committed update between the read and the commit record);
//! - transactions that read and span several objects take the outcome of
//!   the first decision record for them in the log. A view that hosts only
//!   some of the objects could not check the read set ("don't know!"); a
//!   view that could must still follow the record, because an abandoned
//!   transaction may have been aborted by one (see `Runtime::sync_to`).

use std::collections::BTreeMap;

use super::checkpoint;
use super::object::Update;
use super::record::{CommitRecord, Record};
use super::runtime::{Runtime, State};
use super::{ObjectId, TangoError};
use crate::error::LogError;
use crate::types::{Entry, Position, StreamId};

pub(crate) enum Played {
    Done,
    /// Stopped at an undecided commit record.
    Stalled {
        commit: Position,
        record: CommitRecord,
        /// The streams of the commit record, where its decision goes.
        streams: Vec<StreamId>,
        /// Appended by this runtime's client (possibly before a restart).
        own: bool,
    },
}

enum Step {
    Next,
    Stall(Played),
}

/// Plays every hosted view up to `target` (exclusive), or to a stall.
pub(crate) fn play(rt: &Runtime, st: &mut State, target: Position) -> Result<Played, TangoError> {
    loop {
        let Some(cursor) = st.objects.values().map(|h| h.next).min() else {
            return Ok(Played::Done);
        };
        if cursor >= target {
            return Ok(Played::Done);
        }
        let Some((window, horizon)) = fetch(rt, st, target)? else {
            // A view was restored from a checkpoint: recompute the cursor.
            continue;
        };
        for e in window.into_values() {
            let p = e.position;
            if let Step::Stall(s) = process(rt, st, e)? {
                advance(st, p);
                return Ok(s);
            }
            advance(st, p.next());
        }
        advance(st, horizon);
    }
}

/// Moves every view that is behind `to` up to it: the caller has played
/// all their entries below it.
fn advance(st: &mut State, to: Position) {
    for h in st.objects.values_mut() {
        if h.next < to {
            h.next = to;
        }
    }
    if matches!(st.stall, Some((p, _)) if p < to) {
        st.stall = None;
    }
}

/// Reads the next batch of every hosted stream and merges them. Returns
/// the entries below the horizon (the first position some stream may
/// still have unread entries before), or None after restoring a view
/// that had fallen below the trim point.
/// Entries of one playback round, by position, and the round's horizon.
type Window = (BTreeMap<Position, Entry>, Position);

fn fetch(rt: &Runtime, st: &mut State, target: Position) -> Result<Option<Window>, TangoError> {
    let batch = rt.config.read_batch;
    let mut merged = BTreeMap::new();
    let mut horizon = target;
    let behind: Vec<(ObjectId, Position)> = st
        .objects
        .iter()
        .filter(|(_, h)| h.next < target)
        .map(|(id, h)| (*id, h.next))
        .collect();
    for (id, from) in behind {
        let entries = match rt.log.read_next(id.stream(), from, batch) {
            Ok(v) => v,
            Err(LogError::Trimmed { .. }) => {
                checkpoint::reload(rt, st, id, true)?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if entries.len() >= batch
            && let Some(last) = entries.last()
        {
            horizon = horizon.min(last.position.next());
        }
        for e in entries {
            if e.position < target {
                merged.insert(e.position, e);
            }
        }
    }
    let window = merged.into_iter().filter(|(p, _)| *p < horizon).collect();
    Ok(Some((window, horizon)))
}

fn process(rt: &Runtime, st: &mut State, e: Entry) -> Result<Step, TangoError> {
    let p = e.position;
    let relevant: Vec<ObjectId> = st
        .objects
        .iter()
        .filter(|(id, h)| h.next <= p && e.is_on(id.stream()))
        .map(|(id, _)| *id)
        .collect();
    if relevant.is_empty() {
        return Ok(Step::Next);
    }
    let record = match Record::decode(&e.payload) {
        Ok(r) => r,
        Err(_) => {
            st.stats.skipped += 1;
            return Ok(Step::Next);
        }
    };
    match record {
        Record::Update { object, key, data } => {
            if relevant.contains(&object) {
                apply(st, object, &key, &data, p);
            }
        }
        Record::Commit(c) => {
            let writes_here = c.writes.iter().any(|w| relevant.contains(&w.object));
            let own = e.id.client == rt.config.client_id();
            // Commits that write none of our objects do not concern us,
            // except our own cross-object ones: we owe them a decision.
            if !(writes_here || own && c.needs_decision()) {
                return Ok(Step::Next);
            }
            let decided = if c.reads.is_empty() {
                Some(true)
            } else if !c.needs_decision() {
                validate(st, p, &c)
            } else {
                find_decision(rt, &e)?
            };
            let Some(committed) = decided else {
                return Ok(Step::Stall(Played::Stalled {
                    commit: p,
                    record: c,
                    streams: e.streams,
                    own,
                }));
            };
            if committed {
                for w in c.writes.iter().filter(|w| relevant.contains(&w.object)) {
                    apply(st, w.object, &w.key, &w.data, p);
                }
                st.stats.committed += 1;
            } else {
                st.stats.aborted += 1;
            }
            st.recent.insert(p, committed);
        }
        Record::Decision { .. } | Record::Checkpoint(_) => {}
    }
    Ok(Step::Next)
}

fn apply(st: &mut State, object: ObjectId, key: &[u8], data: &[u8], p: Position) {
    let Some(h) = st.objects.get_mut(&object) else {
        return;
    };
    match h.object.apply(Update { key, data }, p) {
        Ok(()) => {
            h.versions.insert(key.to_vec(), p);
            st.stats.applied += 1;
        }
        Err(_) => st.stats.skipped += 1,
    }
}

/// Checks the read set of the commit at `p` against the views, which must
/// reflect exactly the log below `p`. None if this runtime cannot tell
/// (an object of the read set is not hosted, or its view is past `p`).
pub(crate) fn validate(st: &State, p: Position, c: &CommitRecord) -> Option<bool> {
    let mut ok = true;
    for r in &c.reads {
        let h = st.objects.get(&r.object)?;
        if h.next > p {
            return None;
        }
        ok &= h.versions.get(&r.key).copied() == r.version;
    }
    Some(ok)
}

/// The first decision record for the commit in `e`, searched on one of its
/// streams that this runtime reads (decisions go to every stream of the
/// commit). Looks up to the log's current tail: the outcome is the first
/// decision wherever it is.
fn find_decision(rt: &Runtime, e: &Entry) -> Result<Option<bool>, TangoError> {
    let Some(stream) = e.streams.first().copied() else {
        return Ok(None);
    };
    let batch = rt.config.read_batch;
    let mut from = e.position.next();
    loop {
        let entries = rt.log.read_next(stream, from, batch)?;
        for x in &entries {
            if let Ok(Record::Decision { commit, committed }) = Record::decode(&x.payload)
                && commit == e.position
            {
                return Ok(Some(committed));
            }
        }
        match entries.last() {
            Some(last) if entries.len() >= batch => from = last.position.next(),
            _ => return Ok(None),
        }
    }
}
