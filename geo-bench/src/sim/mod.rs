//! The deterministic simulator (ARCHITECTURE.md, "Testing", step 4): the
//! protocol cores under virtual time, the region matrix, jitter and faults,
//! with closed-loop clients recording a history for the checker.

pub mod checks;
pub mod compare;
pub mod config;
pub mod engine;
pub mod gryff;
pub mod history;
pub mod modes;
pub mod network;
pub mod protocol;
pub mod report;

pub use checks::check_convergence;
pub use config::{Faults, SimConfig};
pub use engine::{SimOutcome, Simulation};
pub use gryff::{GryffNode, GryffSimConfig};
pub use history::HistoryOp;
pub use modes::{MODE_NAMES, Mode, RmwEngine, parse_mode};
pub use protocol::{NodeSetup, ReplicaSnapshot, SimEffect, SimProtocol};
#[cfg(test)]
mod toy_tests;
