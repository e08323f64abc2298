//! The Tango runtime (Tango §3, LOGSTACK.md §2): hosts objects by id over
//! one shared log, offers the update helper (append to the object's
//! stream) and the query helper (check_tail, then play the hosted streams
//! up to it), and waits out or resolves undecided transactions.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::object::TangoObject;
use super::play::{self, Played};
use super::record::{Record, Version};
use super::{ObjectId, RuntimeConfig, TangoError, checkpoint};
use crate::contract::SharedLog;
use crate::types::{AppendId, Position, StreamId};

/// Counters of one runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Updates applied to hosted views (plain and transactional).
    pub applied: u64,
    pub committed: u64,
    pub aborted: u64,
    /// Entries on hosted streams that were not valid records, or that an
    /// object rejected; every view skips them alike.
    pub skipped: u64,
    /// Decision records this runtime appended.
    pub decisions_appended: u64,
    /// Views restored from a checkpoint.
    pub restored: u64,
}

pub(crate) struct Hosted {
    pub object: Box<dyn TangoObject>,
    /// Every entry of the object's stream below this position is folded in.
    pub next: Position,
    /// Per key, the position of its last committed update (its version).
    pub versions: HashMap<Vec<u8>, Position>,
}

/// Bounded memory of recent transaction outcomes, by commit position.
pub(crate) struct Recent {
    map: HashMap<Position, bool>,
    order: VecDeque<Position>,
    cap: usize,
}

impl Recent {
    pub(crate) fn insert(&mut self, p: Position, committed: bool) {
        if self.map.insert(p, committed).is_none() {
            self.order.push_back(p);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub(crate) fn get(&self, p: Position) -> Option<bool> {
        self.map.get(&p).copied()
    }
}

pub(crate) struct State {
    pub objects: BTreeMap<ObjectId, Hosted>,
    /// The undecided commit playback is stopped at, and since when.
    pub stall: Option<(Position, Instant)>,
    pub recent: Recent,
    pub stats: RuntimeStats,
}

/// A Tango runtime: one client of the shared log hosting some objects.
pub struct Runtime {
    pub(crate) log: SharedLog,
    pub(crate) config: RuntimeConfig,
    seq: AtomicU64,
    pub(crate) state: Mutex<State>,
}

impl Runtime {
    /// A runtime appending as `config.client`; it continues that client's
    /// sequence numbers from the log's dedup table, so a restarted runtime
    /// does not reuse them.
    pub fn new(log: SharedLog, config: RuntimeConfig) -> Result<Arc<Runtime>, TangoError> {
        config.validate()?;
        let last = log.last_seq(config.client_id())?.unwrap_or(0);
        Ok(Arc::new(Runtime {
            seq: AtomicU64::new(last + 1),
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                stall: None,
                recent: Recent {
                    map: HashMap::new(),
                    order: VecDeque::new(),
                    cap: config.recent_decisions,
                },
                stats: RuntimeStats::default(),
            }),
            log,
            config,
        }))
    }

