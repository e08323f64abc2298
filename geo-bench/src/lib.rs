//! geo-bench: region matrices, workloads, and the deterministic simulator
//! that drives the protocol cores under the paper's WAN (EVALUATION.md).
//! The real multi-process benchmark joins it with the server issue.

pub mod bench;
pub mod matrix;
pub mod sim;
pub mod wan;
pub mod workload;

pub use matrix::{MatrixError, RegionMatrix};
pub use workload::{Workload, WorkloadError};
