//! EPaxos instances and their attributes (Moraru, Andersen, Kaminsky,
//! SOSP'13, section 4.1; PROTOCOL.md 4): the instance space
//! `(replica, slot)`, ballots, the command, and the attribute tuple
//! `(cmd, seq, deps, base)` plus `status`, the promised ballot and, kept
//! apart from it, the ballot at which the attributes were last accepted
//! (Sutra, "On the correctness of Egalitarian Paxos", 2019).

use registers::{ClientRequest, Key, OpId, Register, ReplicaId, RmwOp, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One EPaxos instance: the `slot`-th command led by `replica`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceId {
    pub replica: ReplicaId,
    pub slot: u64,
}

impl InstanceId {
    pub fn new(replica: ReplicaId, slot: u64) -> InstanceId {
        InstanceId { replica, slot }
    }
}

/// A ballot, ordered by `(round, replica)`. The original leader of an
/// instance owns `(0, leader)`; recovery uses rounds >= 1, so every
/// recovery ballot is above the initial one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub replica: ReplicaId,
}

impl Ballot {
    /// Nothing promised yet: below or equal to every ballot.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        replica: ReplicaId(0),
    };

    /// The ballot of the original leader of an instance (the fast path's).
    pub fn initial(leader: ReplicaId) -> Ballot {
        Ballot {
            round: 0,
            replica: leader,
        }
    }

    /// Whether this is the original leader's ballot for `inst`.
    pub fn is_initial_for(self, inst: InstanceId) -> bool {
        self == Ballot::initial(inst.replica)
    }
}

/// Dependencies of an instance, one watermark per replica: `r -> s` means
/// "every instance of replica `r` with slot <= `s` that conflicts with
/// this command". The watermark reading (instead of "exactly instance
/// `(r, s)`") keeps deps small while never relying on the transitive
/// dependencies of an instance that recovery may have turned into a no-op.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deps(pub BTreeMap<ReplicaId, u64>);

impl Deps {
    pub fn new() -> Deps {
        Deps::default()
    }

    /// The watermark for replica `r`, if any.
    pub fn get(&self, r: ReplicaId) -> Option<u64> {
        self.0.get(&r).copied()
    }

    /// Raises the watermark of `r` to at least `slot`.
    pub fn include(&mut self, r: ReplicaId, slot: u64) {
        let w = self.0.entry(r).or_insert(slot);
        *w = (*w).max(slot);
    }

    /// Pointwise maximum (the union of two dependency sets).
    pub fn merge(&mut self, other: &Deps) {
        for (&r, &s) in &other.0 {
            self.include(r, s);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.0.iter().map(|(&r, &s)| (r, s))
    }

    /// Whether every replica named is below `n` (input validation).
    pub fn replicas_below(&self, n: u32) -> bool {
        self.0.keys().all(|r| r.0 < n)
    }
}

/// The command of an instance (or of a raft log entry): the client's
/// RMW, or the no-op recovery commits when no replica of a recovery
/// quorum knows the command. `Get` and `Put` exist only in the baselines
/// that order every operation ("EPaxos-all", "raft-all", PROTOCOL.md
/// "Baselines"); in Gryff, gets and puts never reach consensus.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    Rmw {
        op: OpId,
        key: Key,
        rmw: RmwOp,
    },
    Get {
        op: OpId,
        key: Key,
    },
    /// `value: None` deletes the key.
    Put {
        op: OpId,
        key: Key,
        value: Option<Value>,
    },
    Noop,
}

impl Command {
    /// The key it touches; two commands conflict iff they touch one key
    /// (gets included: the baselines order reads like writes, as the
    /// EPaxos artifact the Gryff paper measured did).
    pub fn key(&self) -> Option<&Key> {
        match self {
            Command::Rmw { key, .. } | Command::Get { key, .. } | Command::Put { key, .. } => {
                Some(key)
            }
            Command::Noop => None,
        }
    }

    /// The client operation it carries.
    pub fn op(&self) -> Option<OpId> {
        match self {
            Command::Rmw { op, .. } | Command::Get { op, .. } | Command::Put { op, .. } => {
                Some(*op)
            }
            Command::Noop => None,
        }
    }

