//! The deterministic discrete-event simulator: virtual time, one event
//! queue ordered by (time, sequence), one seeded RNG for every choice
//! (ARCHITECTURE.md, "Testing", step 4). It drives replicas through
//! [`SimProtocol`], models their disks (a `Persist` holds back every later
//! send and reply until it is durable; a crash loses what was not), and
//! runs closed-loop clients per region.

use super::config::SimConfig;
use super::history::HistoryOp;
use super::network::Network;
use super::protocol::{NodeSetup, ReplicaSnapshot, SimEffect, SimProtocol};
use crate::matrix::RegionMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use registers::{
    ClientId, ClientReply, ClientRequest, Effect, Key, OpId, ReplicaId, RequestId, Time,
};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// Hard bound on processed events, so a livelocked protocol ends the run
/// instead of hanging it.
const MAX_EVENTS: u64 = 20_000_000;

/// Reader clients per region added for the read-back of every key at the
/// end of a run.
const FINAL_READERS_PER_REGION: usize = 8;

enum Event<P: SimProtocol> {
    Deliver {
        from: usize,
        to: usize,
        msg: P::Msg,
    },
    Request {
        node: usize,
        op: OpId,
        req: ClientRequest,
    },
    Reply {
        client: usize,
        op: OpId,
        reply: ClientReply,
    },
    /// A send or reply that waited for an earlier `Persist` to be durable.
    Deferred {
        node: usize,
        incarnation: u64,
        effect: SimEffect<P>,
    },
    Timer {
        node: usize,
        incarnation: u64,
        timer: P::Timer,
    },
    ClientNext {
        client: usize,
    },
    ClientTimeout {
        client: usize,
        op: OpId,
    },
    Fault,
    Restart {
        node: usize,
    },
    Reconnect {
        node: usize,
    },
    EndOfMeasure,
}

struct Queued<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Queued<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<E> Eq for Queued<E> {}
impl<E> PartialOrd for Queued<E> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Queued<E> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// One replica and its disk.
struct Host<P: SimProtocol> {
    setup: NodeSetup<P::Config>,
    /// `None` while crashed.
    proto: Option<P>,
    /// Bumped at every crash: events of an earlier life are dropped.
    incarnation: u64,
    /// Records with the time they become durable (non-decreasing).
    disk: Vec<(Time, P::Record)>,
    /// When everything persisted so far is durable.
    durable_at: Time,
}

struct Client {
    id: ClientId,
    region: usize,
    next_request: u64,
    next_key: u64,
    /// Index in the history of the operation in flight, and the replica it went to.
    current: Option<(usize, usize)>,
    final_reads: Vec<Key>,
    done: bool,
}

/// What a run produced.
pub struct SimOutcome {
    pub history: Vec<HistoryOp>,
    /// Each replica's state at the end (`None` if it ended crashed).
    pub snapshots: Vec<Option<ReplicaSnapshot>>,
    /// Every client finished everything it had in flight after the faults healed.
    pub live: bool,
    /// Virtual time when the measured phase ended and when the run ended.
    pub measure_end_us: u64,
    pub end_us: u64,
    pub events: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub crashes: u64,
    /// Crashes that hit the replica leading at the time.
    pub leader_crashes: u64,
    pub partitions: u64,
}

/// A simulation of a cluster running protocol `P`.
pub struct Simulation<P: SimProtocol> {
    cfg: SimConfig,
    rng: ChaCha8Rng,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued<Event<P>>>>,
    net: Network,
    hosts: Vec<Host<P>>,
    clients: Vec<Client>,
    history: Vec<HistoryOp>,
    measuring: bool,
    crashes: u64,
    leader_crashes: u64,
    partitions: u64,
}

