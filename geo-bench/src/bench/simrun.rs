//! `--wan sim`, and `--sim-beside`: the deterministic simulator on the same
//! matrix, workload, clients, duration, warm-up and seed (virtual time,
//! infinite CPU), reported like a measured run.

use super::config::RunConfig;
use super::results::ModeResults;
use crate::RegionMatrix;
use crate::sim::{GryffNode, GryffSimConfig, Mode, SimConfig, Simulation, parse_mode};
use registers::ReplicaId;

/// Runs mode `mode_name` in the simulator.
pub fn run_mode(
    cfg: &RunConfig,
    matrix: &RegionMatrix,
    mode_name: &str,
) -> Result<ModeResults, String> {
    let leader = matrix
        .regions()
        .iter()
        .position(|r| *r == cfg.raft_leader)
        .unwrap_or(0);
    let mode = parse_mode(mode_name, ReplicaId(leader as u32))?;
    let mut sim = SimConfig::figures(cfg.seed, cfg.workload.clone());
    sim.clients_per_region = cfg.clients_per_region;
    sim.warmup_ms = (cfg.warmup_s * 1000.0) as u64;
    sim.duration_ms = sim.warmup_ms + (cfg.duration_s * 1000.0) as u64;
    let proto = GryffSimConfig {
        mode,
        raft_leader: match mode {
            Mode::RaftAll { leader } => Some(leader),
            _ => Some(ReplicaId(leader as u32)),
        },
        ..GryffSimConfig::default()
    };
    let out = Simulation::<GryffNode>::new(sim.clone(), matrix.clone(), proto).run();
    let mut res = ModeResults::new(mode_name);
    for op in &out.history {
        if op.call_us < sim.warmup_ms * 1000 || op.call_us >= out.measure_end_us {
            continue;
        }
        match op.latency_us() {
            Some(l) => res.record(op.region, op.kind(), l),
            None => res.errors += 1,
        }
    }
    res.measured_s = cfg.duration_s;
    if !out.live {
        res.first_error = Some("simulator: some client was still waiting at the end".into());
    }
    Ok(res)
}
