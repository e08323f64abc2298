//! The client's operations: get, put, delete (registers, PROTOCOL.md 2-3)
//! and the read-modify-writes compare-and-swap, fetch-and-add and
//! put-if-absent (PROTOCOL.md 4), each with its typed outcome. An RMW gets
//! its `(client, request)` id once, before the first attempt, so every retry
//! names the same operation and is applied at most once (PROTOCOL.md 6).

use crate::client::{Client, Replay};
use crate::convert::ConvertError;
use crate::error::ClientError;
use crate::proto;
use registers::{Carstamp, Key, OpId, RmwOp, RmwOutcome, Value};

/// A read's value and the carstamp of the register it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetOutcome {
    /// `None` = the key is absent.
    pub value: Option<Vec<u8>>,
    pub carstamp: Carstamp,
}

/// The full result of a generic [`Client::rmw`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmwResult {
    /// The id the operation carried on every attempt.
    pub id: OpId,
    pub outcome: RmwOutcome,
    pub carstamp: Carstamp,
    /// The replica that answered.
    pub endpoint: String,
}

/// What a compare-and-swap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the value matched `expected` and was replaced.
    pub applied: bool,
    /// The value observed (`None` = absent).
    pub old: Option<Vec<u8>>,
    /// The value afterwards: `new` if applied, else `old`.
    pub new: Option<Vec<u8>>,
    pub carstamp: Carstamp,
}

/// What a fetch-and-add did (it always applies, or fails with
/// [`ClientError::NotAnInteger`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchAddOutcome {
    /// The value before (an absent key counts as 0).
    pub old: i64,
    /// `old + delta`, wrapping.
    pub new: i64,
    pub carstamp: Carstamp,
}

/// What a put-if-absent did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutIfAbsentOutcome {
    /// Whether the key was absent and now holds the given value.
    pub applied: bool,
    /// The value the key holds afterwards: the given one if applied, the
    /// existing one otherwise.
    pub value: Vec<u8>,
    pub carstamp: Carstamp,
}

fn key_of(key: impl AsRef<[u8]>) -> Vec<u8> {
    key.as_ref().to_vec()
}

fn malformed(endpoint: &str, e: ConvertError) -> ClientError {
    ClientError::protocol(endpoint, e.to_string())
}

impl Client {
    /// Linearizable read; `None` if the key is absent.
    pub async fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.get_detailed(key).await?.value)
    }

    /// [`Client::get`] with the carstamp of the value read.
    pub async fn get_detailed(&self, key: impl AsRef<[u8]>) -> Result<GetOutcome, ClientError> {
        let request = proto::GetRequest { key: key_of(key) };
        let (reply, endpoint) = self
            .call(request, Replay::Safe, |mut kv, req| async move {
                kv.get(req).await
            })
            .await?;
        let (value, carstamp) = reply.into_parts().map_err(|e| malformed(&endpoint, e))?;
        Ok(GetOutcome {
            value: value.map(|v| v.0),
            carstamp,
        })
    }

    /// Linearizable write. Returns the carstamp the write got. Fails over to
    /// another replica only if the first one certainly never started it;
    /// otherwise a failure is [`ClientError::OutcomeUnknown`] (a retry under
    /// a new carstamp could apply the write twice, with a read or an RMW
    /// seeing the first: not linearizable).
    pub async fn put(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Carstamp, ClientError> {
        let request = proto::PutRequest {
            key: key_of(key),
            value: Some(value.as_ref().to_vec()),
        };
        let (reply, endpoint) = self
            .call(request, Replay::OnlyUnsent, |mut kv, req| async move {
                kv.put(req).await
            })
            .await?;
        reply.into_carstamp().map_err(|e| malformed(&endpoint, e))
    }

    /// Makes the key absent (a write of "absent"). Returns its carstamp.
    pub async fn delete(&self, key: impl AsRef<[u8]>) -> Result<Carstamp, ClientError> {
        let request = proto::DeleteRequest { key: key_of(key) };
        let (reply, endpoint) = self
            .call(request, Replay::OnlyUnsent, |mut kv, req| async move {
                kv.delete(req).await
            })
            .await?;
        reply.into_carstamp().map_err(|e| malformed(&endpoint, e))
    }

    /// Any read-modify-write, with its raw outcome. The typed helpers below
    /// are usually nicer.
    pub async fn rmw(&self, key: impl AsRef<[u8]>, op: RmwOp) -> Result<RmwResult, ClientError> {
        let id = self.next_op_id();
        let request = proto::RmwRequest::from_op(Key(key_of(key)), id, op);
        let (reply, endpoint) = self
            .call(request, Replay::Safe, |mut kv, req| async move {
                kv.rmw(req).await
            })
            .await?;
        let (outcome, carstamp) = reply.into_outcome().map_err(|e| malformed(&endpoint, e))?;
        Ok(RmwResult {
            id,
            outcome,
            carstamp,
            endpoint,
        })
    }

    /// Replaces the value with `new` iff it equals `expected` (`None` =
    /// absent; `new: None` deletes).
    pub async fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome, ClientError> {
        let op = RmwOp::CompareAndSwap {
            expected: expected.map(|v| Value(v.to_vec())),
            new: new.map(|v| Value(v.to_vec())),
        };
        let result = self.rmw(key, op).await?;
        let outcome = result.outcome;
        Ok(CasOutcome {
            applied: outcome.applied,
            old: outcome.old.map(|v| v.0),
            new: outcome.new.map(|v| v.0),
            carstamp: result.carstamp,
        })
    }

    /// Adds `delta` (wrapping) to the 8-byte little-endian integer at `key`
    /// (absent = 0). Fails with [`ClientError::NotAnInteger`], changing
    /// nothing, if the value has another length.
    pub async fn fetch_add(
        &self,
        key: impl AsRef<[u8]>,
        delta: i64,
    ) -> Result<FetchAddOutcome, ClientError> {
        let result = self.rmw(key, RmwOp::FetchAdd { delta }).await?;
        let outcome = result.outcome;
        if outcome.not_an_integer {
            let len = outcome.old.as_ref().map_or(0, |v| v.0.len());
            return Err(ClientError::NotAnInteger { len });
        }
        let old = match &outcome.old {
            None => Some(0),
            Some(v) => v.to_i64(),
        };
        let new = outcome.new.as_ref().and_then(Value::to_i64);
        match (old, new) {
            (Some(old), Some(new)) if outcome.applied && new == old.wrapping_add(delta) => {
                Ok(FetchAddOutcome {
                    old,
                    new,
                    carstamp: result.carstamp,
                })
            }
            _ => Err(ClientError::protocol(
                &result.endpoint,
                format!("inconsistent fetch-and-add reply: {outcome:?}"),
            )),
        }
    }

    /// Stores `value` iff the key is absent.
    pub async fn put_if_absent(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<PutIfAbsentOutcome, ClientError> {
        let op = RmwOp::PutIfAbsent {
            value: Value(value.as_ref().to_vec()),
        };
        let result = self.rmw(key, op).await?;
        let Some(now) = result.outcome.new else {
            return Err(ClientError::protocol(
                &result.endpoint,
                "put-if-absent left the key absent",
            ));
        };
        Ok(PutIfAbsentOutcome {
            applied: result.outcome.applied,
            value: now.0,
            carstamp: result.carstamp,
        })
    }
}
