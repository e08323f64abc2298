//! A linearizability checker for the key-value store's client histories:
//! get, put (and delete) and the RMWs of PROTOCOL.md 4, checked against a
//! per-key register model.
//!
//! How it works: the history is split by key (linearizability is local);
//! each key is searched with the Wing-Gong/Lowe algorithm with a cache of
//! visited (linearized set, state) configurations, as Porcupine does
//! (`search`, `cache`), plus exact reductions for hot keys (read-only
//! moves, dead-end pruning in `prune` over the bookkeeping of `remaining`,
//! dead writes in `model`, bounds on pending RMWs in `pending`). The search
//! is bounded per key and reports [`Verdict::Unknown`] instead of running
//! on. A violation is explained by the smallest failing key history it can
//! find (`explain`, `shrink`).
//!
//! Histories whose writes use distinct values (as the simulator's random
//! 8-byte values do) check fastest: a read then names its write, and the
//! reductions apply. Many writes of the same few values make the problem
//! NP-complete in general, and a hot key with dozens of concurrent clients
//! writing a handful of values may end in [`Verdict::Unknown`].
//!
//! # Operations that never returned
//!
//! An operation with no return may have taken effect at any point after its
//! call, or never. The checker gives it a return time of +infinity and then
//! requires every operation to be linearized (Porcupine's rule). That is
//! exact, not an approximation:
//!
//! - If the search finds a linearization, the pending operations that took
//!   effect are those placed before the last completed operation; the rest
//!   are placed after everything that returned, which nothing observes, so
//!   they equally "never took effect".
//! - If the history is linearizable with some pending operations `D`
//!   dropped, append `D` after everything (in any order): no real-time
//!   constraint is broken because an operation `x` must precede `p` only if
//!   `x` returned before `p` was called, which still holds at the end, and
//!   nothing must follow `p` since its return is at +infinity; no output is
//!   broken because a pending operation has no output (a pending Put and a
//!   pending RMW are legal in every state) and only pending operations come
//!   after it. So the +infinity history is linearizable too.
//!
//! The argument needs the appended operations' effects to be invisible,
//! which they are: nothing with an output follows them. Pending Gets are
//! removed outright (no output, no effect), and so are pending Puts whose
//! value nobody observed when the key has no pending RMW (argued in
//! `model::unobserved_puts`); both only shrink the search.
//!
//! Times compare strictly: `a` precedes `b` iff `a` returned before `b` was
//! called, so operations that touch at one instant are concurrent.

mod cache;
mod explain;
mod history;
mod model;
mod pending;
mod prune;
mod remaining;
mod search;
mod shrink;

pub use explain::{ExplainedOp, MinimizeConfig, PrefixStep, Violation};
pub use history::{
    HistoryError, HistoryRecorder, Input, OpHandle, Operation, Output, Return, SharedRecorder,
    validate,
};

use model::KeyModel;
use registers::Key;
use search::{Limits, Options, Outcome};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bounds and knobs of a check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Configurations one key's search may explore before it reports
    /// [`Verdict::Unknown`]. Memory is about 100 bytes per configuration.
    pub max_states_per_key: u64,
    /// Wall-clock budget of one key's search; `None` for no time bound.
    pub max_time_per_key: Option<Duration>,
    /// Keys are searched on this many threads.
    pub threads: usize,
    /// Effort spent shrinking a violation's key history.
    pub minimize: MinimizeConfig,
    /// Search exactly as Porcupine does, without this checker's reductions
    /// (read-only moves, dead-end pruning, dead-write placement). Much
    /// slower on hot keys; for cross-checking the reductions.
    pub plain_wgl: bool,
}

impl Default for CheckConfig {
    fn default() -> CheckConfig {
        CheckConfig {
            max_states_per_key: 2_000_000,
            max_time_per_key: Some(Duration::from_secs(60)),
            threads: 1,
            minimize: MinimizeConfig::default(),
            plain_wgl: false,
        }
    }
}

/// The checker's answer.
#[derive(Clone, Debug)]
pub enum Verdict {
    Linearizable,
    /// At least one key's history has no linearization.
    Violation(Box<Violation>),
    /// No key failed, but some search hit its bound (see
    /// [`CheckReport::unknown_keys`]).
    Unknown,
}

