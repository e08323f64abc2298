//! The multi-region benchmark (`geo-bench run`): one `kv-server` process
//! per region of a [`crate::RegionMatrix`] under a WAN emulation
//! ([`crate::wan`]), closed-loop SDK clients next to each replica, latency
//! histograms per region and operation type beside the region's floor
//! (EVALUATION.md), and reports for machines and people. `--wan sim` runs
//! the deterministic simulator on the same workload instead.
//!
//! - [`config`]: the effective run configuration (saved with the results)
//! - [`cluster`]: the replica processes inside the emulated network
//! - [`load`]: closed-loop clients on tokio, per-op latencies
//! - [`simrun`]: the same workload in the simulator
//! - [`results`]: histograms, percentiles, floors, the region-normalised set
//! - [`report`]: JSON, CSV, Markdown; [`plot`]: CDF plots (PNG, SVG)

pub mod cluster;
pub mod config;
pub mod load;
pub mod plot;
pub mod report;
pub mod results;
pub mod simrun;

pub use config::RunConfig;
pub use results::{ModeResults, StatRow};
