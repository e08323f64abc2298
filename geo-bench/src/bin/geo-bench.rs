//! `geo-bench run`: the multi-region tail-latency benchmark (EVALUATION.md).
//! One `kv-server` per region under an emulated WAN, closed-loop SDK
//! clients next to each replica, a calibration of every region pair
//! before measuring, and results (JSON, CSV, Markdown, CDF plots) with the
//! effective config and seed. `--wan sim` runs the deterministic simulator
//! on the same workload instead; `--sim-beside` adds it to a real run.

use clap::{Parser, Subcommand};
use geo_bench::bench::cluster::{Cluster, ClusterSpec, find_server_bin, proc_cpu_seconds};
use geo_bench::bench::config::{DEFAULT_TAIL_FANOUT, RunConfig, validate};
use geo_bench::bench::load::{LoadPlan, run_blocking};
use geo_bench::bench::report::{RunOutput, write_all};
use geo_bench::bench::results::{ModeResults, target_misses};
use geo_bench::bench::{plot, simrun};
use geo_bench::sim::MODE_NAMES;
use geo_bench::wan::{CalibrationConfig, Emulation, WanError, WanMode, WanOptions, calibrate};
use geo_bench::{RegionMatrix, Workload};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "geo-bench",
    about = "Multi-region latency benchmark of the store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one benchmark and writes its results directory.
    Run(RunArgs),
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// How the WAN is emulated: netem (tc, where the kernel has it),
    /// nfqueue (userspace delayer in a namespace, root), inproc (servers
    /// delay their own peer messages), sim (the deterministic simulator).
    #[arg(long, value_enum, default_value_t = WanMode::Nfqueue)]
    wan: WanMode,
    /// Use the paper's 3- or 5-region matrix (ignored with --matrix).
    #[arg(long, default_value_t = 5)]
    regions: usize,
    /// A region matrix TOML file (format of geo-bench/regions/*.toml).
    #[arg(long)]
    matrix: Option<PathBuf>,
    /// lat-a, lat-b, tail, tput, vary-<write%> (EVALUATION.md).
    #[arg(long, default_value = "lat-b")]
    workload: String,
    /// Percent of operations on the shared hot key (default: the workload's).
    #[arg(long)]
    conflict_pct: Option<f64>,
    /// Override the mix: WRITES/READS/RMWS percent, e.g. 4.5/94.5/1.
    #[arg(long)]
    mix: Option<String>,
    /// Closed-loop clients per region; a list (1,2,4,8,16,24) runs each
    /// count in turn (the tput sweep), labelled `<mode>-c<count>`.
    #[arg(long, value_delimiter = ',', default_values_t = vec![16])]
    clients: Vec<usize>,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 30.0)]
    duration_s: f64,
    /// Seconds of load before measuring (left out of the figures).
    #[arg(long, default_value_t = 5.0)]
    warmup_s: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bytes per written value.
    #[arg(long, default_value_t = 8)]
    value_size: usize,
    /// Keys per client besides the hot key.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Sub-operations per request (default: 10 for tail, 1 otherwise).
    #[arg(long)]
    fanout: Option<usize>,
    /// Protocol modes, run one after another on the same WAN (`all` for
    /// gryff-epaxos, gryff-raft, epaxos-all, raft-all).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["gryff-epaxos".to_string()])]
    modes: Vec<String>,
    /// Results directory (default: geo-bench-results/<workload>-<wan>-<seconds since epoch>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// kv-server durability backend: rocksdb (fsync) or memory.
    #[arg(long, default_value = "rocksdb")]
    durability: String,
    /// Region of the raft leader (raft-all, gryff-raft).
    #[arg(long, default_value = "CA")]
    raft_leader: String,
    /// The kv-server binary (default: next to geo-bench).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Also run the simulator on the same workload and put it beside.
    #[arg(long)]
    sim_beside: bool,
    /// A calibrated pair further than this from its target stops the run.
    #[arg(long, default_value_t = 2.0)]
    calibration_tolerance_ms: f64,
    /// Seconds of calibration per region pair.
    #[arg(long, default_value_t = 3.0)]
    calibration_s: f64,
    /// Exit 1 if a Gryff figure misses the targets.
    #[arg(long)]
    check_targets: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match run(args) {
            Ok(code) => code,
            Err(Failure::Usage(m)) => {
                eprintln!("error: {m}");
                ExitCode::from(2)
            }
            Err(Failure::Run(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

enum Failure {
    Usage(String),
    Run(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Run(e)
    }
}

impl From<WanError> for Failure {
    fn from(e: WanError) -> Failure {
        if e.is_environment() {
            Failure::Usage(e.to_string())
        } else {
            Failure::Run(e.into())
        }
    }
}

fn usage(m: impl Into<String>) -> Failure {
    Failure::Usage(m.into())
}

fn parse_mix(s: &str) -> Result<(f64, f64, f64), String> {
    let parts: Vec<&str> = s.split('/').collect();
    let nums: Result<Vec<f64>, _> = parts.iter().map(|p| p.trim().parse::<f64>()).collect();
    match nums {
        Ok(n) if n.len() == 3 => Ok((n[0], n[1], n[2])),
        _ => Err(format!(
            "--mix {s:?}: expected WRITES/READS/RMWS in percent, e.g. 4.5/94.5/1"
        )),
    }
}

fn build_config(a: &RunArgs) -> Result<(RunConfig, RegionMatrix), Failure> {
    let (matrix, source) = match &a.matrix {
        Some(p) => (
            RegionMatrix::load(p).map_err(|e| usage(e.to_string()))?,
            p.display().to_string(),
        ),
        None => (
            RegionMatrix::paper(a.regions).ok_or_else(|| {
                usage(format!(
                    "--regions {}: the shipped matrices have 3 or 5 regions; use --matrix FILE for others",
                    a.regions
                ))
            })?,
            format!("regions-{}.toml (shipped)", a.regions),
        ),
    };
    let mut workload =
        Workload::named(&a.workload, a.conflict_pct).map_err(|e| usage(e.to_string()))?;
    if let Some(m) = &a.mix {
        let (w, r, x) = parse_mix(m).map_err(usage)?;
        workload.write_pct = w;
        workload.read_pct = r;
        workload.rmw_pct = x;
    }
    workload.value_size = a.value_size;
    workload.validate().map_err(|e| usage(e.to_string()))?;
    let modes: Vec<String> = if a.modes.iter().any(|m| m == "all") {
        MODE_NAMES.iter().map(|m| m.to_string()).collect()
    } else {
        a.modes.clone()
    };
    for m in &modes {
        if !MODE_NAMES.contains(&m.as_str()) {
            return Err(usage(format!(
                "--modes: unknown mode {m:?}; known: {}, all",
                MODE_NAMES.join(", ")
            )));
        }
    }
    let n = matrix.len();
    let regions = matrix.regions().to_vec();
    let rtt_ms = (0..n)
        .map(|i| {
            let row = (0..n)
                .filter(|&j| j != i)
                .map(|j| (regions[j].clone(), matrix.rtt_ms(i, j)))
                .collect();
            (regions[i].clone(), row)
        })
        .collect();
    let floor_ms = (0..n)
        .map(|i| (regions[i].clone(), matrix.floor_ms(i)))
        .collect();
    let fanout = a.fanout.unwrap_or(if a.workload == "tail" {
        DEFAULT_TAIL_FANOUT
    } else {
        1
    });
    let raft_leader = regions
        .iter()
        .find(|r| r.eq_ignore_ascii_case(&a.raft_leader))
        .cloned()
        .unwrap_or_else(|| a.raft_leader.clone());
    let cfg = RunConfig {
        wan: a.wan.name().to_string(),
        matrix_source: source,
        regions,
        rtt_ms,
        floor_ms,
        workload,
        keys: a.keys,
        clients_per_region: a.clients.first().copied().unwrap_or(0),
        clients_sweep: a.clients.clone(),
        duration_s: a.duration_s,
        warmup_s: a.warmup_s,
        seed: a.seed,
        fanout,
        modes,
        durability: a.durability.clone(),
        raft_leader,
        server_bin: a.server_bin.as_ref().map(|p| p.display().to_string()),
        calibration_tolerance_ms: a.calibration_tolerance_ms,
        sim_beside: a.sim_beside,
        geo_bench_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    validate(&cfg).map_err(usage)?;
    if !(a.calibration_s > 0.0 && a.calibration_s <= 60.0) {
        return Err(usage(format!(
            "--calibration-s {} is not in (0, 60]",
            a.calibration_s
        )));
    }
    if a.wan == WanMode::Sim && fanout > 1 {
        return Err(usage(
            "--wan sim has no fan-out requests (the simulator's clients issue single operations); use --fanout 1",
        ));
    }
    Ok((cfg, matrix))
}

fn progress_bar(label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(1);
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {elapsed}/{duration} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

fn run(a: RunArgs) -> Result<ExitCode, Failure> {
    let (cfg, matrix) = build_config(&a)?;
    let out_dir = a.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!(
            "geo-bench-results/{}-{}-{t}",
            cfg.workload.name, cfg.wan
        ))
    });
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| usage(format!("--out {}: {e}", out_dir.display())))?;
    let server_bin = if a.wan == WanMode::Sim {
        None
    } else {
        Some(find_server_bin(a.server_bin.as_deref()).map_err(|e| usage(format!("{e:#}")))?)
    };
    let mut measured = Vec::new();
    let mut sim = Vec::new();
    let mut calibration = None;
    // (mode, clients per region, label) of every run, in order.
    let runs: Vec<(String, usize, String)> = cfg
        .modes
        .iter()
        .flat_map(|m| {
            let sweep = cfg.clients_sweep.len() > 1;
            cfg.clients_sweep.iter().map(move |&c| {
                let label = if sweep {
                    format!("{m}-c{c}")
                } else {
                    m.clone()
                };
                (m.clone(), c, label)
            })
        })
        .collect();
    let sim_run = |mode: &str, clients: usize, label: &str| -> Result<ModeResults, Failure> {
        let mut c = cfg.clone();
        c.clients_per_region = clients;
        c.fanout = 1;
        let mut r = simrun::run_mode(&c, &matrix, mode).map_err(usage)?;
        r.mode = label.to_string();
        Ok(r)
    };
    if a.wan == WanMode::Sim {
        for (m, c, label) in &runs {
            eprintln!("simulating {label} ...");
            measured.push(sim_run(m, *c, label)?);
        }
    } else {
        let per_mode = cfg.warmup_s + cfg.duration_s + 60.0;
        let mut options = WanOptions::default();
        options.delayer.max_runtime = Duration::from_secs_f64(
            120.0
                + a.calibration_s * (matrix.len() * matrix.len()) as f64
                + per_mode * runs.len() as f64,
        );
        let wan = Emulation::start(a.wan, &matrix, &options)?;
        let cal_cfg = CalibrationConfig {
            duration: Duration::from_secs_f64(a.calibration_s),
            tolerance_ms: a.calibration_tolerance_ms,
            ..CalibrationConfig::default()
        };
        println!("region matrix ({}):", cfg.matrix_source);
        let cal = calibrate::calibrate(&wan, &cal_cfg).map_err(|e| {
            Failure::Run(anyhow::anyhow!(
                "{e}; the WAN emulation is not faithful, so the run stops before measuring"
            ))
        })?;
        calibration = Some(cal);
        let leader = cfg
            .regions
            .iter()
            .position(|r| *r == cfg.raft_leader)
            .unwrap_or(0);
        for (mode, clients, label) in &runs {
            let spec = ClusterSpec {
                mode: mode.clone(),
                durability: cfg.durability.clone(),
                raft_leader: leader,
            };
            let dir = out_dir.join(label);
            let bin = server_bin.clone().expect("a server binary for real runs");
            let mut cluster = Cluster::launch(&wan, &bin, &dir, &spec)?;
            let plan = LoadPlan {
                endpoints: cluster.endpoints().to_vec(),
                workload: cfg.workload.clone(),
                keys: cfg.keys,
                clients_per_region: *clients,
                warmup: Duration::from_secs_f64(cfg.warmup_s),
                duration: Duration::from_secs_f64(cfg.duration_s),
                seed: cfg.seed,
                fanout: cfg.fanout,
                ready_timeout: Duration::from_secs(30),
                mode: label.clone(),
            };
            let cpu_before = cluster.cpu_seconds();
            let self_before = proc_cpu_seconds("/proc/self/stat").unwrap_or(0.0);
            let pb = progress_bar(label);
            let pb2 = pb.clone();
            let handle = wan.spawn("geo-bench-load", move || {
                run_blocking(plan, pb2).map_err(|e| WanError::Calibration(format!("{e:#}")))
            })?;
            let res = handle
                .join()
                .map_err(|_| Failure::Run(anyhow::anyhow!("the load thread panicked")))?;
            pb.finish_and_clear();
            let cpu_after = cluster.cpu_seconds();
            let self_after = proc_cpu_seconds("/proc/self/stat").unwrap_or(0.0);
            let alive = cluster.check_alive();
            let res = match (res, alive) {
                (Ok(r), Ok(())) => r,
                (Err(e), Err(dead)) => {
                    return Err(Failure::Run(anyhow::anyhow!("{label}: {e}; {dead:#}")));
                }
                (Err(e), Ok(())) => return Err(Failure::Run(anyhow::anyhow!("{label}: {e}"))),
                (Ok(_), Err(dead)) => return Err(Failure::Run(dead)),
            };
            let mut res = res;
            for (name, after) in cpu_after {
                let before = cpu_before
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |b| b.1);
                res.cpu_s.insert(name, after - before);
            }
            res.cpu_s
                .insert("geo-bench".to_string(), self_after - self_before);
            eprintln!("{label}: {} ops measured, {} errors", res.ops(), res.errors);
            drop(cluster);
            measured.push(res);
        }
        if let Some(stats) = wan.stop()? {
            eprintln!(
                "delayer: {} packets released, late mean {:.0} us, max {} us, {} over 1 ms, {} dropped",
                stats.released,
                stats.late_mean_us(),
                stats.late_max_us,
                stats.late_over_1ms,
                stats.dropped_full + stats.kernel_dropped + stats.kernel_user_dropped
            );
        }
        if cfg.sim_beside {
            for (m, c, label) in &runs {
                sim.push(sim_run(m, *c, label)?);
            }
        }
    }
    let out = RunOutput {
        config: &cfg,
        matrix: &matrix,
        calibration: calibration.as_ref(),
        measured: &measured,
        sim: &sim,
    };
    let md = write_all(&out_dir, &out)?;
    let prefix = if cfg.wan == "sim" { "sim-" } else { "" };
    let plots: Vec<(&str, &ModeResults)> = measured
        .iter()
        .map(|m| (prefix, m))
        .chain(sim.iter().map(|m| ("sim-", m)))
        .collect();
    for (p, m) in plots {
        let (_, note) = plot::write_cdf(&out_dir, p, m, &matrix);
        if let Some(n) = note {
            eprintln!("note: {n}");
        }
    }
    println!("{md}");
    println!("results in {}", out_dir.display());
    let rows: Vec<_> = measured.iter().flat_map(|m| m.rows(&matrix)).collect();
    if a.check_targets && !target_misses(&rows).is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
