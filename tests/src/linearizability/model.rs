//! The sequential specification of one key, compiled for the search: a
//! register holding `Option<Value>` (initially absent) where Get returns the
//! state, Put sets it and an RMW must report exactly what
//! [`RmwOp::apply`] reports on the state (PROTOCOL.md 4), the state becoming
//! its new value. Values are interned per key so states compare as integers.
//!
//! Linearizability is local (Herlihy and Wing 1990, "P-compositionality" in
//! Horn and Kroening 2015): a history is linearizable iff each key's
//! sub-history is, so each key is compiled and searched on its own.

use super::history::{Input, Operation, Output};
use super::pending::{PendingEffects, observed_values, writable_values};
use registers::{Key, RmwOp, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An interned `Option<Value>`; [`ABSENT`] is the initial state.
pub(crate) type StateId = u32;
pub(crate) const ABSENT: StateId = 0;

/// The values one key has seen or produced, by id.
#[derive(Debug)]
pub(crate) struct Values {
    table: Vec<Option<Value>>,
    ids: HashMap<Value, StateId>,
}

impl Values {
    fn new() -> Values {
        Values {
            table: vec![None],
            ids: HashMap::new(),
        }
    }

    pub(crate) fn intern(&mut self, value: Option<&Value>) -> StateId {
        let Some(value) = value else { return ABSENT };
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = StateId::try_from(self.table.len()).expect("fewer than 2^32 distinct values");
        self.table.push(Some(value.clone()));
        self.ids.insert(value.clone(), id);
        id
    }

    pub(crate) fn get(&self, id: StateId) -> Option<&Value> {
        self.table[id as usize].as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether a fetch-and-add could have produced this value.
    pub(crate) fn is_integer(&self, id: StateId) -> bool {
        self.get(id).is_some_and(|v| v.to_i64().is_some())
    }
}

/// What an operation does to the state, with its recorded output folded in.
#[derive(Clone, Debug)]
pub(crate) enum Transition {
    /// A completed Get: legal only in state `observed`.
    Get { observed: StateId },
    /// A Put (completed or pending): legal anywhere, leaves `value`.
    Put { value: StateId },
    /// A completed RMW: legal only in state `old` (what it observed), leaves
    /// `new`. Because `apply` is a function of the old value, checking the
    /// observed value and the applied flag once at compile time suffices.
    RmwDone { old: StateId, new: StateId },
    /// A completed RMW whose reported outcome no state produces (the
    /// applied flag contradicts `apply` on its own observed value).
    Impossible,
    /// An RMW that never returned: legal anywhere, its result computed on
    /// demand. `writes`: the observed values it may write (see `pending`);
    /// `writes_any_integer` when that could not be bounded.
    RmwPending {
        rmw: RmwOp,
        writes: Vec<StateId>,
        writes_any_integer: bool,
    },
}

/// One operation of a key's history as the search sees it.
#[derive(Clone, Debug)]
pub(crate) struct KeyOp {
    /// Index into the caller's history.
    pub(crate) history_index: usize,
    pub(crate) call: u64,
    /// `None`: never returned; the search treats its return as +infinity.
    pub(crate) ret: Option<u64>,
    pub(crate) transition: Transition,
    /// A completed Put of a value nothing observes (see `unobserved_puts`).
    pub(crate) dead_write: bool,
}

/// One key's compiled history and model. Completed operations come first,
/// sorted by call time, then pending ones: the search's bitset compression
/// relies on linearized completed operations forming a dense prefix.
#[derive(Debug)]
pub(crate) struct KeyModel {
    pub(crate) ops: Vec<KeyOp>,
    pub(crate) values: Values,
    /// Results of pending RMWs by (op, state), computed once.
    pending_memo: HashMap<(u32, StateId), StateId>,
}

impl KeyModel {
    /// Compiles the operations `indices` of `history` (all on one key).
    ///
    /// Pending Gets are dropped: with no output they constrain nothing and
    /// change no state. Puts of an inert value are special: pending ones are
    /// dropped, completed ones are marked dead writes.
    ///
    /// A value `v` is inert when no completed operation observed it (no Get
    /// returned it, no RMW saw it as its old value) and no pending RMW can
    /// turn it into a value one observed (`pending::PendingEffects::inert`).
    /// In every linearization a Put `p` of `v` is then followed directly by
    /// another Put or by nothing, once the pending RMWs between them are
    /// moved to the end (a pending operation can always go last, see the
    /// `linearizability` module docs; whatever they wrote was overwritten
    /// unobserved). What else could follow `p`: a completed Get or RMW would
    /// have observed `v`, a pending Get was dropped. So `p` changes nothing
    /// anyone sees, and:
    ///
    /// - a pending `p` can be dropped. Without it, a linearization gains one
    ///   by appending `p` at the end (its return is at +infinity, it has no
    ///   output). With it, deleting `p` (and moving the pending RMWs as
    ///   above) leaves the next Put to overwrite the state as before.
    /// - a completed `p` is a dead write; the search never branches on where
    ///   it goes but places it just before the next Put it linearizes (see
    ///   `search`), which is always possible.
    pub(crate) fn compile(history: &[Operation], indices: &[usize]) -> KeyModel {
        let mut values = Values::new();
        let observed = observed_values(history, indices);
        let pending = PendingEffects::new(history, indices);
        let unobserved: HashSet<usize> = indices
            .iter()
            .copied()
            .filter(|&i| match &history[i].input {
                Input::Put(v) => pending.inert(v.as_ref(), &observed),
                _ => false,
            })
            .collect();
        let fa_products = pending.fa_products(&observed, &writable_values(history, indices));
        let fa_writes: Option<Vec<StateId>> =
            fa_products.map(|vs| vs.iter().map(|v| values.intern(Some(v))).collect());
        let mut ops = Vec::with_capacity(indices.len());
        for &i in indices {
            let op = &history[i];
            let transition = match (&op.input, op.output()) {
                (Input::Get, None) => continue,
                (Input::Put(_), None) if unobserved.contains(&i) => continue,
                (Input::Get, Some(Output::Get(v))) => Transition::Get {
                    observed: values.intern(v.as_ref()),
                },
                (Input::Put(v), _) => Transition::Put {
                    value: values.intern(v.as_ref()),
                },
                (Input::Rmw(rmw), Some(Output::Rmw(outcome))) => {
                    let expected = rmw.apply(outcome.old.as_ref());
                    if expected.applied == outcome.applied {
                        Transition::RmwDone {
                            old: values.intern(outcome.old.as_ref()),
                            new: values.intern(expected.new.as_ref()),
                        }
                    } else {
                        Transition::Impossible
                    }
                }
                (Input::Rmw(rmw), None) => {
                    let (writes, writes_any_integer) = match rmw {
                        RmwOp::CompareAndSwap { new, .. } => {
                            (vec![values.intern(new.as_ref())], false)
                        }
                        RmwOp::PutIfAbsent { value } => (vec![values.intern(Some(value))], false),
                        RmwOp::FetchAdd { .. } => match &fa_writes {
                            Some(writes) => (writes.clone(), false),
                            None => (Vec::new(), true),
                        },
                    };
                    Transition::RmwPending {
                        rmw: rmw.clone(),
                        writes,
                        writes_any_integer,
                    }
                }
                // validate() rejects mismatched outputs before compiling.
                _ => Transition::Impossible,
            };
            ops.push(KeyOp {
                dead_write: unobserved.contains(&i),
                history_index: i,
                call: op.call,
                ret: op.ret_time(),
                transition,
            });
        }
        ops.sort_by_key(|op| (op.ret.is_none(), op.call, op.ret, op.history_index));
        KeyModel {
            ops,
            values,
            pending_memo: HashMap::new(),
        }
    }

    /// Number of completed operations (they come first in `ops`).
    pub(crate) fn completed(&self) -> usize {
        self.ops.partition_point(|op| op.ret.is_some())
    }

    /// True if `op` leaves the state unchanged wherever it is legal: a
    /// completed Get, or a completed RMW that reported no change (a failed
    /// CAS or put-if-absent, an add of 0). A Put of the current value does
    /// not qualify: elsewhere it would change the state.
    pub(crate) fn is_read_only(&self, op: usize) -> bool {
        match self.ops[op].transition {
            Transition::Get { .. } => true,
            Transition::RmwDone { old, new } => old == new,
            Transition::Put { .. } | Transition::Impossible | Transition::RmwPending { .. } => {
                false
            }
        }
    }

    /// The state after `op` runs in `state`, or `None` if its recorded
    /// output is impossible there.
    pub(crate) fn step(&mut self, op: usize, state: StateId) -> Option<StateId> {
        match &self.ops[op].transition {
            Transition::Get { observed } => (*observed == state).then_some(state),
            Transition::Put { value } => Some(*value),
            Transition::RmwDone { old, new } => (*old == state).then_some(*new),
            Transition::Impossible => None,
            Transition::RmwPending { rmw, .. } => {
                let memo_key = (op as u32, state);
                if let Some(&next) = self.pending_memo.get(&memo_key) {
                    return Some(next);
                }
                let outcome = rmw.apply(self.values.get(state));
                let next = self.values.intern(outcome.new.as_ref());
                self.pending_memo.insert(memo_key, next);
                Some(next)
            }
        }
    }
}

/// The operation indices of each key, keys in order.
pub(crate) fn partition_by_key(history: &[Operation]) -> BTreeMap<&Key, Vec<usize>> {
    let mut keys: BTreeMap<&Key, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        keys.entry(&op.key).or_default().push(i);
    }
    keys
}
