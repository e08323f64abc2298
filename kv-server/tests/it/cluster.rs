//! Multi-process tests: three `kv-server` processes on loopback with data
//! on disk, concurrent recording clients, the linearizability checker,
//! kill -9 of one and of all replicas, and start-up errors.

use crate::workload::Run;
use client_sdk::{Client, ClientConfig};
use kv_server::procs::{self, ProcCluster};
use std::path::Path;
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kv-server"))
}

/// Three replicas that checkpoint and trim their logs every second (after
/// 50 new entries), so restarts go through checkpoint + log, with protocol
/// timeouts for a LAN (EPaxos recovers a dead leader's instances after
/// 500 ms instead of the WAN default of 2 s).
async fn three(dir: &Path) -> ProcCluster {
    let mut configs = procs::loopback_configs(3, dir, None).unwrap();
    for c in &mut configs {
        c.durability.checkpoint_interval_secs = 1;
        c.durability.checkpoint_min_entries = 50;
        c.protocol.phase_timeout_ms = Some(300);
        c.protocol.recovery_timeout_ms = Some(500);
        c.metrics_addr = Some(procs::free_listener().unwrap().local_addr().unwrap());
    }
    let mut c = ProcCluster::launch(exe(), dir, configs).unwrap();
    c.wait_all_ready(READY).await.unwrap();
    c
}

async fn client_of(endpoint: &str) -> Client {
    Client::connect(&[endpoint], ClientConfig::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_produce_a_linearizable_history() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = three(dir.path()).await;
    let run = Run::new();
    let tasks = run.spawn_clients(&cluster.endpoints(), 6).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    run.finish(tasks).await;
    let reader = client_of(&cluster.endpoints()[1]).await;
    let values = run.read_back(&reader).await;
    assert!(run.ok() > 100, "only {} operations succeeded", run.ok());
    run.assert_counter(values.last().unwrap().1.clone());
    run.assert_linearizable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_killed_and_restarted_mid_workload() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = three(dir.path()).await;
    let run = Run::new();
    let tasks = run.spawn_clients(&cluster.endpoints(), 6).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.kill(2);
    let at_kill = run.ok();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = run.ok() - at_kill;
    assert!(
        during > 20,
        "only {during} operations finished with one replica down"
    );
    cluster.start(2).unwrap();
    cluster.wait_ready(2, READY).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.finish(tasks).await;
    // The restarted replica serves again: reads and RMWs coordinated by it.
    // Its first RMW on a key may wait for EPaxos to recover instances it
    // missed while down (a bounded wait of recovery_timeout per missing
    // dependency): give it time to catch up.
    let patient = ClientConfig {
        call_timeout: Duration::from_secs(30),
        attempt_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let endpoint = cluster.endpoints()[2].clone();
    let own = Client::connect(&[endpoint], patient).await.unwrap();
    let m2 = cluster.configs()[2].metrics_addr.unwrap();
    let watchdog = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(8)).await;
        let text = kv_server::metrics::scrape_all(m2).await.unwrap_or_default();
        let counters: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        eprintln!("replica 2 counters after 8 s:\n{}", counters.join("\n"));
    });
    let values = run.read_back(&own).await;
    let r = own
        .rmw("counter", client_sdk::RmwOp::FetchAdd { delta: 0 })
        .await
        .unwrap();
    watchdog.abort();
    assert_eq!(r.outcome.old.map(|v| v.0), values.last().unwrap().1.clone());
    run.assert_counter(values.last().unwrap().1.clone());
    run.assert_linearizable();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9_of_all_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = three(dir.path()).await;
    let run = Run::new();
    let tasks = run.spawn_clients(&cluster.endpoints(), 6).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        assert!(
            cluster.log(i).contains("checkpointed"),
            "replica {i} never checkpointed:\n{}",
            cluster.log(i)
        );
    }
    run.finish(tasks).await;
    for i in 0..3 {
        cluster.start(i).unwrap();
    }
    cluster.wait_all_ready(READY).await.unwrap();
    let reader = client_of(&cluster.endpoints()[0]).await;
    let values = run.read_back(&reader).await;
    assert!(run.ok() > 50, "only {} operations succeeded", run.ok());
    run.assert_counter(values.last().unwrap().1.clone());
    // The checker requires each read-back to see every write acknowledged
    // before it: nothing acknowledged was lost.
    run.assert_linearizable();
}

/// Runs `kv-server run` with `args` and returns (exit code, stderr).
fn run_server(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(exe())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_config(dir: &Path, name: &str, cfg: &kv_server::ServerConfig) -> String {
    let path = dir.join(name);
    std::fs::write(&path, cfg.to_toml()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn start_up_errors_are_clear_and_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let base = procs::loopback_configs(3, dir.path(), None)
        .unwrap()
        .remove(0);

    // A config error names the field and the file.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "replica_id = 0\n[limits]\nmax_key_bytez = 5\n").unwrap();
    let (code, err) = run_server(&["run", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("max_key_bytez"),
        "{err}"
    );
    let mut invalid = base.clone();
    invalid.limits.max_value_bytes = 0;
    let path = write_config(dir.path(), "invalid.toml", &invalid);
    let (code, err) = run_server(&["run", "--config", &path]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("invalid.toml") && err.contains("limits.max_value_bytes"),
        "{err}"
    );

    // A port in use.
    let taken = std::net::TcpListener::bind(base.replicas[0].client_addr).unwrap();
    let path = write_config(dir.path(), "ok.toml", &base);
    let (code, err) = run_server(&["run", "--config", &path]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("cannot listen on") && err.contains("in use"),
        "{err}"
    );
    drop(taken);

    // A data directory that cannot be created or written.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let mut unwritable = base.clone();
    unwritable.data_dir = file.join("data");
    let path = write_config(dir.path(), "unwritable.toml", &unwritable);
    let (code, err) = run_server(&["run", "--config", &path]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("data directory") && err.contains("plain-file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
