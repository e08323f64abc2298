//! A tiny deterministic network for the register machine: every replica's
//! machine, store and "disk" (the durable records it emitted), a queue of
//! messages the test delivers, drops or duplicates in any order it likes,
//! pending timers, and crash/restart from the disk.
//!
//! Persists are made durable synchronously as the effects are carried out,
//! in order. At every client reply and every reply message the harness
//! checks that the replica's disk, replayed, equals its memory: nothing a
//! reply promises can be lost by a crash. At every client reply it also
//! checks the quorum invariant of ABD: a majority of replicas durably hold
//! the returned carstamp or a newer one, so every later quorum sees it.

use registers::{
    ClientId, Effect, Key, OpId, RecoveredRegisterState, RegisterConfig, RegisterEffect,
    RegisterMachine, RegisterMsg, RegisterPersist, RegisterReply, RegisterStore, RegisterTimer,
    ReplicaId, RequestId, Time, Value,
};

pub const TIMEOUT_US: u64 = 1_000;

pub struct Node {
    pub config: RegisterConfig,
    /// `None` while crashed.
    pub machine: Option<RegisterMachine>,
    pub store: RegisterStore,
    pub disk: Vec<RegisterPersist>,
}

#[derive(Clone, Debug)]
pub struct Packet {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub msg: RegisterMsg,
}

pub struct Net {
    pub nodes: Vec<Node>,
    pub queue: Vec<Packet>,
    pub timers: Vec<(ReplicaId, Time, RegisterTimer)>,
    pub replies: Vec<(OpId, RegisterReply)>,
    pub now: Time,
    next_request: u64,
}

pub fn key() -> Key {
    Key::from("k")
}

impl Net {
    pub fn new(n: u32, thrifty: bool) -> Net {
        Net::with(n, |c| c.thrifty = thrifty)
    }

    /// A cluster of `n` whose configs `tweak` may adjust.
    pub fn with(n: u32, tweak: impl Fn(&mut RegisterConfig)) -> Net {
        let ids: Vec<ReplicaId> = (0..n).map(ReplicaId).collect();
        let nodes = ids
            .iter()
            .map(|me| {
                let mut config = RegisterConfig::new(*me, ids.clone());
                config.phase_timeout_us = TIMEOUT_US;
                tweak(&mut config);
                Node {
                    machine: Some(RegisterMachine::new(config.clone()).unwrap()),
                    config,
                    store: RegisterStore::new(),
                    disk: Vec::new(),
                }
            })
            .collect();
        Net {
            nodes,
            queue: Vec::new(),
            timers: Vec::new(),
            replies: Vec::new(),
            now: Time(0),
            next_request: 0,
        }
    }

    fn new_op(&mut self) -> OpId {
        self.next_request += 1;
        OpId {
            client: ClientId(1),
            request: RequestId(self.next_request),
        }
    }

    pub fn get(&mut self, at: u32) -> OpId {
        let op = self.new_op();
        self.step(at, |m, now, store, out| {
            m.start_get(now, op, key(), store, out)
        });
        op
    }

    pub fn put(&mut self, at: u32, value: &str) -> OpId {
        let op = self.new_op();
        let v = Some(Value::from(value));
        self.step(at, |m, now, store, out| {
            m.start_put(now, op, key(), v, store, out)
        });
        op
    }

    pub fn reply(&self, op: OpId) -> Option<&RegisterReply> {
        self.replies.iter().find(|(o, _)| *o == op).map(|(_, r)| r)
    }

    /// The value a completed get returned.
    pub fn got(&self, op: OpId) -> Option<Value> {
        match self.reply(op) {
            Some(RegisterReply::Get { value, .. }) => value.clone(),
            other => panic!("{op:?} is not a completed get: {other:?}"),
        }
    }

    /// Delivers the `idx`-th queued message (dropped if its receiver is down).
    pub fn deliver(&mut self, idx: usize) {
        let p = self.queue.remove(idx);
        self.now = self.now.plus_micros(1);
        self.step(p.to.0, |m, now, store, out| {
            m.handle_message(now, p.from, p.msg, store, out)
        });
    }

