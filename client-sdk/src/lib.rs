//! The client SDK of the store: the public gRPC API (`proto`), an async
//! [`Client`] that talks to its nearest replica with deadlines and failover
//! (PROTOCOL.md 6), and conversions between the wire messages and the
//! protocol's own types in `registers` (`convert`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), client_sdk::ClientError> {
//! use client_sdk::{Client, ClientConfig};
//! let endpoints = vec!["http://127.0.0.1:7101".to_string()];
//! let client = Client::connect(&endpoints, ClientConfig::default()).await?;
//! client.put("k", "v").await?;
//! assert_eq!(client.get("k").await?, Some(b"v".to_vec()));
//! let counter = client.fetch_add("n", 5).await?;
//! println!("{} -> {}", counter.old, counter.new);
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
pub mod convert;
mod error;
mod ops;
mod replicas;

pub use client::Client;
pub use config::ClientConfig;
pub use convert::ConvertError;
pub use error::ClientError;
pub use ops::{CasOutcome, FetchAddOutcome, GetOutcome, PutIfAbsentOutcome, RmwResult};
pub use registers::{Carstamp, ClientId, OpId, ReplicaId, RequestId, RmwOp, RmwOutcome};
pub use replicas::ReplicaInfo;

/// Code generated from `proto/gryff/v1/{kv,peer}.proto` (package `gryff.v1`):
/// the messages, `kv_client::KvClient`, `kv_server::{Kv, KvServer}`, and the
/// internal `peer_client::PeerClient` / `peer_server::{Peer, PeerServer}`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("gryff.v1");
}
