//! Hand-built linearizable histories, including operations that never
//! returned, RMW chains and deletes.

use crate::assert_linearizable;
use crate::support::*;
use tests::linearizability::Input;

#[test]
fn concurrent_writes_with_reads_seeing_either_order() {
    // a and b overlap; readers may see b then a, all within the overlap.
    assert_linearizable(&[
        put(1, "x", 0, 100, v("a")),
        put(2, "x", 0, 100, v("b")),
        get(3, "x", 10, 20, Some(v("b"))),
        get(4, "x", 30, 40, Some(v("a"))),
        get(5, "x", 110, 120, Some(v("a"))),
    ]);
    assert_linearizable(&[
        put(1, "x", 0, 100, v("a")),
        put(2, "x", 0, 100, v("b")),
        get(3, "x", 10, 20, Some(v("a"))),
        get(4, "x", 30, 40, Some(v("b"))),
        get(5, "x", 110, 120, Some(v("b"))),
    ]);
}

#[test]
fn reads_touching_a_write_are_concurrent_with_it() {
    // Returns and calls at the same instant do not order the operations.
    assert_linearizable(&[
        get(1, "x", 0, 10, Some(v("a"))),
        put(2, "x", 10, 20, v("a")),
    ]);
}

#[test]
fn pending_write_whose_effect_is_seen() {
    assert_linearizable(&[
        pending(1, "x", 0, Input::Put(Some(v("a")))),
        get(2, "x", 10, 20, Some(v("a"))),
        get(3, "x", 30, 40, Some(v("a"))),
    ]);
}

#[test]
fn pending_write_whose_effect_is_never_seen() {
    assert_linearizable(&[
        put(1, "x", 0, 10, v("a")),
        pending(2, "x", 5, Input::Put(Some(v("b")))),
        get(3, "x", 20, 30, Some(v("a"))),
        get(4, "x", 40, 50, Some(v("a"))),
    ]);
}

#[test]
fn pending_write_seen_late_after_others() {
    // The pending write takes effect after the completed write of "c".
    assert_linearizable(&[
        pending(1, "x", 0, Input::Put(Some(v("late")))),
        put(2, "x", 10, 20, v("c")),
        get(3, "x", 30, 40, Some(v("c"))),
        get(4, "x", 50, 60, Some(v("late"))),
    ]);
}

#[test]
fn pending_rmws_seen_or_not() {
    // One of two pending increments took effect, then the other did too.
    assert_linearizable(&[
        pending(1, "n", 0, Input::Rmw(fetch_add(5))),
        pending(2, "n", 0, Input::Rmw(fetch_add(7))),
        get(3, "n", 10, 20, Some(int(7))),
        get(4, "n", 30, 40, Some(int(12))),
    ]);
    // A pending increment never applied.
    assert_linearizable(&[
        rmw(1, "n", 0, 10, fetch_add(1), None),
        pending(2, "n", 5, Input::Rmw(fetch_add(100))),
        rmw(3, "n", 20, 30, fetch_add(1), Some(int(1))),
        get(4, "n", 40, 50, Some(int(2))),
    ]);
}

#[test]
fn pending_gets_are_ignored() {
    assert_linearizable(&[
        pending(1, "x", 0, Input::Get),
        put(2, "x", 10, 20, v("a")),
        get(3, "x", 30, 40, Some(v("a"))),
    ]);
}

#[test]
fn rmw_chains() {
    let mut h = Vec::new();
    for i in 0..50u64 {
        let old = (i > 0).then(|| int(i as i64 - 1));
        // A fetch-add of 1 on absent gives 1; start the chain from 0.
        let op = if i == 0 {
            put_if_absent(int(0))
        } else {
            fetch_add(1)
        };
        h.push(rmw(i % 3, "n", i * 10, i * 10 + 15, op, old));
    }
    h.push(rmw(
        9,
        "n",
        600,
        610,
        cas(Some(int(49)), Some(v("done"))),
        Some(int(49)),
    ));
    h.push(rmw(
        9,
        "n",
        620,
        630,
        cas(Some(int(49)), Some(v("again"))),
        Some(v("done")),
    ));
    h.push(rmw(8, "n", 640, 650, fetch_add(1), Some(v("done"))));
    h.push(get(7, "n", 660, 670, Some(v("done"))));
    assert_linearizable(&h);
}

#[test]
fn deletes() {
    assert_linearizable(&[
        put(1, "d", 0, 10, v("a")),
        delete(2, "d", 20, 30),
        get(3, "d", 40, 50, None),
        rmw(4, "d", 60, 70, put_if_absent(v("b")), None),
        rmw(5, "d", 80, 90, cas(Some(v("b")), None), Some(v("b"))),
        get(6, "d", 100, 110, None),
        rmw(7, "d", 120, 130, cas(None, Some(v("c"))), None),
        get(8, "d", 140, 150, Some(v("c"))),
    ]);
}

#[test]
fn empty_history_is_linearizable() {
    assert_linearizable(&[]);
}

#[test]
fn pending_rmw_turns_an_unread_write_into_a_read_value() {
    // "a" is never read, but the pending CAS needs it: c, a, cas, get.
    assert_linearizable(&[
        put(1, "x", 0, 10, v("a")),
        put(2, "x", 0, 10, v("c")),
        pending(3, "x", 0, Input::Rmw(cas(Some(v("a")), Some(v("b"))))),
        get(4, "x", 20, 30, Some(v("b"))),
    ]);
    // The same through a pending fetch-and-add: "x", 5, +1, get 6.
    assert_linearizable(&[
        put(1, "n", 0, 10, int(5)),
        put(2, "n", 0, 10, v("x")),
        pending(3, "n", 0, Input::Rmw(fetch_add(1))),
        get(4, "n", 20, 30, Some(int(6))),
    ]);
}
