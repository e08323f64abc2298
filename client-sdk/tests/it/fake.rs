//! An in-process fake replica serving `gryff.v1.Kv` on an ephemeral
//! loopback port. Several fakes may share one `Backend` (the "cluster
//! state": a map of registers, the RMW dedup table and a log of the RMW ids
//! received); each fake has its own misbehaviour knobs.

use client_sdk::proto::kv_server::{Kv, KvServer};
use client_sdk::proto::{
    DeleteRequest, GetReply, GetRequest, PingReply, PingRequest, PutReply, PutRequest, RmwReply,
    RmwRequest,
};
use registers::{Carstamp, ClientReply, ClientRequest, OpId, Value, WriterId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// The state the fakes of one test share.
#[derive(Default)]
pub struct Backend {
    registers: Mutex<HashMap<Vec<u8>, (Value, Carstamp)>>,
    next_ts: Mutex<u64>,
    /// Replies of RMWs already executed, by id: a retry gets the same reply.
    executed: Mutex<HashMap<OpId, RmwReply>>,
    /// Every RMW id received, in order, by every fake (failed attempts too).
    pub rmw_ids: Mutex<Vec<OpId>>,
}

impl Backend {
    fn execute(&self, request: ClientRequest) -> ClientReply {
        let mut registers = self.registers.lock().unwrap();
        match request {
            ClientRequest::Get { key } => {
                let (value, cs) = match registers.get(&key.0) {
                    Some((v, cs)) => (Some(v.clone()), *cs),
                    None => (None, Carstamp::ZERO),
                };
                ClientReply::Get { value, cs }
            }
            ClientRequest::Put { key, value } => {
                let mut ts = self.next_ts.lock().unwrap();
                *ts += 1;
                let cs = Carstamp::for_write(*ts, WriterId(1));
                match value {
                    Some(v) => registers.insert(key.0, (v, cs)),
                    None => registers.remove(&key.0),
                };
                ClientReply::Put { cs }
            }
            ClientRequest::Rmw { key, op } => {
                let current = registers.get(&key.0).cloned();
                let base = current.as_ref().map_or(Carstamp::ZERO, |(_, cs)| *cs);
                let outcome = op.apply(current.as_ref().map(|(v, _)| v));
                let cs = base.rmw_successor();
                match &outcome.new {
                    Some(v) => registers.insert(key.0, (v.clone(), cs)),
                    None => registers.remove(&key.0),
                };
                ClientReply::Rmw { outcome, cs }
            }
        }
    }

    pub fn rmw_ids(&self) -> Vec<OpId> {
        self.rmw_ids.lock().unwrap().clone()
    }
}

/// One fake replica.
#[derive(Clone)]
pub struct Fake {
    pub replica_id: u32,
    pub backend: Arc<Backend>,
    pub knobs: Arc<Knobs>,
}

/// How a fake misbehaves.
#[derive(Default)]
pub struct Knobs {
    /// Added to every Ping (a "far away" replica).
    pub ping_delay: Mutex<Duration>,
    /// The next this-many operations (not pings) fail with UNAVAILABLE
    /// before doing anything.
    pub refuse_ops: AtomicU32,
    /// The next this-many RMWs execute, then fail with UNAVAILABLE (the
    /// reply is "lost").
    pub lose_rmw_replies: AtomicU32,
    /// Operations never answer (they sleep far past any test deadline).
    pub hang_ops: AtomicBool,
    /// Replies leave out the carstamp (a broken server).
    pub omit_carstamp: AtomicBool,
    /// Operations that reached this fake (pings excluded).
    pub ops: AtomicU32,
}

/// Keys starting with this are rejected with INVALID_ARGUMENT.
pub const BAD_KEY_PREFIX: &[u8] = b"bad";

impl Fake {
    pub fn new(replica_id: u32, backend: &Arc<Backend>) -> Fake {
        Fake {
            replica_id,
            backend: Arc::clone(backend),
            knobs: Arc::new(Knobs::default()),
        }
    }

    pub fn ops(&self) -> u32 {
        self.knobs.ops.load(Ordering::SeqCst)
    }

    /// Common entry of every operation: count, validate, misbehave.
    async fn enter(&self, key: &[u8]) -> Result<(), Status> {
        self.knobs.ops.fetch_add(1, Ordering::SeqCst);
        if key.starts_with(BAD_KEY_PREFIX) {
            return Err(Status::invalid_argument("key starts with \"bad\""));
        }
        if take_one(&self.knobs.refuse_ops) {
            return Err(Status::unavailable("fake refuses"));
        }
        if self.knobs.hang_ops.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Err(Status::internal("fake hung for a minute"));
        }
        Ok(())
    }

    fn carstamp(&self, cs: Carstamp) -> Option<client_sdk::proto::Carstamp> {
        (!self.knobs.omit_carstamp.load(Ordering::SeqCst)).then(|| cs.into())
    }
}

