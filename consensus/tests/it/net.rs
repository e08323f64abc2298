//! A tiny deterministic network for tests: replicas, in-flight messages
//! the test delivers, drops or duplicates at will, timers fired in time
//! order, crash and restart from persisted records, and the checks every
//! scenario ends with (one value per instance, one order per key, results
//! equal to a serial execution in that order).

use consensus::{
    Attrs, Command, Epaxos, EpaxosConfig, EpaxosEffect, EpaxosMsg, EpaxosPersist, EpaxosReply,
    EpaxosTimer, ExecResult, ExecutionRecord, InstanceId,
};
use registers::{
    Carstamp, ClientId, Effect, Key, OpId, Register, RegisterStore, ReplicaId, RequestId, RmwOp,
    Time, Value, WriterId, max_by_cs,
};
use std::collections::{BTreeMap, HashMap};

pub fn op(client: u64, request: u64) -> OpId {
    OpId {
        client: ClientId(client),
        request: RequestId(request),
    }
}

pub fn cs(ts: u64, writer: u64, rmwc: u32) -> Carstamp {
    Carstamp {
        ts,
        writer: WriterId(writer),
        rmwc,
    }
}

pub fn int(n: i64) -> Option<Value> {
    Some(Value::from_i64(n))
}

pub fn fadd(delta: i64) -> RmwOp {
    RmwOp::FetchAdd { delta }
}

pub struct Node {
    pub m: Epaxos,
    pub store: RegisterStore,
    /// Everything the machine asked to persist, in order (a synchronous
    /// driver: durable as soon as emitted).
    pub persisted: Vec<EpaxosPersist>,
    /// Register applies made by the (mock) write protocol, also durable.
    pub writes: Vec<(Key, Register)>,
    pub executions: Vec<ExecutionRecord>,
    pub replies: Vec<(OpId, EpaxosReply)>,
    pub up: bool,
}

pub struct Msg {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub msg: EpaxosMsg,
}

pub struct Cluster {
    pub cfg: EpaxosConfig,
    pub nodes: Vec<Node>,
    pub now: Time,
    pub net: Vec<Msg>,
    pub timers: Vec<(Time, ReplicaId, EpaxosTimer)>,
}

impl Cluster {
    pub fn new(n: u32) -> Cluster {
        let cfg = EpaxosConfig {
            phase_timeout_us: 1_000,
            recovery_timeout_us: 5_000,
            ..EpaxosConfig::new(ReplicaId(0), n)
        };
        Cluster::with_config(cfg)
    }

    pub fn with_config(cfg: EpaxosConfig) -> Cluster {
        let nodes = (0..cfg.replicas)
            .map(|r| Node {
                m: Epaxos::new(EpaxosConfig {
                    replica: ReplicaId(r),
                    ..cfg.clone()
                })
                .expect("valid config"),
                store: RegisterStore::new(),
                persisted: Vec::new(),
                writes: Vec::new(),
                executions: Vec::new(),
                replies: Vec::new(),
                up: true,
            })
            .collect();
        Cluster {
            cfg,
            nodes,
            now: Time(0),
            net: Vec::new(),
            timers: Vec::new(),
        }
    }

    pub fn n(&self) -> u32 {
        self.cfg.replicas
    }

    fn absorb(&mut self, r: ReplicaId, effects: Vec<EpaxosEffect>) {
        for e in effects {
            match e {
                Effect::Send { to, msg } => self.net.push(Msg { from: r, to, msg }),
                Effect::Persist(p) => {
                    let node = &mut self.nodes[r.0 as usize];
                    if let EpaxosPersist::Executed(x) = &p {
                        node.executions.push(x.clone());
                    }
                    node.persisted.push(p);
                }
                Effect::Reply { op, reply } => self.nodes[r.0 as usize].replies.push((op, reply)),
                Effect::SetTimer { at, timer } => self.timers.push((at, r, timer)),
            }
        }
    }

    pub fn propose(&mut self, at: u32, op: OpId, key: &str, rmw: RmwOp) {
        let now = self.now;
        let node = &mut self.nodes[at as usize];
        if !node.up {
            return;
        }
        let mut out = Vec::new();
        node.m
            .propose(now, op, Key::from(key), rmw, &mut node.store, &mut out);
        self.absorb(ReplicaId(at), out);
    }

    /// Proposes any client command (EPaxos-all) at replica `at`.
    pub fn propose_command(&mut self, at: u32, cmd: Command) -> Result<(), consensus::BadInput> {
        let now = self.now;
        let node = &mut self.nodes[at as usize];
        let mut out = Vec::new();
        let res = node.m.propose_command(now, cmd, &mut node.store, &mut out);
        self.absorb(ReplicaId(at), out);
        res
    }

    /// The write protocol applied `reg` to `key` at replica `at`.
    pub fn write(&mut self, at: u32, key: &str, reg: &Register) {
        let node = &mut self.nodes[at as usize];
        if node.up {
            node.store.apply(&Key::from(key), reg);
            node.writes.push((Key::from(key), reg.clone()));
        }
    }

