//! Latency figures of a simulated run: percentiles per region and op type,
//! beside the region's floor (EVALUATION.md, "The floor").

use super::history::HistoryOp;
use crate::matrix::RegionMatrix;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Exact percentiles (nearest rank) of a set of latencies in µs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    sorted_us: Vec<u64>,
}

impl Latencies {
    pub fn new(mut samples_us: Vec<u64>) -> Latencies {
        samples_us.sort_unstable();
        Latencies {
            sorted_us: samples_us,
        }
    }

    pub fn len(&self) -> usize {
        self.sorted_us.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_us.is_empty()
    }

    /// The `p`-th percentile in milliseconds (nearest rank), `None` if empty.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.sorted_us.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.sorted_us.len() as f64).ceil() as usize;
        let idx = rank.clamp(1, self.sorted_us.len()) - 1;
        Some(self.sorted_us[idx] as f64 / 1000.0)
    }
}

/// Latencies of completed operations per (region, op kind), counting only
/// operations issued in `[from_us, to_us)`.
pub fn latencies_by_region(
    history: &[HistoryOp],
    from_us: u64,
    to_us: u64,
) -> BTreeMap<(usize, &'static str), Latencies> {
    let mut samples: BTreeMap<(usize, &'static str), Vec<u64>> = BTreeMap::new();
    for op in history {
        if op.call_us < from_us || op.call_us >= to_us {
            continue;
        }
        if let Some(l) = op.latency_us() {
            samples.entry((op.region, op.kind())).or_default().push(l);
        }
    }
    samples
        .into_iter()
        .map(|(k, v)| (k, Latencies::new(v)))
        .collect()
}

/// A Markdown table: region, op, count, p50, p99, p99.9, floor and
/// p50/floor. Writes count against the two-round floor, everything else
/// the one-round one.
pub fn markdown_table(
    matrix: &RegionMatrix,
    lat: &BTreeMap<(usize, &'static str), Latencies>,
) -> String {
    let mut s = String::from(
        "| region | op | count | p50 ms | p99 ms | p99.9 ms | floor ms | p50 / floor |\n|---|---|---|---|---|---|---|---|\n",
    );
    for ((region, kind), l) in lat {
        let rounds = if *kind == "put" { 2.0 } else { 1.0 };
        let floor = matrix.floor_ms(*region) * rounds;
        let p = |q: f64| l.percentile_ms(q).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.3} |",
            matrix.regions()[*region],
            kind,
            l.len(),
            p(50.0),
            p(99.0),
            p(99.9),
            floor,
            p(50.0) / floor
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies::new((1..=100).map(|x| x * 1000).rev().collect());
        assert_eq!(l.percentile_ms(50.0), Some(50.0));
        assert_eq!(l.percentile_ms(99.0), Some(99.0));
        assert_eq!(l.percentile_ms(100.0), Some(100.0));
        assert_eq!(l.percentile_ms(0.0), Some(1.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }
}
