//! The durable backend: the replica's state as Tango objects over its own
//! shared log (a `RocksLog` in the data directory, group commit, fsync per
//! group), LOGSTACK.md §1-§4. `mapping` says which record updates which
//! object; this file appends them without blocking (`append_async`: the
//! driver awaits the futures, group commit batches them), rebuilds the
//! records from the objects at start-up (latest checkpoint + the log
//! after it), and checkpoints the objects and trims the log below the
//! checkpoints in a background thread, so the log stays bounded.

use super::mapping::{self, OBJECTS, Views};
use super::objects::{Fold, StateMap};
use super::{Durability, DurabilityError, DurableFuture};
use log_backend::tango::record::{CommitRecord, Record as TangoRecord, WriteItem};
use log_backend::tango::{ObjectId, Runtime, RuntimeConfig};
use log_backend::{AppendFuture, AppendId, AppendResult, ClientId, SharedLog, StreamId};
use replica::Record;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Log client ids for one incarnation of the replica: its own appends
/// (even) and the Tango runtime's (checkpoints; odd). Fresh random ids at
/// every start, numbered from 1: the replica never retries an append, so
/// it needs no exactly-once across restarts, and continuing an old id's
/// sequence from `Log::last_seq` is unsafe (after a reopen the engine can
/// report a last sequence number below that client's dedup floor, and the
/// next append fails with `SeqTooOld`). The dedup table forgets old
/// clients by LRU (`DedupConfig::max_clients`).
fn incarnation_clients() -> (ClientId, u64) {
    let base = rand::random::<u64>() & !1;
    (ClientId(base), base | 1)
}

/// An append in the log's queue, or already answered.
enum Appended {
    Done(AppendResult),
    Queued(AppendFuture),
}

/// When to checkpoint.
#[derive(Clone, Debug)]
pub struct CheckpointPolicy {
    /// How often the background thread looks at the log.
    pub interval: Duration,
    /// Checkpoint (and trim) only once the log grew by this many entries
    /// since the last checkpoint.
    pub min_new_entries: u64,
}

/// The replica's records as Tango objects over `log`.
pub struct TangoDurability {
    log: SharedLog,
    runtime: Arc<Runtime>,
    appender: ClientId,
    next_seq: u64,
    /// The raft journal's next record number.
    journal_next: u64,
    /// Orders instances and executions inside one log entry.
    order: u64,
    /// Largest log entry this backend builds (groups are split below it).
    entry_budget: usize,
    stop: Arc<AtomicBool>,
    maintenance: Option<JoinHandle<()>>,
}

fn fold_of(id: ObjectId) -> Fold {
    if id == mapping::REGISTERS {
        Fold::MaxCarstamp
    } else {
        Fold::Latest
    }
}

fn open_err(e: impl std::fmt::Display) -> DurabilityError {
    DurabilityError::Recover(e.to_string())
}

