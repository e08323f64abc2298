//! `kv-server dev`: a local cluster in one command. Writes one config per
//! replica under a data directory, spawns one `kv-server run` process per
//! region on loopback ports, waits until each answers Ping, runs a short
//! closed-loop lat-a workload through the client SDK (each region's
//! clients talk to their own replica), prints per-region latency per
//! operation type, prints how to connect with `kvctl`, and then either
//! exits (stopping the replicas) or holds the cluster up for a while.

use crate::config::Backend;
use crate::load::{self, Mix};
use crate::procs::{self, ProcCluster, REGIONS};
use anyhow::Context;
use client_sdk::{Client, ClientConfig};
use std::path::PathBuf;
use std::time::Duration;

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
    let mut configs = procs::loopback_configs(args.regions, &dir, args.base_port)?;
    for cfg in &mut configs {
        if args.backend == DevBackend::Memory {
            cfg.durability.backend = Backend::Memory;
        }
    }
    let exe = std::env::current_exe().context("cannot find the kv-server executable")?;
    let mut cluster = ProcCluster::launch(&exe, &dir, configs)?;
    cluster.wait_all_ready(Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints();
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
    let kvctl = exe
        .parent()
        .map(|d| d.join("kvctl"))
        .filter(|p| p.is_file())
        .map_or_else(
            || "cargo run --bin kvctl --".to_string(),
            |p| p.display().to_string(),
        );
    let all = endpoints.join(",");
    println!("\nconnect with the CLI while the cluster is up (--hold-secs N keeps it up), e.g.:");
    println!("  {kvctl} -e {all} put greeting hello");
    println!("  {kvctl} -e {} get greeting", endpoints[0]);
    println!("  {kvctl} -e {} add counter 5", endpoints[1]);
    println!("  {kvctl} -e {} cas greeting hello bonjour", endpoints[2]);
    println!(
        "replica configs and logs: {}/r<i>.toml, r<i>.log; one replica by hand: {} run --config {}/r0.toml",
        dir.display(),
        exe.display(),
        dir.display()
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
