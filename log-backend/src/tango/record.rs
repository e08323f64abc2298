//! What Tango puts in log payloads (Tango §3-§4, LOGSTACK.md §2-§4):
//! object updates, transaction commit records (read set and write set),
//! decision records and checkpoint chunks. Hand-rolled, versioned binary
//! encoding; decoding is bounds-checked and never panics, because a log
//! entry may come from any writer.

use crate::types::Position;

use super::ObjectId;

/// The version of a key: the position of the last committed update to it,
/// `None` if it was never written.
pub type Version = Option<Position>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadItem {
    pub object: ObjectId,
    pub key: Vec<u8>,
    pub version: Version,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteItem {
    pub object: ObjectId,
    pub key: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    pub reads: Vec<ReadItem>,
    pub writes: Vec<WriteItem>,
}

impl CommitRecord {
    /// The objects the transaction touched, sorted.
    pub fn objects(&self) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = self
            .reads
            .iter()
            .map(|r| r.object)
            .chain(self.writes.iter().map(|w| w.object))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether the outcome is taken from a decision record rather than
    /// computed by each view. Derived from the record alone, so every view
    /// agrees: a transaction that reads and spans several objects may be
    /// played by a view that hosts only some of them and so cannot check
    /// the read set (LOGSTACK.md §3, the Tango "don't know!" case).
    pub fn needs_decision(&self) -> bool {
        !self.reads.is_empty() && !self.writes.is_empty() && self.objects().len() > 1
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointChunk {
    pub object: ObjectId,
    /// Names one checkpoint: (client, seq) of the append of its first chunk.
    pub id: (u64, u64),
    /// Every log entry below this position is reflected in the state.
    pub reflects: Position,
    pub index: u32,
    pub count: u32,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Update {
        object: ObjectId,
        key: Vec<u8>,
        data: Vec<u8>,
    },
    Commit(CommitRecord),
    Decision {
        commit: Position,
        committed: bool,
    },
    Checkpoint(CheckpointChunk),
}

const FORMAT: u8 = 1;
const TAG_UPDATE: u8 = 1;
const TAG_COMMIT: u8 = 2;
const TAG_DECISION: u8 = 3;
const TAG_CHECKPOINT: u8 = 4;

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(FORMAT);
        match self {
            Record::Update { object, key, data } => {
                w.u8(TAG_UPDATE);
                w.u64(object.0);
                w.bytes(key);
                w.bytes(data);
            }
            Record::Commit(c) => {
                w.u8(TAG_COMMIT);
                w.u32(c.reads.len() as u32);
                for r in &c.reads {
                    w.u64(r.object.0);
                    w.bytes(&r.key);
                    w.version(r.version);
                }
                w.u32(c.writes.len() as u32);
                for x in &c.writes {
                    w.u64(x.object.0);
                    w.bytes(&x.key);
                    w.bytes(&x.data);
                }
            }
            Record::Decision { commit, committed } => {
                w.u8(TAG_DECISION);
                w.u64(commit.0);
                w.u8(u8::from(*committed));
            }
            Record::Checkpoint(c) => {
                w.u8(TAG_CHECKPOINT);
                w.u64(c.object.0);
                w.u64(c.id.0);
                w.u64(c.id.1);
                w.u64(c.reflects.0);
                w.u32(c.index);
                w.u32(c.count);
                w.bytes(&c.data);
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Record, String> {
        let mut r = Reader { buf, at: 0 };
        if r.u8()? != FORMAT {
            return Err("unknown record format".into());
        }
        let rec = match r.u8()? {
            TAG_UPDATE => Record::Update {
                object: ObjectId(r.u64()?),
                key: r.bytes()?,
                data: r.bytes()?,
            },
            TAG_COMMIT => {
                let n = r.count(13)?;
                let mut reads = Vec::with_capacity(n);
                for _ in 0..n {
                    reads.push(ReadItem {
                        object: ObjectId(r.u64()?),
                        key: r.bytes()?,
                        version: r.version()?,
                    });
                }
                let n = r.count(16)?;
                let mut writes = Vec::with_capacity(n);
                for _ in 0..n {
                    writes.push(WriteItem {
                        object: ObjectId(r.u64()?),
                        key: r.bytes()?,
                        data: r.bytes()?,
                    });
                }
                Record::Commit(CommitRecord { reads, writes })
            }
            TAG_DECISION => Record::Decision {
                commit: Position(r.u64()?),
                committed: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err("bad decision flag".into()),
                },
            },
            TAG_CHECKPOINT => Record::Checkpoint(CheckpointChunk {
                object: ObjectId(r.u64()?),
                id: (r.u64()?, r.u64()?),
                reflects: Position(r.u64()?),
                index: r.u32()?,
                count: r.u32()?,
                data: r.bytes()?,
            }),
            t => return Err(format!("unknown record tag {t}")),
        };
        if r.at != buf.len() {
            return Err("trailing bytes after record".into());
        }
        Ok(rec)
    }
}

/// Appends big-endian fields; lengths are u32 (entries are far smaller).
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn version(&mut self, v: Version) {
        match v {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.u64(p.0);
            }
        }
    }
}

/// Reads fields back, failing (never panicking) on short input.
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err("record truncated".into()),
        }
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// A count of items of at least `min_size` bytes each, checked against
    /// the remaining input so a forged count cannot make us allocate much.
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() - self.at {
            return Err("item count larger than the record".into());
        }
        Ok(n)
    }
    pub(crate) fn done(&self) -> bool {
        self.at == self.buf.len()
    }
    fn version(&mut self) -> Result<Version, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(Position(self.u64()?))),
            _ => Err("bad version flag".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        vec![
            Record::Update {
                object: ObjectId(3),
                key: b"k".to_vec(),
                data: b"v".to_vec(),
            },
            Record::Commit(CommitRecord {
                reads: vec![ReadItem {
                    object: ObjectId(1),
                    key: b"a".to_vec(),
                    version: Some(Position(4)),
                }],
                writes: vec![WriteItem {
                    object: ObjectId(2),
                    key: b"b".to_vec(),
                    data: vec![1, 2],
                }],
            }),
            Record::Decision {
                commit: Position(9),
                committed: true,
            },
            Record::Checkpoint(CheckpointChunk {
                object: ObjectId(1),
                id: (5, 6),
                reflects: Position(10),
                index: 0,
                count: 1,
                data: vec![7; 10],
            }),
        ]
    }

    #[test]
    fn round_trip() {
        for r in samples() {
            assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        for r in samples() {
            let b = r.encode();
            for n in 0..b.len() {
                assert!(Record::decode(&b[..n]).is_err());
            }
        }
        assert!(Record::decode(&[1, 2, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
