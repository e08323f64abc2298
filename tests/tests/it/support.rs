//! Shorthand for hand-built histories, a seeded generator of linearizable
//! histories, and a brute-force checker to compare verdicts with.

use registers::{ClientId, Key, RmwOp, RmwOutcome, Value};
use tests::linearizability::{Input, Operation, Output, Return};

pub fn v(s: &str) -> Value {
    Value::from(s)
}

pub fn int(n: i64) -> Value {
    Value::from_i64(n)
}

fn done(client: u64, key: &str, call: u64, ret: u64, input: Input, output: Output) -> Operation {
    Operation {
        client: ClientId(client),
        key: Key::from(key),
        call,
        input,
        ret: Some(Return { time: ret, output }),
    }
}

pub fn get(client: u64, key: &str, call: u64, ret: u64, observed: Option<Value>) -> Operation {
    done(client, key, call, ret, Input::Get, Output::Get(observed))
}

pub fn put(client: u64, key: &str, call: u64, ret: u64, value: Value) -> Operation {
    done(client, key, call, ret, Input::Put(Some(value)), Output::Put)
}

pub fn delete(client: u64, key: &str, call: u64, ret: u64) -> Operation {
    done(client, key, call, ret, Input::Put(None), Output::Put)
}

/// A completed RMW that observed `old`; the rest of its outcome is what
/// `apply` computes from `old`.
pub fn rmw(
    client: u64,
    key: &str,
    call: u64,
    ret: u64,
    op: RmwOp,
    old: Option<Value>,
) -> Operation {
    let outcome = op.apply(old.as_ref());
    done(client, key, call, ret, Input::Rmw(op), Output::Rmw(outcome))
}

/// A completed RMW reporting an arbitrary outcome.
pub fn rmw_reporting(
    client: u64,
    key: &str,
    call: u64,
    ret: u64,
    op: RmwOp,
    outcome: RmwOutcome,
) -> Operation {
    done(client, key, call, ret, Input::Rmw(op), Output::Rmw(outcome))
}

pub fn pending(client: u64, key: &str, call: u64, input: Input) -> Operation {
    Operation {
        client: ClientId(client),
        key: Key::from(key),
        call,
        input,
        ret: None,
    }
}

pub fn fetch_add(delta: i64) -> RmwOp {
    RmwOp::FetchAdd { delta }
}

pub fn cas(expected: Option<Value>, new: Option<Value>) -> RmwOp {
    RmwOp::CompareAndSwap { expected, new }
}

pub fn put_if_absent(value: Value) -> RmwOp {
    RmwOp::PutIfAbsent { value }
}

/// SplitMix64: a tiny seeded generator, so every run is reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// How generated writes pick values.
#[derive(Clone, Copy, Debug)]
pub enum ValueKind {
    /// A fresh string per write: every read names its write.
    Unique,
    /// Drawn from `n` strings and `n` integers: ambiguous reads.
    Pool(u64),
    /// Random 8-byte values (integers to fetch-and-add), RMW operands in
    /// 0..8, as the simulator's workload writes them.
    Sim,
}

/// Shape of a generated history.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub clients: usize,
    pub ops: usize,
    pub keys: usize,
    /// Share of operations on key 0, the hot key.
    pub hot_share: f64,
    /// Shares of reads and RMWs; the rest are writes (a tenth of them deletes).
    pub read_share: f64,
    pub rmw_share: f64,
    /// Share of operations that never return (half of them take effect).
    pub pending_share: f64,
    /// Per-client latency bound, drawn once per client in this range: a
    /// mix of near and far regions.
    pub latency: (u64, u64),
    /// What values writes use.
    pub values: ValueKind,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            clients: 8,
            ops: 1000,
            keys: 4,
            hot_share: 0.5,
            read_share: 0.5,
            rmw_share: 0.1,
            pending_share: 0.01,
            latency: (10, 300),
            values: ValueKind::Unique,
        }
    }
}

struct Planned {
    op: Operation,
    /// When it takes effect; `None`: never (a pending op that was lost).
    lin: Option<u64>,
}

/// A linearizable history: closed-loop clients, each operation taking
/// effect at a point inside its interval, outputs from running the
/// operations serially in that order.
pub fn linearizable_history(rng: &mut Rng, cfg: &GenConfig) -> Vec<Operation> {
    let latency: Vec<u64> = (0..cfg.clients)
        .map(|_| rng.range(cfg.latency.0, cfg.latency.1 + 1))
        .collect();
    let mut clock = vec![0u64; cfg.clients];
    let mut planned = Vec::with_capacity(cfg.ops);
    let mut written = 0u64;
    for _ in 0..cfg.ops {
        // The client that is free earliest goes next, keeping them all busy.
        let c = (0..cfg.clients)
            .min_by_key(|&c| clock[c])
            .expect("clients > 0");
        let call = clock[c] + rng.range(0, 5);
        let lin = call + rng.range(0, latency[c]);
        let ret = lin + rng.range(0, latency[c]);
        let key = if rng.chance(cfg.hot_share) || cfg.keys == 1 {
            0
        } else {
            rng.range(1, cfg.keys as u64)
        };
        let input = random_input(rng, cfg, &mut written);
        let pending = rng.chance(cfg.pending_share);
        clock[c] = ret + 1;
        planned.push(Planned {
            op: Operation {
                client: ClientId(c as u64),
                key: Key(format!("k{key}").into_bytes()),
                call,
                input,
                ret: (!pending).then_some(Return {
                    time: ret,
                    output: Output::Put,
                }),
            },
            lin: (!pending || rng.chance(0.5)).then_some(lin),
        });
    }
    run_serially(&mut planned);
    planned.into_iter().map(|p| p.op).collect()
}

