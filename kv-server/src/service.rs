//! The public API (`gryff.v1.Kv`) of one replica. Requests are validated
//! at this edge (key and value sizes against `limits`, RMW ids), turned
//! into the protocol's `ClientRequest`, handed to the driver with a reply
//! slot, and answered when the replica replies.
//!
//! Operation ids: an RMW carries the client's `(client_id, request_id)`,
//! which is how retries are deduplicated (PROTOCOL.md 6). Gets and puts
//! need no deduplication, only a unique id to route the reply: the server
//! gives each one `(LOCAL_CLIENT_BASE | replica << 24 | counter mod 2^24,
//! counter)`. Client ids at or above `LOCAL_CLIENT_BASE` are reserved for
//! that and refused in RMWs, so the two kinds of ids never collide. Each
//! local operation looks like its own client (the client id only repeats
//! 2^24 operations later, with a larger request id): in the baseline modes,
//! where gets and puts are consensus commands deduplicated per client and
//! key, concurrent gets and puts must not look like one client's stale
//! retries.

use crate::config::Limits;
use crate::driver::ClientInput;
use crate::metrics::Metrics;
use client_sdk::proto::kv_server::Kv;
use client_sdk::proto::{
    DeleteRequest, GetReply, GetRequest, PingReply, PingRequest, PutReply, PutRequest, RmwReply,
    RmwRequest,
};
use registers::{ClientId, ClientReply, ClientRequest, OpId, ReplicaId, RequestId, RmwOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::{Request, Response, Status};

/// Client ids from here up are the replicas' own (one per replica).
pub const LOCAL_CLIENT_BASE: u64 = 0xFFFF_FFFF_0000_0000;

/// A request over the configured limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{what} is {size} bytes, over the limit limits.max_key_bytes = {limit}")]
    KeyTooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{what} is {size} bytes, over the limit limits.max_value_bytes = {limit}")]
    ValueTooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error(
        "client_id {0:#x} is reserved for the replicas' own operations (ids from {LOCAL_CLIENT_BASE:#x} up)"
    )]
    ReservedClientId(u64),
}

impl From<RequestError> for Status {
    fn from(e: RequestError) -> Status {
        Status::invalid_argument(e.to_string())
    }
}

/// Checks a request against the size limits.
pub fn check_limits(req: &ClientRequest, limits: &Limits) -> Result<(), RequestError> {
    let key = req.key().as_bytes().len();
    if key > limits.max_key_bytes {
        return Err(RequestError::KeyTooLarge {
            what: "key",
            size: key,
            limit: limits.max_key_bytes,
        });
    }
    let mut values: Vec<(&'static str, usize)> = Vec::new();
    match req {
        ClientRequest::Get { .. } => {}
        ClientRequest::Put { value, .. } => {
            values.extend(value.as_ref().map(|v| ("value", v.0.len())))
        }
        ClientRequest::Rmw { op, .. } => match op {
            RmwOp::CompareAndSwap { expected, new } => {
                values.extend(expected.as_ref().map(|v| ("expected", v.0.len())));
                values.extend(new.as_ref().map(|v| ("new", v.0.len())));
            }
            RmwOp::FetchAdd { .. } => {}
            RmwOp::PutIfAbsent { value } => values.push(("value", value.0.len())),
        },
    }
    for (what, size) in values {
        if size > limits.max_value_bytes {
            return Err(RequestError::ValueTooLarge {
                what,
                size,
                limit: limits.max_value_bytes,
            });
        }
    }
    Ok(())
}

/// The Kv service of one replica.
pub struct KvService {
    me: ReplicaId,
    region: String,
    limits: Limits,
    clients: mpsc::Sender<ClientInput>,
    next_local: AtomicU64,
    inflight: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl KvService {
    pub fn new(
        me: ReplicaId,
        region: String,
        limits: Limits,
        clients: mpsc::Sender<ClientInput>,
        metrics: Arc<Metrics>,
    ) -> KvService {
        KvService {
            me,
            region,
            inflight: Arc::new(Semaphore::new(limits.max_inflight_ops)),
            limits,
            clients,
            next_local: AtomicU64::new(1),
            metrics,
        }
    }

    /// A fresh id for a get or put coordinated here.
    fn local_op(&self) -> OpId {
        let n = self.next_local.fetch_add(1, Ordering::Relaxed);
        let replica = u64::from(self.me.0 & 0xFF) << 24;
        OpId {
            client: ClientId(LOCAL_CLIENT_BASE | replica | (n & 0xFF_FFFF)),
            request: RequestId(n),
        }
    }

    /// Validates, runs the operation on the replica and waits for its reply.
    async fn execute(&self, op: OpId, req: ClientRequest) -> Result<ClientReply, Status> {
        if let Err(e) = check_limits(&req, &self.limits) {
            Metrics::inc(&self.metrics.client_invalid);
            return Err(e.into());
        }
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            Metrics::inc(&self.metrics.client_overloaded);
            return Err(Status::resource_exhausted(format!(
                "over limits.max_inflight_ops = {} operations in flight at this replica",
                self.limits.max_inflight_ops
            )));
        };
        let counter = match req {
            ClientRequest::Get { .. } => &self.metrics.client_gets,
            ClientRequest::Put { .. } => &self.metrics.client_puts,
            ClientRequest::Rmw { .. } => &self.metrics.client_rmws,
        };
        Metrics::inc(counter);
        let (tx, rx) = oneshot::channel();
        let input = ClientInput { op, req, reply: tx };
        if self.clients.send(input).await.is_err() {
            return Err(Status::unavailable("the replica is shutting down"));
        }
        let limit = Duration::from_millis(self.limits.request_timeout_ms);
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            // Once the replica has the operation it may take effect: say so
            // with codes a client does not read as "never started".
            Ok(Err(_)) => Err(Status::aborted("the replica stopped")),
            Err(_) => {
                Metrics::inc(&self.metrics.client_timeouts);
                Err(Status::deadline_exceeded(format!(
                    "no quorum answered within limits.request_timeout_ms = {}",
                    self.limits.request_timeout_ms
                )))
            }
        }
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetReply>, Status> {
        let req = ClientRequest::from(request.into_inner());
        let reply = self.execute(self.local_op(), req).await?;
        Ok(Response::new(GetReply::try_from(reply)?))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutReply>, Status> {
        let req = ClientRequest::from(request.into_inner());
        let reply = self.execute(self.local_op(), req).await?;
        Ok(Response::new(PutReply::try_from(reply)?))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<PutReply>, Status> {
        let req = ClientRequest::from(request.into_inner());
        let reply = self.execute(self.local_op(), req).await?;
        Ok(Response::new(PutReply::try_from(reply)?))
    }

    async fn rmw(&self, request: Request<RmwRequest>) -> Result<Response<RmwReply>, Status> {
        let (op, req) = match request.into_inner().into_client_request() {
            Ok(parts) => parts,
            Err(e) => {
                Metrics::inc(&self.metrics.client_invalid);
                return Err(e.into());
            }
        };
        if op.client.0 >= LOCAL_CLIENT_BASE {
            Metrics::inc(&self.metrics.client_invalid);
            return Err(RequestError::ReservedClientId(op.client.0).into());
        }
        let reply = self.execute(op, req).await?;
        Ok(Response::new(RmwReply::try_from(reply)?))
    }

    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        Ok(Response::new(PingReply {
            replica_id: self.me.0,
            region: self.region.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
