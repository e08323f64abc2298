//! Simulation sweeps (ARCHITECTURE.md, "Testing", step 4): run the
//! replica in the deterministic simulator with faults on, in any mode
//! (Gryff with EPaxos or raft for RMWs, EPaxos-all, raft-all), then check
//! the client history for linearizability, the replicas for convergence,
//! and that every pending operation finished once the faults healed. A
//! failure carries the command that replays its seed.

use crate::linearizability::{CheckConfig, HistoryRecorder, Operation, Verdict, check};
use geo_bench::sim::{
    Faults, GryffNode, GryffSimConfig, HistoryOp, Mode, SimConfig, Simulation, check_convergence,
};
use geo_bench::{RegionMatrix, Workload};
use registers::ReplicaId;
use std::fmt;
use std::time::Duration;

/// One point of a sweep: which seed, how many regions, which workload,
/// which mode (Gryff with EPaxos by default).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepCase {
    pub seed: u64,
    pub regions: usize,
    pub workload: String,
    pub conflict_pct: f64,
    pub mode: Mode,
}

impl SweepCase {
    /// The shell command that replays this case alone.
    pub fn replay_command(&self) -> String {
        let leader = match self.mode {
            Mode::RaftAll { leader } => format!(" SIM_RAFT_LEADER={}", leader.0),
            _ => String::new(),
        };
        format!(
            "SIM_SEED={} SIM_REGIONS={} SIM_WORKLOAD={} SIM_CONFLICT={} SIM_MODE={}{leader} cargo nextest run --workspace --locked -E 'test(sim_sweep_replay)' --no-capture",
            self.seed,
            self.regions,
            self.workload,
            self.conflict_pct,
            self.mode.name()
        )
    }

    /// The simulator settings of this case: short, every fault kind on.
    pub fn sim_config(&self) -> SimConfig {
        let workload = Workload::named(&self.workload, Some(self.conflict_pct))
            .unwrap_or_else(|e| panic!("sweep case names a bad workload: {e}"));
        SimConfig::sweep(self.seed, workload)
    }
}

/// What a passing case looked like.
#[derive(Clone, Debug, Default)]
pub struct SweepStats {
    pub operations: usize,
    pub pending: usize,
    /// RMWs that returned to their client.
    pub rmws_completed: usize,
    pub crashes: u64,
    /// Crashes that hit the raft leader of the time.
    pub leader_crashes: u64,
    pub partitions: u64,
    pub messages_dropped: u64,
}

/// Why a case failed.
#[derive(Debug)]
pub struct SweepFailure {
    pub case: SweepCase,
    pub reason: String,
}

impl fmt::Display for SweepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation case {:?} failed: {}\nreplay with:\n  {}",
            self.case,
            self.reason,
            self.case.replay_command()
        )
    }
}

/// The checker's bounds for sweep histories (small, so this is generous).
fn check_config() -> CheckConfig {
    CheckConfig {
        max_states_per_key: 5_000_000,
        max_time_per_key: Some(Duration::from_secs(60)),
        ..CheckConfig::default()
    }
}

/// Runs one case with the given faults and checks everything.
pub fn run_case_with(case: &SweepCase, faults: Faults) -> Result<SweepStats, SweepFailure> {
    let fail = |reason: String| SweepFailure {
        case: case.clone(),
        reason,
    };
    let matrix = RegionMatrix::paper(case.regions)
        .ok_or_else(|| fail(format!("no paper matrix with {} regions", case.regions)))?;
    let mut cfg = case.sim_config();
    cfg.faults = faults;
    let proto = GryffSimConfig {
        mode: case.mode,
        ..GryffSimConfig::default()
    };
    let out = Simulation::<GryffNode>::new(cfg, matrix, proto).run();
    if !out.live {
        let open: Vec<&HistoryOp> = out
            .history
            .iter()
            .filter(|o| o.return_us.is_none())
            .collect();
        return Err(fail(format!(
            "liveness: clients still waiting {} ms after the faults healed; {} operations without a return, the last: {:?}",
            out.end_us.saturating_sub(out.measure_end_us) / 1000,
            open.len(),
            open.last()
        )));
    }
    check_convergence(&out.snapshots).map_err(|e| fail(format!("convergence: {e}")))?;
    let ops = to_checker_history(&out.history).map_err(fail)?;
    let report =
        check(&ops, &check_config()).map_err(|e| fail(format!("malformed history: {e}")))?;
    match report.verdict {
        Verdict::Linearizable => {}
        Verdict::Violation(v) => return Err(fail(format!("not linearizable:\n{v}"))),
        Verdict::Unknown => {
            return Err(fail(format!(
                "checker gave up on keys {:?}",
                report.unknown_keys
            )));
        }
    }
    Ok(SweepStats {
        operations: out.history.len(),
        pending: out.history.iter().filter(|o| o.return_us.is_none()).count(),
        rmws_completed: out
            .history
            .iter()
            .filter(|o| o.kind() == "rmw" && o.return_us.is_some())
            .count(),
        crashes: out.crashes,
        leader_crashes: out.leader_crashes,
        partitions: out.partitions,
        messages_dropped: out.messages_dropped,
    })
}

/// Runs one case with every fault kind on.
pub fn run_case(case: &SweepCase) -> Result<SweepStats, SweepFailure> {
    run_case_with(case, Faults::all())
}

/// The simulator's history in the checker's form.
pub fn to_checker_history(history: &[HistoryOp]) -> Result<Vec<Operation>, String> {
    let mut rec = HistoryRecorder::new();
    for op in history {
        let h = rec.invoke_request(op.client, op.call_us, &op.request);
        if let (Some(ret), Some(reply)) = (op.return_us, &op.reply) {
            rec.complete_reply(h, ret, reply)
                .map_err(|e| format!("bad reply for {op:?}: {e}"))?;
        }
    }
    Ok(rec.into_operations())
}

/// The cases of a sweep: `seeds` seeds starting at `first_seed`, alternating
/// 3 and 5 regions, and the lat-a, lat-b and rmw-heavy workloads at high
/// conflict rates.
pub fn cases(first_seed: u64, seeds: u64) -> Vec<SweepCase> {
    cases_in_mode(first_seed, seeds, Mode::default())
}

/// The same cases in another mode. raft-all's leader moves with the seed
/// (`seed % regions`), so sweeps put it in every region.
pub fn cases_in_mode(first_seed: u64, seeds: u64, mode: Mode) -> Vec<SweepCase> {
    (first_seed..first_seed + seeds)
        .map(|seed| {
            let regions = if seed % 2 == 0 { 3 } else { 5 };
            let mode = match mode {
                Mode::RaftAll { .. } => Mode::RaftAll {
                    leader: ReplicaId((seed % regions as u64) as u32),
                },
                m => m,
            };
            SweepCase {
                seed,
                regions,
                workload: ["lat-a", "rmw-heavy", "lat-b"][(seed / 2 % 3) as usize].to_string(),
                conflict_pct: if seed % 3 == 0 { 50.0 } else { 25.0 },
                mode,
            }
        })
        .collect()
}