    /// Whether only the every-operation baselines may order it.
    pub fn is_baseline_only(&self) -> bool {
        matches!(self, Command::Get { .. } | Command::Put { .. })
    }

    /// The command of a client request.
    pub fn from_request(op: OpId, req: ClientRequest) -> Command {
        match req {
            ClientRequest::Get { key } => Command::Get { op, key },
            ClientRequest::Put { key, value } => Command::Put { op, key, value },
            ClientRequest::Rmw { key, op: rmw } => Command::Rmw { op, key, rmw },
        }
    }
}

/// The agreed value of an instance: EPaxos's `(cmd, seq, deps)` plus
/// Gryff's `base`, the register the RMW builds on (PROTOCOL.md 4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attrs {
    pub cmd: Command,
    pub seq: u64,
    pub deps: Deps,
    pub base: Register,
}

impl Attrs {
    /// The no-op value recovery commits when no one knows the command.
    pub fn noop() -> Attrs {
        Attrs {
            cmd: Command::Noop,
            seq: 0,
            deps: Deps::new(),
            base: Register::default(),
        }
    }
}

/// How far an instance got at one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Only a ballot was promised (a Prepare for an unseen instance).
    Empty,
    PreAccepted,
    Accepted,
    Committed,
}

/// The state of one instance at one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: InstanceId,
    /// The highest ballot this replica promised (never lowered).
    pub promised: Ballot,
    /// The ballot at which `attrs` were (pre-)accepted: reported in
    /// PrepareOk, never overwritten by a mere promise.
    pub accepted: Ballot,
    pub status: Status,
    pub attrs: Option<Attrs>,
    /// This replica pre-accepted at the initial ballot without changing
    /// the leader's proposal: what recovery counts to detect a possible
    /// fast-path commit.
    pub unchanged: bool,
    pub executed: bool,
    /// Highest round seen in any message about this instance (memory
    /// only): a new recovery ballot starts above it.
    pub max_round_seen: u64,
}

impl Instance {
    pub fn empty(id: InstanceId) -> Instance {
        Instance {
            id,
            promised: Ballot::ZERO,
            accepted: Ballot::ZERO,
            status: Status::Empty,
            attrs: None,
            unchanged: false,
            executed: false,
            max_round_seen: 0,
        }
    }

    pub fn is_committed(&self) -> bool {
        self.status == Status::Committed
    }

    /// The key of the known command, if any.
    pub fn key(&self) -> Option<&Key> {
        self.attrs.as_ref().and_then(|a| a.cmd.key())
    }

    /// Whether the command is known (any status but `Empty`).
    pub fn is_known(&self) -> bool {
        self.attrs.is_some()
    }

    /// Records that a ballot was seen (for choosing the next round).
    pub fn saw(&mut self, b: Ballot) {
        self.max_round_seen = self.max_round_seen.max(b.round);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_ballots_beat_every_initial_ballot() {
        let init = Ballot::initial(ReplicaId(4));
        let rec = Ballot {
            round: 1,
            replica: ReplicaId(0),
        };
        assert!(rec > init);
        assert!(Ballot::ZERO <= Ballot::initial(ReplicaId(0)));
        assert!(init.is_initial_for(InstanceId::new(ReplicaId(4), 9)));
        assert!(!rec.is_initial_for(InstanceId::new(ReplicaId(0), 9)));
    }

    #[test]
    fn deps_merge_is_pointwise_max() {
        let mut a = Deps::new();
        a.include(ReplicaId(0), 5);
        a.include(ReplicaId(0), 3);
        let mut b = Deps::new();
        b.include(ReplicaId(0), 7);
        b.include(ReplicaId(2), 1);
        a.merge(&b);
        assert_eq!(a.get(ReplicaId(0)), Some(7));
        assert_eq!(a.get(ReplicaId(2)), Some(1));
        assert_eq!(a.get(ReplicaId(1)), None);
        assert!(a.replicas_below(3));
        assert!(!a.replicas_below(2));
    }
}
