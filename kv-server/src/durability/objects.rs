//! The Tango object the replica's state lives in (LOGSTACK.md §2): a map
//! from keys to the latest update's bytes, remembering the log position
//! of that update (restart replays records in log order). The registers
//! map folds by carstamp instead (`Fold::MaxCarstamp`: apply-if-greater,
//! PROTOCOL.md 1), so its view never goes backwards whatever the order.

use log_backend::Position;
use log_backend::tango::{TangoObject, Update};
use registers::Register;
use std::collections::BTreeMap;

/// How an update of an existing key is folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// The later update wins.
    Latest,
    /// The update with the larger carstamp wins (values are `Register`s).
    MaxCarstamp,
}

/// The view: key -> (position of the winning update, its bytes).
#[derive(Clone, Debug)]
pub struct StateMap {
    pub fold: Fold,
    pub entries: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
}

impl StateMap {
    pub fn new(fold: Fold) -> StateMap {
        StateMap {
            fold,
            entries: BTreeMap::new(),
        }
    }

    /// `(position, key, data)` of every entry, in key order.
    pub fn positioned(&self) -> impl Iterator<Item = (u64, &[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, (p, d))| (*p, k.as_slice(), d.as_slice()))
    }

    /// The entries in the order their winning updates were logged.
    pub fn in_log_order(&self) -> Vec<(&[u8], &[u8])> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|(k, (p, d))| (*p, k.as_slice(), d.as_slice()))
            .collect();
        v.sort_by_key(|(p, _, _)| *p);
        v.into_iter().map(|(_, k, d)| (k, d)).collect()
    }
}

fn decode_register(data: &[u8]) -> Result<Register, String> {
    postcard::from_bytes(data).map_err(|e| format!("bad register: {e}"))
}

impl TangoObject for StateMap {
    fn apply(&mut self, u: Update<'_>, position: Position) -> Result<(), String> {
        if self.fold == Fold::MaxCarstamp {
            let new = decode_register(u.data)?;
            if let Some((_, old)) = self.entries.get(u.key)
                && decode_register(old)?.cs >= new.cs
            {
                return Ok(());
            }
        }
        self.entries
            .insert(u.key.to_vec(), (position.0, u.data.to_vec()));
        Ok(())
    }

    fn checkpoint(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.entries).unwrap_or_default()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.entries = postcard::from_bytes(state).map_err(|e| format!("bad checkpoint: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{Carstamp, Value, WriterId};

    fn reg(ts: u64, v: &str) -> Vec<u8> {
        let r = Register {
            value: Some(Value::from(v)),
            cs: Carstamp::for_write(ts, WriterId(1)),
        };
        postcard::to_stdvec(&r).unwrap()
    }

    fn up<'a>(key: &'a [u8], data: &'a [u8]) -> Update<'a> {
        Update { key, data }
    }

    #[test]
    fn registers_fold_by_carstamp_and_others_by_position() {
        let mut regs = StateMap::new(Fold::MaxCarstamp);
        regs.apply(up(b"k", &reg(5, "new")), Position(1)).unwrap();
        regs.apply(up(b"k", &reg(3, "old")), Position(2)).unwrap();
        assert_eq!(regs.entries[&b"k".to_vec()], (1, reg(5, "new")));
        assert!(regs.apply(up(b"k", b"junk"), Position(3)).is_err());
        let mut latest = StateMap::new(Fold::Latest);
        latest.apply(up(b"b", b"1"), Position(4)).unwrap();
        latest.apply(up(b"a", b"2"), Position(5)).unwrap();
        latest.apply(up(b"b", b"3"), Position(6)).unwrap();
        assert_eq!(
            latest.in_log_order(),
            vec![(&b"a"[..], &b"2"[..]), (&b"b"[..], &b"3"[..])]
        );
        let mut back = StateMap::new(Fold::Latest);
        back.restore(&latest.checkpoint()).unwrap();
        assert_eq!(back.entries, latest.entries);
        assert!(back.restore(b"\xff\xff").is_err());
    }
}
