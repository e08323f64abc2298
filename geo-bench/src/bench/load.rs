//! Closed-loop clients (EVALUATION.md, "Workloads"): each has one request
//! outstanding, talks only to its own region's replica through the SDK
//! `Client`, draws requests from the same generator as the simulator
//! ([`crate::Workload::next_request`]) and records each latency in µs;
//! requests started in the warm-up are left out. With a fan-out of N, a
//! request is N sub-operations issued at once and its latency (kind
//! `request`) is the slowest one's.
//!
//! [`run_blocking`] builds its own tokio runtime on the calling thread, so
//! run it on a thread inside the emulated network ([`crate::wan::Emulation::spawn`]):
//! every socket the runtime makes then lives there.

use super::results::ModeResults;
use crate::Workload;
use anyhow::{Context, bail};
use client_sdk::proto::PingRequest;
use client_sdk::proto::kv_client::KvClient;
use client_sdk::{Client, ClientConfig};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use registers::{ClientRequest, Key};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the clients of one run do.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// `http://addr` of each region's replica, in region order.
    pub endpoints: Vec<String>,
    pub workload: Workload,
    pub keys: u64,
    pub clients_per_region: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    pub fanout: usize,
    /// Longest wait for every replica to answer Ping.
    pub ready_timeout: Duration,
    pub mode: String,
}

/// Runs the plan to the end (bounded by warm-up + duration + the call
/// timeout) and returns the histograms.
pub fn run_blocking(plan: LoadPlan, progress: ProgressBar) -> anyhow::Result<ModeResults> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot build the clients' tokio runtime")?;
    rt.block_on(run(plan, progress))
}

async fn run(plan: LoadPlan, progress: ProgressBar) -> anyhow::Result<ModeResults> {
    for (r, e) in plan.endpoints.iter().enumerate() {
        wait_ready(e, plan.ready_timeout)
            .await
            .with_context(|| format!("replica of region {r}"))?;
    }
    let config = ClientConfig {
        call_timeout: Duration::from_secs(10),
        attempt_timeout: Duration::from_secs(5),
        rtt_probes: 1,
        ..ClientConfig::default()
    };
    let mut clients = Vec::new();
    for (region, endpoint) in plan.endpoints.iter().enumerate() {
        for i in 0..plan.clients_per_region {
            let c = Client::connect(std::slice::from_ref(endpoint), config.clone())
                .await
                .with_context(|| format!("client {i} of region {region}"))?;
            clients.push((region, i, c));
        }
    }
    let start = tokio::time::Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let ops = Arc::new(AtomicU64::new(0));
    let total_ms = (plan.warmup + plan.duration).as_millis() as u64;
    progress.set_length(total_ms);
    let ticker = {
        let (ops, progress) = (Arc::clone(&ops), progress.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let t = start.elapsed().as_millis() as u64;
                progress.set_position(t.min(total_ms));
                progress.set_message(format!("{} ops", ops.load(Ordering::Relaxed)));
                if t >= total_ms {
                    break;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for (region, i, client) in clients {
        let plan = plan.clone();
        let ops = Arc::clone(&ops);
        tasks.push(tokio::spawn(async move {
            one_client(client, region, i, plan, measure_from, end, ops).await
        }));
    }
    let mut results = ModeResults::new(&plan.mode);
    for t in tasks {
        match t.await {
            Ok(r) => results.merge(&r),
            Err(e) => bail!("a client task failed: {e}"),
        }
    }
    ticker.abort();
    results.measured_s = plan.duration.as_secs_f64();
    Ok(results)
}

async fn one_client(
    client: Client,
    region: usize,
    index: usize,
    plan: LoadPlan,
    measure_from: tokio::time::Instant,
    end: tokio::time::Instant,
    ops: Arc<AtomicU64>,
) -> ModeResults {
    let mut rng = ChaCha8Rng::seed_from_u64(
        plan.seed ^ ((region as u64) << 40) ^ ((index as u64) << 20) ^ 0x9e37_79b9,
    );
    let mut res = ModeResults::new(&plan.mode);
    let prefix = format!("r{region}-c{index}-");
    while tokio::time::Instant::now() < end {
        let reqs: Vec<ClientRequest> = (0..plan.fanout)
            .map(|_| {
                let k = rand::Rng::random_range(&mut rng, 0..plan.keys);
                let fresh = || Key(format!("{prefix}{k}").into_bytes());
                plan.workload.next_request(&mut rng, fresh)
            })
            .collect();
        let started = tokio::time::Instant::now();
        let measured = started >= measure_from;
        let outcomes =
            futures_util::future::join_all(reqs.into_iter().map(|r| execute(&client, r))).await;
        let whole = started.elapsed();
        for (kind, outcome) in outcomes {
            match outcome {
                Ok(d) if measured => res.record(region, kind, d.as_micros() as u64),
                Ok(_) => {}
                Err(e) => {
                    res.errors += 1;
                    res.first_error.get_or_insert(e);
                }
            }
        }
        ops.fetch_add(plan.fanout as u64, Ordering::Relaxed);
        if measured && plan.fanout > 1 {
            res.record(region, "request", whole.as_micros() as u64);
        }
    }
    res
}

/// Carries out one request; its kind and latency, or the error.
async fn execute(client: &Client, req: ClientRequest) -> (&'static str, Result<Duration, String>) {
    let started = Instant::now();
    let (kind, r) = match req {
        ClientRequest::Get { key } => ("get", client.get(&key.0).await.map(|_| ())),
        ClientRequest::Put {
            key,
            value: Some(v),
        } => ("put", client.put(&key.0, &v.0).await.map(|_| ())),
        ClientRequest::Put { key, value: None } => ("put", client.delete(&key.0).await.map(|_| ())),
        ClientRequest::Rmw { key, op } => ("rmw", client.rmw(&key.0, op).await.map(|_| ())),
    };
    (
        kind,
        r.map(|()| started.elapsed())
            .map_err(|e| format!("{kind}: {e}")),
    )
}

/// Waits (bounded) until `endpoint` answers Ping.
pub async fn wait_ready(endpoint: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = async {
            let mut kv = KvClient::connect(endpoint.to_string()).await.ok()?;
            kv.ping(PingRequest {}).await.ok()
        };
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), attempt).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{endpoint} did not answer Ping within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
