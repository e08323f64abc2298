//! One replica of the store as a server (Gryff, NSDI 2020; PROTOCOL.md):
//! the deterministic replica machine of the `replica` crate, driven by a
//! tokio task (`driver`) that carries out its effects under the persist
//! barrier, with peers over batched gRPC streams (`peer`), the public
//! `gryff.v1.Kv` API (`service`), durability behind a trait
//! (`durability`), a TOML + flags configuration (`config`) and counters
//! (`metrics`). `server` assembles them; `dev` runs a local cluster of
//! `kv-server` processes with a short workload (`load`).
//!
//! Only `adapter` knows the replica crate's concrete types.

pub mod adapter;
pub mod config;
pub mod dev;
pub mod driver;
pub mod durability;
pub mod etcd;
pub mod load;
pub mod metrics;
pub mod peer;
pub mod procs;
pub mod server;
pub mod service;

pub use config::{ConfigError, ServerConfig};
pub use server::{Listeners, RunningServer, ServerError};
