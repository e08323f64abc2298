//! The client-facing operation vocabulary of a replica: what a client asks
//! (get, put, delete, RMW) and what it gets back. The server's gRPC API and
//! the simulator's clients both speak it.

use crate::carstamp::Carstamp;
use crate::ids::{Key, Value};
use crate::rmw::{RmwOp, RmwOutcome};
use serde::{Deserialize, Serialize};

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientRequest {
    Get {
        key: Key,
    },
    /// `value: None` deletes the key (a write of "absent").
    Put {
        key: Key,
        value: Option<Value>,
    },
    Rmw {
        key: Key,
        op: RmwOp,
    },
}

impl ClientRequest {
    pub fn key(&self) -> &Key {
        match self {
            ClientRequest::Get { key }
            | ClientRequest::Put { key, .. }
            | ClientRequest::Rmw { key, .. } => key,
        }
    }
}

/// The answer to a [`ClientRequest`]. The carstamp is the one the operation
/// read or wrote, for debugging and for the checker's explanations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientReply {
    Get { value: Option<Value>, cs: Carstamp },
    Put { cs: Carstamp },
    Rmw { outcome: RmwOutcome, cs: Carstamp },
}
