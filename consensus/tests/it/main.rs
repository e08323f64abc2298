//! Integration tests of the EPaxos machine: handler tests, scripted
//! interleavings on a deterministic in-test network, and property tests
//! over random delivery orders, drops and crashes; the EPaxos-all baseline; the raft engine.

mod catch_up;
mod every_op;
mod handlers;
mod interleavings;
mod net;
mod props;
mod raft;
mod raft_net;
mod raft_props;