    /// Delivers the `i`-th in-flight message (if its target is up).
    pub fn deliver(&mut self, i: usize) {
        if i >= self.net.len() {
            return;
        }
        let Msg { from, to, msg } = self.net.remove(i);
        let now = self.now;
        let node = &mut self.nodes[to.0 as usize];
        if !node.up {
            return;
        }
        let mut out = Vec::new();
        let _ = node
            .m
            .handle_message(now, from, msg, &mut node.store, &mut out);
        self.absorb(to, out);
    }

    /// Delivers the first in-flight message matching `pred`; false if none.
    pub fn deliver_where(&mut self, pred: impl Fn(&Msg) -> bool) -> bool {
        match self.net.iter().position(pred) {
            Some(i) => {
                self.deliver(i);
                true
            }
            None => false,
        }
    }

    pub fn drop_where(&mut self, pred: impl Fn(&Msg) -> bool) {
        self.net.retain(|m| !pred(m));
    }

    /// Fires the earliest timer, advancing time to it; false if none.
    pub fn fire_next_timer(&mut self) -> bool {
        let Some(i) = (0..self.timers.len()).min_by_key(|&i| (self.timers[i].0, i)) else {
            return false;
        };
        self.fire_timer(i);
        true
    }

    /// Fires the `i`-th pending timer, advancing time to it if later.
    pub fn fire_timer(&mut self, i: usize) {
        let (at, r, timer) = self.timers.remove(i);
        self.now = self.now.max(at);
        let now = self.now;
        let node = &mut self.nodes[r.0 as usize];
        if node.up {
            let mut out = Vec::new();
            node.m.handle_timer(now, timer, &mut node.store, &mut out);
            self.absorb(r, out);
        }
    }

    /// Hands `timer` to replica `r` now.
    pub fn fire(&mut self, r: u32, timer: EpaxosTimer) {
        let now = self.now;
        let node = &mut self.nodes[r as usize];
        let mut out = Vec::new();
        node.m.handle_timer(now, timer, &mut node.store, &mut out);
        self.absorb(ReplicaId(r), out);
    }

