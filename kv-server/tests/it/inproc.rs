//! Three replicas in this process, on ephemeral loopback ports, with the
//! in-memory backend: the whole server stack (driver, peer streams, Kv
//! service) without child processes.

use client_sdk::proto::PeerBatch;
use client_sdk::proto::peer_client::PeerClient;
use client_sdk::{Client, ClientConfig, ClientError};
use kv_server::config::{Backend, ReplicaEntry, ServerConfig};
use kv_server::metrics;
use kv_server::server::{self, Listeners, RunningServer};
use std::time::Duration;
use tokio::net::TcpListener;

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn cluster(n: u32) -> (Vec<RunningServer>, Vec<String>, tempfile::TempDir) {
    cluster_in(n, "gryff-epaxos").await
}

async fn cluster_in(n: u32, mode: &str) -> (Vec<RunningServer>, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut entries = Vec::new();
    for id in 0..n {
        let (client, peer, m) = (listener().await, listener().await, listener().await);
        entries.push(ReplicaEntry {
            id,
            region: format!("r{id}"),
            client_addr: client.local_addr().unwrap(),
            peer_addr: peer.local_addr().unwrap(),
        });
        all.push(Listeners {
            client,
            peer,
            metrics: Some(m),
        });
    }
    let mut servers = Vec::new();
    for (id, listeners) in all.into_iter().enumerate() {
        let mut cfg = ServerConfig {
            replica_id: id as u32,
            data_dir: dir.path().join(format!("r{id}")),
            replicas: entries.clone(),
            ..ServerConfig::default()
        };
        cfg.durability.backend = Backend::Memory;
        cfg.protocol.mode = mode.to_string();
        cfg.limits.max_key_bytes = 64;
        cfg.limits.max_value_bytes = 1024;
        cfg.validate(std::path::Path::new("test")).unwrap();
        servers.push(server::start(cfg, listeners).await.unwrap());
    }
    let endpoints = entries
        .iter()
        .map(|e| format!("http://{}", e.client_addr))
        .collect();
    (servers, endpoints, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_serve_gets_puts_and_rmws() {
    serve_gets_puts_and_rmws("gryff-epaxos").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_serves_gets_puts_and_rmws() {
    for mode in ["gryff-raft", "epaxos-all", "raft-all"] {
        serve_gets_puts_and_rmws(mode).await;
    }
}

async fn serve_gets_puts_and_rmws(mode: &str) {
    let (servers, endpoints, _dir) = cluster_in(3, mode).await;
    let a = Client::connect(&endpoints[..1], ClientConfig::default())
        .await
        .unwrap();
    let b = Client::connect(&endpoints[2..], ClientConfig::default())
        .await
        .unwrap();
    a.put("k", "v1").await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(b.fetch_add("n", 5).await.unwrap().new, 5);
    assert_eq!(a.fetch_add("n", 2).await.unwrap().old, 5);
    let cas = a
        .compare_and_swap("k", Some(&b"v1"[..]), Some(&b"v2"[..]))
        .await
        .unwrap();
    assert!(cas.applied);
    assert_eq!(b.get("k").await.unwrap(), Some(b"v2".to_vec()));
    b.delete("k").await.unwrap();
    assert_eq!(a.get("k").await.unwrap(), None);
    let persists = servers[0]
        .metrics
        .persists
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(persists > 0);
    let batches = metrics::scrape(servers[1].metrics_addr.unwrap(), "peer_batches_in")
        .await
        .unwrap()
        .unwrap();
    assert!(batches > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_requests_get_invalid_argument_naming_the_limit() {
    let (_servers, endpoints, _dir) = cluster(3).await;
    let c = Client::connect(&endpoints[..1], ClientConfig::default())
        .await
        .unwrap();
    match c.put(vec![b'k'; 65], "v").await {
        Err(ClientError::InvalidArgument { message }) => {
            assert!(message.contains("limits.max_key_bytes = 64"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match c.put("k", vec![0u8; 1025]).await {
        Err(ClientError::InvalidArgument { message }) => {
            assert!(
                message.contains("limits.max_value_bytes = 1024"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    c.put("k", vec![0u8; 1024]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peer_input_is_rejected_and_counted() {
    let (servers, _endpoints, _dir) = cluster(3).await;
    let peer_addr = servers[0].peer_addr;
    let mut client = PeerClient::connect(format!("http://{peer_addr}"))
        .await
        .unwrap();
    let garbage = PeerBatch {
        from_replica: 1,
        cluster_id: 1,
        messages: vec![vec![0xee; 10], vec![]],
    };
    let summary = client
        .stream(tokio_stream::iter(vec![garbage]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.messages_received, 0);
    let stranger = PeerBatch {
        from_replica: 9,
        cluster_id: 1,
        messages: vec![],
    };
    let refused = client.stream(tokio_stream::iter(vec![stranger])).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    let m = servers[0].metrics_addr.unwrap();
    // The counters settle as soon as the stream is handled.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        metrics::scrape(m, "peer_bad_messages").await.unwrap(),
        Some(2)
    );
    assert_eq!(
        metrics::scrape(m, "peer_bad_senders").await.unwrap(),
        Some(1)
    );
}
