//! Configuration of one replica's raft engine, and the raft-rs `Config`
//! it implies: tick length, election and heartbeat ticks, the per-replica
//! election stagger that replaces raft-rs's randomised timeouts, and the
//! preferred leader.

use crate::config::ConfigError;
use registers::ReplicaId;
use serde::{Deserialize, Serialize};

/// One replica's raft settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftConfig {
    /// This replica's id, in `0..replicas` (raft-rs ids are these plus 1:
    /// raft reserves 0 for "nobody").
    pub replica: ReplicaId,
    /// Number of replicas (odd, at least 1).
    pub replicas: u32,
    /// Virtual time per raft tick; the driver's time is mapped to ticks.
    pub tick_us: u64,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: usize,
    /// A follower that heard no leader for this many ticks (plus its
    /// stagger) starts an election.
    pub election_ticks: usize,
    /// Extra election ticks per rank: the preferred leader (or replica 0)
    /// has rank 0, the next replica rank 1, and so on. raft-rs draws its
    /// election timeout from `[min, max)` with a thread RNG; we pin that
    /// range to one value so runs are deterministic, and this stagger is
    /// what keeps candidates from colliding.
    pub stagger_ticks: usize,
    /// Where the leader should be: this replica campaigns as soon as it
    /// starts, and any other leader hands leadership back to it once it
    /// is caught up (raft-all places its leader in a chosen region).
    pub preferred_leader: Option<ReplicaId>,
    /// The "raft-all" baseline: gets and puts go through the log too, an
    /// entry runs on the register store (see `execute`), and the proposer
    /// answers after its own execution.
    pub every_op: bool,
    /// A proposal that has not finished its current step (base read,
    /// commit, majority execution) after this long is sent again.
    pub retry_timeout_us: u64,
    /// Clients remembered per key for deduplication (as in EPaxos).
    pub dedup_clients_per_key: usize,
    /// Largest total size of the entries in one append message.
    pub max_append_bytes: u64,
}

impl Default for RaftConfig {
    fn default() -> RaftConfig {
        RaftConfig {
            replica: ReplicaId(0),
            replicas: 3,
            tick_us: 50_000,
            heartbeat_ticks: 2,
            election_ticks: 20,
            stagger_ticks: 4,
            preferred_leader: None,
            every_op: false,
            retry_timeout_us: 1_000_000,
            dedup_clients_per_key: 4096,
            max_append_bytes: 1 << 20,
        }
    }
}

impl RaftConfig {
    /// A default configuration for replica `me` of `n`.
    pub fn new(me: ReplicaId, n: u32) -> RaftConfig {
        RaftConfig {
            replica: me,
            replicas: n,
            ..RaftConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.replicas;
        if n == 0 || n.is_multiple_of(2) || n > crate::EpaxosConfig::MAX_REPLICAS {
            return Err(ConfigError::BadReplicaCount(n));
        }
        for r in std::iter::once(self.replica).chain(self.preferred_leader) {
            if r.0 >= n {
                return Err(ConfigError::ReplicaOutOfRange { id: r.0, n });
            }
        }
        let zero = [
            ("tick_us", self.tick_us == 0),
            ("heartbeat_ticks", self.heartbeat_ticks == 0),
            ("retry_timeout_us", self.retry_timeout_us == 0),
            ("dedup_clients_per_key", self.dedup_clients_per_key == 0),
            ("max_append_bytes", self.max_append_bytes == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, z)| *z) {
            return Err(ConfigError::Zero(name));
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::ElectionNotAboveHeartbeat);
        }
        Ok(())
    }

    /// Majority `floor(n/2) + 1`.
    pub fn majority(&self) -> usize {
        self.replicas as usize / 2 + 1
    }

    /// Every replica but this one.
    pub fn peers(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        (0..self.replicas)
            .map(ReplicaId)
            .filter(move |r| *r != self.replica)
    }

    /// This replica's place in the election order: 0 for the preferred
    /// leader (or replica 0), then counting up from it.
    pub fn rank(&self) -> usize {
        let first = self.preferred_leader.unwrap_or(ReplicaId(0)).0;
        ((self.replica.0 + self.replicas - first) % self.replicas) as usize
    }

    /// Election ticks of this replica: the base plus its stagger.
    pub fn my_election_ticks(&self) -> usize {
        self.election_ticks
            .saturating_add(self.rank().saturating_mul(self.stagger_ticks))
    }

    /// raft-rs's configuration for this replica, resuming after `applied`.
    /// `min_election_tick = e` and `max_election_tick = e + 1` leave
    /// raft-rs's random draw from `[e, e + 1)` a single value.
    pub fn raft_config(&self, applied: u64) -> raft::Config {
        let e = self.my_election_ticks();
        raft::Config {
            id: raft_id(self.replica),
            election_tick: e,
            min_election_tick: e,
            max_election_tick: e + 1,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: self.max_append_bytes,
            max_inflight_msgs: 256,
            // A leader cut off from a majority steps down, and a replica
            // that was away does not disrupt a working leader.
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        }
    }
}

/// raft-rs's id of a replica (raft-rs reserves 0 for "none").
pub fn raft_id(r: ReplicaId) -> u64 {
    u64::from(r.0) + 1
}

/// The replica of a raft-rs id, if it names one of `n` replicas.
pub fn replica_of(id: u64, n: u32) -> Option<ReplicaId> {
    let r = id.checked_sub(1)?;
    (r < u64::from(n)).then_some(ReplicaId(r as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_raft_accepts_them() {
        for n in [1, 3, 5] {
            for me in 0..n {
                let c = RaftConfig::new(ReplicaId(me), n);
                assert_eq!(c.validate(), Ok(()));
                c.raft_config(0).validate().expect("raft-rs accepts it");
            }
        }
    }

    #[test]
    fn the_preferred_leader_has_the_shortest_election_timeout() {
        let mut c = RaftConfig::new(ReplicaId(0), 5);
        c.preferred_leader = Some(ReplicaId(3));
        let ticks: Vec<usize> = (0..5)
            .map(|r| {
                c.replica = ReplicaId(r);
                c.my_election_ticks()
            })
            .collect();
        assert_eq!(ticks, vec![28, 32, 36, 20, 24]);
        c.replica = ReplicaId(3);
        let rc = c.raft_config(7);
        assert_eq!((rc.min_election_tick, rc.max_election_tick), (20, 21));
        assert_eq!((rc.id, rc.applied), (4, 7));
    }

    #[test]
    fn validate_rejects_bad_configs() {
        let ok = RaftConfig::new(ReplicaId(1), 3);
        let mut c = ok.clone();
        c.replicas = 4;
        assert_eq!(c.validate(), Err(ConfigError::BadReplicaCount(4)));
        let mut c = ok.clone();
        c.preferred_leader = Some(ReplicaId(3));
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ReplicaOutOfRange { id: 3, n: 3 })
        ));
        let mut c = ok.clone();
        c.election_ticks = 2;
        assert_eq!(c.validate(), Err(ConfigError::ElectionNotAboveHeartbeat));
        let mut c = ok;
        c.tick_us = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("tick_us")));
    }

    #[test]
    fn raft_ids_round_trip_and_reject_strangers() {
        assert_eq!(raft_id(ReplicaId(0)), 1);
        assert_eq!(replica_of(3, 5), Some(ReplicaId(2)));
        assert_eq!(replica_of(0, 5), None);
        assert_eq!(replica_of(6, 5), None);
    }
}