impl<P: SimProtocol> Simulation<P> {
    pub fn new(cfg: SimConfig, matrix: RegionMatrix, config: P::Config) -> Simulation<P> {
        let n = matrix.len();
        let mut sim = Simulation {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            now: Time(0),
            seq: 0,
            queue: BinaryHeap::new(),
            net: Network::new(matrix.clone(), cfg.jitter_ms, cfg.faults.clone()),
            hosts: Vec::with_capacity(n),
            clients: Vec::new(),
            history: Vec::new(),
            measuring: true,
            crashes: 0,
            leader_crashes: 0,
            partitions: 0,
            cfg,
        };
        for i in 0..n {
            let setup = NodeSetup {
                id: ReplicaId(i as u32),
                n,
                peers_by_distance: matrix
                    .peers_by_distance(i)
                    .into_iter()
                    .map(|p| ReplicaId(p as u32))
                    .collect(),
                config: config.clone(),
            };
            let mut out = Vec::new();
            let proto = P::start(&setup, Time(0), &mut out);
            sim.hosts.push(Host {
                setup,
                proto: Some(proto),
                incarnation: 0,
                disk: Vec::new(),
                durable_at: Time(0),
            });
            sim.apply_effects(i, out);
        }
        for region in 0..n {
            for _ in 0..sim.cfg.clients_per_region {
                let c = sim.add_client(region);
                sim.schedule(Time(0), Event::ClientNext { client: c });
            }
        }
        let end = Time::from_millis(sim.cfg.duration_ms);
        sim.schedule(end, Event::EndOfMeasure);
        if sim.cfg.faults.crashes || sim.cfg.faults.partitions {
            let first = sim.fault_gap();
            sim.schedule(first, Event::Fault);
        }
        sim
    }

    /// Adds an idle client in `region` and returns its index.
    fn add_client(&mut self, region: usize) -> usize {
        self.clients.push(Client {
            id: ClientId(self.clients.len() as u64 + 1),
            region,
            next_request: 1,
            next_key: 0,
            current: None,
            final_reads: Vec::new(),
            done: false,
        });
        self.clients.len() - 1
    }

    /// Runs the measured phase, then the liveness phase, and returns the result.
    pub fn run(mut self) -> SimOutcome {
        let measure_end = Time::from_millis(self.cfg.duration_ms);
        let deadline = measure_end.plus_micros(self.cfg.liveness_timeout_ms * 1000);
        let mut events = 0u64;
        while let Some(Reverse(q)) = self.queue.pop() {
            if q.at > deadline || events >= MAX_EVENTS {
                break;
            }
            self.now = q.at;
            events += 1;
            self.handle(q.event);
            if !self.measuring && self.clients.iter().all(|c| c.done) {
                break;
            }
        }
        SimOutcome {
            live: self.clients.iter().all(|c| c.done),
            snapshots: self
                .hosts
                .iter()
                .map(|h| h.proto.as_ref().map(P::snapshot))
                .collect(),
            history: self.history,
            measure_end_us: measure_end.0,
            end_us: self.now.0,
            events,
            messages_sent: self.net.sent,
            messages_dropped: self.net.dropped,
            crashes: self.crashes,
            leader_crashes: self.leader_crashes,
            partitions: self.partitions,
        }
    }

    fn schedule(&mut self, at: Time, event: Event<P>) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn handle(&mut self, event: Event<P>) {
        let now = self.now;
        match event {
            Event::Deliver { from, to, msg } => {
                let mut out = Vec::new();
                if let Some(p) = self.hosts[to].proto.as_mut() {
                    p.on_message(now, ReplicaId(from as u32), msg, &mut out);
                }
                self.apply_effects(to, out);
            }
            Event::Request { node, op, req } => {
                let mut out = Vec::new();
                if let Some(p) = self.hosts[node].proto.as_mut() {
                    p.on_client(now, op, req, &mut out);
                }
                self.apply_effects(node, out);
            }
            Event::Timer {
                node,
                incarnation,
                timer,
            } => {
                let mut out = Vec::new();
                let host = &mut self.hosts[node];
                if host.incarnation == incarnation
                    && let Some(p) = host.proto.as_mut()
                {
                    p.on_timer(now, timer, &mut out);
                }
                self.apply_effects(node, out);
            }
            Event::Deferred {
                node,
                incarnation,
                effect,
            } => {
                if self.hosts[node].incarnation == incarnation && self.hosts[node].proto.is_some() {
                    self.perform(node, effect);
                }
            }
            Event::Reply { client, op, reply } => self.client_reply(client, op, reply),
            Event::ClientNext { client } => self.client_next(client),
            Event::ClientTimeout { client, op } => self.client_timeout(client, op),
            Event::Fault => self.inject_fault(),
            Event::Restart { node } => self.restart(node),
            Event::Reconnect { node } => self.net.set_isolated(node, false),
            Event::EndOfMeasure => self.end_of_measure(),
        }
    }

