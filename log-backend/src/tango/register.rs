//! `TangoRegister`: the Tango paper's 15-line example object, a single
//! replicated value (LOGSTACK.md §2). Its one conflict key is the empty
//! key.

use std::sync::Arc;

use super::object::{TangoObject, Update};
use super::runtime::Runtime;
use super::txn::Transaction;
use super::{ObjectId, TangoError};
use crate::types::Position;

const KEY: &[u8] = b"";

/// The view of a register: the last value written, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterState {
    pub value: Option<Vec<u8>>,
    /// Position of the write that produced `value`.
    pub written_at: Option<Position>,
}

impl TangoObject for RegisterState {
    fn apply(&mut self, u: Update<'_>, position: Position) -> Result<(), String> {
        if u.key != KEY {
            return Err("register updates use the empty key".into());
        }
        self.value = Some(u.data.to_vec());
        self.written_at = Some(position);
        Ok(())
    }

    fn checkpoint(&self) -> Vec<u8> {
        // [present][position][value]: presence flag, then both fields.
        let mut v = Vec::new();
        match (&self.value, self.written_at) {
            (Some(val), Some(p)) => {
                v.push(1);
                v.extend_from_slice(&p.0.to_be_bytes());
                v.extend_from_slice(val);
            }
            _ => v.push(0),
        }
        v
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        match state.split_first() {
            Some((0, [])) => {
                self.value = None;
                self.written_at = None;
            }
            Some((1, rest)) if rest.len() >= 8 => {
                let (p, val) = rest.split_at(8);
                let mut a = [0; 8];
                a.copy_from_slice(p);
                self.written_at = Some(Position(u64::from_be_bytes(a)));
                self.value = Some(val.to_vec());
            }
            _ => return Err("bad register checkpoint".into()),
        }
        Ok(())
    }
}

/// Handle to a register hosted by a runtime.
#[derive(Clone)]
pub struct TangoRegister {
    rt: Arc<Runtime>,
    id: ObjectId,
}

impl TangoRegister {
    /// Hosts the register `id` on `rt` (restoring its latest checkpoint).
    pub fn open(rt: &Arc<Runtime>, id: ObjectId) -> Result<TangoRegister, TangoError> {
        rt.host(id, Box::new(RegisterState::default()))?;
        Ok(TangoRegister { rt: rt.clone(), id })
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }

    pub fn write(&self, value: &[u8]) -> Result<Position, TangoError> {
        self.rt.update_helper(self.id, KEY, value)
    }

    /// Linearizable read.
    pub fn read(&self) -> Result<Option<Vec<u8>>, TangoError> {
        self.rt.query_helper()?;
        self.rt.view(self.id, |r: &RegisterState| r.value.clone())
    }

    pub fn read_in(&self, tx: &mut Transaction<'_>) -> Result<Option<Vec<u8>>, TangoError> {
        if let Some(v) = tx.buffered(self.id, KEY) {
            return Ok(Some(v.to_vec()));
        }
        tx.read_with(self.id, KEY, |r: &RegisterState| r.value.clone())
    }

    pub fn write_in(&self, tx: &mut Transaction<'_>, value: &[u8]) -> Result<(), TangoError> {
        tx.write(self.id, KEY, value)
    }
}
