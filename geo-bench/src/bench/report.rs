//! The results directory: `config.json` (the effective configuration and
//! seed), `results.json` (every summary row, errors, the calibration),
//! `summary.csv`, `histograms.csv` (every recorded value and count, per
//! source, mode, region and op), `summary.md` for people, and the CDF
//! plots ([`super::plot`]).

use super::config::RunConfig;
use super::results::{ModeResults, StatRow, target_misses};
use crate::RegionMatrix;
use crate::wan::Calibration;
use anyhow::Context;
use serde_json::json;
use std::fmt::Write;
use std::path::Path;

/// Everything one run produced.
pub struct RunOutput<'a> {
    pub config: &'a RunConfig,
    pub matrix: &'a RegionMatrix,
    pub calibration: Option<&'a Calibration>,
    /// Measured (or, with `--wan sim`, simulated) results per mode.
    pub measured: &'a [ModeResults],
    /// The simulator's results beside them (`--sim-beside`).
    pub sim: &'a [ModeResults],
}

fn source_name(out: &RunOutput<'_>) -> &'static str {
    if out.config.wan == "sim" {
        "sim"
    } else {
        "measured"
    }
}

fn calibration_json(c: &Calibration) -> serde_json::Value {
    json!({
        "mode": c.mode,
        "burst": c.burst,
        "tolerance_ms": c.tolerance_ms,
        "pairs": c.pairs.iter().map(|p| json!({
            "from": c.regions[p.from], "to": c.regions[p.to],
            "target_ms": p.target_ms, "median_ms": p.median_ms,
            "p90_ms": p.p90_ms, "max_ms": p.max_ms, "samples": p.samples,
        })).collect::<Vec<_>>(),
    })
}

fn mode_json(m: &ModeResults, matrix: &RegionMatrix) -> serde_json::Value {
    json!({
        "mode": m.mode,
        "ops": m.ops(),
        "errors": m.errors,
        "first_error": m.first_error,
        "measured_s": m.measured_s,
        "throughput_ops_s": m.ops() as f64 / m.measured_s.max(1e-9),
        "cpu_s": m.cpu_s,
        "rows": m.rows(matrix),
    })
}

/// Writes every file into `dir`; returns the Markdown summary.
pub fn write_all(dir: &Path, out: &RunOutput<'_>) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))
    };
    write(
        "config.json",
        &serde_json::to_string_pretty(out.config).expect("config serialises"),
    )?;
    let results = json!({
        "config": out.config,
        "calibration": out.calibration.map(calibration_json),
        source_name(out): out.measured.iter().map(|m| mode_json(m, out.matrix)).collect::<Vec<_>>(),
        "sim_beside": out.sim.iter().map(|m| mode_json(m, out.matrix)).collect::<Vec<_>>(),
    });
    write(
        "results.json",
        &serde_json::to_string_pretty(&results).expect("results serialise"),
    )?;
    let sets: Vec<(&str, &ModeResults)> = out
        .measured
        .iter()
        .map(|m| (source_name(out), m))
        .chain(out.sim.iter().map(|m| ("sim", m)))
        .collect();
    let mut csv = String::from(
        "source,mode,region,op,count,p50_ms,p90_ms,p99_ms,p999_ms,mean_ms,floor_ms,p50_ratio,p90_ratio,p99_ratio,p999_ratio\n",
    );
    let mut hist = String::from("source,mode,region,op,value_us,count\n");
    for (source, m) in &sets {
        for r in m.rows(out.matrix) {
            let _ = writeln!(
                csv,
                "{source},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.1},{:.4},{:.4},{:.4},{:.4}",
                r.mode,
                r.region,
                r.op,
                r.count,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.p999_ms,
                r.mean_ms,
                r.floor_ms,
                r.p50_ratio,
                r.p90_ratio,
                r.p99_ratio,
                r.p999_ratio
            );
        }
        for ((region, op), h) in &m.hists {
            for v in h.iter_recorded() {
                let _ = writeln!(
                    hist,
                    "{source},{},{},{op},{},{}",
                    m.mode,
                    out.matrix.regions()[*region],
                    h.highest_equivalent(v.value_iterated_to()),
                    v.count_at_value()
                );
            }
        }
    }
    write("summary.csv", &csv)?;
    write("histograms.csv", &hist)?;
    let md = markdown(out);
    write("summary.md", &md)?;
    Ok(md)
}

