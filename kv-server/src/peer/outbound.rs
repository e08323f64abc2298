//! Outbound peer traffic: one task per peer owns a bounded queue, packs
//! what is queued into `PeerBatch`es (bounded in messages and bytes) and
//! pushes them on one long-lived client stream `Peer.Stream`. When the
//! stream breaks or the peer is down it reconnects with a bounded
//! exponential back-off; messages lost on the way are the protocol's
//! business (phase timeouts re-send).

use super::codec;
use crate::config::PeerConfig;
use crate::driver::Outbound;
use crate::metrics::Metrics;
use client_sdk::proto::PeerBatch;
use client_sdk::proto::peer_client::PeerClient;
use registers::ReplicaId;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

/// Batches in flight on one stream before the task waits (HTTP/2 flow
/// control then slows it down, and the queue in front fills up).
const STREAM_BUFFER: usize = 8;

/// The driver's side: a bounded queue per peer.
pub struct PeerSenders<Msg> {
    /// Indexed by replica id; `None` for this replica itself.
    queues: Vec<Option<mpsc::Sender<Msg>>>,
}

impl<Msg: Send + 'static> Outbound<Msg> for PeerSenders<Msg> {
    fn send(&self, to: ReplicaId, msg: Msg) -> bool {
        match self.queues.get(to.0 as usize) {
            Some(Some(q)) => q.try_send(msg).is_ok(),
            _ => false,
        }
    }
}

/// Who this replica is on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub me: u32,
    pub cluster_id: u64,
}

/// Starts one sender task per peer (`peers[i]` is replica `i`'s peer
/// address) and returns the queues and the tasks.
pub fn start<Msg: Serialize + Send + 'static>(
    id: Identity,
    peers: &[SocketAddr],
    cfg: &PeerConfig,
    metrics: &Arc<Metrics>,
) -> (PeerSenders<Msg>, Vec<JoinHandle<()>>) {
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for (i, addr) in peers.iter().enumerate() {
        if i as u32 == id.me {
            queues.push(None);
            continue;
        }
        let (tx, mut rx) = mpsc::channel(cfg.queue_capacity);
        queues.push(Some(tx));
        let delay_us = cfg.emulated_delay_us.get(i).copied().unwrap_or(0);
        if delay_us > 0 {
            // Emulated WAN: the driver's queue feeds a delay line, which
            // feeds the link.
            let (delayed_tx, delayed_rx) = mpsc::channel(cfg.queue_capacity);
            let delay = Duration::from_micros(delay_us);
            match super::delay::delay_line(delay, rx, delayed_tx) {
                Ok(task) => tasks.push(task),
                // No thread: this peer's queue is closed and sends to it
                // fail, which the protocol treats as a dead peer.
                Err(e) => {
                    tracing::error!(peer = %addr, error = %e, "cannot start the emulated delay line")
                }
            }
            rx = delayed_rx;
        }
        let link = Link {
            id,
            addr: *addr,
            cfg: cfg.clone(),
            metrics: metrics.clone(),
        };
        tasks.push(tokio::spawn(link.run(rx)));
    }
    (PeerSenders { queues }, tasks)
}

struct Link {
    id: Identity,
    addr: SocketAddr,
    cfg: PeerConfig,
    metrics: Arc<Metrics>,
}

impl Link {
    async fn run<Msg: Serialize + Send + 'static>(self, mut rx: mpsc::Receiver<Msg>) {
        let min = Duration::from_millis(self.cfg.reconnect_min_ms);
        let max = Duration::from_millis(self.cfg.reconnect_max_ms);
        let mut backoff = min;
        loop {
            Metrics::inc(&self.metrics.peer_reconnects);
            let started = Instant::now();
            match self.connect().await {
                Ok(client) => {
                    tracing::info!(peer = %self.addr, "peer stream open");
                    if self.pump(client, &mut rx).await.is_none() {
                        return; // the driver is gone: shut down
                    }
                }
                Err(e) => tracing::debug!(peer = %self.addr, error = %e, "peer connect failed"),
            }
            // A stream that lived a while was healthy: start over gently.
            if started.elapsed() > max {
                backoff = min;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(max);
        }
    }

    async fn connect(
        &self,
    ) -> Result<PeerClient<tonic::transport::Channel>, tonic::transport::Error> {
        let timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20))
            .connect()
            .await?;
        Ok(PeerClient::new(channel).max_encoding_message_size(usize::MAX))
    }

    /// Feeds one stream until it breaks (`Some`) or the queue closes (`None`).
    async fn pump<Msg: Serialize>(
        &self,
        mut client: PeerClient<tonic::transport::Channel>,
        rx: &mut mpsc::Receiver<Msg>,
    ) -> Option<()> {
        let (btx, brx) = mpsc::channel(STREAM_BUFFER);
        let mut call = tokio::spawn(async move { client.stream(ReceiverStream::new(brx)).await });
        loop {
            let first = tokio::select! {
                m = rx.recv() => m?,
                ended = &mut call => {
                    tracing::info!(peer = %self.addr, ?ended, "peer stream ended");
                    return Some(());
                }
            };
            let batch = self.pack(first, rx);
            let n = batch.messages.len() as u64;
            if btx.send(batch).await.is_err() {
                tracing::info!(peer = %self.addr, "peer stream closed while sending");
                call.abort();
                return Some(());
            }
            Metrics::inc(&self.metrics.peer_batches_out);
            Metrics::add(&self.metrics.peer_messages_out, n);
        }
    }

    /// `first` and whatever else is queued, within the batch bounds.
    fn pack<Msg: Serialize>(&self, first: Msg, rx: &mut mpsc::Receiver<Msg>) -> PeerBatch {
        let mut messages = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match codec::encode(&msg) {
                Ok(m) => {
                    bytes += m.len();
                    messages.push(m);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a peer message");
                    Metrics::inc(&self.metrics.peer_dropped);
                }
            }
            if messages.len() >= self.cfg.max_batch_messages || bytes >= self.cfg.max_batch_bytes {
                break;
            }
            next = rx.try_recv().ok();
        }
        PeerBatch {
            from_replica: self.id.me,
            cluster_id: self.id.cluster_id,
            messages,
        }
    }
}
