//! The multi-region benchmark and the deterministic simulator (in progress).
