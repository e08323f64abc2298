//! `kv-bench`: the loopback benchmark. Starts a 3-replica `kv-server`
//! cluster (processes, data on disk, fsync on) and runs closed-loop lat-a
//! clients at each client count (client i talks to replica i mod 3),
//! printing throughput, p50/p99 latency and the servers' CPU time per
//! operation (user + system, from /proc). Then does the same against a
//! local 3-member etcd cluster with its default durability, if `etcd` is
//! installed (Debian package `etcd-server`), as the yardstick.

use anyhow::Context;
use clap::Parser;
use client_sdk::{Client, ClientConfig};
use kv_server::config::Backend;
use kv_server::etcd::{self, EtcdCluster, EtcdKv};
use kv_server::load::{self, KINDS, LoadReport, Mix, Target};
use kv_server::procs::{self, ProcCluster};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "kv-bench",
    about = "Loopback throughput/latency of a 3-replica cluster, and etcd"
)]
struct Args {
    /// Closed-loop client counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 8, 32])]
    clients: Vec<usize>,
    /// Seconds measured per client count.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Seconds of unmeasured load before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Skip etcd even if it is installed.
    #[arg(long)]
    no_etcd: bool,
    /// Keep data here instead of a temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run the replicas in memory (NOT durable; for comparison only).
    #[arg(long)]
    memory: bool,
}

/// One measured point.
struct Point {
    clients: usize,
    report: LoadReport,
    cpu: Duration,
}

impl Point {
    fn row(&self, system: &str) -> String {
        let secs = self.report.elapsed.as_secs_f64();
        let ops = self.report.ops();
        let all = self.report.all();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let per_kind: Vec<String> = KINDS
            .iter()
            .map(|k| {
                let h = self.report.of(*k);
                if h.is_empty() {
                    "      -      ".to_string()
                } else {
                    format!("{:5.2}/{:6.2}", ms(h, 0.5), ms(h, 0.99))
                }
            })
            .collect();
        let cpu_us = if ops > 0 {
            self.cpu.as_secs_f64() * 1e6 / ops as f64
        } else {
            0.0
        };
        format!(
            "{system:<8} {:>7} {:>9.0} {:>7.2} {:>7.2}   {}   {:>8.1} {:>6}",
            self.clients,
            ops as f64 / secs,
            ms(&all, 0.5),
            ms(&all, 0.99),
            per_kind.join("  "),
            cpu_us,
            self.report.errors
        )
    }
}

fn header() -> String {
    format!(
        "{:<8} {:>7} {:>9} {:>7} {:>7}   {:^13}  {:^13}  {:^13}   {:>8} {:>6}",
        "system",
        "clients",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "get p50/p99",
        "put p50/p99",
        "rmw p50/p99",
        "CPU us/op",
        "errors"
    )
}

fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().filter_map(|p| etcd::cpu_time(*p)).sum()
}

/// Warm-up, then one measured closed-loop run with the servers' CPU time.
async fn measure<T: Target + Clone>(
    targets: Vec<T>,
    pids: &[u32],
    args: &Args,
    seed: u64,
) -> Point {
    let mix = Mix::lat_a();
    let clients = targets.len();
    let warm = Duration::from_secs(args.warmup_secs);
    if !warm.is_zero() {
        load::closed_loop(targets.clone(), &mix, warm, seed, "w").await;
    }
    let before = cpu_of(pids);
    let report = load::closed_loop(
        targets,
        &mix,
        Duration::from_secs(args.duration_secs),
        seed,
        "m",
    )
    .await;
    let cpu = cpu_of(pids).saturating_sub(before);
    Point {
        clients,
        report,
        cpu,
    }
}

async fn bench_kv(args: &Args, dir: &std::path::Path) -> anyhow::Result<Vec<Point>> {
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory of kv-bench")?
        .join("kv-server");
    let mut configs = procs::loopback_configs(3, &dir.join("kv"), None)?;
    for c in &mut configs {
        if args.memory {
            c.durability.backend = Backend::Memory;
        }
    }
    println!("effective config of replica 0:\n{}", configs[0].to_toml());
    let mut cluster = ProcCluster::launch(&exe, &dir.join("kv"), configs)?;
    cluster.wait_all_ready(Duration::from_secs(60)).await?;
    let endpoints = cluster.endpoints();
    let pids: Vec<u32> = (0..cluster.len()).filter_map(|i| cluster.pid(i)).collect();
    let mut points = Vec::new();
    for &n in &args.clients {
        let mut targets = Vec::new();
        for i in 0..n {
            let e = &endpoints[i % endpoints.len()];
            targets.push(Client::connect(std::slice::from_ref(e), ClientConfig::default()).await?);
        }
        let p = measure(targets, &pids, args, n as u64).await;
        println!("{}", p.row("kv"));
        points.push(p);
    }
    Ok(points)
}

async fn bench_etcd(
    args: &Args,
    dir: &std::path::Path,
    exe: &std::path::Path,
) -> anyhow::Result<Vec<Point>> {
    let cluster = EtcdCluster::start(exe, &dir.join("etcd"), 3)?;
    cluster.wait_ready(Duration::from_secs(30)).await?;
    let mut points = Vec::new();
    for &n in &args.clients {
        let mut targets = Vec::new();
        for i in 0..n {
            let url = &cluster.client_urls[i % cluster.client_urls.len()];
            targets.push(EtcdKv::connect(url).await?);
        }
        let p = measure(targets, &cluster.pids(), args, n as u64).await;
        println!("{}", p.row("etcd"));
        points.push(p);
    }
    Ok(points)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("kv-bench-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(dir.join("etcd"))?;
    println!(
        "kv-bench: 3 replicas on 127.0.0.1, no added delay, {}; lat-a = 49.5% get, 49.5% put, 1% rmw (fetch-and-add), 25% on one hot key, 8-byte values; {} s measured after {} s warm-up per point; client i talks to replica i mod 3",
        if args.memory {
            "in-memory backend (NOT durable)"
        } else {
            "durable backend (fsync per group commit)"
        },
        args.duration_secs,
        args.warmup_secs
    );
    println!("{}", header());
    let kv = bench_kv(&args, &dir).await?;
    let etcd_exe = if args.no_etcd {
        None
    } else {
        etcd::find_etcd()
    };
    let etcd = match &etcd_exe {
        Some(exe) => {
            println!(
                "\n{} with default durability (WAL fsync per raft batch), 3 members on 127.0.0.1; same closed loop: get = linearizable Range, put = Put, and the 1% rmw also a Put (etcd has no fetch-and-add)",
                etcd::etcd_version(exe)
            );
            println!("{}", header());
            Some(bench_etcd(&args, &dir, exe).await?)
        }
        None => {
            println!(
                "\netcd: not measured (install it with `apt-get install -y etcd-server`, or --no-etcd was given)"
            );
            None
        }
    };
    println!(
        "\nsummary (CPU us/op = user+system time of the 3 server processes per completed operation):"
    );
    println!("{}", header());
    for p in &kv {
        println!("{}", p.row("kv"));
    }
    for p in etcd.iter().flatten() {
        println!("{}", p.row("etcd"));
    }
    Ok(())
}