    pub fn log(&self) -> &SharedLog {
        &self.log
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub(crate) fn next_id(&self) -> AppendId {
        AppendId::new(
            self.config.client_id(),
            self.seq.fetch_add(1, Ordering::Relaxed),
        )
    }

    pub(crate) fn append_record(
        &self,
        streams: &[StreamId],
        record: &Record,
    ) -> Result<Position, TangoError> {
        Ok(self.log.append(streams, &record.encode(), self.next_id())?)
    }

    /// Hosts `object` under `id`: restores its latest checkpoint if there
    /// is one, and plays its stream from there on the next query. On a
    /// trimmed log an object without a checkpoint cannot be rebuilt
    /// (`ViewLost`); see `host_new`.
    pub fn host(&self, id: ObjectId, object: Box<dyn TangoObject>) -> Result<(), TangoError> {
        if !id.is_valid() {
            return Err(TangoError::InvalidObjectId(id));
        }
        let mut st = self.state.lock();
        if st.objects.contains_key(&id) {
            return Err(TangoError::AlreadyHosted(id));
        }
        st.objects.insert(
            id,
            Hosted {
                object,
                next: Position::ZERO,
                versions: HashMap::new(),
            },
        );
        if let Err(e) = checkpoint::reload(self, &mut st, id, false) {
            st.objects.remove(&id);
            return Err(e);
        }
        Ok(())
    }

    /// Hosts a brand-new object (its stream has no history): it starts at
    /// the current tail, and an initial checkpoint is written so that it
    /// can be rebuilt even after the log is trimmed. Use `host` for an
    /// object that may have history.
    pub fn host_new(&self, id: ObjectId, object: Box<dyn TangoObject>) -> Result<(), TangoError> {
        if !id.is_valid() {
            return Err(TangoError::InvalidObjectId(id));
        }
        let tail = self.log.check_tail(&[])?.tail;
        {
            let mut st = self.state.lock();
            if st.objects.contains_key(&id) {
                return Err(TangoError::AlreadyHosted(id));
            }
            st.objects.insert(
                id,
                Hosted {
                    object,
                    next: tail,
                    versions: HashMap::new(),
                },
            );
        }
        self.checkpoint(id)?;
        Ok(())
    }

    /// The update helper: appends an update of `key` to the object's
    /// stream. The object need not be hosted here. Visible to views once
    /// they play past the returned position.
    pub fn update_helper(
        &self,
        object: ObjectId,
        key: &[u8],
        data: &[u8],
    ) -> Result<Position, TangoError> {
        if !object.is_valid() {
            return Err(TangoError::InvalidObjectId(object));
        }
        let rec = Record::Update {
            object,
            key: key.to_vec(),
            data: data.to_vec(),
        };
        self.append_record(&[object.stream()], &rec)
    }

    /// The query helper: a linearizable sync of every hosted view. Takes
    /// the log's tail, then plays the hosted streams up to it. Returns the
    /// tail the views now reflect.
    pub fn query_helper(&self) -> Result<Position, TangoError> {
        let streams: Vec<StreamId> = self
            .state
            .lock()
            .objects
            .keys()
            .map(|o| o.stream())
            .collect();
        let tail = self.log.check_tail(&streams)?.tail;
        self.sync_to(tail)?;
        Ok(tail)
    }

    /// Plays the hosted views up to `target` (exclusive). When playback
    /// stops at a transaction whose outcome comes from a decision record
    /// not yet written, it waits; it appends the decision itself if the
    /// commit is its own, or after `decision_timeout_ms` (the validated
    /// outcome if it hosts the read set, abort otherwise).
    pub fn sync_to(&self, target: Position) -> Result<(), TangoError> {
        let timeout = Duration::from_millis(self.config.decision_timeout_ms);
        let mut backoff = Duration::from_micros(100);
        loop {
            let decision = {
                let mut st = self.state.lock();
                match play::play(self, &mut st, target)? {
                    Played::Done => return Ok(()),
                    Played::Stalled {
                        commit,
                        record,
                        streams,
                        own,
                    } => {
                        let now = Instant::now();
                        let since = match st.stall {
                            Some((p, t)) if p == commit => t,
                            _ => {
                                st.stall = Some((commit, now));
                                now
                            }
                        };
                        let timed_out = now.duration_since(since) >= timeout;
                        let decided = if own || timed_out {
                            play::validate(&st, commit, &record)
                        } else {
                            None
                        };
                        match decided {
                            Some(ok) => Some((commit, ok, streams)),
                            None if timed_out => Some((commit, false, streams)),
                            None => None,
                        }
                    }
                }
            };
            match decision {
                Some((commit, committed, streams)) => {
                    self.append_record(&streams, &Record::Decision { commit, committed })?;
                    self.state.lock().stats.decisions_appended += 1;
                }
                None => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    /// Runs `f` on the view of `id`, which must be of type `T`. Does not
    /// sync: call `query_helper` first for a linearizable read.
    pub fn view<T: TangoObject, R>(
        &self,
        id: ObjectId,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R, TangoError> {
        let st = self.state.lock();
        let h = st.objects.get(&id).ok_or(TangoError::UnknownObject(id))?;
        let any: &dyn Any = h.object.as_ref();
        any.downcast_ref::<T>()
            .map(f)
            .ok_or(TangoError::WrongType(id))
    }

    /// Like `view`, also returning the key's version, atomically.
    pub(crate) fn view_versioned<T: TangoObject, R>(
        &self,
        id: ObjectId,
        key: &[u8],
        f: impl FnOnce(&T) -> R,
    ) -> Result<(Version, R), TangoError> {
        let st = self.state.lock();
        let h = st.objects.get(&id).ok_or(TangoError::UnknownObject(id))?;
        let any: &dyn Any = h.object.as_ref();
        let t = any.downcast_ref::<T>().ok_or(TangoError::WrongType(id))?;
        Ok((h.versions.get(key).copied(), f(t)))
    }

    /// The version of `key` in the view of `id`.
    pub fn version(&self, id: ObjectId, key: &[u8]) -> Result<Version, TangoError> {
        let st = self.state.lock();
        let h = st.objects.get(&id).ok_or(TangoError::UnknownObject(id))?;
        Ok(h.versions.get(key).copied())
    }

    /// The position up to which the view of `id` reflects the log.
    pub fn applied_to(&self, id: ObjectId) -> Result<Position, TangoError> {
        let st = self.state.lock();
        Ok(st
            .objects
            .get(&id)
            .ok_or(TangoError::UnknownObject(id))?
            .next)
    }

    /// The outcome of the transaction whose commit record is at `commit`,
    /// if this runtime played it recently.
    pub fn decision(&self, commit: Position) -> Option<bool> {
        self.state.lock().recent.get(commit)
    }

    /// Recent decisions, by commit position (bounded by
    /// `recent_decisions`); two views of the same log agree on the ones
    /// they both played.
    pub fn recent_decisions(&self) -> Vec<(Position, bool)> {
        let st = self.state.lock();
        let mut v: Vec<_> = st.recent.map.iter().map(|(p, c)| (*p, *c)).collect();
        v.sort_unstable();
        v
    }

    pub fn stats(&self) -> RuntimeStats {
        self.state.lock().stats
    }
}
