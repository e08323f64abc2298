//! The protocol modes the simulator compares (PROTOCOL.md "Baselines";
//! EVALUATION.md): Gryff with EPaxos or raft ordering RMWs, and the two
//! baselines that order every operation, by the names the benchmark and
//! the sweeps use.

use registers::ReplicaId;
pub use replica::{Mode, RmwEngine};

/// Every mode's name, in the order the comparison prints them.
pub const MODE_NAMES: [&str; 4] = ["gryff-epaxos", "gryff-raft", "epaxos-all", "raft-all"];

/// The mode called `name`; raft-all puts its leader at `raft_leader`.
pub fn parse_mode(name: &str, raft_leader: ReplicaId) -> Result<Mode, String> {
    match name {
        "gryff-epaxos" | "gryff" => Ok(Mode::Gryff {
            rmw: RmwEngine::Epaxos,
        }),
        "gryff-raft" => Ok(Mode::Gryff {
            rmw: RmwEngine::Raft,
        }),
        "epaxos-all" => Ok(Mode::EpaxosAll),
        "raft-all" => Ok(Mode::RaftAll {
            leader: raft_leader,
        }),
        other => Err(format!(
            "unknown mode {other:?}; known: {}",
            MODE_NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in MODE_NAMES {
            assert_eq!(parse_mode(name, ReplicaId(2)).unwrap().name(), name);
        }
        assert_eq!(
            parse_mode("raft-all", ReplicaId(2)),
            Ok(Mode::RaftAll {
                leader: ReplicaId(2)
            })
        );
        assert!(parse_mode("paxos", ReplicaId(0)).is_err());
    }
}