    /// Delivers the first queued message matching `pred`; false if none.
    pub fn deliver_if(&mut self, pred: impl Fn(&Packet) -> bool) -> bool {
        match self.queue.iter().position(pred) {
            Some(i) => {
                self.deliver(i);
                true
            }
            None => false,
        }
    }

    /// Delivers every message matching `pred`, including ones sent meanwhile.
    pub fn deliver_all_if(&mut self, pred: impl Fn(&Packet) -> bool) {
        while self.deliver_if(&pred) {}
    }

    /// Delivers everything, oldest first, until the network is quiet.
    pub fn deliver_all(&mut self) {
        self.deliver_all_if(|_| true)
    }

    pub fn drop_if(&mut self, pred: impl Fn(&Packet) -> bool) -> usize {
        let before = self.queue.len();
        self.queue.retain(|p| !pred(p));
        before - self.queue.len()
    }

    /// Fires every pending timer of replica `r` (time jumps to the latest).
    pub fn fire_timers(&mut self, r: u32) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _, _)| at.0 == r);
        self.timers = rest;
        for (_, at, timer) in mine {
            self.now = self.now.max(at);
            self.step(r, |m, now, store, out| {
                m.handle_timer(now, timer, store, out)
            });
        }
    }

    /// The replica loses its memory: machine, store and timers. Messages
    /// already queued to it stay queued (and are dropped if delivered while
    /// it is down).
    pub fn crash(&mut self, r: u32) {
        let node = &mut self.nodes[r as usize];
        node.machine = None;
        node.store = RegisterStore::new();
        self.timers.retain(|(at, _, _)| at.0 != r);
    }

    /// Restarts from the disk.
    pub fn restart(&mut self, r: u32) {
        let node = &mut self.nodes[r as usize];
        let (store, recovered) = RecoveredRegisterState::replay(&node.disk);
        node.store = store;
        node.machine = Some(RegisterMachine::recover(node.config.clone(), recovered).unwrap());
    }

    pub fn machine(&self, r: u32) -> &RegisterMachine {
        self.nodes[r as usize].machine.as_ref().unwrap()
    }

    fn step(
        &mut self,
        r: u32,
        f: impl FnOnce(&mut RegisterMachine, Time, &mut RegisterStore, &mut Vec<RegisterEffect>),
    ) {
        let now = self.now;
        let node = &mut self.nodes[r as usize];
        let Some(machine) = node.machine.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        f(machine, now, &mut node.store, &mut out);
        self.carry_out(r, out);
    }

    fn carry_out(&mut self, r: u32, effects: Vec<RegisterEffect>) {
        let me = ReplicaId(r);
        for e in effects {
            match e {
                Effect::Persist(p) => self.nodes[r as usize].disk.push(p),
                Effect::Send { to, msg } => {
                    if msg.is_reply() {
                        self.check_durable(r, "reply message");
                    }
                    self.queue.push(Packet { from: me, to, msg });
                }
                Effect::Reply { op, reply } => {
                    self.check_durable(r, "client reply");
                    self.check_quorum_holds(&reply);
                    self.replies.push((op, reply));
                }
                Effect::SetTimer { at, timer } => self.timers.push((me, at, timer)),
            }
        }
        self.check_durable(r, "end of batch");
    }

    fn check_quorum_holds(&self, reply: &RegisterReply) {
        let cs = match reply {
            RegisterReply::Get { cs, .. } | RegisterReply::Put { cs } => *cs,
        };
        let holders = self
            .nodes
            .iter()
            .filter(|node| RecoveredRegisterState::replay(&node.disk).0.get(&key()).cs >= cs)
            .count();
        let quorum = self.nodes.len() / 2 + 1;
        assert!(
            holders >= quorum,
            "{reply:?} answered with only {holders} durable holders"
        );
    }

    fn check_durable(&self, r: u32, what: &str) {
        let node = &self.nodes[r as usize];
        let (disk, _) = RecoveredRegisterState::replay(&node.disk);
        assert_eq!(
            disk, node.store,
            "replica {r}: memory ahead of disk at {what}"
        );
    }
}
