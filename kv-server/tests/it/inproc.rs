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

/// Ephemeral loopback listeners for `n` replicas (and a metrics one each
/// if `metrics`), and the config entries naming them.
async fn bind_replicas(n: u32, metrics: bool) -> (Vec<ReplicaEntry>, Vec<Listeners>) {
    let mut entries = Vec::new();
    let mut all = Vec::new();
    for id in 0..n {
        let (client, peer) = (listener().await, listener().await);
        entries.push(ReplicaEntry {
            id,
            region: format!("r{id}"),
            client_addr: client.local_addr().unwrap(),
            peer_addr: peer.local_addr().unwrap(),
        });
        let metrics = if metrics {
            Some(listener().await)
        } else {
            None
        };
        all.push(Listeners {
            client,
            peer,
            metrics,
        });
    }
    (entries, all)
}

async fn cluster(n: u32) -> (Vec<RunningServer>, Vec<String>, tempfile::TempDir) {
    cluster_in(n, "gryff-epaxos").await
}

async fn cluster_in(n: u32, mode: &str) -> (Vec<RunningServer>, Vec<String>, tempfile::TempDir) {
    cluster_with(n, mode, Vec::new()).await
}

/// `delay_us`: the emulated one-way delay to every peer (`--wan inproc`).
async fn cluster_with(
    n: u32,
    mode: &str,
    delay_us: Vec<u64>,
) -> (Vec<RunningServer>, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (entries, all) = bind_replicas(n, true).await;
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
        cfg.peer.emulated_delay_us = delay_us.clone();
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
async fn emulated_peer_delays_put_the_wan_round_trips_into_every_operation() {
    // 25 ms each way: a get is one round trip to a peer, a put two.
    let (_servers, endpoints, _dir) = cluster_with(3, "gryff-epaxos", vec![25_000; 3]).await;
    let client = Client::connect(&endpoints[..1], ClientConfig::default())
        .await
        .unwrap();
    client.put("k", "v").await.unwrap(); // warms the peer streams up
    let t = std::time::Instant::now();
    client.put("k", "w").await.unwrap();
    let put = t.elapsed();
    let t = std::time::Instant::now();
    assert_eq!(client.get("k").await.unwrap(), Some(b"w".to_vec()));
    let get = t.elapsed();
    // Lower bounds only (a shared machine may add any lateness).
    assert!(put >= Duration::from_millis(100), "put took {put:?}");
    assert!(get >= Duration::from_millis(50), "get took {get:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_from_its_records_keeps_what_it_acknowledged() {
    use kv_server::durability::MemDurability;
    use replica::Record;
    let dir = tempfile::tempdir().unwrap();
    let (entries, all) = bind_replicas(3, false).await;
    let config = |id: usize| ServerConfig {
        replica_id: id as u32,
        data_dir: dir.path().join(format!("r{id}")),
        replicas: entries.clone(),
        ..ServerConfig::default()
    };
    let disks: Vec<MemDurability<Record>> = (0..3).map(|_| MemDurability::new()).collect();
    let mut servers = Vec::new();
    for (id, l) in all.into_iter().enumerate() {
        servers.push(Some(
            server::start_with(config(id), l, disks[id].clone())
                .await
                .unwrap(),
        ));
    }
    // Replica 2 is down while the writes happen: only 0 and 1 hold them.
    servers[2].take().unwrap().stop();
    let e0 = format!("http://{}", entries[0].client_addr);
    let slow = ClientConfig {
        call_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    let c = Client::connect(std::slice::from_ref(&e0), slow.clone())
        .await
        .unwrap();
    c.put("k", "before").await.unwrap();
    assert_eq!(c.fetch_add("n", 4).await.unwrap().new, 4);
    assert!(!disks[0].records().is_empty());
    // Replica 0 restarts from its records alone; then 1 goes down and 2
    // (which missed the writes) comes back: only 0's recovered state can
    // answer with what was acknowledged.
    servers[0].take().unwrap().stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let l = Listeners::bind(&config(0)).await.unwrap();
    servers[0] = Some(
        server::start_with(config(0), l, disks[0].clone())
            .await
            .unwrap(),
    );
    servers[1].take().unwrap().stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let l = Listeners::bind(&config(2)).await.unwrap();
    servers[2] = Some(
        server::start_with(config(2), l, disks[2].clone())
            .await
            .unwrap(),
    );
    let c = Client::connect(&[e0], slow).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b"before".to_vec()));
    assert_eq!(c.fetch_add("n", 1).await.unwrap().old, 4);
}
