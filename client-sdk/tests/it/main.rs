//! Integration tests of the client SDK against in-process fake replicas on
//! loopback (ephemeral ports), and of the kvctl binary.

mod client;
mod fake;
mod kvctl;
