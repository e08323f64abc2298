//! Cluster-level tests and the tools they share: the linearizability
//! checker for client histories, and the simulation sweeps that feed it.

pub mod linearizability;
pub mod sweep;
