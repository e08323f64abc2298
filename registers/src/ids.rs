//! Identifier newtypes shared by every crate: replicas, clients, requests,
//! writers, keys and values. Ids never cross a crate boundary as bare integers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A replica (one per region), numbered `0..n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId(pub u32);

/// A client session, unique across the cluster (chosen by the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

/// A request number, unique per client; with the client id it names one
/// operation, which is how a retried RMW is recognised (PROTOCOL.md 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// One client operation: where its reply goes and how retries are deduplicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub client: ClientId,
    pub request: RequestId,
}

/// The writer component of a carstamp. It must be unique per write
/// operation (PROTOCOL.md 1): two different values under one carstamp would
/// break convergence. [`WriterId::new`] puts the coordinating replica in the
/// high 24 bits and a per-coordinator counter in the low 40 bits.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct WriterId(pub u64);

impl WriterId {
    /// Bits of the per-coordinator counter.
    pub const COUNTER_BITS: u32 = 40;

    /// The writer id for the `counter`-th write coordinated by `replica`.
    /// The counter wraps within its 40 bits; a replica would need 10^12
    /// writes before reuse, and the ts component differs by then anyway.
    pub fn new(replica: ReplicaId, counter: u64) -> WriterId {
        let low = counter & ((1u64 << Self::COUNTER_BITS) - 1);
        WriterId((u64::from(replica.0) << Self::COUNTER_BITS) | low)
    }

    /// The replica that coordinated the write.
    pub fn replica(self) -> ReplicaId {
        ReplicaId((self.0 >> Self::COUNTER_BITS) as u32)
    }
}

/// A key: arbitrary bytes (size limits are enforced at the server edge).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Key(pub Vec<u8>);

impl Key {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", String::from_utf8_lossy(&self.0))
    }
}

/// A value: arbitrary bytes. Absence is `Option<Value>::None`, never an empty value.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Value(pub Vec<u8>);

impl Value {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The 64-bit integer encoding used by fetch-and-add: 8 bytes, little-endian.
    pub fn from_i64(n: i64) -> Value {
        Value(n.to_le_bytes().to_vec())
    }

    /// Reads the fetch-and-add encoding; `None` if the value is not 8 bytes.
    pub fn to_i64(&self) -> Option<i64> {
        let bytes: [u8; 8] = self.0.as_slice().try_into().ok()?;
        Some(i64::from_le_bytes(bytes))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.len() <= 32 => write!(f, "Value({s:?})"),
            _ => write!(f, "Value({} bytes)", self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_ids_of_different_replicas_differ_and_round_trip() {
        let a = WriterId::new(ReplicaId(1), 7);
        let b = WriterId::new(ReplicaId(2), 7);
        assert_ne!(a, b);
        assert_eq!(a.replica(), ReplicaId(1));
        assert_eq!(b.replica(), ReplicaId(2));
        assert!(WriterId::new(ReplicaId(1), 8) > a);
    }

    #[test]
    fn integer_encoding_round_trips_and_rejects_other_lengths() {
        assert_eq!(Value::from_i64(-5).to_i64(), Some(-5));
        assert_eq!(Value(vec![1, 2, 3]).to_i64(), None);
    }
}
