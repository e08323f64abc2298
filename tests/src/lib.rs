//! Cluster-level tests and the tools they share: the linearizability
//! checker for client histories.

pub mod linearizability;
