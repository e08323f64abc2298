//! A deterministic network of raft engines for tests: virtual time, a
//! fixed one-way latency, timers, links the test can cut, and crash and
//! restart from exactly the records each replica persisted (a synchronous
//! disk: every record is durable when emitted).

use consensus::raft::{RaftConfig, RaftEffect, RaftEngine, RaftMsg, RaftPersist, RaftTimer};
use registers::{
    ClientId, ClientReply, ClientRequest, Effect, OpId, RegisterStore, ReplicaId, RequestId, Time,
};
use std::collections::{BTreeMap, BTreeSet};

pub const LATENCY_US: u64 = 10_000;

pub fn op(client: u64, request: u64) -> OpId {
    OpId {
        client: ClientId(client),
        request: RequestId(request),
    }
}

pub struct RNode {
    pub engine: Option<RaftEngine>,
    pub store: RegisterStore,
    pub disk: Vec<RaftPersist>,
    pub replies: Vec<(OpId, ClientReply)>,
    pub incarnation: u64,
}

enum Event {
    Deliver {
        from: usize,
        to: usize,
        msg: RaftMsg,
    },
    Timer {
        node: usize,
        incarnation: u64,
        timer: RaftTimer,
    },
}

pub struct RNet {
    pub template: RaftConfig,
    pub nodes: Vec<RNode>,
    pub now: Time,
    queue: BTreeMap<(Time, u64), Event>,
    seq: u64,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(usize, usize)>,
    /// Directed links that drop `Executed` notices only.
    pub mute_notices: BTreeSet<(usize, usize)>,
    /// Every effect of every replica, for determinism checks.
    pub trace: Vec<String>,
    pub delivered: u64,
}

impl RNet {
    /// `n` replicas with fast timings (5 ms ticks) and `template`'s other
    /// settings.
    pub fn new(n: u32, template: RaftConfig) -> RNet {
        let template = RaftConfig {
            replicas: n,
            ..template
        };
        let mut net = RNet {
            template,
            nodes: Vec::new(),
            now: Time(0),
            queue: BTreeMap::new(),
            seq: 0,
            cut: BTreeSet::new(),
            mute_notices: BTreeSet::new(),
            trace: Vec::new(),
            delivered: 0,
        };
        for r in 0..n as usize {
            let mut store = RegisterStore::new();
            let mut out = Vec::new();
            let e = RaftEngine::start(net.config(r), Time(0), &mut store, &mut out)
                .expect("valid config");
            net.nodes.push(RNode {
                engine: Some(e),
                store,
                disk: Vec::new(),
                replies: Vec::new(),
                incarnation: 0,
            });
            net.absorb(r, out);
        }
        net
    }

    pub fn fast() -> RaftConfig {
        RaftConfig {
            tick_us: 5_000,
            heartbeat_ticks: 2,
            election_ticks: 20,
            stagger_ticks: 4,
            retry_timeout_us: 200_000,
            ..RaftConfig::default()
        }
    }

    pub fn config(&self, r: usize) -> RaftConfig {
        RaftConfig {
            replica: ReplicaId(r as u32),
            ..self.template.clone()
        }
    }

