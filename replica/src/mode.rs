//! What a replica runs (PROTOCOL.md 4, "Raft path" and "Baselines"):
//! Gryff with EPaxos or raft ordering the RMWs, or one of the two
//! baselines the Gryff paper compared against, with the same client API:
//! every operation as an EPaxos command ("EPaxos-all") or through raft
//! with its leader in a chosen region ("raft-all", MultiPaxos-like).

use registers::ReplicaId;
use serde::{Deserialize, Serialize};

/// The engine that orders Gryff's RMWs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RmwEngine {
    /// EPaxos with the base (leaderless; the base comes with PreAccept).
    #[default]
    Epaxos,
    /// raft (tikv raft-rs); the base comes from a Read1 round first.
    Raft,
}

/// The protocol mode of a replica; every replica of a cluster must run
/// the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Gets and puts through the register protocol, RMWs through `rmw`.
    Gryff { rmw: RmwEngine },
    /// Baseline: every operation is an EPaxos command; reads answer after
    /// execution, writes at commit.
    EpaxosAll,
    /// Baseline: every operation is a raft entry (reads too: no leases or
    /// read index, fine for a baseline); `leader` is where the leader is
    /// placed and returned to.
    RaftAll { leader: ReplicaId },
}

impl Default for Mode {
    fn default() -> Mode {
        Mode::Gryff {
            rmw: RmwEngine::Epaxos,
        }
    }
}

impl Mode {
    /// The short name used by the benchmark and the sweeps.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Gryff {
                rmw: RmwEngine::Epaxos,
            } => "gryff-epaxos",
            Mode::Gryff {
                rmw: RmwEngine::Raft,
            } => "gryff-raft",
            Mode::EpaxosAll => "epaxos-all",
            Mode::RaftAll { .. } => "raft-all",
        }
    }

    /// Whether gets and puts run the register protocol.
    pub fn uses_registers(&self) -> bool {
        matches!(self, Mode::Gryff { .. })
    }

    pub fn uses_epaxos(&self) -> bool {
        matches!(
            self,
            Mode::Gryff {
                rmw: RmwEngine::Epaxos
            } | Mode::EpaxosAll
        )
    }

    pub fn uses_raft(&self) -> bool {
        matches!(
            self,
            Mode::Gryff {
                rmw: RmwEngine::Raft
            } | Mode::RaftAll { .. }
        )
    }

    /// Whether every operation goes through consensus.
    pub fn every_op(&self) -> bool {
        matches!(self, Mode::EpaxosAll | Mode::RaftAll { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_uses_exactly_one_ordering_engine() {
        let modes = [
            Mode::default(),
            Mode::Gryff {
                rmw: RmwEngine::Raft,
            },
            Mode::EpaxosAll,
            Mode::RaftAll {
                leader: ReplicaId(0),
            },
        ];
        let names: Vec<&str> = modes.iter().map(Mode::name).collect();
        assert_eq!(
            names,
            ["gryff-epaxos", "gryff-raft", "epaxos-all", "raft-all"]
        );
        for m in modes {
            assert!(m.uses_epaxos() != m.uses_raft(), "{m:?}");
            assert_eq!(m.uses_registers(), !m.every_op(), "{m:?}");
        }
    }
}
