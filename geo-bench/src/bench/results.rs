//! Latency results of one mode: an HdrHistogram (µs) per region and
//! operation type, percentiles beside the region's floor, and the
//! region-normalised set (every region weighted equally).

use crate::RegionMatrix;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Operation types reported apart; `request` is a fanned-out request of
/// the tail workload (its latency = the slowest of its sub-operations).
pub const KINDS: [&str; 4] = ["get", "put", "rmw", "request"];

/// Percentiles reported, in percent.
pub const PERCENTILES: [f64; 4] = [50.0, 90.0, 99.0, 99.9];

/// Round trips to the nearest majority an operation needs at least: a
/// Gryff write is two rounds (read the carstamps, then write), everything
/// else one.
pub fn floor_rounds(kind: &str) -> f64 {
    if kind == "put" { 2.0 } else { 1.0 }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Histograms of one mode's run.
#[derive(Clone, Debug)]
pub struct ModeResults {
    pub mode: String,
    /// (region index, op kind) -> latencies in µs.
    pub hists: BTreeMap<(usize, &'static str), Histogram<u64>>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Seconds measured (after the warm-up).
    pub measured_s: f64,
    /// CPU seconds over the whole load (warm-up included) per process:
    /// `r<i>` for each replica, `geo-bench` for the clients and the
    /// delayer. Empty for simulated runs.
    pub cpu_s: BTreeMap<String, f64>,
}

impl ModeResults {
    pub fn new(mode: &str) -> ModeResults {
        ModeResults {
            mode: mode.to_string(),
            hists: BTreeMap::new(),
            errors: 0,
            first_error: None,
            measured_s: 0.0,
            cpu_s: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, region: usize, kind: &'static str, micros: u64) {
        let h = self
            .hists
            .entry((region, kind))
            .or_insert_with(new_histogram);
        h.saturating_record(micros.max(1));
    }

    pub fn merge(&mut self, other: &ModeResults) {
        for (k, h) in &other.hists {
            let mine = self.hists.entry(*k).or_insert_with(new_histogram);
            let _ = mine.add(h);
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error.clone();
        }
        self.measured_s = self.measured_s.max(other.measured_s);
    }

    /// Operations measured (sub-operations of fanned-out requests count
    /// one each; the requests themselves are not counted again).
    pub fn ops(&self) -> u64 {
        self.hists
            .iter()
            .filter(|((_, k), _)| *k != "request")
            .map(|(_, h)| h.len())
            .sum()
    }

    /// One row per (region, kind), then the region-normalised row per kind.
    pub fn rows(&self, matrix: &RegionMatrix) -> Vec<StatRow> {
        let mut rows = Vec::new();
        for ((region, kind), h) in &self.hists {
            if h.is_empty() {
                continue;
            }
            let floor = matrix.floor_ms(*region) * floor_rounds(kind);
            let p: Vec<f64> = PERCENTILES
                .iter()
                .map(|q| h.value_at_quantile(q / 100.0) as f64 / 1000.0)
                .collect();
            rows.push(StatRow::new(
                &self.mode,
                &matrix.regions()[*region],
                kind,
                h.len(),
                p,
                h.mean() / 1000.0,
                floor,
            ));
        }
        for kind in KINDS {
            let per_region: Vec<(usize, &Histogram<u64>)> = self
                .hists
                .iter()
                .filter(|((_, k), h)| *k == kind && !h.is_empty())
                .map(|((r, _), h)| (*r, h))
                .collect();
            if per_region.is_empty() {
                continue;
            }
            let floor = per_region
                .iter()
                .map(|(r, _)| matrix.floor_ms(*r) * floor_rounds(kind))
                .sum::<f64>()
                / per_region.len() as f64;
            let hs: Vec<&Histogram<u64>> = per_region.iter().map(|(_, h)| *h).collect();
            let p: Vec<f64> = PERCENTILES
                .iter()
                .map(|q| normalised_quantile(&hs, q / 100.0) / 1000.0)
                .collect();
            let mean = hs.iter().map(|h| h.mean()).sum::<f64>() / hs.len() as f64 / 1000.0;
            let count = hs.iter().map(|h| h.len()).sum();
            rows.push(StatRow::new(
                &self.mode,
                "normalised",
                kind,
                count,
                p,
                mean,
                floor,
            ));
        }
        rows
    }
}

/// The quantile `q` of the union of `hists` with each histogram weighted
/// by 1/len (an equal sample from each region).
pub fn normalised_quantile(hists: &[&Histogram<u64>], q: f64) -> f64 {
    let mut points: Vec<(u64, f64)> = Vec::new();
    for h in hists {
        let w = 1.0 / h.len() as f64;
        for v in h.iter_recorded() {
            points.push((
                h.highest_equivalent(v.value_iterated_to()),
                v.count_at_value() as f64 * w,
            ));
        }
    }
    if points.is_empty() {
        return f64::NAN;
    }
    points.sort_by_key(|p| p.0);
    let total: f64 = points.iter().map(|p| p.1).sum();
    let target = q * total;
    let mut acc = 0.0;
    for (v, w) in &points {
        acc += w;
        if acc >= target - 1e-9 {
            return *v as f64;
        }
    }
    points.last().map_or(f64::NAN, |p| p.0 as f64)
}

/// One line of the summary: percentiles in ms, the floor, and the ratio of
/// each percentile to it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StatRow {
    pub mode: String,
    /// A region code, or `normalised`.
    pub region: String,
    pub op: String,
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub mean_ms: f64,
    pub floor_ms: f64,
    pub p50_ratio: f64,
    pub p90_ratio: f64,
    pub p99_ratio: f64,
    pub p999_ratio: f64,
}

impl StatRow {
    fn new(
        mode: &str,
        region: &str,
        op: &str,
        count: u64,
        p: Vec<f64>,
        mean_ms: f64,
        floor_ms: f64,
    ) -> StatRow {
        let ratio = |x: f64| {
            if floor_ms > 0.0 {
                x / floor_ms
            } else {
                f64::NAN
            }
        };
        StatRow {
            mode: mode.to_string(),
            region: region.to_string(),
            op: op.to_string(),
            count,
            p50_ms: p[0],
            p90_ms: p[1],
            p99_ms: p[2],
            p999_ms: p[3],
            mean_ms,
            floor_ms,
            p50_ratio: ratio(p[0]),
            p90_ratio: ratio(p[1]),
            p99_ratio: ratio(p[2]),
            p999_ratio: ratio(p[3]),
        }
    }
}

/// The targets for Gryff under lat-b: read p50 within
/// 1.05 x floor plus 2 ms, read p99 within 1.2 x floor plus 5 ms, write p50
/// within 1.05 x the two-round floor plus 3 ms. Returns one line per miss (empty = all met).
pub fn target_misses(rows: &[StatRow]) -> Vec<String> {
    let mut misses = Vec::new();
    for r in rows
        .iter()
        // A zero floor (no WAN, the tput runs) has no latency target.
        .filter(|r| r.mode.starts_with("gryff") && r.region != "normalised" && r.floor_ms > 0.0)
    {
        let mut check = |what: &str, got: f64, bound: f64| {
            if got > bound {
                misses.push(format!(
                    "{} {} {} {what} {got:.1} ms > {bound:.1} ms",
                    r.mode, r.region, r.op
                ));
            }
        };
        match r.op.as_str() {
            "get" => {
                check("p50", r.p50_ms, 1.05 * r.floor_ms + 2.0);
                check("p99", r.p99_ms, 1.2 * r.floor_ms + 5.0);
            }
            "put" => check("p50", r.p50_ms, 1.05 * r.floor_ms + 3.0),
            _ => {}
        }
    }
    misses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_floors_ratios_and_the_normalised_set() {
        let m = RegionMatrix::paper(3).unwrap();
        let mut r = ModeResults::new("gryff-epaxos");
        for _ in 0..100 {
            r.record(0, "get", 72_000);
            r.record(2, "get", 88_000);
        }
        for _ in 0..900 {
            r.record(2, "get", 88_000);
        }
        r.record(0, "put", 144_000);
        r.record(0, "request", 150_000);
        assert_eq!(r.ops(), 1101);
        let rows = r.rows(&m);
        let ca = rows
            .iter()
            .find(|x| x.region == "CA" && x.op == "get")
            .unwrap();
        assert!((ca.p50_ms - 72.0).abs() < 0.1 && (ca.p50_ratio - 1.0).abs() < 0.01);
        let put = rows.iter().find(|x| x.op == "put").unwrap();
        assert_eq!(put.floor_ms, 144.0);
        // IR has 10x the samples, yet the normalised median weighs CA equally:
        // half the weight at 72, half at 88 -> the median is CA's 72.
        let n = rows
            .iter()
            .find(|x| x.region == "normalised" && x.op == "get")
            .unwrap();
        assert!((n.p50_ms - 72.0).abs() < 0.1, "{n:?}");
        assert!((n.p90_ms - 88.0).abs() < 0.1, "{n:?}");
        assert_eq!(n.floor_ms, 80.0);
        assert!(target_misses(&rows).is_empty());
        let mut slow = ModeResults::new("gryff-epaxos");
        slow.record(0, "get", 100_000);
        assert_eq!(target_misses(&slow.rows(&m)).len(), 2);
    }
}
