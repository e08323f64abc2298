//! Hand-built histories that are not linearizable: each must be rejected
//! on the right key, with the offending operations in the explanation.

use crate::support::*;
use crate::{assert_violation, check_default};
use registers::RmwOutcome;
use tests::linearizability::Input;

/// Linearizable traffic on other keys and on `key` before `from`, so the
/// checker has to find and shrink the violation.
fn noise(key: &str, until: u64) -> Vec<crate::Operation> {
    let mut ops = Vec::new();
    for i in 0..20u64 {
        let t = i * 10;
        ops.push(put(100, "other", t, t + 5, int(i as i64)));
        ops.push(get(101, "other", t + 6, t + 9, Some(int(i as i64))));
    }
    let mut t = 0;
    while t + 20 < until {
        ops.push(put(102, key, t, t + 4, v(&format!("old{t}"))));
        ops.push(get(103, key, t + 5, t + 9, Some(v(&format!("old{t}")))));
        t += 10;
    }
    ops
}

#[test]
fn stale_read_after_a_completed_write() {
    let mut h = noise("x", 1000);
    let a = h.len();
    h.push(put(1, "x", 1000, 1010, v("a")));
    h.push(put(2, "x", 1020, 1030, v("b")));
    h.push(get(3, "x", 1040, 1050, Some(v("a"))));
    let violation = assert_violation(&h, "x", &[a, a + 1, a + 2]);
    assert_eq!(violation.ops.len(), 3, "{violation}");
    assert!(violation.minimal);
    assert!(violation.key_operations > 100);
    // a, b go in; the read of "a" cannot.
    assert_eq!(violation.prefix.len(), 2, "{violation}");
    assert_eq!(violation.unplaced, vec![2]);
    assert_eq!(violation.blocking, Some(2));
    let text = violation.to_string();
    assert!(
        text.contains("\"x\"") && text.contains("get -> \"a\""),
        "{text}"
    );
}

#[test]
fn lost_update_two_fetch_adds_observe_zero() {
    let mut h = noise("n", 300);
    let first = h.len();
    h.push(put(1, "n", 300, 305, int(0)));
    h.push(rmw(2, "n", 310, 330, fetch_add(1), Some(int(0))));
    h.push(rmw(3, "n", 315, 335, fetch_add(1), Some(int(0))));
    h.push(get(4, "n", 340, 350, Some(int(1))));
    let violation = assert_violation(&h, "n", &[first + 1, first + 2]);
    assert!(violation.ops.len() <= 3, "{violation}");
}

#[test]
fn cas_succeeds_twice_from_the_same_expected_value() {
    let mut h = noise("c", 200);
    let first = h.len();
    h.push(put(1, "c", 200, 210, v("a")));
    h.push(rmw(
        2,
        "c",
        220,
        260,
        cas(Some(v("a")), Some(v("b"))),
        Some(v("a")),
    ));
    h.push(rmw(
        3,
        "c",
        230,
        270,
        cas(Some(v("a")), Some(v("c"))),
        Some(v("a")),
    ));
    let violation = assert_violation(&h, "c", &[first, first + 1, first + 2]);
    assert_eq!(violation.ops.len(), 3, "{violation}");
}

#[test]
fn read_of_a_value_never_written() {
    let mut h = noise("r", 400);
    let bad = h.len();
    h.push(get(5, "r", 500, 510, Some(v("never"))));
    let violation = assert_violation(&h, "r", &[bad]);
    assert_eq!(violation.ops.len(), 1, "{violation}");
    assert!(violation.prefix.is_empty());
    assert_eq!(violation.blocking, Some(0));
}

#[test]
fn client_does_not_read_its_own_write() {
    let mut h = noise("y", 100);
    let first = h.len();
    h.push(put(7, "y", 100, 110, v("mine")));
    h.push(get(7, "y", 120, 130, None));
    // Another client's concurrent read may see either.
    h.push(get(8, "y", 105, 125, None));
    let violation = assert_violation(&h, "y", &[first, first + 1]);
    assert!(violation.ops.len() <= 3, "{violation}");
}

#[test]
fn read_after_delete_sees_the_deleted_value() {
    let h = vec![
        put(1, "d", 0, 10, v("a")),
        delete(1, "d", 20, 30),
        get(2, "d", 40, 50, Some(v("a"))),
    ];
    assert_violation(&h, "d", &[1, 2]);
}

#[test]
fn rmw_outcome_contradicting_apply_is_rejected() {
    // The CAS saw "a" but claims it did not apply: no state produces that.
    let outcome = RmwOutcome {
        old: Some(v("a")),
        new: Some(v("a")),
        applied: false,
        not_an_integer: false,
    };
    let h = vec![
        put(1, "k", 0, 10, v("a")),
        rmw_reporting(2, "k", 20, 30, cas(Some(v("a")), Some(v("b"))), outcome),
    ];
    assert_violation(&h, "k", &[1]);
}

#[test]
fn pending_write_cannot_be_seen_before_it_was_called() {
    let h = vec![
        get(1, "p", 0, 10, Some(v("future"))),
        pending(2, "p", 20, Input::Put(Some(v("future")))),
    ];
    assert_violation(&h, "p", &[0]);
}

#[test]
fn the_failing_key_with_fewest_operations_is_explained() {
    let mut h = Vec::new();
    for key in ["big", "small"] {
        let n = if key == "big" { 50 } else { 2 };
        for i in 0..n {
            h.push(put(1, key, i * 10, i * 10 + 5, int(i as i64)));
        }
        h.push(get(2, key, 1000, 1010, Some(v("bogus"))));
    }
    let report = check_default(&h);
    let violation = report.violation().expect("two keys fail");
    assert_eq!(violation.key, registers::Key::from("small"));
    assert_eq!(violation.failed_keys.len(), 2);
}

#[test]
fn explanations_read_well() {
    let mut h = noise("n", 300);
    h.push(put(1, "n", 300, 305, int(0)));
    h.push(rmw(2, "n", 310, 330, fetch_add(1), Some(int(0))));
    h.push(rmw(3, "n", 315, 335, fetch_add(1), Some(int(0))));
    let report = check_default(&h);
    let text = report.violation().expect("lost update").to_string();
    println!("{text}");
    for line in [
        "linearizability violation on key \"n\" (3 of its",
        "[     300,      305] client 1    put int 0 -> ok",
        "fetch_add +1 -> old int 0, applied       => int 1",
        "client 3    fetch_add +1 -> old int 0, applied  <- must take effect before its return",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // A pending write seen, then unseen with nothing to undo it. Pending
    // operations show an open interval and no reply.
    let h = vec![
        pending(1, "p", 0, Input::Put(Some(v("a")))),
        get(2, "p", 10, 20, Some(v("a"))),
        get(3, "p", 30, 40, None),
    ];
    let violation = assert_violation(&h, "p", &[0, 1, 2]);
    let text = violation.to_string();
    assert!(
        text.contains("[       0,        ∞] client 1    put \"a\" -> (no reply)"),
        "{text}"
    );
}
