//! `kv-server dev`: a local cluster in one command. Writes one config per
//! replica under a data directory, spawns one `kv-server run` process per
//! region on loopback ports, waits until each answers Ping, runs a short
//! closed-loop lat-a workload through the client SDK (each region's
//! clients talk to their own replica), prints per-region latency per
//! operation type, prints how to connect with `kvctl`, and then either
//! exits (stopping the replicas) or holds the cluster up for a while.

use crate::config::{Backend, ReplicaEntry, ServerConfig};
use crate::load::{self, Mix};
use anyhow::{Context, bail};
use client_sdk::{Client, ClientConfig};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Region names for dev clusters (EVALUATION.md's order).
const REGIONS: [&str; 5] = ["ca", "va", "ir", "or", "jp"];

/// What `dev` runs.
#[derive(Clone, Debug, clap::Args)]
pub struct DevArgs {
    /// Replicas (one per region), 1 to 5.
    #[arg(long, default_value_t = 3)]
    pub regions: usize,
    /// Where the replicas keep their data and logs (default: a fresh
    /// temporary directory, removed at exit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// First port: replica i serves clients on base+i and peers on
    /// base+100+i (default: free ports chosen by the OS).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Closed-loop clients per region.
    #[arg(long, default_value_t = 4)]
    pub clients_per_region: usize,
    /// Seconds of workload.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
    /// Seconds to keep the cluster up after the workload, for kvctl
    /// (0 = stop at once; Ctrl-C also stops it).
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Durability backend of the replicas.
    #[arg(long, value_enum, default_value_t = DevBackend::Default)]
    pub backend: DevBackend,
}

/// `--backend` of `dev`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DevBackend {
    /// The server's default (durable) backend.
    Default,
    /// In memory (not durable).
    Memory,
}

/// Child processes, killed when dropped.
struct Cluster {
    children: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A free loopback port (bound then released; the small race is
/// acceptable for a dev cluster).
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("no free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// The configs of an n-replica loopback cluster with data under `dir`.
pub fn cluster_configs(
    n: usize,
    dir: &Path,
    base_port: Option<u16>,
) -> anyhow::Result<Vec<ServerConfig>> {
    if !(1..=REGIONS.len()).contains(&n) {
        bail!("--regions must be 1 to {}, got {n}", REGIONS.len());
    }
    let mut replicas = Vec::new();
    for (i, region) in REGIONS.iter().enumerate().take(n) {
        let (c, p) = match base_port {
            Some(b) => (b + i as u16, b + 100 + i as u16),
            None => (free_port()?, free_port()?),
        };
        replicas.push(ReplicaEntry {
            id: i as u32,
            region: region.to_string(),
            client_addr: SocketAddr::from(([127, 0, 0, 1], c)),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], p)),
        });
    }
    Ok((0..n)
        .map(|i| ServerConfig {
            replica_id: i as u32,
            data_dir: dir.join(format!("r{i}")),
            replicas: replicas.clone(),
            ..ServerConfig::default()
        })
        .collect())
}

/// Runs the dev cluster and its workload.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("gryff-dev-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut configs = cluster_configs(args.regions, &dir, args.base_port)?;
    let exe = std::env::current_exe().context("cannot find the kv-server executable")?;
    let mut cluster = Cluster {
        children: Vec::new(),
    };
    for (i, cfg) in configs.iter_mut().enumerate() {
        if args.backend == DevBackend::Memory {
            cfg.durability.backend = Backend::Memory;
        }
        let path = dir.join(format!("r{i}.toml"));
        std::fs::write(&path, cfg.to_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let log = std::fs::File::create(dir.join(format!("r{i}.log")))?;
        let child = Command::new(&exe)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start replica {i}"))?;
        cluster.children.push(child);
    }
    let endpoints: Vec<String> = configs[0]
        .replicas
        .iter()
        .map(|r| format!("http://{}", r.client_addr))
        .collect();
    wait_until_up(&endpoints, &mut cluster, &dir).await?;
    println!(
        "cluster of {} replicas up (data in {}); lat-a for {}s, {} clients per region",
        args.regions,
        dir.display(),
        args.duration_secs,
        args.clients_per_region
    );
    let mix = Mix::lat_a();
    let mut regions = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let mut clients = Vec::new();
        for _ in 0..args.clients_per_region {
            clients.push(
                Client::connect(std::slice::from_ref(endpoint), ClientConfig::default()).await?,
            );
        }
        let duration = Duration::from_secs(args.duration_secs);
        let prefix = format!("dev-r{i}-");
        let mix = mix.clone();
        regions.push(tokio::spawn(async move {
            load::closed_loop(clients, &mix, duration, i as u64 * 1000, &prefix).await
        }));
    }
    for (i, r) in regions.into_iter().enumerate() {
        let report = r.await?;
        println!(
            "region {} (replica {i}): {} ops, {} errors | {}",
            REGIONS[i],
            report.ops(),
            report.errors,
            report.line()
        );
        if let Some(e) = &report.first_error {
            println!("  first error: {e}");
        }
    }
    println!("\nconnect with the CLI while the cluster is up, e.g.:");
    println!(
        "  cargo run -p client-sdk --bin kvctl -- -e {} put greeting hello",
        endpoints.join(",")
    );
    println!(
        "  cargo run -p client-sdk --bin kvctl -- -e {} get greeting",
        endpoints[0]
    );
    println!(
        "  cargo run -p client-sdk --bin kvctl -- -e {} add counter 5",
        endpoints[0]
    );
    if args.hold_secs > 0 {
        println!(
            "holding the cluster up for {}s (Ctrl-C stops it)",
            args.hold_secs
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.hold_secs)) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    } else {
        println!("(the cluster stops now; `kv-server dev --hold-secs 600` keeps it up)");
    }
    drop(cluster);
    Ok(())
}

/// Waits (bounded) until every replica answers Ping.
async fn wait_until_up(
    endpoints: &[String],
    cluster: &mut Cluster,
    dir: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, e) in endpoints.iter().enumerate() {
        loop {
            if let Some(status) = cluster.children[i].try_wait()? {
                let log =
                    std::fs::read_to_string(dir.join(format!("r{i}.log"))).unwrap_or_default();
                bail!("replica {i} exited ({status}) at start-up:\n{log}");
            }
            let config = ClientConfig {
                connect_timeout: Duration::from_millis(300),
                ..ClientConfig::default()
            };
            let client = Client::connect(std::slice::from_ref(e), config).await?;
            if client.replicas().first().is_some_and(|r| r.rtt.is_some()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("replica {i} at {e} did not answer Ping within 30s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
