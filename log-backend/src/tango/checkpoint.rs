//! Checkpoints, restore and trim (LOGSTACK.md §4). A checkpoint is an
//! object's full state plus its key versions, written as a run of chunk
//! entries on the object's checkpoint stream, tagged with the position it
//! reflects. Restart = latest complete checkpoint + replay from there; the
//! log may be trimmed below the oldest latest-checkpoint of the live
//! objects.

use std::collections::{BTreeMap, HashMap};

use super::record::{CheckpointChunk, Reader, Record, Writer};
use super::runtime::{Runtime, State};
use super::{ObjectId, TangoError};
use crate::error::LogError;
use crate::types::Position;

/// Describes one complete checkpoint found in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub object: ObjectId,
    /// The state reflects every log entry below this position.
    pub reflects: Position,
    /// Size of the serialized state and versions.
    pub bytes: usize,
    pub chunks: u32,
}

impl Runtime {
    /// Writes a checkpoint of the hosted object `id` and returns it. The
    /// view is not synced first; it reflects what it has played.
    pub fn checkpoint(&self, id: ObjectId) -> Result<CheckpointInfo, TangoError> {
        let (reflects, blob) = {
            let st = self.state.lock();
            let h = st.objects.get(&id).ok_or(TangoError::UnknownObject(id))?;
            let mut versions: Vec<_> = h.versions.iter().collect();
            versions.sort_unstable();
            let mut w = Writer(Vec::new());
            w.u32(versions.len() as u32);
            for (k, p) in versions {
                w.bytes(k);
                w.u64(p.0);
            }
            w.bytes(&h.object.checkpoint());
            (h.next, w.0)
        };
        let size = self.config.checkpoint_chunk_bytes;
        let pieces: Vec<&[u8]> = if blob.is_empty() {
            vec![&[]]
        } else {
            blob.chunks(size).collect()
        };
        let count = pieces.len() as u32;
        let first = self.next_id();
        for (i, data) in pieces.into_iter().enumerate() {
            let rec = Record::Checkpoint(CheckpointChunk {
                object: id,
                id: (first.client.0, first.seq),
                reflects,
                index: i as u32,
                count,
                data: data.to_vec(),
            });
            let aid = if i == 0 { first } else { self.next_id() };
            self.log
                .append(&[id.checkpoint_stream()], &rec.encode(), aid)?;
        }
        Ok(CheckpointInfo {
            object: id,
            reflects,
            bytes: blob.len(),
            chunks: count,
        })
    }

    /// The latest complete checkpoint of `id` in the log (any runtime's).
    pub fn latest_checkpoint(&self, id: ObjectId) -> Result<Option<CheckpointInfo>, TangoError> {
        Ok(find_latest(self, id)?.map(|(info, _)| info))
    }

    /// Trims the log below the oldest of the latest checkpoints of `live`,
    /// which must list every object still in use (any runtime's): their
    /// histories below that point are then no longer needed. Returns the
    /// new trim point.
    pub fn trim_below_checkpoints(&self, live: &[ObjectId]) -> Result<Position, TangoError> {
        let mut lowest: Option<Position> = None;
        for id in live {
            let info = self
                .latest_checkpoint(*id)?
                .ok_or(TangoError::NoCheckpoint(*id))?;
            lowest = Some(lowest.map_or(info.reflects, |l| l.min(info.reflects)));
        }
        let Some(below) = lowest else {
            return Ok(self.log.check_tail(&[])?.trim_point);
        };
        self.log.prefix_trim(below)?;
        Ok(below)
    }
}

struct Group {
    reflects: Position,
    count: u32,
    parts: BTreeMap<u32, Vec<u8>>,
}

/// Scans the checkpoint stream of `id` for the complete checkpoint with
/// the highest `reflects` (the later one on ties).
pub(crate) fn find_latest(
    rt: &Runtime,
    id: ObjectId,
) -> Result<Option<(CheckpointInfo, Vec<u8>)>, TangoError> {
    let stream = id.checkpoint_stream();
    // The scan restarts if a concurrent trim overtakes it; three tries.
    let mut last_err = None;
    for _ in 0..3 {
        let tail = rt.log.check_tail(&[stream])?;
        if tail.last_of(stream).is_none() {
            return Ok(None);
        }
        let mut from = tail.trim_point;
        let mut groups: HashMap<(u64, u64), Group> = HashMap::new();
        let mut best: Option<(CheckpointInfo, Vec<u8>)> = None;
        loop {
            let entries = match rt.log.read_next(stream, from, rt.config.read_batch) {
                Ok(v) => v,
                Err(e @ LogError::Trimmed { .. }) => {
                    last_err = Some(e);
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            for e in &entries {
                let Ok(Record::Checkpoint(c)) = Record::decode(&e.payload) else {
                    continue;
                };
                if c.object != id || c.index >= c.count {
                    continue;
                }
                let g = groups.entry(c.id).or_insert(Group {
                    reflects: c.reflects,
                    count: c.count,
                    parts: BTreeMap::new(),
                });
                if g.count != c.count || g.reflects != c.reflects {
                    continue;
                }
                g.parts.insert(c.index, c.data);
                if g.parts.len() as u32 == g.count
                    && let Some(g) = groups.remove(&c.id)
                {
                    let blob: Vec<u8> = g.parts.into_values().flatten().collect();
                    if best.as_ref().is_none_or(|(b, _)| g.reflects >= b.reflects) {
                        let info = CheckpointInfo {
                            object: id,
                            reflects: g.reflects,
                            bytes: blob.len(),
                            chunks: g.count,
                        };
                        best = Some((info, blob));
                    }
                }
            }
            match entries.last() {
                Some(l) if entries.len() >= rt.config.read_batch => from = l.position.next(),
                _ => return Ok(best),
            }
        }
    }
    Err(last_err
        .map(TangoError::from)
        .unwrap_or(TangoError::NoCheckpoint(id)))
}

/// Restores the view of `id` from its latest checkpoint, or starts it
/// from scratch when there is none and nothing was trimmed.
pub(crate) fn reload(
    rt: &Runtime,
    st: &mut State,
    id: ObjectId,
    after_trim: bool,
) -> Result<(), TangoError> {
    let found = find_latest(rt, id)?;
    let trim_point = rt.log.check_tail(&[])?.trim_point;
    let lost = TangoError::ViewLost {
        object: id,
        trim_point,
    };
    let h = st
        .objects
        .get_mut(&id)
        .ok_or(TangoError::UnknownObject(id))?;
    let Some((info, blob)) = found else {
        if after_trim || trim_point > Position::ZERO {
            return Err(lost);
        }
        return Ok(());
    };
    if info.reflects < trim_point {
        return Err(lost);
    }
    let bad = |reason: String| TangoError::BadCheckpoint { object: id, reason };
    let mut r = Reader { buf: &blob, at: 0 };
    let n = r.count(12).map_err(bad)?;
    let mut versions = HashMap::with_capacity(n);
    for _ in 0..n {
        let k = r.bytes().map_err(bad)?;
        let p = r.u64().map_err(bad)?;
        versions.insert(k, Position(p));
    }
    let state = r.bytes().map_err(bad)?;
    if !r.done() {
        return Err(bad("trailing bytes in checkpoint".into()));
    }
    h.object.restore(&state).map_err(bad)?;
    h.versions = versions;
    h.next = info.reflects;
    st.stats.restored += 1;
    Ok(())
}
