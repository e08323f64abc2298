//! Tests of the simulator itself, driving a toy primary-copy protocol whose
//! latencies and durability are easy to predict.

use super::*;
use crate::matrix::RegionMatrix;
use crate::workload::Workload;
use registers::{
    Carstamp, ClientReply, ClientRequest, Effect, Key, OpId, Register, RegisterStore, ReplicaId,
    Time, WriterId,
};

/// Every request is forwarded to replica 0, which applies it, persists it
/// and replies. Linearizable because replica 0 replies only after the
/// record is durable, and restarts from its records.
struct Primary {
    id: ReplicaId,
    store: RegisterStore,
    ts: u64,
}

#[derive(Clone, Debug)]
enum ToyMsg {
    Forward(OpId, ClientRequest),
}

impl Primary {
    fn serve(&mut self, op: OpId, req: ClientRequest, out: &mut Vec<SimEffect<Self>>) {
        let reply = match req {
            ClientRequest::Get { key } => {
                let r = self.store.get(&key);
                ClientReply::Get {
                    value: r.value,
                    cs: r.cs,
                }
            }
            ClientRequest::Put { key, value } => {
                self.ts += 1;
                let cs = Carstamp {
                    ts: self.ts,
                    writer: WriterId(1),
                    rmwc: 0,
                };
                let reg = Register::new(value, cs);
                self.store.apply(&key, &reg);
                out.push(Effect::Persist((key, reg)));
                ClientReply::Put { cs }
            }
            ClientRequest::Rmw { key, op: rmw } => {
                let cur = self.store.get(&key);
                let outcome = rmw.apply(cur.value.as_ref());
                let cs = cur.cs.rmw_successor();
                let reg = Register::new(outcome.new.clone(), cs);
                self.store.apply(&key, &reg);
                out.push(Effect::Persist((key, reg)));
                ClientReply::Rmw { outcome, cs }
            }
        };
        out.push(Effect::Reply { op, reply });
    }
}

impl SimProtocol for Primary {
    type Msg = ToyMsg;
    type Record = (Key, Register);
    type Timer = ();
    type Config = ();

    fn start(setup: &NodeSetup<()>, _now: Time, _out: &mut Vec<SimEffect<Self>>) -> Self {
        Primary {
            id: setup.id,
            store: RegisterStore::new(),
            ts: 0,
        }
    }

    fn restart(
        setup: &NodeSetup<()>,
        now: Time,
        records: &[(Key, Register)],
        out: &mut Vec<SimEffect<Self>>,
    ) -> Self {
        let mut p = Self::start(setup, now, out);
        for (k, r) in records {
            p.store.apply(k, r);
            p.ts = p.ts.max(r.cs.ts);
        }
        p
    }

    fn on_client(
        &mut self,
        _now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<SimEffect<Self>>,
    ) {
        if self.id == ReplicaId(0) {
            self.serve(op, req, out);
        } else {
            out.push(Effect::Send {
                to: ReplicaId(0),
                msg: ToyMsg::Forward(op, req),
            });
        }
    }

    fn on_message(
        &mut self,
        _now: Time,
        _from: ReplicaId,
        msg: ToyMsg,
        out: &mut Vec<SimEffect<Self>>,
    ) {
        let ToyMsg::Forward(op, req) = msg;
        if self.id == ReplicaId(0) {
            self.serve(op, req, out);
        }
    }

    fn on_timer(&mut self, _now: Time, _timer: (), _out: &mut Vec<SimEffect<Self>>) {}

    fn snapshot(&self) -> ReplicaSnapshot {
        ReplicaSnapshot {
            registers: self
                .store
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
            rmw_executions: Default::default(),
        }
    }
}

fn short(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::figures(seed, Workload::named("lat-a", None).unwrap());
    cfg.clients_per_region = 2;
    cfg.duration_ms = 3_000;
    cfg.warmup_ms = 0;
    cfg.fsync_us = 1_000;
    cfg
}

#[test]
fn latency_is_the_round_trip_to_the_primary_plus_one_fsync() {
    let m = RegionMatrix::paper(3).unwrap();
    let out = Simulation::<Primary>::new(short(1), m.clone(), ()).run();
    assert!(out.live);
    let lat = report::latencies_by_region(&out.history, 0, out.measure_end_us);
    // CA is the primary: only the fsync. VA and IR: their RTT to CA plus it.
    for (region, expect_ms) in [(0, 1.0), (1, 73.0), (2, 152.0)] {
        for kind in ["get", "put"] {
            let l = &lat[&(region, kind)];
            assert!(l.len() > 5, "too few samples for {region} {kind}");
            // Gets persist nothing, so they skip the fsync.
            let want: f64 = if kind == "get" {
                expect_ms - 1.0
            } else {
                expect_ms
            };
            assert_eq!(l.percentile_ms(50.0), Some(want), "region {region} {kind}");
        }
    }
}

#[test]
fn same_seed_same_run_and_different_seed_differs() {
    let m = RegionMatrix::paper(3).unwrap();
    let mut cfg = short(9);
    cfg.jitter_ms = 5.0;
    cfg.faults.loss_pct = 1.0;
    let a = Simulation::<Primary>::new(cfg.clone(), m.clone(), ()).run();
    let b = Simulation::<Primary>::new(cfg.clone(), m.clone(), ()).run();
    assert_eq!(a.history, b.history);
    assert_eq!(a.events, b.events);
    cfg.seed = 10;
    let c = Simulation::<Primary>::new(cfg, m, ()).run();
    assert_ne!(a.history, c.history);
}

#[test]
fn a_crash_loses_only_what_was_not_durable_and_clients_fail_over() {
    let m = RegionMatrix::paper(3).unwrap();
    let mut cfg = short(3);
    cfg.faults = Faults {
        crashes: true,
        mean_fault_interval_ms: 500,
        max_fault_ms: 800,
        ..Faults::none()
    };
    cfg.client_timeout_ms = 400;
    cfg.final_reads = true;
    let out = Simulation::<Primary>::new(cfg, m, ()).run();
    assert!(out.crashes > 0, "no crash was injected");
    let open: Vec<_> = out
        .history
        .iter()
        .filter(|o| o.return_us.is_none())
        .map(|o| (o.call_us, o.op, o.attempts, o.kind()))
        .collect();
    assert!(
        out.live,
        "clients did not finish after the primary came back: end {} measure_end {} events {} open {:?}",
        out.end_us, out.measure_end_us, out.events, open
    );
    // Every acknowledged put is still visible to the final reads, which
    // come last: the final read of a key returns the last acknowledged put's
    // value or a later (possibly unacknowledged) one, never an older one.
    let final_from = out.measure_end_us;
    for op in out.history.iter().filter(|o| o.call_us >= final_from) {
        let ClientRequest::Get { key } = &op.request else {
            continue;
        };
        let Some(ClientReply::Get { cs, .. }) = &op.reply else {
            continue;
        };
        let acked = out
            .history
            .iter()
            .filter(|o| o.request.key() == key && o.call_us < final_from)
            .filter_map(|o| match &o.reply {
                Some(ClientReply::Put { cs }) | Some(ClientReply::Rmw { cs, .. }) => Some(*cs),
                _ => None,
            })
            .max();
        if let Some(acked) = acked {
            assert!(
                *cs >= acked,
                "key {key:?}: final read {cs:?} older than acknowledged {acked:?}"
            );
        }
    }
    assert!(
        out.history.iter().any(|o| o.attempts > 1),
        "no client ever failed over"
    );
}
