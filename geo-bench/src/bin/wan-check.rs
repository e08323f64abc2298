//! Sets up a WAN emulation, calibrates it (every ordered region pair's
//! median TCP round trip, in bursts, beside the matrix) and tears it down:
//! the check to run before a benchmark (EVALUATION.md, "Emulating the WAN").
//!
//! `wan-check --wan nfqueue|netem|inproc --regions 3|5 [--matrix FILE]
//! [--seconds N]`; `wan-check --cleanup-stale` removes the namespaces of
//! benchmark runs that died.
//!
//! Exit codes: 0 calibrated; 1 a fault of the emulation; 2 bad flags;
//! 3 a bad matrix; 4 the machine cannot run this mode (not root, no netem,
//! a tool missing); 5 a pair off by more than the tolerance.

use clap::Parser;
use geo_bench::RegionMatrix;
use geo_bench::wan::{
    self, CalibrationConfig, Emulation, WanError, WanMode, WanOptions, calibrate,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Set up a WAN emulation, calibrate every region pair, tear it down")]
struct Args {
    /// How the WAN is emulated: netem (tc, where the kernel has it),
    /// nfqueue (userspace delayer in a namespace, root), inproc (no root).
    #[arg(long, value_enum, required_unless_present = "cleanup_stale")]
    wan: Option<WanMode>,
    /// The paper's 3- or 5-region matrix (ignored with --matrix).
    #[arg(long, default_value_t = 3, value_parser = parse_regions)]
    regions: usize,
    /// A region matrix file (TOML, as geo-bench/regions/regions-5.toml).
    #[arg(long)]
    matrix: Option<PathBuf>,
    /// Seconds each pair is measured.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Messages per burst.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    burst: u64,
    /// Largest accepted difference between a pair's median and its target.
    #[arg(long, default_value_t = 2.0)]
    tolerance_ms: f64,
    /// Only remove network namespaces left by benchmark runs that died.
    #[arg(long)]
    cleanup_stale: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.cleanup_stale {
        return match wan::namespace::cleanup_stale() {
            Ok(removed) => {
                println!(
                    "removed {} stale namespace(s): {}",
                    removed.len(),
                    removed.join(" ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    if !(args.tolerance_ms.is_finite() && args.tolerance_ms > 0.0) {
        eprintln!("error: --tolerance-ms must be a positive number of milliseconds");
        return ExitCode::from(2);
    }
    let matrix = match &args.matrix {
        Some(path) => RegionMatrix::load(path),
        None => Ok(RegionMatrix::paper(args.regions).expect("3 or 5")),
    };
    let matrix = match matrix {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let mode = args.wan.expect("required unless --cleanup-stale");
    let mut options = WanOptions::default();
    // The delayer outlives the calibration by a margin, never by hours.
    options.delayer.max_runtime = Duration::from_secs(args.seconds * 2 + 120);
    let emulation = match Emulation::start(mode, &matrix, &options) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    if let Some(ns) = emulation.namespace() {
        println!("--wan {mode}: namespace {}", ns.name());
    }
    for r in 0..matrix.len() {
        println!(
            "  {} ({}) at {}",
            matrix.regions()[r],
            matrix.name(r),
            emulation.region_addr(r)
        );
    }
    let config = CalibrationConfig {
        duration: Duration::from_secs(args.seconds),
        burst: args.burst as usize,
        tolerance_ms: args.tolerance_ms,
        ..CalibrationConfig::default()
    };
    let calibrated = calibrate::calibrate(&emulation, &config);
    let stopped = emulation.stop();
    if let Ok(Some(s)) = &stopped {
        println!(
            "delayer: {} packets released, late by {:.0} us mean, {} us max, {} over 1 ms; \
             dropped {} (held too many), {} + {} (kernel); {} unmatched; real-time priority: {}",
            s.released,
            s.late_mean_us(),
            s.late_max_us,
            s.late_over_1ms,
            s.dropped_full,
            s.kernel_dropped,
            s.kernel_user_dropped,
            s.unmatched,
            if s.realtime { "yes" } else { "no" }
        );
    }
    if let Err(e) = calibrated {
        if let (WanError::CalibrationOff { .. }, Ok(Some(s))) = (&e, &stopped)
            && s.late_max_us < 1000
            && s.dropped_full + s.kernel_dropped + s.kernel_user_dropped == 0
        {
            eprintln!(
                "note: the delayer released every packet within {} us of its time, so the extra \
                 round trip was spent in the endpoints: the CPU is too busy for this run \
                 (EVALUATION.md: the emulation needs CPU headroom)",
                s.late_max_us
            );
        }
        return fail(&e);
    }
    if let Err(e) = stopped {
        return fail(&e);
    }
    ExitCode::SUCCESS
}

fn parse_regions(s: &str) -> Result<usize, String> {
    match s {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err("the paper's matrices have 3 or 5 regions; give others with --matrix".into()),
    }
}

fn fail(e: &WanError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(match e {
        WanError::CalibrationOff { .. } => 5,
        e if e.is_environment() => 4,
        _ => 1,
    })
}