/// The Markdown summary: the run, the calibration, one table per mode, the
/// modes side by side, the simulator beside the measurement, the targets.
pub fn markdown(out: &RunOutput<'_>) -> String {
    let c = out.config;
    let mut s = format!(
        "# geo-bench: {} regions, {} ({}% conflicts), --wan {}\n\n\
         writes/reads/rmws {}/{}/{} %, {} clients per region, {} s measured after {} s warm-up, \
         {} keys per client, {}-byte values, fan-out {}, seed {}, durability {}\n\n",
        c.regions.len(),
        c.workload.name,
        c.workload.conflict_pct,
        c.wan,
        c.workload.write_pct,
        c.workload.read_pct,
        c.workload.rmw_pct,
        c.clients_sweep
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(","),
        c.duration_s,
        c.warmup_s,
        c.keys,
        c.workload.value_size,
        c.fanout,
        c.seed,
        c.durability
    );
    if let Some(cal) = out.calibration {
        let _ = write!(s, "## Calibration\n\n```\n{}```\n\n", cal.table());
    }
    let mut all_rows: Vec<StatRow> = Vec::new();
    for m in out.measured {
        let rows = m.rows(out.matrix);
        let _ = write!(
            s,
            "## {} ({})\n\n{} ops, {:.0} ops/s, {} errors{}\n\n{}\n",
            m.mode,
            source_name(out),
            m.ops(),
            m.ops() as f64 / m.measured_s.max(1e-9),
            m.errors,
            m.first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default(),
            table(&rows)
        );
        if !m.cpu_s.is_empty() {
            let total: f64 = m.cpu_s.values().sum();
            let _ = writeln!(
                s,
                "CPU seconds over the load (warm-up included; 2 cores shared with anything else on the machine): {} = {:.1} s in all\n",
                m.cpu_s
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                total
            );
        }
        all_rows.extend(rows);
    }
    if out.measured.len() > 1 {
        let _ = write!(
            s,
            "## Modes side by side (p50 / p99 / p99.9 ms)\n\n{}\n",
            side_by_side(out.measured, out.matrix)
        );
    }
    if c.clients_sweep.len() > 1 {
        let _ = write!(
            s,
            "## Throughput and latency per client count (normalised rows, ms)\n\n{}\n",
            sweep_table(out.measured, out.matrix)
        );
    }
    if !out.sim.is_empty() {
        let _ = write!(
            s,
            "## Simulator beside the measurement (p50 ms)\n\n{}\n",
            sim_beside(out.measured, out.sim, out.matrix)
        );
    }
    let misses = target_misses(&all_rows);
    let _ = writeln!(
        s,
        "## Targets (Gryff: read p50 <= 1.05 x floor + 2 ms, p99 <= 1.2 x floor + 5 ms; write p50 <= 1.05 x 2-round floor + 3 ms)\n"
    );
    if misses.is_empty() {
        s.push_str("all met\n");
    } else {
        for m in misses {
            let _ = writeln!(s, "- MISSED: {m}");
        }
    }
    s
}

/// One table: percentiles, the floor, and each percentile's ratio to it.
pub fn table(rows: &[StatRow]) -> String {
    let mut s = String::from(
        "| region | op | count | p50 | p90 | p99 | p99.9 | floor | p50/f | p90/f | p99/f | p99.9/f |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.region,
            r.op,
            r.count,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.floor_ms,
            r.p50_ratio,
            r.p90_ratio,
            r.p99_ratio,
            r.p999_ratio
        );
    }
    s
}

fn sweep_table(runs: &[ModeResults], matrix: &RegionMatrix) -> String {
    let mut s = String::from(
        "| run | ops/s | get p50 | get p99 | put p50 | put p99 |\n|---|---|---|---|---|---|\n",
    );
    for m in runs {
        let rows = m.rows(matrix);
        let cell = |op: &str, p99: bool| {
            rows.iter()
                .find(|r| r.region == "normalised" && r.op == op)
                .map_or("-".to_string(), |r| {
                    format!("{:.1}", if p99 { r.p99_ms } else { r.p50_ms })
                })
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} | {} | {} |",
            m.mode,
            m.ops() as f64 / m.measured_s.max(1e-9),
            cell("get", false),
            cell("get", true),
            cell("put", false),
            cell("put", true)
        );
    }
    s
}

fn side_by_side(modes: &[ModeResults], matrix: &RegionMatrix) -> String {
    let rows: Vec<Vec<StatRow>> = modes.iter().map(|m| m.rows(matrix)).collect();
    let mut s = String::from("| region | op | floor |");
    for m in modes {
        let _ = write!(s, " {} |", m.mode);
    }
    s.push_str("\n|---|---|---|");
    for _ in modes {
        s.push_str("---|");
    }
    s.push('\n');
    for r in &rows[0] {
        let _ = write!(s, "| {} | {} | {:.0} |", r.region, r.op, r.floor_ms);
        for mode_rows in &rows {
            match mode_rows
                .iter()
                .find(|x| x.region == r.region && x.op == r.op)
            {
                Some(x) => {
                    let _ = write!(s, " {:.0} / {:.0} / {:.0} |", x.p50_ms, x.p99_ms, x.p999_ms);
                }
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    s
}

fn sim_beside(measured: &[ModeResults], sim: &[ModeResults], matrix: &RegionMatrix) -> String {
    let mut s = String::from(
        "| mode | region | op | floor | measured p50 | sim p50 | diff | measured p99 | sim p99 |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let Some(sm) = sim.iter().find(|x| x.mode == m.mode) else {
            continue;
        };
        let srows = sm.rows(matrix);
        for r in m.rows(matrix) {
            if let Some(x) = srows.iter().find(|x| x.region == r.region && x.op == r.op) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:+.1}% | {:.1} | {:.1} |",
                    r.mode,
                    r.region,
                    r.op,
                    r.floor_ms,
                    r.p50_ms,
                    x.p50_ms,
                    (r.p50_ms / x.p50_ms - 1.0) * 100.0,
                    r.p99_ms,
                    x.p99_ms
                );
            }
        }
    }
    s
}