    /// Carries out a batch of effects in order. A `Persist` is durable
    /// `fsync_us` after it was issued (all persists of a batch share one
    /// sync); every later send or reply of this replica waits for it.
    fn apply_effects(&mut self, node: usize, out: Vec<SimEffect<P>>) {
        let now = self.now;
        for effect in out {
            let host = &mut self.hosts[node];
            match effect {
                Effect::Persist(record) => {
                    let at = host.durable_at.max(now.plus_micros(self.cfg.fsync_us));
                    host.durable_at = at;
                    host.disk.push((at, record));
                }
                Effect::SetTimer { at, timer } => {
                    let incarnation = host.incarnation;
                    self.schedule(
                        at.max(now),
                        Event::Timer {
                            node,
                            incarnation,
                            timer,
                        },
                    );
                }
                send_or_reply => {
                    if host.durable_at > now {
                        let (at, incarnation) = (host.durable_at, host.incarnation);
                        let effect = send_or_reply;
                        self.schedule(
                            at,
                            Event::Deferred {
                                node,
                                incarnation,
                                effect,
                            },
                        );
                    } else {
                        self.perform(node, send_or_reply);
                    }
                }
            }
        }
    }

    /// Puts a send or reply on the wire now.
    fn perform(&mut self, node: usize, effect: SimEffect<P>) {
        match effect {
            Effect::Send { to, msg } => {
                let to = to.0 as usize;
                if to >= self.hosts.len() || to == node {
                    return;
                }
                for d in self.net.transmit(&mut self.rng, node, to) {
                    let at = self.now.plus_micros(d);
                    self.schedule(
                        at,
                        Event::Deliver {
                            from: node,
                            to,
                            msg: msg.clone(),
                        },
                    );
                }
            }
            Effect::Reply { op, reply } => {
                let Some(client) = self.clients.iter().position(|c| c.id == op.client) else {
                    return;
                };
                let d = self
                    .net
                    .client_delay(&mut self.rng, node, self.clients[client].region);
                self.schedule(self.now.plus_micros(d), Event::Reply { client, op, reply });
            }
            Effect::Persist(_) | Effect::SetTimer { .. } => {
                unreachable!("handled in apply_effects")
            }
        }
    }

    fn client_next(&mut self, c: usize) {
        if self.clients[c].done || self.clients[c].current.is_some() {
            return;
        }
        let req = if self.measuring {
            let client = &mut self.clients[c];
            let (id, next_key) = (client.id, &mut client.next_key);
            self.cfg.workload.next_request(&mut self.rng, || {
                *next_key += 1;
                Key(format!("c{}-k{}", id.0, next_key).into_bytes())
            })
        } else if let Some(key) = self.clients[c].final_reads.pop() {
            ClientRequest::Get { key }
        } else {
            self.clients[c].done = true;
            return;
        };
        let region = self.clients[c].region;
        self.issue(c, req, region, 1);
    }

    /// Sends a new operation of client `c` to replica `node`.
    fn issue(&mut self, c: usize, req: ClientRequest, node: usize, attempts: u32) {
        let client = &mut self.clients[c];
        let op = OpId {
            client: client.id,
            request: RequestId(client.next_request),
        };
        client.next_request += 1;
        self.history.push(HistoryOp {
            client: client.id,
            region: client.region,
            op,
            request: req,
            call_us: self.now.0,
            return_us: None,
            reply: None,
            attempts,
        });
        client.current = Some((self.history.len() - 1, node));
        self.send_request(c, node);
    }

    /// (Re)sends the client's current operation to `node` and arms its timeout.
    fn send_request(&mut self, c: usize, node: usize) {
        let Some((idx, _)) = self.clients[c].current else {
            return;
        };
        self.clients[c].current = Some((idx, node));
        let (op, req) = (self.history[idx].op, self.history[idx].request.clone());
        let d = self
            .net
            .client_delay(&mut self.rng, self.clients[c].region, node);
        self.schedule(self.now.plus_micros(d), Event::Request { node, op, req });
        let timeout = self.now.plus_micros(self.cfg.client_timeout_ms * 1000);
        self.schedule(timeout, Event::ClientTimeout { client: c, op });
    }

    fn client_reply(&mut self, c: usize, op: OpId, reply: ClientReply) {
        let Some((idx, _)) = self.clients[c].current else {
            return;
        };
        if self.history[idx].op != op {
            return; // a late reply to an operation the client gave up on
        }
        self.history[idx].return_us = Some(self.now.0);
        self.history[idx].reply = Some(reply);
        self.clients[c].current = None;
        self.schedule(self.now, Event::ClientNext { client: c });
    }

