//! Per-value bookkeeping of the operations not yet linearized, for the
//! search's dead-end rules (`prune`): who still reads and who may still
//! write each value, in call and return order.
//!
//! Writers are counted generously (a pending CAS as a writer of its new
//! value though it may fail, a pending fetch-and-add as a writer of every
//! value `pending` says it may produce, nothing for an RMW that only
//! observed): that can only make the rules prune less, so they stay sound.

use super::model::{KeyModel, StateId, Transition};

const NONE: u32 = u32::MAX;

/// The remaining readers and writers of every value.
pub(crate) struct Remaining {
    /// Per op: linearized already; call and return times (+infinity for
    /// pending); the value it observed and the values it may write.
    done: Vec<bool>,
    call: Vec<u64>,
    ret: Vec<u64>,
    reads: Vec<Option<StateId>>,
    writes: Vec<Vec<StateId>>,
    /// Per op: a pending fetch-and-add that may write any integer.
    writes_any_integer: Vec<bool>,
    /// Per value: counts of remaining readers and writers; whether it is
    /// an 8-byte integer.
    readers: Vec<u32>,
    writers: Vec<u32>,
    is_integer: Vec<bool>,
    integer_writers: u32,
    /// Per value: readers by call and by return, writers by call, each
    /// with a cursor before which every entry is done.
    readers_by_call: Vec<Vec<u32>>,
    readers_by_ret: Vec<Vec<u32>>,
    writers_by_call: Vec<Vec<u32>>,
    reader_cursor: Vec<u32>,
    writer_cursor: Vec<u32>,
    /// Values with remaining readers and no remaining writer, as an
    /// indexed set.
    starved: Vec<StateId>,
    starved_pos: Vec<u32>,
}

impl Remaining {
    pub(crate) fn new(model: &KeyModel) -> Remaining {
        let n = model.ops.len();
        // Impossible outcomes read a value no one writes: one past the
        // table. A value the search interns later may reuse that id; then
        // the sentinel is merely not pruned on in that state, which is
        // sound (the operation still never steps).
        let never = model.values.len() as StateId;
        let values = model.values.len() + 1;
        let mut r = Remaining {
            done: vec![false; n],
            call: model.ops.iter().map(|o| o.call).collect(),
            ret: model
                .ops
                .iter()
                .map(|o| o.ret.unwrap_or(u64::MAX))
                .collect(),
            reads: vec![None; n],
            writes: vec![Vec::new(); n],
            writes_any_integer: vec![false; n],
            readers: vec![0; values],
            writers: vec![0; values],
            is_integer: (0..values)
                .map(|v| (v as StateId) < never && model.values.is_integer(v as StateId))
                .collect(),
            integer_writers: 0,
            readers_by_call: vec![Vec::new(); values],
            readers_by_ret: vec![Vec::new(); values],
            writers_by_call: vec![Vec::new(); values],
            reader_cursor: vec![0; values],
            writer_cursor: vec![0; values],
            starved: Vec::new(),
            starved_pos: vec![NONE; values],
        };
        for (op, o) in model.ops.iter().enumerate() {
            let (read, writes) = match &o.transition {
                Transition::Get { observed } => (Some(*observed), Vec::new()),
                Transition::Put { value } => (None, vec![*value]),
                // A read-only RMW "writes" its old value only where the
                // state already is that value: it never restores it.
                Transition::RmwDone { old, new } if old == new => (Some(*old), Vec::new()),
                Transition::RmwDone { old, new } => (Some(*old), vec![*new]),
                Transition::Impossible => (Some(never), Vec::new()),
                Transition::RmwPending {
                    writes,
                    writes_any_integer,
                    ..
                } => {
                    r.writes_any_integer[op] = *writes_any_integer;
                    (None, writes.clone())
                }
            };
            if let Some(v) = read {
                r.readers[v as usize] += 1;
                r.readers_by_call[v as usize].push(op as u32);
            }
            for &w in &writes {
                r.writers[w as usize] += 1;
                r.writers_by_call[w as usize].push(op as u32);
            }
            r.reads[op] = read;
            r.writes[op] = writes;
            if r.writes_any_integer[op] {
                r.integer_writers += 1;
            }
        }
        let (call, ret) = (&r.call, &r.ret);
        for v in 0..values {
            r.readers_by_call[v].sort_by_key(|&op| (call[op as usize], op));
            r.writers_by_call[v].sort_by_key(|&op| (call[op as usize], op));
            let mut by_ret = r.readers_by_call[v].clone();
            by_ret.sort_by_key(|&op| (ret[op as usize], op));
            r.readers_by_ret[v] = by_ret;
        }
        for v in 0..values {
            r.refresh(v as StateId);
        }
        r
    }

    pub(crate) fn reads(&self, op: usize) -> Option<StateId> {
        self.reads[op]
    }

    pub(crate) fn writes(&self, op: usize) -> &[StateId] {
        &self.writes[op]
    }

    fn is_starved(&self, v: StateId) -> bool {
        let v = v as usize;
        self.readers[v] > 0
            && self.writers[v] == 0
            && !(self.is_integer[v] && self.integer_writers > 0)
    }

    fn refresh(&mut self, v: StateId) {
        let starved = self.is_starved(v);
        let pos = self.starved_pos[v as usize];
        if starved && pos == NONE {
            self.starved_pos[v as usize] = self.starved.len() as u32;
            self.starved.push(v);
        } else if !starved && pos != NONE {
            let last = self.starved.pop().expect("non-empty");
            if last != v {
                self.starved[pos as usize] = last;
                self.starved_pos[last as usize] = pos;
            }
            self.starved_pos[v as usize] = NONE;
        }
    }

