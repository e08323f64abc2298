//! Replica-to-replica transport over gRPC (`gryff.v1.Peer`): batched
//! client streams out (`outbound`), checked and decoded streams in
//! (`inbound`), postcard-encoded `PeerMsg`s inside (`codec`), and the
//! optional emulated WAN delay in front of each sender (`delay`).

pub mod codec;
pub mod delay;
pub mod inbound;
pub mod outbound;

pub use inbound::PeerService;
pub use outbound::{Identity, PeerSenders};