    /// Delivers messages in FIFO order, firing timers when the network is
    /// quiet, until nothing is left (or `max_steps`).
    pub fn run(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            if !self.net.is_empty() {
                self.deliver(0);
            } else if !self.fire_next_timer() {
                return;
            }
        }
        panic!("no quiescence after {max_steps} steps");
    }

    /// Delivers the `i`-th message and crashes its receiver while the
    /// driver carries out the resulting effects: only the first `cut`
    /// (mod the number) of that batch's records became durable; nothing
    /// after them was sent. Returns the crashed replica.
    pub fn deliver_and_crash(&mut self, i: usize, cut: usize) -> Option<u32> {
        let to = self.net.get(i)?.to.0;
        let before = self.nodes[to as usize].persisted.len();
        self.deliver(i);
        let node = &mut self.nodes[to as usize];
        let added = node.persisted.len() - before;
        node.persisted.truncate(before + cut % (added + 1));
        node.executions = node
            .persisted
            .iter()
            .filter_map(|p| match p {
                EpaxosPersist::Executed(x) => Some(x.clone()),
                EpaxosPersist::Instance(_) => None,
            })
            .collect();
        self.crash(to);
        Some(to)
    }

    pub fn crash(&mut self, r: u32) {
        self.nodes[r as usize].up = false;
        self.net.retain(|m| m.to.0 != r && m.from.0 != r);
        self.timers.retain(|t| t.1.0 != r);
    }

    /// Rebuilds replica `r` from what it persisted.
    pub fn restart(&mut self, r: u32) {
        let now = self.now;
        let cfg = EpaxosConfig {
            replica: ReplicaId(r),
            ..self.cfg.clone()
        };
        let node = &mut self.nodes[r as usize];
        let mut store = RegisterStore::new();
        for (k, reg) in &node.writes {
            store.apply(k, reg);
        }
        let mut out = Vec::new();
        let m = Epaxos::recover(cfg, now, node.persisted.clone(), &mut store, &mut out)
            .expect("valid config");
        node.m = m;
        node.store = store;
        node.up = true;
        self.absorb(ReplicaId(r), out);
    }

    pub fn value(&self, r: u32, key: &str) -> Register {
        self.nodes[r as usize].store.get(&Key::from(key))
    }

    pub fn executed_ids(&self, r: u32) -> Vec<InstanceId> {
        self.nodes[r as usize]
            .executions
            .iter()
            .map(|x| x.inst)
            .collect()
    }

    pub fn reply(&self, r: u32, op: OpId) -> Option<&EpaxosReply> {
        self.nodes[r as usize]
            .replies
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, rep)| rep)
    }

    /// The committed value of `id` at any replica.
    pub fn committed(&self, id: InstanceId) -> Option<Attrs> {
        self.nodes.iter().find_map(|n| n.m.committed(id).cloned())
    }

    /// Runs every consistency check; returns the per-key serial orders.
    pub fn check(&self) -> BTreeMap<Key, Vec<InstanceId>> {
        self.check_one_value();
        let orders = self.check_per_key_order();
        self.check_serial(&orders);
        orders
    }

    /// Every replica that committed an instance committed the same value.
    pub fn check_one_value(&self) {
        let mut chosen: HashMap<InstanceId, Attrs> = HashMap::new();
        for node in &self.nodes {
            for p in &node.persisted {
                if let EpaxosPersist::Instance(r) = p
                    && r.status == consensus::Status::Committed
                {
                    let a = r.attrs.clone().expect("committed with attrs");
                    let prev = chosen.entry(r.inst).or_insert_with(|| a.clone());
                    assert_eq!(*prev, a, "two values committed for {:?}", r.inst);
                }
            }
        }
        for node in &self.nodes {
            assert_eq!(node.m.stats().conflicting_values, 0);
        }
    }

    /// Per key, each replica's execution sequence is a prefix of the
    /// longest one. Returns the longest per key.
    pub fn check_per_key_order(&self) -> BTreeMap<Key, Vec<InstanceId>> {
        let mut longest: BTreeMap<Key, Vec<InstanceId>> = BTreeMap::new();
        let mut per_node: Vec<BTreeMap<Key, Vec<InstanceId>>> = Vec::new();
        for node in &self.nodes {
            let mut seqs: BTreeMap<Key, Vec<InstanceId>> = BTreeMap::new();
            for x in &node.executions {
                let attrs = self.committed(x.inst).expect("executed implies committed");
                if let Some(k) = attrs.cmd.key() {
                    seqs.entry(k.clone()).or_default().push(x.inst);
                }
            }
            for (k, s) in &seqs {
                let l = longest.entry(k.clone()).or_default();
                if s.len() > l.len() {
                    *l = s.clone();
                }
            }
            per_node.push(seqs);
        }
        for (r, seqs) in per_node.iter().enumerate() {
            for (k, s) in seqs {
                let l = &longest[k];
                assert_eq!(
                    &l[..s.len()],
                    &s[..],
                    "replica {r} executed {k:?} in another order"
                );
            }
        }
        longest
    }

    /// Re-executes each key's order serially with the PROTOCOL.md rule and
    /// compares with what every replica recorded.
    pub fn check_serial(&self, orders: &BTreeMap<Key, Vec<InstanceId>>) {
        #[derive(Debug, PartialEq)]
        enum Exp {
            Applied(consensus::DedupEntry),
            Duplicate(consensus::DedupEntry),
            Stale,
        }
        let mut expected: HashMap<InstanceId, Exp> = HashMap::new();
        for seq in orders.values() {
            let mut last = Register::default();
            let mut latest: HashMap<ClientId, (u64, consensus::DedupEntry)> = HashMap::new();
            for id in seq {
                let attrs = self.committed(*id).expect("committed");
                let Command::Rmw { op, rmw, .. } = &attrs.cmd else {
                    unreachable!("no-ops have no key")
                };
                let res = match latest.get(&op.client) {
                    Some((r, e)) if *r == op.request.0 => Exp::Duplicate(e.clone()),
                    Some((r, _)) if *r > op.request.0 => Exp::Stale,
                    _ => {
                        let eff = max_by_cs(&attrs.base, &last).clone();
                        let outcome = rmw.apply(eff.value.as_ref());
                        let c = eff.cs.rmw_successor();
                        last = Register::new(outcome.new.clone(), c);
                        let e = consensus::DedupEntry {
                            op: *op,
                            outcome,
                            cs: c,
                        };
                        latest.insert(op.client, (op.request.0, e.clone()));
                        Exp::Applied(e)
                    }
                };
                expected.insert(*id, res);
            }
        }
        for (r, node) in self.nodes.iter().enumerate() {
            for x in &node.executions {
                let Some(want) = expected.get(&x.inst) else {
                    assert_eq!(x.result, ExecResult::Nothing, "no-op at {r}");
                    continue;
                };
                let got = match &x.result {
                    ExecResult::Applied {
                        entry, last_rmw, ..
                    } => {
                        assert_eq!(
                            last_rmw,
                            &Register::new(entry.outcome.new.clone(), entry.cs)
                        );
                        Exp::Applied(entry.clone())
                    }
                    ExecResult::Duplicate(entry) => Exp::Duplicate(entry.clone()),
                    ExecResult::Nothing => Exp::Stale,
                    other => panic!("a get or put in a Gryff cluster: {other:?}"),
                };
                assert_eq!(
                    &got, want,
                    "replica {r} computed another result for {:?}",
                    x.inst
                );
            }
        }
    }

    /// Every up replica holds the same register for `key`.
    pub fn assert_converged(&self, key: &str) -> Register {
        let ups: Vec<u32> = (0..self.n())
            .filter(|&r| self.nodes[r as usize].up)
            .collect();
        let first = self.value(ups[0], key);
        for &r in &ups {
            assert_eq!(self.value(r, key), first, "replica {r} diverged on {key}");
        }
        first
    }
}
