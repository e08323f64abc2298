//! The register protocol's vocabulary (Gryff, NSDI 2020, section 4;
//! PROTOCOL.md 2, 3, 5): messages between replicas, durable records, client
//! replies and timers. Everything is serde-serializable so the server can put
//! it on the wire and in its log unchanged.

use crate::carstamp::{Carstamp, Register};
use crate::client::ClientReply;
use crate::effect::Effect;
use crate::ids::{Key, Value};
use serde::{Deserialize, Serialize};

/// One round of an operation. A read is Read1 and, when a concurrent write
/// was caught in flight, Read2 (the write-back); a write is Write1, Write2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Phase {
    Read1,
    Read2,
    Write1,
    Write2,
}

/// Names one phase of one operation at its coordinator. `seq` is unique
/// per coordinator, even across a crash and restart (see `op_seq`), so a
/// reply from an earlier operation or an earlier phase is never mistaken
/// for an answer to the current one. Replicas echo it unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpRef {
    pub seq: u64,
    pub phase: Phase,
}

/// Messages between replicas. Requests carry the key; replies carry only
/// the `op_ref` of the request they answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterMsg {
    /// Read phase 1. `reg` is the coordinator's own register for `key`,
    /// piggy-backed so the receiver applies it before answering: that is
    /// what makes the one-round fast path possible.
    Read1 {
        op_ref: OpRef,
        key: Key,
        reg: Register,
    },
    /// The receiver's register after applying the coordinator's.
    Read1Reply {
        op_ref: OpRef,
        reg: Register,
    },
    /// Read phase 2 (write-back of the largest register phase 1 saw).
    Read2 {
        op_ref: OpRef,
        key: Key,
        reg: Register,
    },
    /// The receiver now holds (durably) `reg` or something newer.
    Read2Reply {
        op_ref: OpRef,
    },
    /// Write phase 1: what is your carstamp for `key`?
    Write1 {
        op_ref: OpRef,
        key: Key,
    },
    Write1Reply {
        op_ref: OpRef,
        cs: Carstamp,
    },
    /// Write phase 2: apply the new register.
    Write2 {
        op_ref: OpRef,
        key: Key,
        reg: Register,
    },
    /// The receiver now holds (durably) the written register or something newer.
    Write2Reply {
        op_ref: OpRef,
    },
}

impl RegisterMsg {
    pub fn op_ref(&self) -> OpRef {
        match self {
            RegisterMsg::Read1 { op_ref, .. }
            | RegisterMsg::Read1Reply { op_ref, .. }
            | RegisterMsg::Read2 { op_ref, .. }
            | RegisterMsg::Read2Reply { op_ref }
            | RegisterMsg::Write1 { op_ref, .. }
            | RegisterMsg::Write1Reply { op_ref, .. }
            | RegisterMsg::Write2 { op_ref, .. }
            | RegisterMsg::Write2Reply { op_ref } => *op_ref,
        }
    }

    /// The phase this kind of message belongs to. A well-formed message has
    /// `op_ref().phase == phase()`; anything else is ignored and counted.
    pub fn phase(&self) -> Phase {
        match self {
            RegisterMsg::Read1 { .. } | RegisterMsg::Read1Reply { .. } => Phase::Read1,
            RegisterMsg::Read2 { .. } | RegisterMsg::Read2Reply { .. } => Phase::Read2,
            RegisterMsg::Write1 { .. } | RegisterMsg::Write1Reply { .. } => Phase::Write1,
            RegisterMsg::Write2 { .. } | RegisterMsg::Write2Reply { .. } => Phase::Write2,
        }
    }

    /// Whether this answers a coordinator (as opposed to asking a replica).
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            RegisterMsg::Read1Reply { .. }
                | RegisterMsg::Read2Reply { .. }
                | RegisterMsg::Write1Reply { .. }
                | RegisterMsg::Write2Reply { .. }
        )
    }

    /// The key of a request; `None` for replies.
    pub fn key(&self) -> Option<&Key> {
        match self {
            RegisterMsg::Read1 { key, .. }
            | RegisterMsg::Read2 { key, .. }
            | RegisterMsg::Write1 { key, .. }
            | RegisterMsg::Write2 { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// What the register protocol asks to be made durable (PROTOCOL.md 5).
/// Recovery folds these records in any order (see
/// [`crate::op_seq::RecoveredRegisterState::observe`]): registers by
/// apply-if-greater, reservations by maximum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegisterPersist {
    /// `key` now holds `reg` (the store changed by apply-if-greater).
    Applied { key: Key, reg: Register },
    /// Operation sequence numbers (and hence writer ids) below `up_to` may
    /// have been used; a restarted coordinator continues from `up_to`.
    OpSeqReserved { up_to: u64 },
}

/// The answer to a client's get or put.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegisterReply {
    /// The value read (`None` = absent) and its carstamp.
    Get { value: Option<Value>, cs: Carstamp },
    /// The carstamp the put (or delete) was written with.
    Put { cs: Carstamp },
}

impl From<RegisterReply> for ClientReply {
    fn from(r: RegisterReply) -> ClientReply {
        match r {
            RegisterReply::Get { value, cs } => ClientReply::Get { value, cs },
            RegisterReply::Put { cs } => ClientReply::Put { cs },
        }
    }
}

/// Timers the register machine sets for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RegisterTimer {
    /// The phase `op_ref` has not gathered a quorum in `phase_timeout_us`:
    /// send it again to every replica that has not answered. Stale once the
    /// operation moved to another phase or finished.
    PhaseTimeout { op_ref: OpRef },
}

/// The effects the register machine emits.
pub type RegisterEffect = Effect<RegisterMsg, RegisterPersist, RegisterReply, RegisterTimer>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_of_message_kind_and_op_ref_agree_for_built_messages() {
        let op_ref = OpRef {
            seq: 3,
            phase: Phase::Write2,
        };
        let m = RegisterMsg::Write2Reply { op_ref };
        assert_eq!(m.phase(), Phase::Write2);
        assert_eq!(m.op_ref(), op_ref);
        assert!(m.is_reply());
        assert_eq!(m.key(), None);
        let w = RegisterMsg::Write1 {
            op_ref: OpRef {
                seq: 1,
                phase: Phase::Write1,
            },
            key: Key::from("k"),
        };
        assert!(!w.is_reply());
        assert_eq!(w.key(), Some(&Key::from("k")));
    }

    #[test]
    fn replies_convert_to_client_replies() {
        let cs = Carstamp::ZERO.rmw_successor();
        assert_eq!(
            ClientReply::from(RegisterReply::Put { cs }),
            ClientReply::Put { cs }
        );
    }
}