/// The verdict with what the check covered.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub verdict: Verdict,
    pub keys: usize,
    pub operations: usize,
    /// Configurations explored over all keys (not counting minimization).
    pub states_explored: u64,
    /// Keys whose search hit its bound.
    pub unknown_keys: Vec<Key>,
    /// Keys with no linearization.
    pub failed_keys: Vec<Key>,
}

impl CheckReport {
    pub fn is_linearizable(&self) -> bool {
        matches!(self.verdict, Verdict::Linearizable)
    }

    pub fn violation(&self) -> Option<&Violation> {
        match &self.verdict {
            Verdict::Violation(v) => Some(v),
            _ => None,
        }
    }
}

/// What one key's search found.
enum KeyVerdict {
    Linearizable,
    Unknown,
    /// History indices of the operations the failing search considered.
    Violation(Vec<usize>),
}

/// Checks `history` for linearizability; explains the first violation.
pub fn check(history: &[Operation], config: &CheckConfig) -> Result<CheckReport, HistoryError> {
    validate(history)?;
    let mut keys: Vec<(&Key, Vec<usize>)> = model::partition_by_key(history).into_iter().collect();
    // Largest first, so parallel workers do not end waiting on one big key.
    keys.sort_by_key(|(_, ops)| std::cmp::Reverse(ops.len()));
    let results: Vec<Mutex<Option<(KeyVerdict, u64)>>> =
        keys.iter().map(|_| Mutex::new(None)).collect();
    let next_key = AtomicUsize::new(0);
    let worker = || {
        loop {
            let i = next_key.fetch_add(1, Ordering::Relaxed);
            let Some((_, indices)) = keys.get(i) else {
                break;
            };
            let result = check_key(history, indices, config);
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..config.threads.max(1) {
            scope.spawn(worker);
        }
        worker();
    });

    let mut report = CheckReport {
        verdict: Verdict::Linearizable,
        keys: keys.len(),
        operations: history.len(),
        states_explored: 0,
        unknown_keys: Vec::new(),
        failed_keys: Vec::new(),
    };
    let mut failures: Vec<(&Key, Vec<usize>)> = Vec::new();
    for ((key, _), result) in keys.iter().zip(results) {
        let (verdict, states) = result
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .expect("every key was searched");
        report.states_explored += states;
        match verdict {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Unknown => report.unknown_keys.push((*key).clone()),
            KeyVerdict::Violation(relevant) => failures.push((key, relevant)),
        }
    }
    report.unknown_keys.sort();
    failures.sort_by(|a, b| (a.1.len(), a.0).cmp(&(b.1.len(), b.0)));
    report.failed_keys = failures.iter().map(|(k, _)| (*k).clone()).collect();
    report.failed_keys.sort();
    if let Some((key, relevant)) = failures.first() {
        let key_operations = keys.iter().find(|(k, _)| k == key).map_or(0, |k| k.1.len());
        let violation = explain::explain(
            history,
            key,
            relevant.clone(),
            key_operations,
            report.failed_keys.clone(),
            config,
        );
        report.verdict = Verdict::Violation(Box::new(violation));
    } else if !report.unknown_keys.is_empty() {
        report.verdict = Verdict::Unknown;
    }
    Ok(report)
}

fn check_key(history: &[Operation], indices: &[usize], config: &CheckConfig) -> (KeyVerdict, u64) {
    let mut model = KeyModel::compile(history, indices);
    let limits = Limits {
        max_states: config.max_states_per_key,
        deadline: config.max_time_per_key.map(|t| Instant::now() + t),
    };
    let options = Options {
        plain: config.plain_wgl,
        record_partial: false,
    };
    let (outcome, states) = search::search(&mut model, limits, options);
    let verdict = match outcome {
        Outcome::Linearizable => KeyVerdict::Linearizable,
        Outcome::Unknown => KeyVerdict::Unknown,
        Outcome::Violation(failure) => KeyVerdict::Violation(
            failure
                .relevant
                .iter()
                .map(|&op| model.ops[op].history_index)
                .collect(),
        ),
    };
    (verdict, states)
}
