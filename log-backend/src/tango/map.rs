//! `TangoMap`: a replicated ordered map of bytes to bytes (the Tango
//! paper's TangoMap, §3 of LOGSTACK.md for its transactions). Each key is
//! its own conflict unit, so transactions on different keys do not abort
//! each other.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::object::{TangoObject, Update};
use super::record::{Reader, Writer};
use super::runtime::Runtime;
use super::txn::Transaction;
use super::{ObjectId, TangoError};
use crate::types::Position;

const OP_REMOVE: u8 = 0;
const OP_PUT: u8 = 1;

/// The view of a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapState {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn put_op(value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 1);
    v.push(OP_PUT);
    v.extend_from_slice(value);
    v
}

/// Decodes an op: Some(value) for a put, None for a remove.
fn decode_op(data: &[u8]) -> Result<Option<&[u8]>, String> {
    match data.split_first() {
        Some((&OP_PUT, v)) => Ok(Some(v)),
        Some((&OP_REMOVE, [])) => Ok(None),
        _ => Err("bad map op".into()),
    }
}

impl TangoObject for MapState {
    fn apply(&mut self, u: Update<'_>, _position: Position) -> Result<(), String> {
        match decode_op(u.data)? {
            Some(v) => self.entries.insert(u.key.to_vec(), v.to_vec()),
            None => self.entries.remove(u.key),
        };
        Ok(())
    }

    fn checkpoint(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u32(self.entries.len() as u32);
        for (k, v) in &self.entries {
            w.bytes(k);
            w.bytes(v);
        }
        w.0
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let mut r = Reader { buf: state, at: 0 };
        let n = r.count(8)?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let k = r.bytes()?;
            entries.insert(k, r.bytes()?);
        }
        if !r.done() {
            return Err("trailing bytes in map checkpoint".into());
        }
        self.entries = entries;
        Ok(())
    }
}

/// Handle to a map hosted by a runtime.
#[derive(Clone)]
pub struct TangoMap {
    rt: Arc<Runtime>,
    id: ObjectId,
}

impl TangoMap {
    /// Hosts the map `id` on `rt` (restoring its latest checkpoint).
    pub fn open(rt: &Arc<Runtime>, id: ObjectId) -> Result<TangoMap, TangoError> {
        rt.host(id, Box::new(MapState::default()))?;
        Ok(TangoMap { rt: rt.clone(), id })
    }

    /// Hosts a new map (see `Runtime::host_new`).
    pub fn create(rt: &Arc<Runtime>, id: ObjectId) -> Result<TangoMap, TangoError> {
        rt.host_new(id, Box::new(MapState::default()))?;
        Ok(TangoMap { rt: rt.clone(), id })
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<Position, TangoError> {
        self.rt.update_helper(self.id, key, &put_op(value))
    }

    pub fn remove(&self, key: &[u8]) -> Result<Position, TangoError> {
        self.rt.update_helper(self.id, key, &[OP_REMOVE])
    }

    /// Linearizable read: syncs the views to the log's tail first.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TangoError> {
        self.rt.query_helper()?;
        self.rt
            .view(self.id, |m: &MapState| m.entries.get(key).cloned())
    }

    /// Linearizable copy of the whole map.
    pub fn snapshot(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, TangoError> {
        self.rt.query_helper()?;
        self.local_snapshot()
    }

    /// The view as it is, without syncing.
    pub fn local_snapshot(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, TangoError> {
        self.rt.view(self.id, |m: &MapState| m.entries.clone())
    }

    /// Transactional read (sees the transaction's own writes).
    pub fn get_in(
        &self,
        tx: &mut Transaction<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, TangoError> {
        if let Some(data) = tx.buffered(self.id, key) {
            let op = decode_op(data).map_err(|reason| TangoError::BadUpdate {
                object: self.id,
                reason,
            })?;
            return Ok(op.map(<[u8]>::to_vec));
        }
        tx.read_with(self.id, key, |m: &MapState| m.entries.get(key).cloned())
    }

    pub fn put_in(
        &self,
        tx: &mut Transaction<'_>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), TangoError> {
        tx.write(self.id, key, &put_op(value))
    }

    pub fn remove_in(&self, tx: &mut Transaction<'_>, key: &[u8]) -> Result<(), TangoError> {
        tx.write(self.id, key, &[OP_REMOVE])
    }
}
