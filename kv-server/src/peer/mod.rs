//! Replica-to-replica transport over gRPC (`gryff.v1.Peer`): batched
//! client streams out (`outbound`), checked and decoded streams in
//! (`inbound`), postcard-encoded `PeerMsg`s inside (`codec`).

pub mod codec;
pub mod inbound;
pub mod outbound;

pub use inbound::PeerService;
pub use outbound::{Identity, PeerSenders};
