//! Prints the simulator's latency figures (virtual time) for the paper's
//! 3- and 5-region matrices and workloads lat-a and lat-b: p50, p99 and
//! p99.9 per region and op type beside the floor, and checks the floors:
//! with no faults and no jitter a Gryff read's p50 must be one round trip
//! to the nearest majority and a write's two (EVALUATION.md), within 1 ms.
//!
//! `--modes gryff-epaxos,gryff-raft,epaxos-all,raft-all` (or `all`) runs
//! each mode on the same workload and seed and adds the side-by-side
//! table and the check of the expected shape (Gryff's read p99 well below
//! both baselines', Gryff's writes about twice EPaxos-all's).

use clap::Parser;
use geo_bench::sim::compare::{ModeLatencies, expected_shape, side_by_side};
use geo_bench::sim::report::{latencies_by_region, markdown_table};
use geo_bench::sim::{
    GryffNode, GryffSimConfig, MODE_NAMES, Mode, SimConfig, Simulation, parse_mode,
};
use geo_bench::{RegionMatrix, Workload};
use registers::ReplicaId;
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
    /// Modes to run and compare side by side (`all` for every one):
    /// gryff-epaxos, gryff-raft, epaxos-all, raft-all.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["gryff-epaxos".to_string()])]
    modes: Vec<String>,
    /// Region of the raft leader (raft-all's, and gryff-raft's preferred
    /// leader). CA by default: of the 5 paper regions, the leader there
    /// gives raft-all the lowest mean latency, the mean over regions of
    /// RTT(region, leader) plus RTT(leader, its nearest majority): CA 151,
    /// VA 171, OR 177, JP 244, IR 266 ms.
    #[arg(long, default_value = "CA")]
    raft_leader: String,
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
            let Some(leader) = matrix.regions().iter().position(|r| *r == args.raft_leader) else {
                eprintln!(
                    "error: --raft-leader {} is not one of {:?}",
                    args.raft_leader,
                    matrix.regions()
                );
                return ExitCode::from(2);
            };
            let names: Vec<String> = if args.modes.iter().any(|m| m == "all") {
                MODE_NAMES.iter().map(|m| m.to_string()).collect()
            } else {
                args.modes.clone()
            };
            let mut modes = Vec::new();
            for name in &names {
                match parse_mode(name, ReplicaId(leader as u32)) {
                    Ok(m) => modes.push(m),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let mut runs: Vec<(&'static str, ModeLatencies)> = Vec::new();
            for mode in modes {
                let (floors_ok, lat) = run_one(&args, &matrix, workload.clone(), mode);
                ok &= floors_ok;
                runs.push((mode.name(), lat));
            }
            if runs.len() > 1 {
                compare(&matrix, &runs);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The replica in the `--raft-leader` region (checked in `main`).
fn leader_of(args: &Args, matrix: &RegionMatrix) -> ReplicaId {
    let i = matrix
        .regions()
        .iter()
        .position(|r| *r == args.raft_leader)
        .unwrap_or(0);
    ReplicaId(i as u32)
}

/// Prints the side-by-side table and the expected-shape check.
fn compare(matrix: &RegionMatrix, runs: &[(&'static str, ModeLatencies)]) {
    let refs: Vec<(&str, &ModeLatencies)> = runs.iter().map(|(n, l)| (*n, l)).collect();
    println!("\n### Side by side (p50 / p99 / p99.9, ms)\n");
    print!("{}", side_by_side(matrix, &refs));
    println!("\n### Expected shape\n");
    for c in expected_shape(matrix, &refs) {
        let verdict = if c.holds { "holds" } else { "DOES NOT HOLD" };
        println!("- {}: {} -> {verdict}", c.region, c.what);
    }
}

/// Runs one matrix, workload and mode; prints its table and (Gryff modes)
/// the floor check. Returns whether the floors held, and the latencies.
fn run_one(
    args: &Args,
    matrix: &RegionMatrix,
    workload: Workload,
    mode: Mode,
) -> (bool, ModeLatencies) {
    let mut cfg = SimConfig::figures(args.seed, workload);
    cfg.clients_per_region = args.clients;
    cfg.duration_ms = cfg.warmup_ms + args.seconds * 1000;
    let proto = GryffSimConfig {
        mode,
        raft_leader: match mode {
            Mode::RaftAll { leader } => Some(leader),
            _ => Some(leader_of(args, matrix)),
        },
        thrifty: !args.no_thrifty,
        ..GryffSimConfig::default()
    };
    let started = Instant::now();
    let out = Simulation::<GryffNode>::new(cfg.clone(), matrix.clone(), proto).run();
    let wall = started.elapsed();
    let lat = latencies_by_region(&out.history, cfg.warmup_ms * 1000, out.measure_end_us);
    println!(
        "\n## {}: {} regions, {} ({}% conflicts), {} clients/region, {} s virtual, seed {}\n",
        mode.name(),
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
    if !out.live {
        println!("LIVENESS: some client was still waiting at the end of the run");
    }
    // The floor check (Gryff only; the baselines have no such floor):
    // reads one round trip, writes two, within 1 ms.
    if mode.every_op() {
        return (out.live, lat);
    }
    let mut ok = out.live;
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
    (ok, lat)
}
