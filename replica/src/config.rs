//! Configuration of one combined replica: the mode, and the register
//! protocol's, EPaxos's and raft's settings, which must agree on who this
//! replica is and how many replicas there are.

use crate::mode::Mode;
use consensus::EpaxosConfig;
use consensus::raft::RaftConfig;
use registers::{RegisterConfig, ReplicaId};
use serde::{Deserialize, Serialize};

/// A configuration the replica refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("register protocol: {0}")]
    Registers(#[from] registers::ConfigError),
    #[error("epaxos or raft: {0}")]
    Epaxos(#[from] consensus::ConfigError),
    #[error("replica ids must be 0..n in order (EPaxos numbers instances by them), got {0:?}")]
    ReplicaIdsNotDense(Vec<ReplicaId>),
    #[error(
        "registers says this replica is {registers:?} of {n_registers}, epaxos says {epaxos:?} of {n_epaxos}"
    )]
    Mismatch {
        registers: ReplicaId,
        n_registers: usize,
        epaxos: ReplicaId,
        n_epaxos: u32,
    },
    #[error(
        "registers says this replica is {registers:?} of {n_registers}, raft says {raft:?} of {n_raft}"
    )]
    RaftMismatch {
        registers: ReplicaId,
        n_registers: usize,
        raft: ReplicaId,
        n_raft: u32,
    },
    #[error("raft-all leader {0:?} is not a replica")]
    LeaderOutOfRange(ReplicaId),
}

/// Settings of one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    pub registers: RegisterConfig,
    pub epaxos: EpaxosConfig,
    /// Used by the modes that run raft.
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub mode: Mode,
}

impl ReplicaConfig {
    /// Replica `me` of `n` (ids `0..n`), with the other replicas listed
    /// nearest first, and default timeouts.
    pub fn new(me: ReplicaId, n: u32, peers_nearest_first: Vec<ReplicaId>) -> ReplicaConfig {
        let mut registers = RegisterConfig::new(me, (0..n).map(ReplicaId).collect());
        registers.peers_nearest_first = peers_nearest_first;
        ReplicaConfig {
            registers,
            epaxos: EpaxosConfig::new(me, n),
            raft: RaftConfig::new(me, n),
            mode: Mode::default(),
        }
    }

    /// The same configuration in `mode`.
    pub fn with_mode(mut self, mode: Mode) -> ReplicaConfig {
        self.mode = mode;
        self
    }

    /// The engines' settings as the mode implies them: the baselines'
    /// `every_op` flags and raft-all's leader placement. (The mode is the
    /// one place these are chosen, so they cannot disagree with it.)
    pub fn effective(&self) -> ReplicaConfig {
        let mut c = self.clone();
        c.epaxos.every_op = self.mode == Mode::EpaxosAll;
        c.raft.every_op = matches!(self.mode, Mode::RaftAll { .. });
        if let Mode::RaftAll { leader } = self.mode {
            c.raft.preferred_leader = Some(leader);
        }
        c
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.registers.validate()?;
        self.epaxos.validate()?;
        let dense = self
            .registers
            .replicas
            .iter()
            .enumerate()
            .all(|(i, r)| r.0 as usize == i);
        if !dense {
            return Err(ConfigError::ReplicaIdsNotDense(
                self.registers.replicas.clone(),
            ));
        }
        if self.registers.me != self.epaxos.replica
            || self.registers.replicas.len() != self.epaxos.replicas as usize
        {
            return Err(ConfigError::Mismatch {
                registers: self.registers.me,
                n_registers: self.registers.replicas.len(),
                epaxos: self.epaxos.replica,
                n_epaxos: self.epaxos.replicas,
            });
        }
        if self.mode.uses_raft() {
            let c = self.effective();
            c.raft.validate()?;
            if c.registers.me != c.raft.replica
                || c.registers.replicas.len() != c.raft.replicas as usize
            {
                return Err(ConfigError::RaftMismatch {
                    registers: c.registers.me,
                    n_registers: c.registers.replicas.len(),
                    raft: c.raft.replica,
                    n_raft: c.raft.replicas,
                });
            }
        }
        if let Mode::RaftAll { leader } = self.mode
            && leader.0 as usize >= self.registers.replicas.len()
        {
            return Err(ConfigError::LeaderOutOfRange(leader));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_config_is_valid_and_mismatches_are_caught() {
        let cfg = ReplicaConfig::new(ReplicaId(1), 3, vec![ReplicaId(0), ReplicaId(2)]);
        assert_eq!(cfg.validate(), Ok(()));
        let mut bad = cfg.clone();
        bad.epaxos.replica = ReplicaId(2);
        assert!(matches!(bad.validate(), Err(ConfigError::Mismatch { .. })));
        let mut sparse = cfg;
        sparse.registers.replicas = vec![ReplicaId(0), ReplicaId(1), ReplicaId(5)];
        sparse.registers.peers_nearest_first = vec![ReplicaId(0), ReplicaId(5)];
        assert!(matches!(
            sparse.validate(),
            Err(ConfigError::ReplicaIdsNotDense(_))
        ));
    }

    #[test]
    fn the_mode_sets_the_engines_flags_and_raft_is_checked_when_used() {
        let cfg = ReplicaConfig::new(ReplicaId(1), 3, vec![ReplicaId(0), ReplicaId(2)]);
        let all = cfg.clone().with_mode(Mode::RaftAll {
            leader: ReplicaId(2),
        });
        assert_eq!(all.validate(), Ok(()));
        let eff = all.effective();
        assert!(eff.raft.every_op && !eff.epaxos.every_op);
        assert_eq!(eff.raft.preferred_leader, Some(ReplicaId(2)));
        assert!(
            cfg.clone()
                .with_mode(Mode::EpaxosAll)
                .effective()
                .epaxos
                .every_op
        );
        let far = cfg.clone().with_mode(Mode::RaftAll {
            leader: ReplicaId(3),
        });
        assert!(far.validate().is_err());
        let mut wrong = cfg.clone().with_mode(Mode::Gryff {
            rmw: crate::RmwEngine::Raft,
        });
        wrong.raft.replica = ReplicaId(0);
        assert!(matches!(
            wrong.validate(),
            Err(ConfigError::RaftMismatch { .. })
        ));
        // Raft's settings do not matter where raft does not run.
        let mut unused = cfg;
        unused.raft.tick_us = 0;
        assert_eq!(unused.validate(), Ok(()));
    }
}