    /// Accounts for `op` being linearized or undone.
    fn apply(&mut self, op: usize, linearized: bool) {
        self.done[op] = linearized;
        let bump = |count: &mut u32| {
            if linearized { *count -= 1 } else { *count += 1 }
        };
        if let Some(r) = self.reads[op] {
            bump(&mut self.readers[r as usize]);
            self.refresh(r);
            if !linearized {
                let (ret, list) = (&self.ret, &self.readers_by_ret[r as usize]);
                let pos = list.partition_point(|&o| (ret[o as usize], o) < (ret[op], op as u32));
                let cursor = &mut self.reader_cursor[r as usize];
                *cursor = (*cursor).min(pos as u32);
            }
        }
        for i in 0..self.writes[op].len() {
            let w = self.writes[op][i];
            bump(&mut self.writers[w as usize]);
            self.refresh(w);
            if !linearized {
                let (call, list) = (&self.call, &self.writers_by_call[w as usize]);
                let pos = list.partition_point(|&o| (call[o as usize], o) < (call[op], op as u32));
                let cursor = &mut self.writer_cursor[w as usize];
                *cursor = (*cursor).min(pos as u32);
            }
        }
        if self.writes_any_integer[op] {
            let before = self.integer_writers > 0;
            bump(&mut self.integer_writers);
            if before != (self.integer_writers > 0) {
                for v in 0..self.readers.len() {
                    if self.is_integer[v] {
                        self.refresh(v as StateId);
                    }
                }
            }
        }
    }

    pub(crate) fn linearize(&mut self, op: usize) {
        self.apply(op, true);
    }

    pub(crate) fn undo(&mut self, op: usize) {
        self.apply(op, false);
    }

    /// A starved value other than `state`, if any: the configuration is dead.
    pub(crate) fn starved_value(&self, state: StateId) -> Option<StateId> {
        self.starved.iter().copied().find(|&v| v != state)
    }

    /// The readers of `v`, in call order.
    pub(crate) fn readers_of(&self, v: StateId) -> &[u32] {
        self.readers_by_call
            .get(v as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The remaining reader of `v` that returns first.
    pub(crate) fn first_returning_reader(&mut self, v: StateId) -> Option<usize> {
        let list = self.readers_by_ret.get(v as usize)?;
        let cursor = &mut self.reader_cursor[v as usize];
        while let Some(&op) = list.get(*cursor as usize) {
            if !self.done[op as usize] {
                return Some(op as usize);
            }
            *cursor += 1;
        }
        None
    }

    /// The call time of the remaining writer of `v` called first;
    /// `Some(0)` when any integer may be written and `v` is one.
    pub(crate) fn first_writer_call(&mut self, v: StateId) -> Option<u64> {
        let i = v as usize;
        if i >= self.writers.len() || (self.is_integer[i] && self.integer_writers > 0) {
            return Some(0);
        }
        let list = &self.writers_by_call[i];
        let cursor = &mut self.writer_cursor[i];
        while let Some(&op) = list.get(*cursor as usize) {
            if !self.done[op as usize] {
                return Some(self.call[op as usize]);
            }
            *cursor += 1;
        }
        None
    }

    /// The only remaining operation that can write `v`, if exactly one can.
    pub(crate) fn sole_writer(&mut self, v: StateId) -> Option<usize> {
        let i = v as usize;
        if i >= self.writers.len()
            || self.writers[i] != 1
            || (self.is_integer[i] && self.integer_writers > 0)
        {
            return None;
        }
        let list = &self.writers_by_call[i];
        let cursor = &mut self.writer_cursor[i];
        while let Some(&op) = list.get(*cursor as usize) {
            if !self.done[op as usize] {
                return Some(op as usize);
            }
            *cursor += 1;
        }
        None
    }

    /// Whether some remaining operation may write `v`.
    pub(crate) fn has_writer(&self, v: StateId) -> bool {
        let v = v as usize;
        // Values interned during the search have no recorded writer.
        v >= self.writers.len()
            || self.writers[v] > 0
            || (self.is_integer[v] && self.integer_writers > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::history::{Input, Operation, Output, Return};
    use registers::{ClientId, Key, Value};

    fn op(call: u64, ret: u64, input: Input, output: Output) -> Operation {
        Operation {
            client: ClientId(1),
            key: Key::from("k"),
            call,
            input,
            ret: Some(Return { time: ret, output }),
        }
    }

    #[test]
    fn cursors_step_back_when_an_operation_is_undone() {
        let v = Some(Value::from("v"));
        let history = vec![
            op(0, 10, Input::Put(v.clone()), Output::Put),
            op(20, 30, Input::Put(v.clone()), Output::Put),
            op(5, 50, Input::Get, Output::Get(v.clone())),
            op(40, 45, Input::Get, Output::Get(v.clone())),
        ];
        let model = KeyModel::compile(&history, &[0, 1, 2, 3]);
        let value = model.values.len() as StateId - 1;
        let mut r = Remaining::new(&model);
        let (first_put, first_get) = (0, 1);
        assert_eq!(r.first_writer_call(value), Some(0));
        r.linearize(first_put);
        assert_eq!(r.first_writer_call(value), Some(20));
        r.undo(first_put);
        assert_eq!(r.first_writer_call(value), Some(0));
        // Readers by return: the get returning at 45 comes first.
        let early = r.first_returning_reader(value).expect("a reader");
        assert_eq!(model.ops[early].ret, Some(45));
        r.linearize(early);
        assert_eq!(r.first_returning_reader(value), Some(first_get));
        r.undo(early);
        assert_eq!(r.first_returning_reader(value), Some(early));
        assert_eq!(r.sole_writer(value), None, "two writers left");
        r.linearize(first_put);
        assert_eq!(r.sole_writer(value), Some(2));
    }
}
