//! Closed-loop load through the client SDK (EVALUATION.md, "Workloads"):
//! each client has one operation outstanding at a time, draws gets, puts
//! and RMWs from a mix, and aims a share of them (the conflict
//! percentage) at one shared hot key. Latencies go into HdrHistograms per
//! operation type. Used by `kv-server dev` and `kv-bench`.

use client_sdk::{Client, RmwOp};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::time::{Duration, Instant};

/// An operation mix, in percent, and the hot-key share.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    pub name: &'static str,
    pub write_pct: f64,
    pub read_pct: f64,
    pub rmw_pct: f64,
    pub conflict_pct: f64,
    /// Bytes per written value (8, as in the paper: values are integers).
    pub value_size: usize,
}

impl Mix {
    /// lat-a of the paper: 49.5 % writes, 49.5 % reads, 1 % RMWs, 25 %
    /// of operations on the hot key.
    pub fn lat_a() -> Mix {
        Mix {
            name: "lat-a",
            write_pct: 49.5,
            read_pct: 49.5,
            rmw_pct: 1.0,
            conflict_pct: 25.0,
            value_size: 8,
        }
    }
}

/// The operation types reported apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Put,
    Rmw,
}

pub const KINDS: [OpKind; 3] = [OpKind::Get, OpKind::Put, OpKind::Rmw];

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Rmw => "rmw",
        }
    }
}

/// Latencies (µs) per operation type, and the failures.
#[derive(Clone)]
pub struct LoadReport {
    pub hist: [Histogram<u64>; 3],
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl LoadReport {
    fn new() -> LoadReport {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
        LoadReport {
            hist: [h(), h(), h()],
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
        }
    }

    pub fn of(&self, kind: OpKind) -> &Histogram<u64> {
        &self.hist[kind as usize]
    }

    /// Completed operations of every type.
    pub fn ops(&self) -> u64 {
        self.hist.iter().map(Histogram::len).sum()
    }

    /// Every operation's latency in one histogram.
    pub fn all(&self) -> Histogram<u64> {
        let mut all = self.hist[0].clone();
        for h in &self.hist[1..] {
            let _ = all.add(h);
        }
        all
    }

    pub fn merge(&mut self, other: &LoadReport) {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            let _ = a.add(b);
        }
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error.clone();
        }
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    /// `get n=.. p50=..ms p99=..ms | put .. | rmw ..`
    pub fn line(&self) -> String {
        KINDS
            .iter()
            .map(|k| {
                let h = self.of(*k);
                format!(
                    "{} n={} p50={:.2}ms p99={:.2}ms",
                    k.name(),
                    h.len(),
                    h.value_at_quantile(0.5) as f64 / 1000.0,
                    h.value_at_quantile(0.99) as f64 / 1000.0
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// A store the load can run against: this one through the SDK, or etcd
/// (in `kv-bench`).
pub trait Target: Send + Sync + 'static {
    fn get(&self, key: String) -> impl Future<Output = Result<(), String>> + Send;
    fn put(&self, key: String, value: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
    /// A read-modify-write (fetch-and-add of `delta`).
    fn rmw(&self, key: String, delta: i64) -> impl Future<Output = Result<(), String>> + Send;
}

impl Target for Client {
    async fn get(&self, key: String) -> Result<(), String> {
        Client::get(self, key)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn put(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        Client::put(self, key, value)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn rmw(&self, key: String, delta: i64) -> Result<(), String> {
        Client::rmw(self, key, RmwOp::FetchAdd { delta })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Runs `clients` closed-loop for `duration`; client `i` uses keys of its
/// own (`{prefix}c{i}-{n}`) and the shared hot key.
pub async fn closed_loop<T: Target>(
    clients: Vec<T>,
    mix: &Mix,
    duration: Duration,
    seed: u64,
    prefix: &str,
) -> LoadReport {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let mix = mix.clone();
        let prefix = format!("{prefix}c{i}-");
        let seed = seed.wrapping_add(i as u64);
        tasks.push(tokio::spawn(async move {
            one_client(client, mix, deadline, seed, prefix).await
        }));
    }
    let mut report = LoadReport::new();
    for t in tasks {
        match t.await {
            Ok(r) => report.merge(&r),
            Err(e) => {
                report.errors += 1;
                report.first_error.get_or_insert(e.to_string());
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// Keys per client, reused so that reads find values.
const KEYS_PER_CLIENT: u64 = 64;

async fn one_client<T: Target>(
    client: T,
    mix: Mix,
    deadline: Instant,
    seed: u64,
    prefix: String,
) -> LoadReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = LoadReport::new();
    while Instant::now() < deadline {
        let key = if rng.random::<f64>() * 100.0 < mix.conflict_pct {
            "hot".to_string()
        } else {
            format!("{prefix}{}", rng.random_range(0..KEYS_PER_CLIENT))
        };
        let pick = rng.random::<f64>() * 100.0;
        let started = Instant::now();
        let (kind, result) = if pick < mix.write_pct {
            let mut value = vec![0u8; mix.value_size.max(1)];
            rng.fill(&mut value[..]);
            (OpKind::Put, client.put(key, value).await)
        } else if pick < mix.write_pct + mix.read_pct {
            (OpKind::Get, client.get(key).await)
        } else {
            let delta = rng.random_range(1..=5);
            (OpKind::Rmw, client.rmw(key, delta).await)
        };
        let micros = started.elapsed().as_micros() as u64;
        match result {
            Ok(()) => {
                let _ = report.hist[kind as usize].record(micros.max(1));
            }
            Err(e) => {
                report.errors += 1;
                report.first_error.get_or_insert(e);
            }
        }
    }
    report
}
