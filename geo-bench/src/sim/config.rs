//! Settings of one simulation run: clients, workload, timing, and which
//! faults to inject (ARCHITECTURE.md, "Testing", step 4).

use crate::workload::Workload;
use serde::Serialize;

/// Which faults the simulator injects during the measured phase. All are
/// healed before the liveness phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Chance (percent) that a replica-to-replica message is dropped.
    pub loss_pct: f64,
    /// Chance (percent) that a message is delivered twice.
    pub dup_pct: f64,
    /// Chance (percent) that a message gets an extra delay of up to
    /// `reorder_ms`, overtaking later ones.
    pub reorder_pct: f64,
    pub reorder_ms: f64,
    /// Cut one replica off from the others for a while, now and then.
    pub partitions: bool,
    /// Crash a replica now and then (losing what it had not synced) and
    /// restart it from its durable records after a while.
    pub crashes: bool,
    /// Mean time between two injected partitions or crashes.
    pub mean_fault_interval_ms: u64,
    /// Longest a replica stays crashed or cut off.
    pub max_fault_ms: u64,
    /// A crash hits the current leader (if the protocol has one, see
    /// `SimProtocol::is_leader`) instead of a random replica.
    pub leader_crashes: bool,
}

impl Faults {
    /// No faults at all: the figures run.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Every fault kind on, at rates that still leave progress.
    pub fn all() -> Faults {
        Faults {
            loss_pct: 2.0,
            dup_pct: 2.0,
            reorder_pct: 5.0,
            reorder_ms: 40.0,
            partitions: true,
            crashes: true,
            mean_fault_interval_ms: 700,
            max_fault_ms: 1_500,
            leader_crashes: false,
        }
    }
}

/// One simulation run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimConfig {
    pub seed: u64,
    pub clients_per_region: usize,
    pub workload: Workload,
    /// Length of the measured phase (faults happen only in it).
    pub duration_ms: u64,
    /// Operations that start before this are left out of the latency figures.
    pub warmup_ms: u64,
    /// Uniform extra one-way delay in `0..jitter_ms` on every message.
    pub jitter_ms: f64,
    /// A client that hears nothing for this long tries the next replica.
    pub client_timeout_ms: u64,
    /// Time for a replica to make a batch of records durable.
    pub fsync_us: u64,
    pub faults: Faults,
    /// After the measured phase: how long everything pending has to finish.
    pub liveness_timeout_ms: u64,
    /// In the liveness phase, read back every key the run touched (so the
    /// checker sees whether an acknowledged write was lost).
    pub final_reads: bool,
}

impl SimConfig {
    /// A fault-free, jitter-free run for latency figures.
    pub fn figures(seed: u64, workload: Workload) -> SimConfig {
        SimConfig {
            seed,
            clients_per_region: 16,
            workload,
            duration_ms: 20_000,
            warmup_ms: 2_000,
            jitter_ms: 0.0,
            client_timeout_ms: 5_000,
            fsync_us: 0,
            faults: Faults::none(),
            liveness_timeout_ms: 30_000,
            final_reads: false,
        }
    }

    /// A short run with every fault kind on, for the checker sweeps.
    pub fn sweep(seed: u64, workload: Workload) -> SimConfig {
        SimConfig {
            seed,
            clients_per_region: 3,
            workload,
            duration_ms: 4_000,
            warmup_ms: 0,
            jitter_ms: 10.0,
            client_timeout_ms: 1_500,
            fsync_us: 2_000,
            faults: Faults::all(),
            liveness_timeout_ms: 60_000,
            final_reads: true,
        }
    }
}
