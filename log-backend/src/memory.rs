//! The in-memory engine: the same contract as the RocksDB engine
//! (LOGSTACK.md §1), deterministic and thread-free, for the simulator.
//! It keeps a synced prefix and an unsynced suffix; `crash()` drops the
//! suffix (and the dedup records of it), as a power cut would. Entries are
//! stored as the same checksummed frames as on disk.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::codec;
use crate::completion::{AppendFuture, Completion};
use crate::config::LogConfig;
use crate::contract::{Log, validate_append};
use crate::dedup::{DedupTable, Lookup};
use crate::error::LogError;
use crate::subscribe::{Subscription, TailWatch};
use crate::types::{AppendId, ClientId, Entry, LogStats, Position, StreamId, Tail};

/// When appends of the memory engine become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every append is synced before it returns (like a batch of one).
    Immediate,
    /// Appends stay pending until `sync()`; `crash()` loses them. The
    /// simulator calls `sync()` when its simulated fsync completes. A
    /// blocking `append` in this mode waits for another thread's `sync()`.
    Manual,
}

struct Pending {
    /// The position that must be synced before `completion` resolves.
    needs: Position,
    result: Position,
    completion: Arc<Completion>,
}

struct State {
    /// Position of `frames[0]`, which is also the trim point.
    base: u64,
    frames: VecDeque<Vec<u8>>,
    index: BTreeSet<(StreamId, Position)>,
    synced: u64,
    sealed: bool,
    dedup: DedupTable,
    /// The dedup table as of the synced prefix, restored by `crash()`.
    dedup_synced: DedupTable,
    unsynced_ids: Vec<(AppendId, Position)>,
    pending: Vec<Pending>,
    stats: LogStats,
}

impl State {
    fn tail(&self) -> u64 {
        self.base + self.frames.len() as u64
    }
}

struct Inner {
    config: LogConfig,
    mode: SyncMode,
    state: Mutex<State>,
    watch: Arc<TailWatch>,
}

/// Handle to an in-memory log; clones share the log.
#[derive(Clone)]
pub struct MemLog {
    inner: Arc<Inner>,
}

impl MemLog {
    pub fn new(config: LogConfig, mode: SyncMode) -> Result<MemLog, LogError> {
        config.validate()?;
        let dedup = DedupTable::new(config.dedup.clone());
        Ok(MemLog {
            inner: Arc::new(Inner {
                mode,
                state: Mutex::new(State {
                    base: 0,
                    frames: VecDeque::new(),
                    index: BTreeSet::new(),
                    synced: 0,
                    sealed: false,
                    dedup_synced: dedup.clone(),
                    dedup,
                    unsynced_ids: Vec::new(),
                    pending: Vec::new(),
                    stats: LogStats::default(),
                }),
                watch: TailWatch::new(Position::ZERO),
                config,
            }),
        })
    }

    /// Makes every appended entry durable and resolves their futures.
    pub fn sync(&self) {
        let mut st = self.inner.state.lock();
        self.sync_locked(&mut st);
    }

    fn sync_locked(&self, st: &mut State) {
        let tail = st.tail();
        if tail > st.synced {
            st.stats.batches += 1;
            let n = tail - st.synced;
            st.stats.records += n;
            st.stats.max_batch_records = st.stats.max_batch_records.max(n);
            let mut evicted = Vec::new();
            for (id, p) in std::mem::take(&mut st.unsynced_ids) {
                st.dedup_synced.insert(id, p, &mut evicted);
            }
            st.synced = tail;
        }
        let synced = st.synced;
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.pending)
            .into_iter()
            .partition(|p| p.needs.0 < synced);
        st.pending = keep;
        for p in done {
            p.completion.complete(Ok(p.result));
        }
        self.inner.watch.publish(Position(synced));
    }

    /// Simulates a crash and restart: the unsynced suffix and its dedup
    /// records are lost; pending appends fail with `Closed`.
    pub fn crash(&self) {
        let mut st = self.inner.state.lock();
        let keep = (st.synced - st.base) as usize;
        st.frames.truncate(keep);
        let synced = Position(st.synced);
        st.index.retain(|(_, p)| *p < synced);
        st.dedup = st.dedup_synced.clone();
        st.unsynced_ids.clear();
        for p in std::mem::take(&mut st.pending) {
            p.completion.complete(Err(LogError::Closed));
        }
    }

    /// Appends not yet synced.
    pub fn unsynced_len(&self) -> u64 {
        let st = self.inner.state.lock();
        st.tail() - st.synced
    }

    /// Fault injection: flips one bit of the stored frame at `position`.
    /// Returns false if there is no such frame.
    pub fn corrupt_entry(&self, position: Position) -> bool {
        let mut st = self.inner.state.lock();
        let Some(i) = position.0.checked_sub(st.base) else {
            return false;
        };
        match st.frames.get_mut(i as usize).and_then(|f| f.last_mut()) {
            Some(b) => {
                *b ^= 0x01;
                true
            }
            None => false,
        }
    }

    fn check_readable(st: &State, position: Position) -> Result<(), LogError> {
        if position.0 < st.base {
            return Err(LogError::Trimmed {
                position,
                trim_point: Position(st.base),
            });
        }
        if position.0 >= st.synced {
            return Err(LogError::NotWritten {
                position,
                tail: Position(st.synced),
            });
        }
        Ok(())
    }
}

