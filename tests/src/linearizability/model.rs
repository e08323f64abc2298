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
    /// demand.
    RmwPending(RmwOp),
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
    /// change no state. Pending Puts whose value no completed operation
    /// observed are dropped too when the key has no pending RMW (see
    /// `droppable_pending_puts` for why that is exact).
    pub(crate) fn compile(history: &[Operation], indices: &[usize]) -> KeyModel {
        let mut values = Values::new();
        let droppable = droppable_pending_puts(history, indices);
        let mut ops = Vec::with_capacity(indices.len());
        for &i in indices {
            let op = &history[i];
            let transition = match (&op.input, op.output()) {
                (Input::Get, None) => continue,
                (Input::Put(_), None) if droppable.contains(&i) => continue,
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
                (Input::Rmw(rmw), None) => Transition::RmwPending(rmw.clone()),
                // validate() rejects mismatched outputs before compiling.
                _ => Transition::Impossible,
            };
            ops.push(KeyOp {
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
            Transition::Put { .. } | Transition::Impossible | Transition::RmwPending(_) => false,
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
            Transition::RmwPending(rmw) => {
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

/// Pending Puts that can be removed without changing the verdict.
///
/// Claim: if a key has no pending RMW, a pending Put `p` of a value `v`
/// that no completed operation observed (no Get returned `v`, no RMW saw
/// `v` as its old value) can be removed. If the history without `p` is
/// linearizable, appending `p` after everything is a linearization with it
/// (its return is at +infinity, so nothing must follow it, and it has no
/// output to match). Conversely, take a linearization with `p` and delete
/// `p`: the operations after `p` up to the next Put ran in state `v`, but
/// none can be a completed Get or RMW (they would have observed `v`) nor a
/// pending RMW (none exist) nor a pending Get (dropped), so the next
/// operation, if any, is a Put, which overwrites the state whatever it was.
/// Every other operation sees the same state as before.
fn droppable_pending_puts(history: &[Operation], indices: &[usize]) -> HashSet<usize> {
    let has_pending_rmw = indices
        .iter()
        .any(|&i| matches!(history[i].input, Input::Rmw(_)) && history[i].ret.is_none());
    if has_pending_rmw {
        return HashSet::new();
    }
    let observed: HashSet<Option<&Value>> = indices
        .iter()
        .filter_map(|&i| match history[i].output()? {
            Output::Get(v) => Some(v.as_ref()),
            Output::Rmw(outcome) => Some(outcome.old.as_ref()),
            Output::Put => None,
        })
        .collect();
    indices
        .iter()
        .copied()
        .filter(|&i| match (&history[i].input, &history[i].ret) {
            (Input::Put(v), None) => !observed.contains(&v.as_ref()),
            _ => false,
        })
        .collect()
}

/// The operation indices of each key, keys in order.
pub(crate) fn partition_by_key(history: &[Operation]) -> BTreeMap<&Key, Vec<usize>> {
    let mut keys: BTreeMap<&Key, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        keys.entry(&op.key).or_default().push(i);
    }
    keys
}