impl TangoDurability {
    /// Hosts the objects over `log` (restoring their latest checkpoints)
    /// and starts the checkpoint thread. `max_entry_bytes` is the log's.
    pub fn open(
        log: SharedLog,
        max_entry_bytes: usize,
        policy: CheckpointPolicy,
    ) -> Result<TangoDurability, DurabilityError> {
        let (appender, runtime_client) = incarnation_clients();
        let runtime = Runtime::new(log.clone(), RuntimeConfig::with_client(runtime_client))
            .map_err(open_err)?;
        for id in OBJECTS {
            runtime
                .host(id, Box::new(StateMap::new(fold_of(id))))
                .map_err(open_err)?;
        }
        let next_seq = log.last_seq(appender).map_err(open_err)?.unwrap_or(0) + 1;
        runtime.query_helper().map_err(open_err)?;
        let journal_next = runtime
            .view(mapping::RAFT_JOURNAL, mapping::journal_next)
            .map_err(open_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let maintenance = {
            let (runtime, stop) = (runtime.clone(), stop.clone());
            std::thread::Builder::new()
                .name("checkpoint".into())
                .spawn(move || maintain(runtime, policy, stop))
                .map_err(open_err)?
        };
        Ok(TangoDurability {
            log,
            runtime,
            appender,
            next_seq,
            journal_next,
            order: 0,
            entry_budget: max_entry_bytes.saturating_sub(64 << 10).max(1),
            stop,
            maintenance: Some(maintenance),
        })
    }

    /// Checkpoints every object and trims the log below the checkpoints;
    /// returns the new trim point.
    pub fn checkpoint_now(&self) -> Result<u64, DurabilityError> {
        checkpoint(&self.runtime)
    }

    /// Appends one entry. The entry is in the log's submission queue when
    /// this returns (if the queue is full it waits for room, which the
    /// group-commit writer makes continuously): a future left blocked
    /// would be submitted later, after entries appended after it, and the
    /// replica's records must reach the log in the order they were made
    /// (restart replays executions in log order).
    fn append(&mut self, writes: Vec<WriteItem>) -> Appended {
        let mut streams: Vec<StreamId> = writes.iter().map(|w| w.object.stream()).collect();
        streams.sort_unstable();
        streams.dedup();
        let record = match <[WriteItem; 1]>::try_from(writes) {
            Ok([w]) => TangoRecord::Update {
                object: w.object,
                key: w.key,
                data: w.data,
            },
            // A write-only transaction: always commits, atomically in every
            // object it names (LOGSTACK.md §3).
            Err(writes) => TangoRecord::Commit(CommitRecord {
                reads: Vec::new(),
                writes,
            }),
        };
        let id = AppendId::new(self.appender, self.next_seq);
        self.next_seq += 1;
        match self
            .log
            .append_async(&streams, &record.encode(), id)
            .wait_timeout(Duration::ZERO)
        {
            Ok(result) => Appended::Done(result),
            Err(queued) => Appended::Queued(queued),
        }
    }
}

fn checkpoint(runtime: &Runtime) -> Result<u64, DurabilityError> {
    runtime.query_helper().map_err(open_err)?;
    for id in OBJECTS {
        runtime.checkpoint(id).map_err(open_err)?;
    }
    let trimmed = runtime.trim_below_checkpoints(&OBJECTS).map_err(open_err)?;
    Ok(trimmed.0)
}

/// The checkpoint thread: bounded log growth without stopping the replica
/// (the runtime plays the log into its own views).
fn maintain(runtime: Arc<Runtime>, policy: CheckpointPolicy, stop: Arc<AtomicBool>) {
    let step = Duration::from_millis(100).min(policy.interval);
    let mut last_tail = 0u64;
    let mut next = Instant::now() + policy.interval;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + policy.interval;
        let tail = match runtime.log().check_tail(&[]) {
            Ok(t) => t.tail.0,
            Err(_) => continue,
        };
        if tail.saturating_sub(last_tail) < policy.min_new_entries {
            continue;
        }
        match checkpoint(&runtime) {
            Ok(trim) => {
                last_tail = tail;
                tracing::info!(
                    tail,
                    trim,
                    "checkpointed the replica's objects and trimmed the log"
                );
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; will retry"),
        }
    }
}

impl Drop for TangoDurability {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.maintenance.take() {
            let _ = t.join();
        }
    }
}

impl Durability<Record> for TangoDurability {
    fn recover(&mut self) -> Result<Vec<Record>, DurabilityError> {
        self.runtime.query_helper().map_err(open_err)?;
        let view = |id| {
            self.runtime
                .view(id, |m: &StateMap| m.clone())
                .map_err(open_err)
        };
        let (registers, last_rmw, executed, instances, op_seq, raft_journal) = (
            view(mapping::REGISTERS)?,
            view(mapping::LAST_RMW)?,
            view(mapping::EXECUTED)?,
            view(mapping::INSTANCES)?,
            view(mapping::OP_SEQ)?,
            view(mapping::RAFT_JOURNAL)?,
        );
        mapping::records_of(&Views {
            registers: &registers,
            last_rmw: &last_rmw,
            executed: &executed,
            instances: &instances,
            op_seq: &op_seq,
            raft_journal: &raft_journal,
        })
        .map_err(DurabilityError::Recover)
    }

    fn submit(&mut self, records: Vec<Record>) -> DurableFuture {
        let mut appends = Vec::new();
        let mut group: Vec<WriteItem> = Vec::new();
        let mut bytes = 0;
        for record in &records {
            let writes = match mapping::writes_of(record, &mut self.journal_next, &mut self.order) {
                Ok(w) => w,
                Err(e) => return Box::pin(std::future::ready(Err(DurabilityError::Encode(e)))),
            };
            let size: usize = writes.iter().map(|w| w.key.len() + w.data.len() + 32).sum();
            if !group.is_empty() && bytes + size > self.entry_budget {
                appends.push(self.append(std::mem::take(&mut group)));
                bytes = 0;
            }
            bytes += size;
            group.extend(writes);
        }
        if !group.is_empty() {
            appends.push(self.append(group));
        }
        Box::pin(async move {
            for a in appends {
                let result = match a {
                    Appended::Done(r) => r,
                    Appended::Queued(f) => f.await,
                };
                result.map_err(|e| DurabilityError::Append(e.to_string()))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
