//! The `kv-server` binary: `run` one replica (TOML config plus flag
//! overrides), or `dev`: a local cluster of replicas with a short
//! workload. Errors end the process with a message and exit status 1,
//! never a panic.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kv_server::config::{FLAGS_ONLY, ReplicaEntry, ServerConfig};
use kv_server::server::{self, Listeners};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "kv-server",
    version,
    about = "A replica of the Gryff key-value store"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one replica.
    Run(RunArgs),
    /// Start a local cluster on loopback, run a short workload, print
    /// per-region latency and how to connect with kvctl.
    Dev(kv_server::dev::DevArgs),
    /// Print the effective configuration (file plus flags) as TOML.
    PrintConfig(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The TOML configuration file (every field has a default except the
    /// replicas, which may come from --replica instead).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// This replica's id (overrides `replica_id`).
    #[arg(long)]
    replica_id: Option<u32>,
    /// This replica's region name (overrides its entry's `region`).
    #[arg(long)]
    region: Option<String>,
    /// A replica of the cluster as ID=REGION,CLIENT_ADDR,PEER_ADDR;
    /// repeat for each (replaces the file's `replicas`).
    #[arg(long = "replica", value_parser = parse_replica)]
    replicas: Vec<ReplicaEntry>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Bind address of the Kv API (overrides `listen_client`).
    #[arg(long)]
    listen_client: Option<SocketAddr>,
    /// Bind address of the Peer service (overrides `listen_peer`).
    #[arg(long)]
    listen_peer: Option<SocketAddr>,
    /// Prometheus metrics address (overrides `metrics_addr`).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Overrides `limits.max_key_bytes`.
    #[arg(long)]
    max_key_bytes: Option<usize>,
    /// Overrides `limits.max_value_bytes`.
    #[arg(long)]
    max_value_bytes: Option<usize>,
    /// Overrides `cluster_id`.
    #[arg(long)]
    cluster_id: Option<u64>,
}

fn parse_replica(s: &str) -> Result<ReplicaEntry, String> {
    let usage = || format!("{s:?}: expected ID=REGION,CLIENT_ADDR,PEER_ADDR");
    let (id, rest) = s.split_once('=').ok_or_else(usage)?;
    let parts: Vec<&str> = rest.split(',').collect();
    let [region, client, peer] = parts.as_slice() else {
        return Err(usage());
    };
    Ok(ReplicaEntry {
        id: id.trim().parse().map_err(|e| format!("{s:?}: id: {e}"))?,
        region: region.trim().to_string(),
        client_addr: client
            .trim()
            .parse()
            .map_err(|e| format!("{s:?}: client address: {e}"))?,
        peer_addr: peer
            .trim()
            .parse()
            .map_err(|e| format!("{s:?}: peer address: {e}"))?,
    })
}

impl RunArgs {
    /// The file's config with the flags applied, validated.
    fn effective(&self) -> anyhow::Result<ServerConfig> {
        let (mut cfg, source) = match &self.config {
            Some(path) => (ServerConfig::load(path)?, path.clone()),
            None => (ServerConfig::default(), PathBuf::from(FLAGS_ONLY)),
        };
        if let Some(v) = self.replica_id {
            cfg.replica_id = v;
        }
        if !self.replicas.is_empty() {
            cfg.replicas = self.replicas.clone();
        }
        if let Some(region) = &self.region {
            let me = cfg.replica_id;
            if let Some(r) = cfg.replicas.iter_mut().find(|r| r.id == me) {
                r.region = region.clone();
            }
        }
        if let Some(v) = &self.data_dir {
            cfg.data_dir = v.clone();
        }
        cfg.listen_client = self.listen_client.or(cfg.listen_client);
        cfg.listen_peer = self.listen_peer.or(cfg.listen_peer);
        cfg.metrics_addr = self.metrics_addr.or(cfg.metrics_addr);
        if let Some(v) = self.max_key_bytes {
            cfg.limits.max_key_bytes = v;
        }
        if let Some(v) = self.max_value_bytes {
            cfg.limits.max_value_bytes = v;
        }
        if let Some(v) = self.cluster_id {
            cfg.cluster_id = v;
        }
        cfg.validate(Path::new(&source))?;
        Ok(cfg)
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let cfg = args.effective()?;
    let listeners = Listeners::bind(&cfg).await?;
    let me = cfg.replica_id;
    let running = server::start(cfg, listeners).await?;
    tracing::info!(
        replica = me,
        client = %running.client_addr,
        peer = %running.peer_addr,
        "serving"
    );
    running.run_until(shutdown_signal()).await?;
    tracing::info!(replica = me, "stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                match cli.command {
                    Cmd::Run(args) => run(args).await,
                    Cmd::Dev(args) => kv_server::dev::run(args).await,
                    Cmd::PrintConfig(args) => {
                        print!("{}", args.effective()?.to_toml());
                        Ok(())
                    }
                }
            })
        });
    if let Err(e) = result {
        eprintln!("kv-server: error: {e:#}");
        std::process::exit(1);
    }
}
