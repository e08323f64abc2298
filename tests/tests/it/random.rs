//! Generated histories: linearizable by construction (must be accepted),
//! mutated ones (must be rejected), and thousands of tiny ones whose
//! verdict must match a brute-force checker.

use crate::support::*;
use crate::{assert_linearizable, check_default};
use registers::{Key, Value};
use tests::linearizability::{CheckConfig, Input, Operation, Output, Verdict, check};

#[test]
fn generated_linearizable_histories_are_accepted() {
    for seed in 0..40 {
        let mut rng = Rng::new(seed);
        let cfg = GenConfig {
            clients: rng.range(2, 12) as usize,
            ops: 400,
            keys: rng.range(1, 5) as usize,
            values: [ValueKind::Pool(3), ValueKind::Unique, ValueKind::Sim][seed as usize % 3],
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

/// A small single-key history: random intervals, outputs from a serial
/// run, then often a mutation or two.
fn small_history(
    rng: &mut Rng,
    clients: (u64, u64),
    ops: (u64, u64),
    values: ValueKind,
) -> Vec<Operation> {
    let cfg = GenConfig {
        clients: rng.range(clients.0, clients.1 + 1) as usize,
        ops: rng.range(ops.0, ops.1 + 1) as usize,
        keys: 1,
        hot_share: 1.0,
        read_share: 0.4,
        rmw_share: 0.3,
        pending_share: 0.15,
        latency: (1, 12),
        values,
    };
    let mut h = linearizable_history(rng, &cfg);
    if rng.chance(0.8) {
        mutate(rng, &mut h);
        while rng.chance(0.5) {
            mutate(rng, &mut h);
        }
    }
    h
}

/// Compares the checker with the brute-force checker on `cases` small
/// histories; both verdicts must be well represented.
fn compare_with_brute_force(seed: u64, cases: usize, clients: (u64, u64), values: ValueKind) {
    let mut rng = Rng::new(seed);
    let (mut linearizable, mut not) = (0, 0);
    for case in 0..cases {
        let h = small_history(&mut rng, clients, (1, 8), values);
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
    eprintln!("{linearizable} linearizable, {not} not");
    assert!(
        linearizable > cases / 5 && not > cases / 5,
        "{linearizable} vs {not}"
    );
}

#[test]
fn verdicts_match_brute_force_with_few_values() {
    compare_with_brute_force(7, 4000, (1, 3), ValueKind::Pool(2));
}

#[test]
fn verdicts_match_brute_force_with_unique_values() {
    compare_with_brute_force(8, 4000, (2, 6), ValueKind::Unique);
}

#[test]
fn verdicts_match_brute_force_with_simulator_values() {
    compare_with_brute_force(9, 4000, (2, 6), ValueKind::Sim);
}

/// The reductions (read-only moves, pruning, dead writes, pending bounds)
/// must not change a verdict: compare with plain WGL on histories too big
/// for brute force.
#[test]
fn verdicts_match_plain_wgl_on_medium_histories() {
    let mut rng = Rng::new(10);
    let plain = CheckConfig {
        plain_wgl: true,
        max_states_per_key: 300_000,
        ..CheckConfig::default()
    };
    let (mut compared, mut not) = (0, 0);
    for case in 0..1500 {
        let values = [ValueKind::Pool(3), ValueKind::Unique, ValueKind::Sim][case % 3];
        let h = small_history(&mut rng, (2, 8), (10, 40), values);
        let expected = check(&h, &plain).expect("well formed");
        if matches!(expected.verdict, Verdict::Unknown) {
            continue;
        }
        let report = check_default(&h);
        assert_eq!(
            report.is_linearizable(),
            expected.is_linearizable(),
            "case {case}: optimized {:?}, plain {:?}\n{h:#?}",
            report.verdict,
            expected.verdict
        );
        compared += 1;
        not += usize::from(!expected.is_linearizable());
    }
    eprintln!("{compared} compared, {not} failing");
    assert!(
        compared > 1200 && not > 300 && compared - not > 300,
        "{compared} compared, {not} failing"
    );
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

#[test]
fn search_bounds_give_unknown_not_a_hang() {
    let mut rng = Rng::new(77);
    let cfg = GenConfig {
        clients: 40,
        ops: 4000,
        keys: 3,
        hot_share: 0.9,
        values: ValueKind::Pool(5),
        ..GenConfig::default()
    };
    let h = linearizable_history(&mut rng, &cfg);
    let tight = CheckConfig {
        max_states_per_key: 50,
        ..CheckConfig::default()
    };
    let report = check(&h, &tight).expect("well formed");
    assert!(
        matches!(report.verdict, Verdict::Unknown),
        "{:?}",
        report.verdict
    );
    assert!(report.unknown_keys.contains(&Key::from("k0")));
    let timed = CheckConfig {
        max_time_per_key: Some(std::time::Duration::ZERO),
        ..CheckConfig::default()
    };
    // A zero budget still explores a little (the clock is read every 1024
    // configurations) and must stop there.
    let report = check(&h, &timed).expect("well formed");
    assert!(!matches!(report.verdict, Verdict::Violation(_)));
}

#[test]
fn threads_do_not_change_the_verdict() {
    let mut rng = Rng::new(78);
    let cfg = GenConfig {
        clients: 16,
        ops: 4000,
        keys: 40,
        hot_share: 0.2,
        ..GenConfig::default()
    };
    let mut h = linearizable_history(&mut rng, &cfg);
    let parallel = CheckConfig {
        threads: 4,
        ..CheckConfig::default()
    };
    assert!(check(&h, &parallel).expect("well formed").is_linearizable());
    let last_write = (0..h.len())
        .rev()
        .find(|&i| matches!(h[i].input, Input::Put(Some(_))) && h[i].ret.is_some())
        .expect("a write");
    let key = h[last_write].key.clone();
    let end = h.iter().filter_map(|o| o.ret_time()).max().unwrap_or(0);
    h.push(Operation {
        client: registers::ClientId(999),
        key: key.clone(),
        call: end + 1,
        input: Input::Get,
        ret: Some(tests::linearizability::Return {
            time: end + 2,
            output: Output::Get(Some(v("bogus"))),
        }),
    });
    let sequential = check_default(&h);
    let report = check(&h, &parallel).expect("well formed");
    assert_eq!(report.failed_keys, vec![key.clone()]);
    assert_eq!(report.failed_keys, sequential.failed_keys);
    assert_eq!(report.violation().map(|v| v.key.clone()), Some(key));
}