fn random_input(rng: &mut Rng, cfg: &GenConfig, written: &mut u64) -> Input {
    let mut value = |rng: &mut Rng| {
        *written += 1;
        match cfg.values {
            ValueKind::Pool(pool) if rng.chance(0.3) => int(rng.range(0, pool) as i64),
            ValueKind::Pool(pool) => Value(format!("v{}", rng.range(0, pool)).into_bytes()),
            ValueKind::Unique => Value(format!("w{written}").into_bytes()),
            ValueKind::Sim => Value(rng.next_u64().to_le_bytes().to_vec()),
        }
    };
    // RMW operands: likely-present values, or the simulator's small ints.
    let mut operand = |rng: &mut Rng| match cfg.values {
        ValueKind::Sim => int(rng.range(0, 8) as i64),
        _ => value(rng),
    };
    let roll = rng.range(0, 1000) as f64 / 1000.0;
    if roll < cfg.read_share {
        Input::Get
    } else if roll < cfg.read_share + cfg.rmw_share {
        match rng.range(0, 3) {
            0 => Input::Rmw(fetch_add(rng.range(1, 4) as i64)),
            1 => {
                let expected = rng.chance(0.8).then(|| operand(rng));
                Input::Rmw(cas(expected, Some(operand(rng))))
            }
            _ => Input::Rmw(put_if_absent(operand(rng))),
        }
    } else if rng.chance(0.1) {
        Input::Put(None)
    } else {
        Input::Put(Some(value(rng)))
    }
}

/// Fills in outputs by running the operations that take effect in order.
fn run_serially(planned: &mut [Planned]) {
    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].lin.is_some())
        .collect();
    order.sort_by_key(|&i| (planned[i].lin, i));
    let mut state: std::collections::HashMap<Key, Option<Value>> = Default::default();
    for i in order {
        let op = &mut planned[i].op;
        let current = state.entry(op.key.clone()).or_default();
        let output = match &op.input {
            Input::Get => Output::Get(current.clone()),
            Input::Put(v) => {
                *current = v.clone();
                Output::Put
            }
            Input::Rmw(rmw) => {
                let outcome = rmw.apply(current.as_ref());
                *current = outcome.new.clone();
                Output::Rmw(outcome)
            }
        };
        if let Some(ret) = &mut op.ret {
            ret.output = output;
        }
    }
}

/// Breaks (or sometimes not) a history: an output replaced by another
/// value from the history, an RMW's applied flag flipped, an interval
/// shrunk or stretched, an operation removed, or a return forgotten.
pub fn mutate(rng: &mut Rng, h: &mut Vec<Operation>) {
    if h.is_empty() {
        return;
    }
    let mut values: Vec<Option<Value>> = vec![None, Some(int(0)), Some(int(1))];
    for op in h.iter() {
        match (&op.input, op.output()) {
            (Input::Put(v), _) => values.push(v.clone()),
            (_, Some(Output::Get(v))) => values.push(v.clone()),
            (_, Some(Output::Rmw(out))) => values.push(out.new.clone()),
            _ => {}
        }
    }
    let victim = rng.range(0, h.len() as u64) as usize;
    let replacement = rng.pick(&values).clone();
    match rng.range(0, 8) {
        0..=3 => {
            if let Some(ret) = &mut h[victim].ret {
                match &mut ret.output {
                    Output::Get(seen) => *seen = replacement,
                    Output::Rmw(out) => out.old = replacement,
                    Output::Put => {}
                }
            }
        }
        4 => {
            if let Some(Return {
                output: Output::Rmw(out),
                ..
            }) = &mut h[victim].ret
            {
                out.applied = !out.applied;
            }
        }
        5 => {
            let call = h[victim].call;
            if let Some(ret) = &mut h[victim].ret {
                ret.time = if rng.chance(0.5) {
                    call + rng.range(0, ret.time - call + 1)
                } else {
                    ret.time + rng.range(0, 30)
                };
            }
        }
        6 => {
            h.remove(victim);
        }
        _ => h[victim].ret = None,
    }
}

/// Decides linearizability of a small single-key history by trying every
/// order of every subset of the operations that contains all completed
/// ones; pending operations left out never took effect. Independent of the
/// checker: no +infinity returns, no caching, no forced moves.
pub fn brute_force_linearizable(ops: &[Operation]) -> bool {
    assert!(ops.len() <= 10, "brute force is for tiny histories");
    fn extend(ops: &[Operation], placed: &mut Vec<bool>, state: Option<Value>) -> bool {
        if ops
            .iter()
            .zip(placed.iter())
            .all(|(o, &p)| p || o.ret.is_none())
        {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // Everything that returned before this call must already be placed.
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, o)| !placed[j] && o.ret.as_ref().is_some_and(|r| r.time < ops[i].call));
            if blocked {
                continue;
            }
            let next = match (&ops[i].input, ops[i].output()) {
                (Input::Get, Some(Output::Get(seen))) if *seen != state => continue,
                (Input::Get, _) => state.clone(),
                (Input::Put(v), _) => v.clone(),
                (Input::Rmw(op), out) => {
                    let outcome = op.apply(state.as_ref());
                    if let Some(Output::Rmw(seen)) = out
                        && (seen.old != outcome.old || seen.applied != outcome.applied)
                    {
                        continue;
                    }
                    outcome.new
                }
            };
            placed[i] = true;
            if extend(ops, placed, next) {
                return true;
            }
            placed[i] = false;
        }
        false
    }
    extend(ops, &mut vec![false; ops.len()], None)
}
