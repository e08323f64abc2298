//! Generated histories: linearizable by construction (must be accepted),
//! mutated ones (must be rejected), and thousands of tiny ones whose
//! verdict must match a brute-force checker.

use crate::support::*;
use crate::{assert_linearizable, check_default};
use registers::{Key, Value};
use tests::linearizability::{Input, Operation, Output};

#[test]
fn generated_linearizable_histories_are_accepted() {
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let cfg = GenConfig {
            clients: rng.range(2, 12) as usize,
            ops: 400,
            keys: rng.range(1, 5) as usize,
            value_pool: if seed % 2 == 0 { Some(3) } else { None },
            pending_share: 0.05,
            ..GenConfig::default()
        };
        let h = linearizable_history(&mut rng, &cfg);
        let report = check_default(&h);
        assert!(
            report.is_linearizable(),
            "seed {seed}: {:?}\n{}",
            report.verdict,
            report
                .violation()
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
}

#[test]
fn generated_histories_with_a_read_of_an_unwritten_value_are_rejected() {
    for seed in 0..20 {
        let mut rng = Rng::new(1000 + seed);
        let cfg = GenConfig {
            clients: 10,
            ops: 600,
            keys: 3,
            ..GenConfig::default()
        };
        let mut h = linearizable_history(&mut rng, &cfg);
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| matches!(h[i].output(), Some(Output::Get(_))))
            .collect();
        let victim = *rng.pick(&reads);
        if let Some(ret) = &mut h[victim].ret {
            ret.output = Output::Get(Some(Value::from("never written")));
        }
        let report = check_default(&h);
        let violation = report
            .violation()
            .unwrap_or_else(|| panic!("seed {seed}: mutation not detected"));
        assert_eq!(violation.key, h[victim].key, "seed {seed}");
        assert!(
            violation.history_indices().contains(&victim),
            "seed {seed}:\n{violation}"
        );
        assert_eq!(report.failed_keys, vec![h[victim].key.clone()]);
    }
}

/// A tiny single-key history: random intervals, inputs over few values,
/// outputs from a serial run, then (often) one output replaced.
fn tiny_history(rng: &mut Rng) -> Vec<Operation> {
    let cfg = GenConfig {
        clients: rng.range(1, 4) as usize,
        ops: rng.range(1, 8) as usize,
        keys: 1,
        hot_share: 1.0,
        read_share: 0.4,
        rmw_share: 0.3,
        pending_share: 0.2,
        latency: (1, 12),
        value_pool: Some(2),
    };
    let mut h = linearizable_history(rng, &cfg);
    if rng.chance(0.6) {
        let victim = rng.range(0, h.len() as u64) as usize;
        let values = [
            None,
            Some(v("v0")),
            Some(v("v1")),
            Some(int(0)),
            Some(int(1)),
            Some(int(2)),
        ];
        let new_value = rng.pick(&values).clone();
        let applied = rng.chance(0.5);
        if let Some(ret) = &mut h[victim].ret {
            match &mut ret.output {
                Output::Get(seen) => *seen = new_value,
                Output::Rmw(outcome) => {
                    outcome.old = new_value;
                    outcome.applied = applied;
                }
                Output::Put => {}
            }
        }
    }
    // Shuffle the real-time order a little more: random client ids and
    // sometimes stretched intervals.
    for op in &mut h {
        if rng.chance(0.2)
            && let Some(ret) = &mut op.ret
        {
            ret.time += rng.range(0, 20);
        }
    }
    h
}

#[test]
fn verdicts_match_brute_force_on_thousands_of_tiny_histories() {
    let mut rng = Rng::new(7);
    let (mut linearizable, mut not) = (0, 0);
    for case in 0..5000 {
        let h = tiny_history(&mut rng);
        let expected = brute_force_linearizable(&h);
        let report = check_default(&h);
        assert_eq!(
            report.is_linearizable(),
            expected,
            "case {case}: checker {:?}, brute force {expected}\n{h:#?}",
            report.verdict
        );
        if expected {
            linearizable += 1;
        } else {
            not += 1;
            // The explanation must itself be a failing history.
            let v = report.violation().expect("violation");
            let shrunk: Vec<Operation> = v.ops.iter().map(|o| o.op.clone()).collect();
            assert!(!brute_force_linearizable(&shrunk), "case {case}:\n{v}");
        }
    }
    // Both verdicts must be well represented for the comparison to mean much.
    assert!(linearizable > 1000 && not > 1000, "{linearizable} vs {not}");
}

#[test]
fn many_keys_with_one_bad_key_names_it() {
    let mut rng = Rng::new(99);
    let cfg = GenConfig {
        clients: 16,
        ops: 3000,
        keys: 50,
        hot_share: 0.1,
        ..GenConfig::default()
    };
    let mut h = linearizable_history(&mut rng, &cfg);
    assert_linearizable(&h);
    // A read that returns the value its key had two writes ago, long after.
    let target = Key::from("k7");
    let writes: Vec<usize> = (0..h.len())
        .filter(|&i| h[i].key == target && matches!(h[i].input, Input::Put(Some(_))))
        .collect();
    assert!(writes.len() >= 3);
    let Input::Put(stale) = h[writes[0]].input.clone() else {
        unreachable!()
    };
    let end = h.iter().filter_map(|o| o.ret_time()).max().unwrap_or(0);
    h.push(get(999, "k7", end + 10, end + 20, stale));
    let report = check_default(&h);
    let violation = report.violation().expect("stale read");
    assert_eq!(violation.key, target);
    assert!(
        violation.history_indices().contains(&(h.len() - 1)),
        "{violation}"
    );
    assert!(violation.ops.len() <= 4, "{violation}");
}