    /// No reply in time: try the next replica. An RMW keeps its `OpId` so the
    /// replicas deduplicate it; a get or put is abandoned (it stays in the
    /// history without a return) and re-issued as a new operation.
    fn client_timeout(&mut self, c: usize, op: OpId) {
        let Some((idx, node)) = self.clients[c].current else {
            return;
        };
        if self.history[idx].op != op {
            return;
        }
        let next = (node + 1) % self.hosts.len();
        let attempts = self.history[idx].attempts + 1;
        if matches!(self.history[idx].request, ClientRequest::Rmw { .. }) {
            self.history[idx].attempts = attempts;
            self.send_request(c, next);
        } else {
            let req = self.history[idx].request.clone();
            self.clients[c].current = None;
            self.issue(c, req, next, attempts);
        }
    }

    fn fault_gap(&mut self) -> Time {
        let mean = self.cfg.faults.mean_fault_interval_ms.max(1) as f64;
        let gap_ms = mean * self.rng.random_range(0.5..1.5);
        self.now.plus_micros((gap_ms * 1000.0) as u64)
    }

    /// Crashes or isolates one replica, keeping at most f of them down at once.
    fn inject_fault(&mut self) {
        if !self.measuring {
            return;
        }
        let n = self.hosts.len();
        let f = (n - 1) / 2;
        let down = (0..n)
            .filter(|&i| self.hosts[i].proto.is_none() || self.net.is_isolated(i))
            .count();
        let up: Vec<usize> = (0..n)
            .filter(|&i| self.hosts[i].proto.is_some() && !self.net.is_isolated(i))
            .collect();
        if down < f && !up.is_empty() {
            let node = up[self.rng.random_range(0..up.len())];
            let max = self.cfg.faults.max_fault_ms.max(100);
            let back = self
                .now
                .plus_micros(self.rng.random_range(100..=max) * 1000);
            let crash = match (self.cfg.faults.crashes, self.cfg.faults.partitions) {
                (true, true) => self.rng.random_bool(0.5),
                (crashes, _) => crashes,
            };
            if crash {
                // The leader, if asked for and there is one up; drawing
                // no extra random numbers keeps other runs unchanged.
                let leader = up
                    .iter()
                    .copied()
                    .find(|&i| self.hosts[i].proto.as_ref().is_some_and(P::is_leader));
                let node = match leader {
                    Some(l) if self.cfg.faults.leader_crashes => {
                        self.leader_crashes += 1;
                        l
                    }
                    Some(l) if l == node => {
                        self.leader_crashes += 1;
                        l
                    }
                    _ => node,
                };
                self.crash(node);
                self.schedule(back, Event::Restart { node });
            } else {
                self.partitions += 1;
                self.net.set_isolated(node, true);
                self.schedule(back, Event::Reconnect { node });
            }
        }
        let next = self.fault_gap();
        self.schedule(next, Event::Fault);
    }

    /// The replica loses its memory and every record not yet durable.
    fn crash(&mut self, node: usize) {
        self.crashes += 1;
        let now = self.now;
        let host = &mut self.hosts[node];
        host.proto = None;
        host.incarnation += 1;
        host.disk.retain(|(at, _)| *at <= now);
        host.durable_at = now;
    }

    fn restart(&mut self, node: usize) {
        if self.hosts[node].proto.is_some() {
            return;
        }
        let records: Vec<P::Record> = self.hosts[node]
            .disk
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        let mut out = Vec::new();
        let proto = P::restart(&self.hosts[node].setup, self.now, &records, &mut out);
        self.hosts[node].proto = Some(proto);
        self.apply_effects(node, out);
    }

    /// Heals every fault and starts the liveness phase: clients finish what
    /// they have in flight, then read back every key the run touched.
    fn end_of_measure(&mut self) {
        self.measuring = false;
        self.net.heal();
        for node in 0..self.hosts.len() {
            self.restart(node);
        }
        if self.cfg.final_reads {
            // Extra reader clients per region share the read-back, so it
            // takes seconds of virtual time even after busy runs.
            let first_reader = self.clients.len();
            for region in 0..self.hosts.len() {
                for _ in 0..FINAL_READERS_PER_REGION {
                    self.add_client(region);
                }
            }
            let readers = self.clients.len() - first_reader;
            let keys: BTreeSet<Key> = self
                .history
                .iter()
                .map(|h| h.request.key().clone())
                .collect();
            for (i, key) in keys.into_iter().enumerate() {
                self.clients[first_reader + i % readers]
                    .final_reads
                    .push(key);
            }
        }
        for c in 0..self.clients.len() {
            self.schedule(self.now, Event::ClientNext { client: c });
        }
    }
}
