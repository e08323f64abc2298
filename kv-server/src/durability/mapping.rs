//! The durability mapping (PROTOCOL.md 5 onto LOGSTACK.md §2-§3): which
//! Tango object each replica record updates, and how the objects' views
//! turn back into the records `Replica::recover` takes.
//!
//! | record | objects written (one log entry) |
//! |---|---|
//! | `Register(Applied{key, reg})` | registers map: `key -> reg` (apply-if-greater) |
//! | `Register(OpSeqReserved{up_to})` | op-seq register |
//! | `Epaxos(Instance(rec))` | instances map: `inst -> rec` (latest wins) |
//! | `Epaxos(Executed(rec))` | ONE transaction: registers map (`key -> register`), last_rmw map (`key -> last_rmw`), executed set (`inst -> rec`) |
//! | `Raft(rec)` (the raft modes) | raft journal: the record itself under the next sequence number |
//!
//! A group of records submitted together becomes one write-only Tango
//! transaction (one commit record, atomic in every stream it names), so
//! a group is all-or-nothing on disk; groups larger than the entry budget
//! are split at record boundaries (each record stays atomic).
//!
//! Instances and executions are stored with a sequence number in front of
//! the record (`order`): several of them can share one log entry (one
//! position), and their order inside it is the order they were made.
//!
//! Restart: registers map -> `Applied` records, op-seq -> `OpSeqReserved`,
//! instances in log order -> `Instance` records, executed set in log
//! order (= execution order, which the dedup table's LRU depends on) ->
//! `Executed` records. The last_rmw map is what the executed set implies
//! after replay; it is read back to check that (a mismatch means a torn
//! or foreign log, and start-up fails rather than diverge). The raft
//! journal is replayed in order, as the raft engine's records must be
//! (an `Entries` record replaces the log's suffix, which a per-index map
//! could not express); it is only written in the raft modes, and its
//! history is bounded by checkpoints, not compacted.

use super::objects::StateMap;
use consensus::{EpaxosPersist, ExecResult, ExecutionRecord, InstanceRecord};
use log_backend::tango::ObjectId;
use log_backend::tango::record::WriteItem;
use registers::{Key, Register, RegisterPersist};
use replica::Record;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const REGISTERS: ObjectId = ObjectId(1);
pub const LAST_RMW: ObjectId = ObjectId(2);
pub const EXECUTED: ObjectId = ObjectId(3);
pub const INSTANCES: ObjectId = ObjectId(4);
pub const OP_SEQ: ObjectId = ObjectId(5);
pub const RAFT_JOURNAL: ObjectId = ObjectId(6);

/// Every object of a replica.
pub const OBJECTS: [ObjectId; 6] = [
    REGISTERS,
    LAST_RMW,
    EXECUTED,
    INSTANCES,
    OP_SEQ,
    RAFT_JOURNAL,
];

/// The op-seq register's one key.
const OP_SEQ_KEY: &[u8] = b"";

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(v).map_err(|e| e.to_string())
}

fn dec<T: DeserializeOwned>(what: &str, b: &[u8]) -> Result<T, String> {
    postcard::from_bytes(b).map_err(|e| format!("bad {what} in the log: {e}"))
}

fn write(object: ObjectId, key: Vec<u8>, data: Vec<u8>) -> WriteItem {
    WriteItem { object, key, data }
}