/// Decrements `counter` if positive; true if it did.
fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[tonic::async_trait]
impl Kv for Fake {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetReply>, Status> {
        let request = request.into_inner();
        self.enter(&request.key).await?;
        let reply = self.backend.execute(request.into());
        let mut wire = GetReply::try_from(reply).map_err(Status::from)?;
        wire.carstamp = wire.carstamp.and_then(|cs| self.carstamp(cs.into()));
        Ok(Response::new(wire))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutReply>, Status> {
        let request = request.into_inner();
        self.enter(&request.key).await?;
        let reply = self.backend.execute(request.into());
        let mut wire = PutReply::try_from(reply).map_err(Status::from)?;
        wire.carstamp = wire.carstamp.and_then(|cs| self.carstamp(cs.into()));
        Ok(Response::new(wire))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<PutReply>, Status> {
        let request = request.into_inner();
        self.enter(&request.key).await?;
        let reply = self.backend.execute(request.into());
        Ok(Response::new(
            PutReply::try_from(reply).map_err(Status::from)?,
        ))
    }

    async fn rmw(&self, request: Request<RmwRequest>) -> Result<Response<RmwReply>, Status> {
        let (id, request) = request.into_inner().into_client_request()?;
        self.backend.rmw_ids.lock().unwrap().push(id);
        self.enter(request.key().as_bytes()).await?;
        let known = self.backend.executed.lock().unwrap().get(&id).cloned();
        let mut wire = match known {
            Some(reply) => reply,
            None => {
                let reply = self.backend.execute(request);
                let wire = RmwReply::try_from(reply).map_err(Status::from)?;
                self.backend
                    .executed
                    .lock()
                    .unwrap()
                    .insert(id, wire.clone());
                wire
            }
        };
        if take_one(&self.knobs.lose_rmw_replies) {
            return Err(Status::unavailable("fake lost the reply"));
        }
        wire.carstamp = wire.carstamp.and_then(|cs| self.carstamp(cs.into()));
        Ok(Response::new(wire))
    }

    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let delay = *self.knobs.ping_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        Ok(Response::new(PingReply {
            replica_id: self.replica_id,
            region: format!("region-{}", self.replica_id),
        }))
    }
}

/// A fake serving on 127.0.0.1 on an ephemeral port.
pub struct Running {
    pub endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops serving (GOAWAY to open connections) and waits, boundedly,
    /// until the port is closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        assert!(stopped.is_ok(), "fake server did not stop within 5 s");
    }
}

pub async fn serve(fake: Fake) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let server = Server::builder()
        .add_service(KvServer::new(fake))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = rx.await;
        });
    let task = tokio::spawn(async move {
        server.await.expect("fake server failed");
    });
    Running {
        endpoint,
        shutdown: Some(tx),
        task,
    }
}

/// An endpoint nothing listens on: bound once, then released.
pub async fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    endpoint
}