impl Log for MemLog {
    fn append_async(&self, streams: &[StreamId], payload: &[u8], id: AppendId) -> AppendFuture {
        let streams = match validate_append(&self.inner.config, streams, payload) {
            Ok(s) => s,
            Err(e) => return AppendFuture::ready(Err(e)),
        };
        let mut st = self.inner.state.lock();
        if st.sealed {
            return AppendFuture::ready(Err(LogError::Sealed));
        }
        let position = match st.dedup.lookup(id) {
            Lookup::TooOld { floor } => {
                return AppendFuture::ready(Err(LogError::SeqTooOld {
                    client: id.client,
                    seq: id.seq,
                    floor,
                }));
            }
            Lookup::Hit(p) => {
                st.stats.deduplicated += 1;
                if p.0 < st.synced {
                    return AppendFuture::ready(Ok(p));
                }
                p
            }
            Lookup::Miss => {
                let p = Position(st.tail());
                let mut frame = codec::encode(&streams, id, payload);
                codec::set_position(&mut frame, p);
                st.frames.push_back(frame);
                for s in &streams {
                    st.index.insert((*s, p));
                }
                let mut evicted = Vec::new();
                st.dedup.insert(id, p, &mut evicted);
                st.unsynced_ids.push((id, p));
                st.stats.payload_bytes += payload.len() as u64;
                p
            }
        };
        let completion = Completion::new();
        st.pending.push(Pending {
            needs: position,
            result: position,
            completion: completion.clone(),
        });
        if self.inner.mode == SyncMode::Immediate {
            self.sync_locked(&mut st);
        }
        AppendFuture::pending(completion)
    }

    fn read(&self, position: Position) -> Result<Entry, LogError> {
        let st = self.inner.state.lock();
        Self::check_readable(&st, position)?;
        let frame = &st.frames[(position.0 - st.base) as usize];
        codec::decode(position, frame)
    }

    fn read_next(
        &self,
        stream: StreamId,
        from: Position,
        limit: usize,
    ) -> Result<Vec<Entry>, LogError> {
        let st = self.inner.state.lock();
        if from.0 < st.base {
            return Err(LogError::Trimmed {
                position: from,
                trim_point: Position(st.base),
            });
        }
        let limit = limit.min(self.inner.config.max_read_batch);
        st.index
            .range((stream, from)..(stream, Position(st.synced)))
            .take(limit)
            .map(|(_, p)| codec::decode(*p, &st.frames[(p.0 - st.base) as usize]))
            .collect()
    }

    fn check_tail(&self, streams: &[StreamId]) -> Result<Tail, LogError> {
        let st = self.inner.state.lock();
        let base = Position(st.base);
        let synced = Position(st.synced);
        Ok(Tail {
            tail: synced,
            trim_point: base,
            streams: streams
                .iter()
                .map(|s| {
                    let last = st.index.range((*s, base)..(*s, synced)).next_back();
                    (*s, last.map(|(_, p)| *p))
                })
                .collect(),
            sealed: st.sealed,
        })
    }

    fn prefix_trim(&self, below: Position) -> Result<(), LogError> {
        let mut st = self.inner.state.lock();
        if below.0 > st.synced {
            return Err(LogError::TrimBeyondTail {
                requested: below,
                tail: Position(st.synced),
            });
        }
        while st.base < below.0 {
            st.frames.pop_front();
            st.base += 1;
        }
        st.index.retain(|(_, p)| *p >= below);
        Ok(())
    }

    fn seal(&self) -> Result<Position, LogError> {
        let mut st = self.inner.state.lock();
        // Appends submitted before the seal are part of the sealed log, as
        // they would be on the RocksDB engine's single write path.
        self.sync_locked(&mut st);
        st.sealed = true;
        Ok(Position(st.synced))
    }

    fn subscribe(&self, from: Position) -> Subscription {
        Subscription::new(Arc::new(self.clone()), self.inner.watch.clone(), from)
    }

    fn last_seq(&self, client: ClientId) -> Result<Option<u64>, LogError> {
        Ok(self.inner.state.lock().dedup.last_seq(client))
    }

    fn stats(&self) -> LogStats {
        self.inner.state.lock().stats
    }
}
