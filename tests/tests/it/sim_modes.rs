//! The simulation sweep in every mode — Gryff with EPaxos or raft for
//! RMWs, EPaxos-all, raft-all — with every fault kind on, and the raft
//! leader killed during RMW load: each history must be linearizable, the
//! replicas must agree, and every pending operation must finish after the
//! faults heal. A fixed seed set per mode (seconds each);
//! `SIM_MODE_SEEDS=<n>` runs more.

use geo_bench::sim::{Faults, MODE_NAMES, Mode, parse_mode};
use registers::ReplicaId;
use tests::sweep::{SweepCase, SweepStats, cases_in_mode, run_case_with};

fn seeds() -> u64 {
    std::env::var("SIM_MODE_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

fn mode(name: &str) -> Mode {
    parse_mode(name, ReplicaId(0)).expect("a known mode")
}

/// Runs the cases, panicking with the replay command on a failure.
fn sweep(cases: Vec<SweepCase>, faults: impl Fn() -> Faults) -> SweepStats {
    let mut total = SweepStats::default();
    for case in cases {
        let stats = run_case_with(&case, faults()).unwrap_or_else(|f| panic!("{f}"));
        total.operations += stats.operations;
        total.rmws_completed += stats.rmws_completed;
        total.crashes += stats.crashes;
        total.leader_crashes += stats.leader_crashes;
        total.partitions += stats.partitions;
    }
    total
}

fn every_fault_kind(name: &str) {
    let started = std::time::Instant::now();
    let n = seeds();
    let total = sweep(cases_in_mode(1, n, mode(name)), Faults::all);
    println!(
        "{name}: {n} seeds, {} operations ({} RMWs completed), {} crashes, {} partitions, all linearizable, in {:.1} s",
        total.operations,
        total.rmws_completed,
        total.crashes,
        total.partitions,
        started.elapsed().as_secs_f64()
    );
    assert!(
        total.crashes > 0 && total.partitions > 0,
        "{name}: no faults were injected"
    );
    assert!(
        total.rmws_completed >= n as usize,
        "{name}: too few RMWs completed"
    );
}

#[test]
fn sim_modes_gryff_epaxos() {
    every_fault_kind(MODE_NAMES[0]);
}

#[test]
fn sim_modes_gryff_raft() {
    every_fault_kind(MODE_NAMES[1]);
}

#[test]
fn sim_modes_epaxos_all() {
    every_fault_kind(MODE_NAMES[2]);
}

#[test]
fn sim_modes_raft_all() {
    every_fault_kind(MODE_NAMES[3]);
}

/// Crashes only, each hitting the raft leader of the moment, under an
/// RMW-heavy load: elections, leader changes mid-proposal, retried and
/// deduplicated RMWs, and the restarted leader catching up.
fn kill_the_leader(name: &str) {
    let n = seeds();
    let cases: Vec<SweepCase> = cases_in_mode(1, n, mode(name))
        .into_iter()
        .map(|c| SweepCase {
            workload: "rmw-heavy".into(),
            ..c
        })
        .collect();
    let total = sweep(cases, || Faults {
        crashes: true,
        leader_crashes: true,
        loss_pct: 1.0,
        reorder_pct: 5.0,
        reorder_ms: 40.0,
        mean_fault_interval_ms: 900,
        max_fault_ms: 1_500,
        ..Faults::none()
    });
    println!(
        "{name}: {} leader crashes of {} crashes, {} RMWs completed, all linearizable",
        total.leader_crashes, total.crashes, total.rmws_completed
    );
    assert!(
        total.leader_crashes >= n,
        "{name}: the leader was not killed often enough"
    );
    assert!(
        total.rmws_completed > 5 * n as usize,
        "{name}: RMW load too light"
    );
}

#[test]
fn sim_kill_the_raft_leader_during_rmw_load_gryff_raft() {
    kill_the_leader("gryff-raft");
}

#[test]
fn sim_kill_the_raft_leader_during_rmw_load_raft_all() {
    kill_the_leader("raft-all");
}

#[test]
fn a_replay_command_names_the_mode() {
    let case = &cases_in_mode(4, 1, mode("raft-all"))[0];
    assert_eq!(
        case.mode,
        Mode::RaftAll {
            leader: ReplicaId(1)
        }
    );
    let cmd = case.replay_command();
    assert!(cmd.contains("SIM_MODE=raft-all SIM_RAFT_LEADER=1"), "{cmd}");
    // The default sweep stays Gryff with EPaxos.
    assert_eq!(tests::sweep::cases(1, 1)[0].mode, Mode::default());
}
