//! Prints the simulator's latency figures (virtual time) for the paper's
//! 3- and 5-region matrices and workloads lat-a and lat-b: p50 and p99 per
//! region and op type beside the floor, and checks the floors: with no
//! faults and no jitter a read's p50 must be one round trip to the nearest
//! majority and a write's two (EVALUATION.md), within 1 ms.

use clap::Parser;
use geo_bench::sim::report::{latencies_by_region, markdown_table};
use geo_bench::sim::{GryffNode, GryffSimConfig, SimConfig, Simulation};
use geo_bench::{RegionMatrix, Workload};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Latency figures of the Gryff protocol in the deterministic simulator")]
struct Args {
    /// Region matrices to run (3 and/or 5 regions of the paper).
    #[arg(long, value_delimiter = ',', default_values_t = vec![3, 5])]
    regions: Vec<usize>,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["lat-a".to_string(), "lat-b".to_string()])]
    workloads: Vec<String>,
    /// Conflict percentage (default: the workload's own).
    #[arg(long)]
    conflict_pct: Option<f64>,
    /// Closed-loop clients per region.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Virtual seconds measured per run (after the warm-up).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Send every phase to all replicas instead of the nearest quorum.
    #[arg(long)]
    no_thrifty: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut ok = true;
    for &n in &args.regions {
        let Some(matrix) = RegionMatrix::paper(n) else {
            eprintln!("error: --regions takes 3 or 5 (the paper's matrices), got {n}");
            return ExitCode::from(2);
        };
        for name in &args.workloads {
            let workload = match Workload::named(name, args.conflict_pct) {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            ok &= run_one(&args, &matrix, workload);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one matrix and workload, prints its table and floor check.
fn run_one(args: &Args, matrix: &RegionMatrix, workload: Workload) -> bool {
    let mut cfg = SimConfig::figures(args.seed, workload);
    cfg.clients_per_region = args.clients;
    cfg.duration_ms = cfg.warmup_ms + args.seconds * 1000;
    let proto = GryffSimConfig {
        thrifty: !args.no_thrifty,
        ..GryffSimConfig::default()
    };
    let started = Instant::now();
    let out = Simulation::<GryffNode>::new(cfg.clone(), matrix.clone(), proto).run();
    let wall = started.elapsed();
    let lat = latencies_by_region(&out.history, cfg.warmup_ms * 1000, out.measure_end_us);
    println!(
        "\n## {} regions, {} ({}% conflicts), {} clients/region, {} s virtual, seed {}\n",
        matrix.len(),
        cfg.workload.name,
        cfg.workload.conflict_pct,
        cfg.clients_per_region,
        args.seconds,
        cfg.seed
    );
    print!("{}", markdown_table(matrix, &lat));
    println!(
        "\n{} ops, {} events, {} messages, wall time {:.2} s",
        out.history.len(),
        out.events,
        out.messages_sent,
        wall.as_secs_f64()
    );
    // The floor check: reads one round trip, writes two, within 1 ms.
    let mut ok = true;
    for ((region, kind), l) in &lat {
        let rounds = match *kind {
            "get" => 1.0,
            "put" => 2.0,
            _ => continue,
        };
        let floor = matrix.floor_ms(*region) * rounds;
        let p50 = l.percentile_ms(50.0).unwrap_or(f64::NAN);
        if (p50 - floor).abs() > 1.0 {
            println!(
                "FLOOR MISSED: {} {kind} p50 {p50:.1} ms vs floor {floor:.0} ms",
                matrix.regions()[*region]
            );
            ok = false;
        }
    }
    if ok {
        println!(
            "floor check: every read p50 = 1 RTT and write p50 = 2 RTT to the nearest majority (within 1 ms)"
        );
    }
    ok
}
