//! Configuration of one replica's register machine: who it is, who the
//! others are and in which order to ask them (thrifty phases, PROTOCOL.md 2
//! and 6), and the phase timeout that makes thrifty phases safe to use.

use crate::ids::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Mistakes in a [`RegisterConfig`]; all of them are the operator's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the replica list is empty")]
    NoReplicas,
    #[error("replica {0:?} appears more than once in the replica list")]
    DuplicateReplica(ReplicaId),
    #[error("this replica {0:?} is not in the replica list")]
    SelfNotListed(ReplicaId),
    #[error("peers_nearest_first must list every other replica exactly once")]
    PeersMismatch,
    #[error("phase_timeout_us must be positive")]
    ZeroPhaseTimeout,
    #[error("op_seq_block must be positive")]
    ZeroOpSeqBlock,
}

/// One replica's view of the cluster for the register protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterConfig {
    /// This replica.
    pub me: ReplicaId,
    /// Every replica of the cluster, `me` included; `n` is its length and
    /// the quorum is `n / 2 + 1`.
    pub replicas: Vec<ReplicaId>,
    /// Every replica except `me`, nearest (lowest round-trip time) first.
    /// Thrifty phases go to the shortest prefix that can complete a quorum.
    pub peers_nearest_first: Vec<ReplicaId>,
    /// Send each phase to the nearest quorum only, and to the others only
    /// after `phase_timeout_us` (fewer messages, same latency when nobody is
    /// slow). Off: every phase goes to every peer at once.
    pub thrifty: bool,
    /// After this long without a quorum, a phase is sent again to every peer
    /// that has not answered, and again every period until it completes.
    pub phase_timeout_us: u64,
    /// How many operation sequence numbers one durable reservation covers
    /// (one `Persist(OpSeqReserved)` per block; see `op_seq`).
    pub op_seq_block: u64,
}

impl Default for RegisterConfig {
    /// A one-replica cluster; real deployments set every field.
    fn default() -> RegisterConfig {
        RegisterConfig {
            me: ReplicaId(0),
            replicas: vec![ReplicaId(0)],
            peers_nearest_first: Vec::new(),
            thrifty: false,
            phase_timeout_us: 500_000,
            op_seq_block: 4096,
        }
    }
}

impl RegisterConfig {
    /// `me` among `replicas`, peers in id order (callers that know the
    /// latencies set `peers_nearest_first` themselves).
    pub fn new(me: ReplicaId, replicas: Vec<ReplicaId>) -> RegisterConfig {
        let peers_nearest_first = replicas.iter().copied().filter(|r| *r != me).collect();
        RegisterConfig {
            me,
            replicas,
            peers_nearest_first,
            ..RegisterConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.replicas.is_empty() {
            return Err(ConfigError::NoReplicas);
        }
        let mut all = BTreeSet::new();
        for r in &self.replicas {
            if !all.insert(*r) {
                return Err(ConfigError::DuplicateReplica(*r));
            }
        }
        if !all.contains(&self.me) {
            return Err(ConfigError::SelfNotListed(self.me));
        }
        let peers: BTreeSet<ReplicaId> = self.peers_nearest_first.iter().copied().collect();
        all.remove(&self.me);
        if peers != all || self.peers_nearest_first.len() != all.len() {
            return Err(ConfigError::PeersMismatch);
        }
        if self.phase_timeout_us == 0 {
            return Err(ConfigError::ZeroPhaseTimeout);
        }
        if self.op_seq_block == 0 {
            return Err(ConfigError::ZeroOpSeqBlock);
        }
        Ok(())
    }

    /// Majority quorum size `floor(n/2) + 1`.
    pub fn quorum(&self) -> usize {
        self.replicas.len() / 2 + 1
    }

    /// Whether `r` is another replica of this cluster (a legitimate sender).
    pub fn is_peer(&self, r: ReplicaId) -> bool {
        r != self.me && self.replicas.contains(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<ReplicaId> {
        v.iter().map(|i| ReplicaId(*i)).collect()
    }

    #[test]
    fn new_is_valid_and_quorums_are_majorities() {
        let c = RegisterConfig::new(ReplicaId(1), ids(&[0, 1, 2]));
        c.validate().unwrap();
        assert_eq!(c.peers_nearest_first, ids(&[0, 2]));
        assert_eq!(c.quorum(), 2);
        assert_eq!(
            RegisterConfig::new(ReplicaId(0), ids(&[0, 1, 2, 3, 4])).quorum(),
            3
        );
        assert_eq!(RegisterConfig::default().quorum(), 1);
        assert!(c.is_peer(ReplicaId(2)));
        assert!(!c.is_peer(ReplicaId(1)));
        assert!(!c.is_peer(ReplicaId(7)));
    }

    #[test]
    fn validate_rejects_each_mistake() {
        let base = RegisterConfig::new(ReplicaId(0), ids(&[0, 1, 2]));
        let mut c = base.clone();
        c.replicas.clear();
        assert_eq!(c.validate(), Err(ConfigError::NoReplicas));
        let mut c = base.clone();
        c.replicas.push(ReplicaId(1));
        assert_eq!(
            c.validate(),
            Err(ConfigError::DuplicateReplica(ReplicaId(1)))
        );
        let mut c = base.clone();
        c.me = ReplicaId(9);
        assert_eq!(c.validate(), Err(ConfigError::SelfNotListed(ReplicaId(9))));
        let mut c = base.clone();
        c.peers_nearest_first = ids(&[1, 1]);
        assert_eq!(c.validate(), Err(ConfigError::PeersMismatch));
        let mut c = base.clone();
        c.peers_nearest_first = ids(&[2, 1, 0]);
        assert_eq!(c.validate(), Err(ConfigError::PeersMismatch));
        let mut c = base.clone();
        c.phase_timeout_us = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroPhaseTimeout));
        let mut c = base;
        c.op_seq_block = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroOpSeqBlock));
    }
}
