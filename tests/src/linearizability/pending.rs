//! What a key's pending RMWs (operations that never returned) could do to
//! the state, bounded tightly enough that the search's reductions survive
//! them.
//!
//! A pending RMW may run in any reachable state, so a naive bound says a
//! pending fetch-and-add can produce any integer; with 8-byte values (all
//! "integers") that would switch off every reduction that needs to know who
//! can write a value. Instead: a fetch-and-add adds its delta to some state,
//! and states are written values (or absent, which counts as 0), possibly
//! after other pending fetch-and-adds. So the values pending fetch-and-adds
//! can produce are `b + s` for a writable value `b` and a sum `s` of a
//! nonempty subset of the pending deltas. Deltas are small in practice, so
//! the distinct sums are few; past `MAX_SUMS` the bound falls back to "any
//! integer".

use super::history::{Input, Operation, Output};
use registers::{RmwOp, Value};
use std::collections::HashSet;

const MAX_SUMS: usize = 4096;

/// The pending RMWs of one key, summarised.
pub(crate) struct PendingEffects {
    /// Distinct sums of nonempty subsets of pending fetch-and-add deltas;
    /// `None`: too many to list.
    fa_sums: Option<Vec<i64>>,
    any_fa: bool,
    cas_expected: HashSet<Option<Value>>,
    any_put_if_absent: bool,
}

impl PendingEffects {
    pub(crate) fn new(history: &[Operation], indices: &[usize]) -> PendingEffects {
        let mut effects = PendingEffects {
            fa_sums: Some(Vec::new()),
            any_fa: false,
            cas_expected: HashSet::new(),
            any_put_if_absent: false,
        };
        let mut sums: HashSet<i64> = HashSet::new();
        for &i in indices {
            let (Input::Rmw(rmw), None) = (&history[i].input, &history[i].ret) else {
                continue;
            };
            match rmw {
                RmwOp::FetchAdd { delta } => {
                    effects.any_fa = true;
                    let grown: Vec<i64> = sums.iter().map(|s| s.wrapping_add(*delta)).collect();
                    sums.extend(grown);
                    sums.insert(*delta);
                    if sums.len() > MAX_SUMS {
                        effects.fa_sums = None;
                    }
                }
                RmwOp::CompareAndSwap { expected, .. } => {
                    effects.cas_expected.insert(expected.clone());
                }
                RmwOp::PutIfAbsent { .. } => effects.any_put_if_absent = true,
            }
        }
        if let Some(list) = &mut effects.fa_sums {
            list.extend(sums);
            list.sort_unstable();
        }
        effects
    }

    /// What pending fetch-and-adds make of `v`: `Some(values)` (empty when
    /// they leave it alone), `None` if unbounded.
    fn fa_results(&self, v: Option<&Value>) -> Option<Vec<Value>> {
        if !self.any_fa {
            return Some(Vec::new());
        }
        let base = match v {
            None => 0,
            Some(v) => match v.to_i64() {
                Some(n) => n,
                None => return Some(Vec::new()),
            },
        };
        let sums = self.fa_sums.as_ref()?;
        Some(
            sums.iter()
                .map(|s| Value::from_i64(base.wrapping_add(*s)))
                .collect(),
        )
    }

    /// Whether pending RMWs can never turn state `v` into something a
    /// completed operation observed: no pending CAS expects `v` or any
    /// fetch-and-add result of it, no put-if-absent meets it absent, and
    /// no fetch-and-add result of it was observed.
    pub(crate) fn inert(&self, v: Option<&Value>, observed: &HashSet<Option<&Value>>) -> bool {
        if observed.contains(&v) || self.cas_expected.contains(&v.cloned()) {
            return false;
        }
        if v.is_none() && self.any_put_if_absent {
            return false;
        }
        let Some(results) = self.fa_results(v) else {
            return false;
        };
        results
            .into_iter()
            .map(Some)
            .all(|u| !observed.contains(&u.as_ref()) && !self.cas_expected.contains(&u))
    }

    /// Of the observed values, those a pending fetch-and-add may produce
    /// from the writable values `writable`; `None` if unbounded.
    pub(crate) fn fa_products(
        &self,
        observed: &HashSet<Option<&Value>>,
        writable: &HashSet<Option<Value>>,
    ) -> Option<Vec<Value>> {
        if !self.any_fa {
            return Some(Vec::new());
        }
        let sums = self.fa_sums.as_ref()?;
        let base_of = |v: Option<&Value>| match v {
            None => Some(0),
            Some(v) => v.to_i64(),
        };
        let bases: HashSet<i64> = writable
            .iter()
            .filter_map(|v| base_of(v.as_ref()))
            .chain([0])
            .collect();
        Some(
            observed
                .iter()
                .filter_map(|v| v.and_then(Value::to_i64).map(|n| (v, n)))
                .filter(|(_, n)| sums.iter().any(|s| bases.contains(&n.wrapping_sub(*s))))
                .filter_map(|(v, _)| v.cloned())
                .collect(),
        )
    }
}

/// The values completed operations observed: Get results and RMW old values.
pub(crate) fn observed_values<'h>(
    history: &'h [Operation],
    indices: &[usize],
) -> HashSet<Option<&'h Value>> {
    indices
        .iter()
        .filter_map(|&i| match history[i].output()? {
            Output::Get(v) => Some(v.as_ref()),
            Output::Rmw(outcome) => Some(outcome.old.as_ref()),
            Output::Put => None,
        })
        .collect()
}

/// The values operations may write, short of pending fetch-and-adds.
pub(crate) fn writable_values(history: &[Operation], indices: &[usize]) -> HashSet<Option<Value>> {
    let mut writable: HashSet<Option<Value>> = HashSet::from([None]);
    for &i in indices {
        let wrote = match (&history[i].input, history[i].output()) {
            (Input::Put(v), _) => v.clone(),
            (Input::Rmw(rmw), Some(Output::Rmw(out))) => rmw.apply(out.old.as_ref()).new,
            (Input::Rmw(RmwOp::CompareAndSwap { new, .. }), None) => new.clone(),
            (Input::Rmw(RmwOp::PutIfAbsent { value }), None) => Some(value.clone()),
            _ => continue,
        };
        writable.insert(wrote);
    }
    writable
}
