//! Concurrent clients that record what they did for the linearizability
//! checker: gets, puts (unique 8-byte values, so they are integers too),
//! deletes, and every RMW kind (CAS against the last value seen,
//! fetch-and-add, put-if-absent) on a few shared keys, plus counters that
//! only fetch-and-add touches (their final value is checked directly).

use client_sdk::{Client, ClientConfig, ClientError, RmwOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use registers::{ClientId, Key, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tests::linearizability::{self, CheckConfig, Input, Output, SharedRecorder, Verdict};

/// Shared keys every client touches.
pub const KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// What all clients of a run share.
#[derive(Clone)]
pub struct Run {
    pub recorder: SharedRecorder,
    pub epoch: Instant,
    pub stop: Arc<AtomicBool>,
    /// Operations that returned successfully.
    pub ok: Arc<AtomicU64>,
    /// Sum of the deltas of fetch-and-adds on the counter that were
    /// acknowledged, and of all that were attempted.
    pub counter_acked: Arc<AtomicU64>,
    pub counter_attempted: Arc<AtomicU64>,
}

impl Run {
    pub fn new() -> Run {
        Run {
            recorder: SharedRecorder::new(),
            epoch: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            ok: Arc::new(AtomicU64::new(0)),
            counter_acked: Arc::new(AtomicU64::new(0)),
            counter_attempted: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Starts `n` clients, client i preferring replica `i % endpoints`
    /// (it fails over to the others).
    pub async fn spawn_clients(
        &self,
        endpoints: &[String],
        n: usize,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for i in 0..n {
            let mut order = endpoints.to_vec();
            order.rotate_left(i % endpoints.len());
            let config = ClientConfig {
                call_timeout: Duration::from_secs(3),
                attempt_timeout: Duration::from_millis(700),
                ..ClientConfig::default()
            };
            let client = Client::connect(&order, config).await.unwrap();
            let run = self.clone();
            tasks.push(tokio::spawn(async move {
                run.client_loop(client, i as u64).await
            }));
        }
        tasks
    }

    async fn client_loop(self, client: Client, index: u64) {
        let mut rng = StdRng::seed_from_u64(index);
        let id = client.client_id();
        let mut last_seen: Option<Vec<u8>> = None;
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let pick = rng.random_range(0..100);
            if pick < 10 {
                self.counter_add(&client, id, rng.random_range(1..=9)).await;
                continue;
            }
            let input = match pick {
                10..=44 => Input::Get,
                45..=74 => {
                    let v = ((index + 1) << 32 | n) as i64;
                    Input::Put(Some(Value::from_i64(v)))
                }
                75..=79 => Input::Put(None),
                80..=87 => Input::Rmw(RmwOp::CompareAndSwap {
                    expected: last_seen.clone().map(Value),
                    new: Some(Value::from_i64(-(((index + 1) << 32 | n) as i64))),
                }),
                88..=94 => Input::Rmw(RmwOp::FetchAdd {
                    delta: rng.random_range(1..=3),
                }),
                _ => Input::Rmw(RmwOp::PutIfAbsent {
                    value: Value::from_i64(((index + 1) << 40 | n) as i64),
                }),
            };
            let h = self
                .recorder
                .invoke(id, Key::from(key), self.now_us(), input.clone());
            let out = match input {
                Input::Get => client.get(key).await.map(|v| {
                    last_seen = v.clone();
                    Output::Get(v.map(Value))
                }),
                Input::Put(Some(v)) => client.put(key, &v.0).await.map(|_| Output::Put),
                Input::Put(None) => client.delete(key).await.map(|_| Output::Put),
                Input::Rmw(op) => client.rmw(key, op).await.map(|r| {
                    last_seen = r.outcome.new.clone().map(|v| v.0);
                    Output::Rmw(r.outcome)
                }),
            };
            match out {
                Ok(output) => {
                    self.recorder.complete(h, self.now_us(), output).unwrap();
                    self.ok.fetch_add(1, Ordering::Relaxed);
                }
                // No return: the operation may or may not have happened.
                Err(
                    ClientError::Timeout { .. }
                    | ClientError::Unavailable { .. }
                    | ClientError::OutcomeUnknown { .. },
                ) => {}
                Err(e) => panic!("unexpected client error: {e}"),
            }
        }
    }

    async fn counter_add(&self, client: &Client, id: ClientId, delta: i64) {
        let input = Input::Rmw(RmwOp::FetchAdd { delta });
        let h = self
            .recorder
            .invoke(id, Key::from("counter"), self.now_us(), input);
        self.counter_attempted
            .fetch_add(delta as u64, Ordering::Relaxed);
        if let Ok(r) = client.rmw("counter", RmwOp::FetchAdd { delta }).await {
            self.recorder
                .complete(h, self.now_us(), Output::Rmw(r.outcome))
                .unwrap();
            self.counter_acked
                .fetch_add(delta as u64, Ordering::Relaxed);
            self.ok.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops the clients and waits for them.
    pub async fn finish(&self, tasks: Vec<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("a client did not stop within 10s")
                .expect("a client panicked");
        }
    }

    /// Reads every key once through `client`, recorded in the history.
    pub async fn read_back(&self, client: &Client) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        for key in KEYS.iter().chain(["counter"].iter()) {
            let h = self.recorder.invoke(
                client.client_id(),
                Key::from(*key),
                self.now_us(),
                Input::Get,
            );
            let v = client.get(key).await.expect("read-back failed");
            self.recorder
                .complete(h, self.now_us(), Output::Get(v.clone().map(Value)))
                .unwrap();
            out.push((key.to_string(), v));
        }
        out
    }

    /// Checks the recorded history; panics with the explanation if not
    /// linearizable.
    pub fn assert_linearizable(&self) {
        let history = self.recorder.snapshot();
        let report = linearizability::check(&history, &CheckConfig::default()).unwrap();
        match &report.verdict {
            Verdict::Linearizable => {}
            Verdict::Violation(v) => panic!(
                "history of {} ops is not linearizable: {v:?}",
                history.len()
            ),
            Verdict::Unknown => panic!("the checker could not decide {} ops", history.len()),
        }
    }

    /// The counter's final value must hold every acknowledged add, and no
    /// more than every attempted one.
    pub fn assert_counter(&self, value: Option<Vec<u8>>) {
        let got = value
            .map(|v| Value(v).to_i64().expect("counter is an integer"))
            .unwrap_or(0) as u64;
        let acked = self.counter_acked.load(Ordering::Relaxed);
        let attempted = self.counter_attempted.load(Ordering::Relaxed);
        assert!(
            acked <= got && got <= attempted,
            "counter {got}: acknowledged adds sum to {acked}, attempted to {attempted}"
        );
    }
}
