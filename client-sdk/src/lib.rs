//! The client SDK of the store: the public gRPC API (`proto`), an async
//! client that talks to its nearest replica with deadlines and failover
//! (PROTOCOL.md 6), and conversions between the wire messages and the
//! protocol's own types in `registers`.

/// Code generated from `proto/gryff/v1/{kv,peer}.proto` (package `gryff.v1`):
/// messages, `kv_client::KvClient`, `kv_server::{Kv, KvServer}` and the
/// internal `peer_client` / `peer_server`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("gryff.v1");
}
