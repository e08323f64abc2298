//! Integration tests of the linearizability checker: hand-built violations
//! and linearizable histories, generated histories checked against a
//! brute-force checker, the recorders, and a larger performance run.

mod accepts;
mod perf;
mod random;
mod recorder;
mod rejects;
mod sim_modes;
mod sim_sweep;
mod support;

use registers::Key;
use tests::linearizability::{CheckConfig, CheckReport, Operation, Violation, check};

/// Checks with the default bounds; the history must be well formed.
pub fn check_default(history: &[Operation]) -> CheckReport {
    check(history, &CheckConfig::default()).expect("well-formed history")
}

/// Asserts a violation on `key` whose explanation contains the operations
/// `must_contain` (indices into `history`); returns it.
pub fn assert_violation(history: &[Operation], key: &str, must_contain: &[usize]) -> Violation {
    let report = check_default(history);
    let violation = report
        .violation()
        .unwrap_or_else(|| panic!("expected a violation, got {:?}", report.verdict))
        .clone();
    assert_eq!(violation.key, Key::from(key), "{violation}");
    let shown = violation.history_indices();
    for i in must_contain {
        assert!(
            shown.contains(i),
            "op {i} missing from the explanation:\n{violation}"
        );
    }
    assert!(
        violation.unplaced.iter().all(|&i| i < violation.ops.len()),
        "{violation}"
    );
    violation
}

pub fn assert_linearizable(history: &[Operation]) {
    let report = check_default(history);
    if let Some(v) = report.violation() {
        panic!("unexpected violation:\n{v}");
    }
    assert!(report.is_linearizable(), "{:?}", report.verdict);
}
