//! The effective configuration of a run: everything that decides its
//! figures, saved as `config.json` beside them (with the seed).

use crate::Workload;
use serde::Serialize;
use std::collections::BTreeMap;

/// One benchmark run, as executed.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    pub wan: String,
    /// Where the matrix came from (a file, or the shipped default).
    pub matrix_source: String,
    pub regions: Vec<String>,
    /// Round trip per region pair, ms.
    pub rtt_ms: BTreeMap<String, BTreeMap<String, f64>>,
    /// One round trip to the nearest majority per region, ms.
    pub floor_ms: BTreeMap<String, f64>,
    pub workload: Workload,
    /// Keys per client (besides the shared hot key).
    pub keys: u64,
    /// Clients per region (the first of `clients_sweep`).
    pub clients_per_region: usize,
    /// Every client count run, in order (one unless a tput sweep).
    pub clients_sweep: Vec<usize>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub seed: u64,
    /// Sub-operations per request (tail workload); 1 = plain operations.
    pub fanout: usize,
    pub modes: Vec<String>,
    /// kv-server durability backend (`rocksdb` with fsync, or `memory`).
    pub durability: String,
    /// Region of the raft leader (raft-all, gryff-raft).
    pub raft_leader: String,
    pub server_bin: Option<String>,
    pub calibration_tolerance_ms: f64,
    /// Whether the simulator also ran the same workload, for comparison.
    pub sim_beside: bool,
    pub geo_bench_version: String,
}

/// The sub-operation count of the tail workload when none is given.
pub const DEFAULT_TAIL_FANOUT: usize = 10;

/// Flag values that make no sense, with what to do instead.
pub fn validate(cfg: &RunConfig) -> Result<(), String> {
    if cfg.clients_sweep.is_empty() {
        return Err("--clients names no count".into());
    }
    for &c in &cfg.clients_sweep {
        if c == 0 || c > 1024 {
            return Err(format!("--clients {c} is not in 1..=1024"));
        }
    }
    if !(cfg.duration_s > 0.0 && cfg.duration_s <= 86_400.0) {
        return Err(format!(
            "--duration-s {} must be > 0 and at most a day",
            cfg.duration_s
        ));
    }
    if !(cfg.warmup_s >= 0.0 && cfg.warmup_s <= 3_600.0) {
        return Err(format!("--warmup-s {} must be in 0..=3600", cfg.warmup_s));
    }
    if cfg.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    if cfg.workload.value_size == 0 || cfg.workload.value_size > 1 << 20 {
        return Err(format!(
            "--value-size {} is not in 1..=1048576",
            cfg.workload.value_size
        ));
    }
    if cfg.fanout == 0 || cfg.fanout > 105 {
        return Err(format!(
            "--fanout {} is not in 1..=105 (EVALUATION.md's tail range)",
            cfg.fanout
        ));
    }
    if cfg.modes.is_empty() {
        return Err("--modes names no mode".into());
    }
    if !["rocksdb", "memory"].contains(&cfg.durability.as_str()) {
        return Err(format!(
            "--durability {:?}: expected rocksdb or memory",
            cfg.durability
        ));
    }
    if !cfg.regions.contains(&cfg.raft_leader) {
        return Err(format!(
            "--raft-leader {} is not one of {:?}",
            cfg.raft_leader, cfg.regions
        ));
    }
    Ok(())
}