/// The raft journal's key of its `n`-th record (big-endian: key order is
/// journal order).
pub fn journal_key(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// The number after the journal's last key.
pub fn journal_next(journal: &StateMap) -> u64 {
    journal
        .entries
        .keys()
        .next_back()
        .and_then(|k| <[u8; 8]>::try_from(k.as_slice()).ok())
        .map_or(0, |b| u64::from_be_bytes(b) + 1)
}

/// `order` (big-endian) in front of the encoded record.
fn ordered<T: Serialize>(order: &mut u64, rec: &T) -> Result<Vec<u8>, String> {
    let mut v = order.to_be_bytes().to_vec();
    *order += 1;
    v.extend(enc(rec)?);
    Ok(v)
}

/// Splits what `ordered` made.
fn unordered(b: &[u8]) -> Result<(u64, &[u8]), String> {
    if b.len() < 8 {
        return Err("a record without its order number".into());
    }
    let (n, rest) = b.split_at(8);
    let n = u64::from_be_bytes(n.try_into().map_err(|_| "bad order number")?);
    Ok((n, rest))
}

/// The entries of an ordered object (instances, executions) in the order
/// they were made: by log position, then by order number.
fn in_made_order(map: &StateMap) -> Result<Vec<&[u8]>, String> {
    let mut v = Vec::new();
    for (pos, _, data) in map.positioned() {
        let (n, rec) = unordered(data)?;
        v.push((pos, n, rec));
    }
    v.sort_by_key(|(pos, n, _)| (*pos, *n));
    Ok(v.into_iter().map(|(_, _, r)| r).collect())
}

/// The object writes of one record; `journal` numbers raft records and
/// `order` orders instances and executions within one log entry.
pub fn writes_of(
    record: &Record,
    journal: &mut u64,
    order: &mut u64,
) -> Result<Vec<WriteItem>, String> {
    Ok(match record {
        Record::Raft(_) => {
            let key = journal_key(*journal);
            *journal += 1;
            vec![write(RAFT_JOURNAL, key, enc(record)?)]
        }
        Record::Register(RegisterPersist::Applied { key, reg }) => {
            vec![write(REGISTERS, key.0.clone(), enc(reg)?)]
        }
        Record::Register(RegisterPersist::OpSeqReserved { up_to }) => {
            vec![write(
                OP_SEQ,
                OP_SEQ_KEY.to_vec(),
                up_to.to_le_bytes().to_vec(),
            )]
        }
        Record::Epaxos(EpaxosPersist::Instance(rec)) => {
            vec![write(INSTANCES, enc(&rec.inst)?, ordered(order, rec)?)]
        }
        Record::Epaxos(EpaxosPersist::Executed(rec)) => {
            let mut w = Vec::new();
            match &rec.result {
                ExecResult::Applied {
                    key,
                    last_rmw,
                    register,
                    ..
                } => {
                    w.push(write(REGISTERS, key.0.clone(), enc(register)?));
                    w.push(write(LAST_RMW, key.0.clone(), enc(last_rmw)?));
                }
                ExecResult::Written { key, register, .. } => {
                    w.push(write(REGISTERS, key.0.clone(), enc(register)?));
                }
                ExecResult::Nothing | ExecResult::Duplicate(_) | ExecResult::Read(_) => {}
            }
            w.push(write(EXECUTED, enc(&rec.inst)?, ordered(order, rec)?));
            w
        }
    })
}

/// The object views, by object.
pub struct Views<'a> {
    pub registers: &'a StateMap,
    pub last_rmw: &'a StateMap,
    pub executed: &'a StateMap,
    pub instances: &'a StateMap,
    pub op_seq: &'a StateMap,
    pub raft_journal: &'a StateMap,
}

/// The records that rebuild the replica from the views.
pub fn records_of(v: &Views<'_>) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (key, data) in v.registers.in_log_order() {
        let reg: Register = dec("register", data)?;
        out.push(Record::Register(RegisterPersist::Applied {
            key: Key(key.to_vec()),
            reg,
        }));
    }
    if let Some((_, data)) = v.op_seq.in_log_order().last() {
        let bytes: [u8; 8] = (*data).try_into().map_err(|_| "bad op-seq register")?;
        out.push(Record::Register(RegisterPersist::OpSeqReserved {
            up_to: u64::from_le_bytes(bytes),
        }));
    }
    for data in in_made_order(v.instances)? {
        let rec: InstanceRecord = dec("instance", data)?;
        out.push(Record::Epaxos(EpaxosPersist::Instance(rec)));
    }
    let mut implied_last_rmw = std::collections::BTreeMap::new();
    for data in in_made_order(v.executed)? {
        let rec: ExecutionRecord = dec("execution", data)?;
        if let ExecResult::Applied { key, last_rmw, .. } = &rec.result {
            implied_last_rmw.insert(key.0.clone(), last_rmw.clone());
        }
        out.push(Record::Epaxos(EpaxosPersist::Executed(rec)));
    }
    // Journal order = key order (one key per record, never rewritten).
    for data in v.raft_journal.entries.values().map(|(_, d)| d) {
        let rec: Record = dec("raft record", data)?;
        if !matches!(rec, Record::Raft(_)) {
            return Err("a non-raft record in the raft journal".into());
        }
        out.push(rec);
    }
    for (key, data) in v.last_rmw.in_log_order() {
        let stored: Register = dec("last_rmw", data)?;
        if implied_last_rmw.get(key) != Some(&stored) {
            return Err(format!(
                "last_rmw of key {:?} disagrees with the executed set",
                String::from_utf8_lossy(key)
            ));
        }
    }
    Ok(out)
}
