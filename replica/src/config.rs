//! Configuration of one combined replica: the register protocol's and
//! EPaxos's settings, which must agree on who this replica is and how many
//! replicas there are.

use consensus::EpaxosConfig;
use registers::{RegisterConfig, ReplicaId};
use serde::{Deserialize, Serialize};

/// A configuration the replica refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("register protocol: {0}")]
    Registers(#[from] registers::ConfigError),
    #[error("epaxos: {0}")]
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
}

/// Settings of one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaConfig {
    pub registers: RegisterConfig,
    pub epaxos: EpaxosConfig,
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
        }
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
}
