//! Cluster-level tests and the linearizability checker (in progress).
