//! Shrinking a failing key history to a small one that still fails, within
//! a budget of searches (delta debugging, Zeller and Hildebrandt 2002).
//!
//! 1. Front trim: binary search for the longest prefix (by call time) whose
//!    removal keeps the history failing. Violations are found where the
//!    search got stuck, late in the history; this keeps the operations
//!    nearest to it (the write a client failed to read back, not some older
//!    write that equally contradicts the read).
//! 2. ddmin: remove chunks, halving their size down to single operations,
//!    until no single removal keeps it failing (1-minimal) or the budget
//!    runs out.
//!
//! Every failing search also reports which operations it considered; the
//! rest are dropped for free (see `search::Failure::relevant`).
//!
//! Removing a write also removes the reads that only it explains. Otherwise
//! "write a; write b; read a" would shrink to "write b; read a", which fails
//! as a read of a value never written and hides the stale read. Reads that
//! had no writer to begin with are left alone (that may be the violation).

use super::MinimizeConfig;
use super::history::{Input, Operation, Output};
use super::model::KeyModel;
use super::search::{self, Limits, Options, Outcome};
use registers::{RmwOp, Value};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Shrinks `failing` (history indices of one key's failing history).
/// Returns the result sorted by call time and whether it is 1-minimal.
pub(crate) fn shrink(
    history: &[Operation],
    failing: Vec<usize>,
    config: &MinimizeConfig,
) -> (Vec<usize>, bool) {
    let mut shrinker = Shrinker {
        history,
        config,
        checks: 0,
        deadline: Instant::now() + config.max_time,
    };
    let current = shrinker.sorted(failing);
    let current = shrinker.trim_front(current);
    shrinker.ddmin(current)
}

struct Shrinker<'a> {
    history: &'a [Operation],
    config: &'a MinimizeConfig,
    checks: usize,
    deadline: Instant,
}

impl Shrinker<'_> {
    fn exhausted(&self) -> bool {
        self.checks >= self.config.max_checks || Instant::now() >= self.deadline
    }

    fn sorted(&self, mut ops: Vec<usize>) -> Vec<usize> {
        ops.sort_by_key(|&i| (self.history[i].call, i));
        ops
    }

    /// The relevant part of `indices`, sorted, if it fails; else `None`. A
    /// search that hits its bound counts as not failing.
    fn fails(&mut self, indices: &[usize]) -> Option<Vec<usize>> {
        self.checks += 1;
        let mut model = KeyModel::compile(self.history, indices);
        let limits = Limits {
            max_states: self.config.max_states_per_check,
            deadline: Some(self.deadline),
        };
        match search::search(&mut model, limits, Options::CHECK).0 {
            Outcome::Violation(f) => {
                let relevant = f.relevant.iter().map(|&op| model.ops[op].history_index);
                Some(self.sorted(relevant.collect()))
            }
            Outcome::Linearizable | Outcome::Unknown => None,
        }
    }

    /// `current` without `removed` and without the reads that removal leaves
    /// with no writer.
    fn without(&self, current: &[usize], removed: &[usize]) -> Vec<usize> {
        let orphans_before = orphans(self.history, current);
        let mut removed: HashSet<usize> = removed.iter().copied().collect();
        loop {
            let rest: Vec<usize> = current
                .iter()
                .copied()
                .filter(|i| !removed.contains(i))
                .collect();
            let new_orphans: Vec<usize> = orphans(self.history, &rest)
                .into_iter()
                .filter(|i| !orphans_before.contains(i))
                .collect();
            if new_orphans.is_empty() {
                return rest;
            }
            // An orphaned RMW also wrote something: repeat until stable.
            removed.extend(new_orphans);
        }
    }

    /// Phase 1: drop the longest failing-preserving prefix.
    fn trim_front(&mut self, mut current: Vec<usize>) -> Vec<usize> {
        let (mut keep_failing, mut too_far) = (0, current.len());
        let mut best: Option<Vec<usize>> = None;
        while too_far - keep_failing > 1 && !self.exhausted() {
            let mid = (keep_failing + too_far) / 2;
            let candidate = self.without(&current, &current[..mid]);
            match self.fails(&candidate) {
                Some(relevant) => {
                    keep_failing = mid;
                    best = Some(relevant);
                }
                None => too_far = mid,
            }
        }
        if let Some(best) = best {
            current = best;
        }
        current
    }

    /// Phase 2: chunked greedy removal down to single operations.
    fn ddmin(&mut self, mut current: Vec<usize>) -> (Vec<usize>, bool) {
        let mut chunk = (current.len() / 2).max(1);
        loop {
            let mut removed_any = false;
            let mut start = 0;
            while start < current.len() {
                if self.exhausted() {
                    return (current, false);
                }
                let end = (start + chunk).min(current.len());
                let candidate = self.without(&current, &current[start..end]);
                match self.fails(&candidate) {
                    Some(relevant) => {
                        current = relevant;
                        removed_any = true;
                    }
                    None => start = end,
                }
            }
            if chunk > 1 {
                chunk /= 2;
            } else if !removed_any {
                return (current, true);
            }
        }
    }
}

/// The operations in `indices` that observed a value (a Get's result, an
/// RMW's old value) no other operation in `indices` could have written.
/// Absent is the initial state, so it always has a writer.
fn orphans(history: &[Operation], indices: &[usize]) -> HashSet<usize> {
    let mut writers: HashMap<Option<Value>, usize> = HashMap::new();
    let mut own_write: HashMap<usize, Option<Value>> = HashMap::new();
    // A pending fetch-and-add can produce any integer.
    let mut integer_writers = 0;
    for &i in indices {
        let op = &history[i];
        let wrote = match (&op.input, op.output()) {
            (Input::Put(v), _) => v.clone(),
            (Input::Rmw(rmw), Some(Output::Rmw(out))) => rmw.apply(out.old.as_ref()).new,
            (Input::Rmw(RmwOp::FetchAdd { .. }), _) => {
                integer_writers += 1;
                continue;
            }
            (Input::Rmw(RmwOp::CompareAndSwap { new, .. }), _) => new.clone(),
            (Input::Rmw(RmwOp::PutIfAbsent { value }), _) => Some(value.clone()),
            (Input::Get, _) => continue,
        };
        *writers.entry(wrote.clone()).or_default() += 1;
        own_write.insert(i, wrote);
    }
    let has_writer = |reader: usize, seen: &Option<Value>| {
        let own = usize::from(own_write.get(&reader) == Some(seen));
        seen.is_none()
            || writers.get(seen).copied().unwrap_or(0) > own
            || (integer_writers > 0 && seen.as_ref().is_some_and(|v| v.to_i64().is_some()))
    };
    indices
        .iter()
        .copied()
        .filter(|&i| match history[i].output() {
            Some(Output::Get(v)) => !has_writer(i, v),
            Some(Output::Rmw(out)) => !has_writer(i, &out.old),
            _ => false,
        })
        .collect()
}