    fn push(&mut self, at: Time, e: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), e);
    }

    fn absorb(&mut self, r: usize, out: Vec<RaftEffect>) {
        for e in out {
            self.trace.push(format!("{:?} {r} {e:?}", self.now));
            match e {
                Effect::Send { to, msg } => {
                    let to = to.0 as usize;
                    let muted = matches!(msg, RaftMsg::Executed { .. })
                        && self.mute_notices.contains(&(r, to));
                    if !self.cut.contains(&(r, to)) && !muted {
                        self.push(
                            self.now.plus_micros(LATENCY_US),
                            Event::Deliver { from: r, to, msg },
                        );
                    }
                }
                Effect::Persist(p) => self.nodes[r].disk.push(p),
                Effect::Reply { op, reply } => self.nodes[r].replies.push((op, reply)),
                Effect::SetTimer { at, timer } => {
                    let incarnation = self.nodes[r].incarnation;
                    self.push(
                        at.max(self.now),
                        Event::Timer {
                            node: r,
                            incarnation,
                            timer,
                        },
                    );
                }
            }
        }
    }

    /// A client op arrives at replica `r` now.
    pub fn client(&mut self, r: usize, op: OpId, req: ClientRequest) {
        let now = self.now;
        let node = &mut self.nodes[r];
        let Some(e) = node.engine.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        e.propose(now, op, req, &mut node.store, &mut out)
            .expect("mode allows the op");
        self.absorb(r, out);
    }

    /// Hands `msg` from `from` to replica `to` now (as if just delivered).
    pub fn message(
        &mut self,
        to: usize,
        from: u32,
        msg: RaftMsg,
    ) -> Result<(), consensus::BadInput> {
        let now = self.now;
        let node = &mut self.nodes[to];
        let mut out = Vec::new();
        let res = node.engine.as_mut().expect("replica is up").handle_message(
            now,
            ReplicaId(from),
            msg,
            &mut node.store,
            &mut out,
        );
        self.absorb(to, out);
        res
    }

    /// Handles the next event; false if there is none before `until`.
    pub fn step(&mut self, until: Time) -> bool {
        let Some((&(at, seq), _)) = self.queue.iter().next() else {
            return false;
        };
        if at > until {
            return false;
        }
        let event = self.queue.remove(&(at, seq)).expect("present");
        self.now = at;
        let now = self.now;
        let (r, out) = match event {
            Event::Deliver { from, to, msg } => {
                let node = &mut self.nodes[to];
                let Some(e) = node.engine.as_mut() else {
                    return true;
                };
                if self.cut.contains(&(from, to)) {
                    return true;
                }
                self.delivered += 1;
                let mut out = Vec::new();
                let _ =
                    e.handle_message(now, ReplicaId(from as u32), msg, &mut node.store, &mut out);
                (to, out)
            }
            Event::Timer {
                node: r,
                incarnation,
                timer,
            } => {
                let node = &mut self.nodes[r];
                let Some(e) = node
                    .engine
                    .as_mut()
                    .filter(|_| node.incarnation == incarnation)
                else {
                    return true;
                };
                let mut out = Vec::new();
                e.handle_timer(now, timer, &mut node.store, &mut out);
                (r, out)
            }
        };
        self.absorb(r, out);
        true
    }

    pub fn run_for(&mut self, micros: u64) {
        let until = self.now.plus_micros(micros);
        while self.step(until) {}
        self.now = until;
    }

    /// Runs until `done` holds (checked after every event) or `micros` pass.
    pub fn run_until(&mut self, micros: u64, mut done: impl FnMut(&RNet) -> bool) -> bool {
        let until = self.now.plus_micros(micros);
        while !done(self) {
            if !self.step(until) {
                return done(self);
            }
        }
        true
    }

    pub fn engine(&self, r: usize) -> &RaftEngine {
        self.nodes[r].engine.as_ref().expect("replica is up")
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&r| self.nodes[r].engine.as_ref().is_some_and(|e| e.is_leader()))
    }

    pub fn reply(&self, r: usize, op: OpId) -> Option<&ClientReply> {
        self.nodes[r]
            .replies
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, rep)| rep)
    }

    pub fn replied_anywhere(&self, op: OpId) -> Option<&ClientReply> {
        (0..self.nodes.len()).find_map(|r| self.reply(r, op))
    }

    pub fn crash(&mut self, r: usize) {
        self.nodes[r].engine = None;
        self.nodes[r].incarnation += 1;
    }

    /// Rebuilds replica `r` from its records, with a fresh store.
    pub fn restart(&mut self, r: usize) {
        let cfg = self.config(r);
        let now = self.now;
        let node = &mut self.nodes[r];
        node.store = RegisterStore::new();
        let mut out = Vec::new();
        let e = RaftEngine::recover(cfg, now, node.disk.clone(), &mut node.store, &mut out)
            .expect("valid config");
        node.engine = Some(e);
        self.absorb(r, out);
    }

    /// Cuts every link to and from `r`.
    pub fn isolate(&mut self, r: usize) {
        for p in 0..self.nodes.len() {
            self.cut.insert((r, p));
            self.cut.insert((p, r));
        }
    }
}
