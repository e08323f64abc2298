//! Larger histories: the checker must finish within its bounds and accept.
//! No timing assertions (shared CI machines); the times are printed.

use crate::support::*;
use std::time::Instant;
use tests::linearizability::{CheckConfig, check};

fn run(name: &str, seed: u64, cfg: &GenConfig) {
    let mut rng = Rng::new(seed);
    let h = linearizable_history(&mut rng, cfg);
    let started = Instant::now();
    let report = check(&h, &CheckConfig::default()).expect("well formed");
    eprintln!(
        "{name}: {} ops, {} keys, {} states, {:?}",
        report.operations,
        report.keys,
        report.states_explored,
        started.elapsed()
    );
    if let Some(v) = report.violation() {
        panic!("{name}: unexpected violation\n{v}");
    }
    assert!(report.is_linearizable(), "{name}: {:?}", report.verdict);
}

#[test]
fn twenty_thousand_ops_twenty_clients() {
    let cfg = GenConfig {
        clients: 20,
        ops: 20_000,
        keys: 20,
        hot_share: 0.25,
        rmw_share: 0.05,
        ..GenConfig::default()
    };
    run("20k/20 clients", 42, &cfg);
}

#[test]
fn hot_key_with_eighty_clients() {
    let cfg = GenConfig {
        clients: 80,
        ops: 20_000,
        keys: 200,
        hot_share: 0.25,
        read_share: 0.495,
        rmw_share: 0.01,
        values: ValueKind::Sim,
        ..GenConfig::default()
    };
    run("25% hot key/80 clients", 43, &cfg);
}

#[test]
fn one_key_eighty_concurrent_clients() {
    let cfg = GenConfig {
        clients: 80,
        ops: 10_000,
        keys: 1,
        read_share: 0.495,
        rmw_share: 0.01,
        values: ValueKind::Sim,
        ..GenConfig::default()
    };
    run("one key/80 clients", 44, &cfg);
}

#[test]
fn hundred_thousand_ops_over_many_keys() {
    let cfg = GenConfig {
        clients: 80,
        ops: 100_000,
        keys: 2000,
        hot_share: 0.25,
        read_share: 0.495,
        rmw_share: 0.01,
        values: ValueKind::Sim,
        ..GenConfig::default()
    };
    run("100k ops/80 clients/2000 keys", 45, &cfg);
}

/// A knob for measuring by hand, in release mode:
/// `LIN_BENCH="clients ops keys hot_share read_share rmw_share pending_share values seed"`
/// where `values` is 0 (unique), -1 (simulator-like) or a pool size.
#[test]
fn bench_from_env() {
    let Ok(spec) = std::env::var("LIN_BENCH") else {
        return;
    };
    let f: Vec<f64> = spec
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let cfg = GenConfig {
        clients: f[0] as usize,
        ops: f[1] as usize,
        keys: f[2] as usize,
        hot_share: f[3],
        read_share: f[4],
        rmw_share: f[5],
        pending_share: f[6],
        values: match f[7] as i64 {
            0 => ValueKind::Unique,
            -1 => ValueKind::Sim,
            n => ValueKind::Pool(n as u64),
        },
        ..GenConfig::default()
    };
    run("env", f[8] as u64, &cfg);
}
