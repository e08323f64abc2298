//! Simulation sweeps of the Gryff replica with every fault kind on: each
//! seed's history must be linearizable, the replicas must agree, and every
//! pending operation must finish after the faults heal.
//!
//! `SIM_SEEDS=<n>` runs n seeds instead of the CI set (`SIM_FIRST_SEED`
//! moves the start); a failure prints the command that replays its seed,
//! which runs `sim_sweep_replay` with `SIM_SEED` and friends set.

use geo_bench::sim::{MODE_NAMES, parse_mode};
use registers::ReplicaId;
use tests::sweep::{SweepCase, cases, run_case};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

#[test]
fn sim_sweep_every_fault_kind() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(300);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(1);
    let started = std::time::Instant::now();
    let (mut ops, mut rmws, mut crashes, mut partitions) = (0, 0, 0, 0);
    for case in cases(first, seeds) {
        match run_case(&case) {
            Ok(stats) => {
                ops += stats.operations;
                rmws += stats.rmws_completed;
                crashes += stats.crashes;
                partitions += stats.partitions;
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    println!(
        "{seeds} seeds, {ops} operations ({rmws} RMWs completed), {crashes} crashes, {partitions} partitions, all linearizable, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The sweep must actually have injected faults, or it proves little.
    assert!(crashes > 0 && partitions > 0, "no faults were injected");
    assert!(
        rmws > seeds as usize,
        "too few RMWs completed to exercise EPaxos: {rmws}"
    );
}

#[test]
fn sim_sweep_replay() {
    let Some(seed) = env_u64("SIM_SEED") else {
        return; // only runs when asked to replay a seed
    };
    let mode_name = std::env::var("SIM_MODE").unwrap_or_else(|_| MODE_NAMES[0].into());
    let leader = ReplicaId(env_u64("SIM_RAFT_LEADER").unwrap_or(0) as u32);
    let mode = parse_mode(&mode_name, leader).unwrap_or_else(|e| panic!("SIM_MODE: {e}"));
    let case = SweepCase {
        seed,
        regions: env_u64("SIM_REGIONS").unwrap_or(3) as usize,
        workload: std::env::var("SIM_WORKLOAD").unwrap_or_else(|_| "lat-a".into()),
        conflict_pct: std::env::var("SIM_CONFLICT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(25.0),
        mode,
    };
    match run_case(&case) {
        Ok(stats) => println!("{case:?}: ok, {stats:?}"),
        Err(failure) => panic!("{failure}"),
    }
}
