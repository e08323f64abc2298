//! Configuration of one EPaxos replica and the quorum sizes it implies
//! (PROTOCOL.md 4 and 6; the fast-quorum choice is argued in the crate docs).

use registers::ReplicaId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One replica's EPaxos settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpaxosConfig {
    /// This replica's id, in `0..replicas`.
    pub replica: ReplicaId,
    /// Number of replicas `n = 2f + 1` (odd, at least 1).
    pub replicas: u32,
    /// How long a leader waits in one phase (PreAccept, Accept, Prepare)
    /// before it retransmits to silent peers, or, in PreAccept with a
    /// majority of replies but no fast quorum, takes the slow path.
    pub phase_timeout_us: u64,
    /// How long an instance may stay known-but-uncommitted (or missing
    /// under a dependency) before this replica starts explicit-prepare
    /// recovery of it. Replica `r` waits `(1 + rank) *` this, where rank
    /// is its distance after the instance's leader, so recoveries of one
    /// instance rarely duel.
    pub recovery_timeout_us: u64,
    /// Retransmissions of one phase at one ballot before the leader gives
    /// up that ballot and leaves the instance to recovery.
    pub max_retransmits: u32,
    /// Clients remembered per key for RMW deduplication (the latest
    /// outcome per client; the least recently executed client of the key
    /// is forgotten first). A retry is recognised as long as fewer than
    /// this many other clients ran RMWs on the same key in between.
    pub dedup_clients_per_key: usize,
    /// The "EPaxos-all" baseline (PROTOCOL.md "Baselines"): gets and puts
    /// are commands too, execution reads the register store (see
    /// `execute`), the base plays no part in PreAccept, and the leader
    /// answers after its own execution (puts at commit).
    #[serde(default)]
    pub every_op: bool,
}

impl Default for EpaxosConfig {
    fn default() -> EpaxosConfig {
        EpaxosConfig {
            replica: ReplicaId(0),
            replicas: 3,
            phase_timeout_us: 1_000_000,
            recovery_timeout_us: 2_000_000,
            max_retransmits: 3,
            dedup_clients_per_key: 4096,
            every_op: false,
        }
    }
}

/// A configuration the machine refuses to run with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("replica count must be odd and between 1 and {max}, got {0}", max = EpaxosConfig::MAX_REPLICAS)]
    BadReplicaCount(u32),
    #[error("replica id {id} out of range for {n} replicas")]
    ReplicaOutOfRange { id: u32, n: u32 },
    #[error("{0} must be positive")]
    Zero(&'static str),
    #[error("election_ticks must be above heartbeat_ticks")]
    ElectionNotAboveHeartbeat,
    #[error("raft-rs refused the configuration or the recovered state: {0}")]
    Raft(String),
}

impl EpaxosConfig {
    /// Far above any geo deployment; keeps replica arithmetic trivially safe.
    pub const MAX_REPLICAS: u32 = 255;

    /// A default configuration for replica `me` of `n`.
    pub fn new(me: ReplicaId, n: u32) -> EpaxosConfig {
        EpaxosConfig {
            replica: me,
            replicas: n,
            ..EpaxosConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.replicas;
        if n == 0 || n.is_multiple_of(2) || n > Self::MAX_REPLICAS {
            return Err(ConfigError::BadReplicaCount(n));
        }
        if self.replica.0 >= n {
            return Err(ConfigError::ReplicaOutOfRange {
                id: self.replica.0,
                n,
            });
        }
        if self.phase_timeout_us == 0 {
            return Err(ConfigError::Zero("phase_timeout_us"));
        }
        if self.recovery_timeout_us == 0 {
            return Err(ConfigError::Zero("recovery_timeout_us"));
        }
        if self.dedup_clients_per_key == 0 {
            return Err(ConfigError::Zero("dedup_clients_per_key"));
        }
        Ok(())
    }

    /// Tolerated failures `f` for `n = 2f + 1`.
    pub fn f(&self) -> usize {
        (self.replicas as usize - 1) / 2
    }

    /// Majority `q = f + 1` (replicas, the leader included).
    pub fn majority(&self) -> usize {
        self.f() + 1
    }

    /// Fast quorum, the leader included: `2f` (at least 1). See the crate
    /// docs for why this size makes recovery need no TryPreAccept.
    pub fn fast_quorum(&self) -> usize {
        (2 * self.f()).max(1)
    }

    /// Every replica id.
    pub fn all(&self) -> impl Iterator<Item = ReplicaId> {
        (0..self.replicas).map(ReplicaId)
    }

    /// Every replica but this one.
    pub fn peers(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.all().filter(move |r| *r != self.replica)
    }

    /// Whether `r` names a replica of this configuration.
    pub fn contains(&self, r: ReplicaId) -> bool {
        r.0 < self.replicas
    }

    /// How many replicas after `leader` this one comes (0 for the leader).
    pub fn rank_after(&self, leader: ReplicaId) -> u64 {
        u64::from((self.replica.0 + self.replicas - leader.0 % self.replicas) % self.replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes() {
        let c3 = EpaxosConfig::new(ReplicaId(0), 3);
        assert_eq!((c3.f(), c3.majority(), c3.fast_quorum()), (1, 2, 2));
        let c5 = EpaxosConfig::new(ReplicaId(0), 5);
        assert_eq!((c5.f(), c5.majority(), c5.fast_quorum()), (2, 3, 4));
        let c1 = EpaxosConfig::new(ReplicaId(0), 1);
        assert_eq!((c1.f(), c1.majority(), c1.fast_quorum()), (0, 1, 1));
    }

    #[test]
    fn validate_rejects_bad_configs() {
        assert!(EpaxosConfig::new(ReplicaId(0), 3).validate().is_ok());
        assert_eq!(
            EpaxosConfig::new(ReplicaId(0), 4).validate(),
            Err(ConfigError::BadReplicaCount(4))
        );
        assert!(EpaxosConfig::new(ReplicaId(3), 3).validate().is_err());
        let mut c = EpaxosConfig::new(ReplicaId(0), 3);
        c.dedup_clients_per_key = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn rank_counts_from_the_leader() {
        let c = EpaxosConfig::new(ReplicaId(1), 5);
        assert_eq!(c.rank_after(ReplicaId(1)), 0);
        assert_eq!(c.rank_after(ReplicaId(0)), 1);
        assert_eq!(c.rank_after(ReplicaId(2)), 4);
    }
}
