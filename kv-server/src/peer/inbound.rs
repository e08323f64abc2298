//! Inbound peer traffic: the `gryff.v1.Peer` service. Each peer opens one
//! client stream to us; every batch is checked (cluster id, sender id) and
//! every message decoded (`codec`). A batch from another cluster or from
//! an id that is not another replica ends the stream with an error status
//! and is counted; a malformed message is dropped and counted, and the
//! rest of its batch still goes to the replica.

use super::codec;
use crate::driver::PeerInput;
use crate::metrics::Metrics;
use client_sdk::proto::peer_server::Peer;
use client_sdk::proto::{PeerBatch, PeerStreamSummary};
use registers::ReplicaId;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// The Peer service of one replica.
pub struct PeerService<Msg> {
    pub me: u32,
    pub replicas: u32,
    pub cluster_id: u64,
    pub max_message_bytes: usize,
    pub inbox: mpsc::Sender<PeerInput<Msg>>,
    pub metrics: Arc<Metrics>,
}

impl<Msg: DeserializeOwned> PeerService<Msg> {
    /// Checks one batch and decodes its messages.
    pub fn accept(&self, batch: PeerBatch) -> Result<PeerInput<Msg>, Status> {
        Metrics::inc(&self.metrics.peer_batches_in);
        if batch.cluster_id != self.cluster_id {
            Metrics::inc(&self.metrics.peer_bad_senders);
            return Err(Status::failed_precondition(format!(
                "cluster_id {} is not this replica's cluster ({})",
                batch.cluster_id, self.cluster_id
            )));
        }
        let from = batch.from_replica;
        if from >= self.replicas || from == self.me {
            Metrics::inc(&self.metrics.peer_bad_senders);
            return Err(Status::permission_denied(format!(
                "from_replica {from} is not another replica of this cluster (ids 0..{}, this is {})",
                self.replicas, self.me
            )));
        }
        let mut msgs = Vec::with_capacity(batch.messages.len());
        for bytes in &batch.messages {
            match codec::decode(bytes, self.max_message_bytes) {
                Ok(m) => msgs.push(m),
                Err(e) => {
                    Metrics::inc(&self.metrics.peer_bad_messages);
                    tracing::warn!(from, error = %e, "rejected a peer message");
                }
            }
        }
        Ok(PeerInput {
            from: ReplicaId(from),
            msgs,
        })
    }
}

#[tonic::async_trait]
impl<Msg: DeserializeOwned + Send + 'static> Peer for PeerService<Msg> {
    async fn stream(
        &self,
        request: Request<Streaming<PeerBatch>>,
    ) -> Result<Response<PeerStreamSummary>, Status> {
        let mut stream = request.into_inner();
        let mut received = 0u64;
        while let Some(batch) = stream.message().await? {
            let input = self.accept(batch)?;
            if input.msgs.is_empty() {
                continue;
            }
            received += input.msgs.len() as u64;
            if self.inbox.send(input).await.is_err() {
                return Err(Status::unavailable("replica is shutting down"));
            }
        }
        Ok(Response::new(PeerStreamSummary {
            messages_received: received,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{Key, OpRef, Phase, RegisterMsg};
    use replica::PeerMsg;

    fn service() -> (PeerService<PeerMsg>, mpsc::Receiver<PeerInput<PeerMsg>>) {
        let (tx, rx) = mpsc::channel(8);
        let svc = PeerService {
            me: 0,
            replicas: 3,
            cluster_id: 42,
            max_message_bytes: 1024,
            inbox: tx,
            metrics: Metrics::new(),
        };
        (svc, rx)
    }

    fn msg() -> PeerMsg {
        PeerMsg::Register(RegisterMsg::Write1 {
            op_ref: OpRef {
                seq: 1,
                phase: Phase::Write1,
            },
            key: Key::from("k"),
        })
    }

    fn batch(from: u32, cluster_id: u64, messages: Vec<Vec<u8>>) -> PeerBatch {
        PeerBatch {
            from_replica: from,
            cluster_id,
            messages,
        }
    }

    #[test]
    fn good_messages_pass_and_malformed_ones_are_counted_and_dropped() {
        let (svc, _rx) = service();
        let good = codec::encode(&msg()).unwrap();
        let input = svc
            .accept(batch(
                2,
                42,
                vec![good.clone(), vec![0xff, 0xff], vec![7; 2000], good],
            ))
            .unwrap();
        assert_eq!(input.from, ReplicaId(2));
        assert_eq!(input.msgs, vec![msg(), msg()]);
        let m = &svc.metrics;
        assert_eq!(
            m.peer_bad_messages
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }

    #[test]
    fn unknown_senders_and_other_clusters_are_refused_and_counted() {
        let (svc, _rx) = service();
        let err = svc.accept(batch(3, 42, vec![])).err().unwrap();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("from_replica 3"));
        let own = svc.accept(batch(0, 42, vec![])).err().unwrap();
        assert_eq!(own.code(), tonic::Code::PermissionDenied);
        let other = svc.accept(batch(1, 41, vec![])).err().unwrap();
        assert_eq!(other.code(), tonic::Code::FailedPrecondition);
        let m = &svc.metrics;
        assert_eq!(
            m.peer_bad_senders
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }
}
