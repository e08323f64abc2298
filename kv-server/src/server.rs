//! Start-up and shutdown of one replica: check the data directory, bind
//! the listeners (a port in use is a clear error, not a panic), read the
//! durable records back and recover the replica from them, then run the
//! driver, the peer links and the two gRPC services until told to stop or
//! until the driver fails (a log failure stops the replica).

use crate::adapter;
use crate::config::{Backend, ServerConfig};
use crate::driver::{Clock, Driver, DriverError};
use crate::durability::{
    CheckpointPolicy, Durability, DurabilityError, MemDurability, TangoDurability,
};
use crate::metrics::{self, Metrics};
use crate::peer::{self, Identity, PeerService};
use crate::service::KvService;
use client_sdk::proto::kv_server::KvServer;
use client_sdk::proto::peer_server::PeerServer;
use registers::ReplicaId;
use replica::{PeerMsg, Record};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("data directory {dir}: {reason}")]
    DataDir { dir: PathBuf, reason: String },
    #[error("cannot listen on {addr} for {what}: {reason}")]
    Listen {
        addr: SocketAddr,
        what: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Durability(#[from] DurabilityError),
    #[error("cannot start the replica: {0}")]
    Replica(#[from] replica::ConfigError),
    #[error("the replica stopped: {0}")]
    Driver(#[from] DriverError),
    #[error("the {what} server failed: {reason}")]
    Serve { what: &'static str, reason: String },
}

/// The listeners of one replica, bound before anything else starts.
pub struct Listeners {
    pub client: TcpListener,
    pub peer: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &ServerConfig) -> Result<Listeners, ServerError> {
        let client = bind(
            config.client_listen(),
            "the Kv API (client_addr / listen_client)",
        )
        .await?;
        let peer = bind(
            config.peer_listen(),
            "the Peer service (peer_addr / listen_peer)",
        )
        .await?;
        let metrics = match config.metrics_addr {
            Some(a) => Some(bind(Some(a), "metrics (metrics_addr)").await?),
            None => None,
        };
        Ok(Listeners {
            client,
            peer,
            metrics,
        })
    }
}

async fn bind(addr: Option<SocketAddr>, what: &'static str) -> Result<TcpListener, ServerError> {
    let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Listen {
            addr,
            what,
            reason: e.to_string(),
        })
}

/// Creates the data directory if needed and proves it writable.
pub fn prepare_data_dir(dir: &Path) -> Result<(), ServerError> {
    let fail = |reason: String| ServerError::DataDir {
        dir: dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(|e| fail(format!("not writable: {e}")))?;
    std::fs::remove_file(&probe).map_err(|e| fail(format!("not writable: {e}")))?;
    Ok(())
}

/// A running replica.
pub struct RunningServer {
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    driver: JoinHandle<Result<(), DriverError>>,
    servers: Vec<(
        &'static str,
        JoinHandle<Result<(), tonic::transport::Error>>,
    )>,
    background: Vec<JoinHandle<()>>,
}

/// Starts a replica with the configured durability backend.
pub async fn start(
    config: ServerConfig,
    listeners: Listeners,
) -> Result<RunningServer, ServerError> {
    prepare_data_dir(&config.data_dir)?;
    match config.durability.backend {
        Backend::Memory => start_with(config, listeners, MemDurability::<Record>::new()).await,
        Backend::Rocksdb => {
            let durability = open_rocksdb(&config)?;
            start_with(config, listeners, durability).await
        }
    }
}

/// Opens the replica's RocksDB log in `data_dir/log` and hosts its Tango
/// objects on it (restoring their latest checkpoints).
pub fn open_rocksdb(config: &ServerConfig) -> Result<TangoDurability, ServerError> {
    let d = &config.durability;
    let dir = config.data_dir.join("log");
    let mut log_config = log_backend::LogConfig {
        max_entry_bytes: d.max_entry_bytes(&config.limits),
        ..log_backend::LogConfig::default()
    };
    let gc = &mut log_config.group_commit;
    gc.sync = d.fsync;
    gc.max_records = d.group_commit_max_records;
    gc.max_delay_us = d.group_commit_max_delay_us;
    gc.max_bytes = gc.max_bytes.max(log_config.max_entry_bytes);
    let max_entry_bytes = log_config.max_entry_bytes;
    let log = log_backend::RocksLog::open(&dir, log_config).map_err(|e| DurabilityError::Open {
        dir: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let policy = CheckpointPolicy {
        interval: Duration::from_secs(d.checkpoint_interval_secs),
        min_new_entries: d.checkpoint_min_entries,
    };
    Ok(TangoDurability::open(
        std::sync::Arc::new(log),
        max_entry_bytes,
        policy,
    )?)
}

/// Starts a replica over `durability` (already opened).
pub async fn start_with<D: Durability<Record>>(
    config: ServerConfig,
    listeners: Listeners,
    mut durability: D,
) -> Result<RunningServer, ServerError> {
    let metrics = Metrics::new();
    let records = durability.recover()?;
    let clock = Clock::new();
    let mut initial = Vec::new();
    let replica = adapter::recover_replica(&config, clock.now(), &records, &mut initial)?;
    tracing::info!(
        replica = config.replica_id,
        records = records.len(),
        "recovered the replica from its durable records"
    );
    let me = ReplicaId(config.replica_id);
    let identity = Identity {
        me: config.replica_id,
        cluster_id: config.cluster_id,
    };
    let peer_addrs: Vec<SocketAddr> = config.replicas.iter().map(|r| r.peer_addr).collect();
    let (senders, mut background) =
        peer::outbound::start::<PeerMsg>(identity, &peer_addrs, &config.peer, &metrics);
    let (driver, handle) = Driver::new(
        replica,
        durability,
        senders,
        clock,
        metrics.clone(),
        config.limits.max_inflight_ops,
        config.limits.peer_inbox,
    );
    let driver = tokio::spawn(driver.run(initial));

    let region = config.me().map(|r| r.region.clone()).unwrap_or_default();
    let limits = config.limits.clone();
    let kv = KvService::new(me, region, limits.clone(), handle.clients, metrics.clone());
    let peer_svc = PeerService::<PeerMsg> {
        me: config.replica_id,
        replicas: config.replicas.len() as u32,
        cluster_id: config.cluster_id,
        max_message_bytes: config.peer.max_message_bytes,
        inbox: handle.peers,
        metrics: metrics.clone(),
    };
    let kv_decode =
        (4 * (limits.max_key_bytes + limits.max_value_bytes) + (64 << 10)).max(16 << 20);
    let peer_decode = config.peer.max_batch_bytes + config.peer.max_message_bytes + (64 << 10);
    let client_addr = local_addr(&listeners.client)?;
    let peer_addr = local_addr(&listeners.peer)?;
    let kv_server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(KvServer::new(kv).max_decoding_message_size(kv_decode))
        .serve_with_incoming(incoming(listeners.client));
    let peer_server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(PeerServer::new(peer_svc).max_decoding_message_size(peer_decode))
        .serve_with_incoming(incoming(listeners.peer));
    let servers = vec![
        ("Kv", tokio::spawn(kv_server)),
        ("Peer", tokio::spawn(peer_server)),
    ];
    let mut metrics_addr = None;
    if let Some(l) = listeners.metrics {
        metrics_addr = Some(local_addr(&l)?);
        background.push(tokio::spawn(metrics::serve(l, metrics.clone())));
    }
    if config.stats_interval_secs > 0 {
        let every = Duration::from_secs(config.stats_interval_secs);
        let m = metrics.clone();
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                tracing::info!(stats = %m.summary(), "counters");
            }
        }));
    }
    Ok(RunningServer {
        client_addr,
        peer_addr,
        metrics_addr,
        metrics,
        driver,
        servers,
        background,
    })
}

/// Accepted connections with Nagle off: the server builder's `tcp_nodelay`
/// only applies to listeners tonic binds itself, and Nagle plus delayed
/// acks costs 40 ms on small request/reply exchanges.
fn incoming(l: TcpListener) -> TcpIncoming {
    TcpIncoming::from(l).with_nodelay(Some(true))
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, ServerError> {
    l.local_addr().map_err(|e| ServerError::Serve {
        what: "listener",
        reason: e.to_string(),
    })
}

impl RunningServer {
    /// Runs until `signal` resolves (then stops cleanly) or until the
    /// replica or a server fails.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let result = tokio::select! {
            _ = signal => Ok(()),
            r = &mut self.driver => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServerError::Driver(e)),
                Err(e) => Err(ServerError::Serve { what: "driver", reason: e.to_string() }),
            },
            (r, i, _) = futures_util::future::select_all(self.servers.iter_mut().map(|(_, h)| h)) => {
                let what = self.servers[i].0;
                Err(ServerError::Serve { what, reason: match r {
                    Ok(Ok(())) => "stopped".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                }})
            }
        };
        self.stop();
        result
    }

    /// Stops every task of the replica at once. Safe at any point: what
    /// was acknowledged is durable, and nothing unacknowledged is promised.
    pub fn stop(&self) {
        for (_, s) in &self.servers {
            s.abort();
        }
        self.driver.abort();
        for b in &self.background {
            b.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}
