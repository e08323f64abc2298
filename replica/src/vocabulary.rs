//! The combined replica's vocabulary: every peer message, durable record
//! and timer is one of the register protocol's, EPaxos's or raft's,
//! tagged. The server puts these on the wire and in its log as they are.

use consensus::raft::{RaftMsg, RaftPersist, RaftTimer};
use consensus::{EpaxosMsg, EpaxosPersist, EpaxosTimer};
use registers::{ClientReply, Effect, RegisterMsg, RegisterPersist, RegisterTimer};
use serde::{Deserialize, Serialize};

/// A message between two replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    Register(RegisterMsg),
    Epaxos(EpaxosMsg),
    Raft(RaftMsg),
}

/// A record the replica needs durable before the sends and replies that
/// follow it (PROTOCOL.md 5). A restarted replica is rebuilt from exactly
/// these records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Register(RegisterPersist),
    Epaxos(EpaxosPersist),
    Raft(RaftPersist),
}

/// A timer the replica set for itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplicaTimer {
    Register(RegisterTimer),
    Epaxos(EpaxosTimer),
    Raft(RaftTimer),
}

/// The effects of the combined replica.
pub type ReplicaEffect = Effect<PeerMsg, Record, ClientReply, ReplicaTimer>;
