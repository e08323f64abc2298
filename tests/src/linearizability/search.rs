//! The Wing-Gong/Lowe search over one key's history (Wing and Gong 1993;
//! Lowe 2017, "Testing for linearizability", section 3; Porcupine's
//! `checkSingle`).
//!
//! Calls and returns form a doubly linked list in time order. The search
//! repeatedly linearizes an operation whose call precedes the first return
//! still in the list, lifting its two entries out; reaching a return means
//! that operation cannot be placed here, so it backtracks. Configurations
//! (linearized set, state) already explored are cached and not explored
//! again. Operations that never returned get their return at +infinity
//! (see the module docs of `linearizability` for why that is exact).
//!
//! One addition to Porcupine: a read-only operation (one that leaves the
//! state unchanged wherever it is legal: a completed Get, a CAS that
//! reported failure) that is legal in the current state is linearized at
//! once, without a backtrack point. If any linearization of the rest exists
//! from here, moving that operation to its front keeps every state the same
//! (it changed nothing where it was), it is legal at the front (it is legal
//! now), and no remaining operation must precede it because its call
//! precedes every remaining return. This keeps read-heavy hot keys from
//! branching on reads. (A Put of the current value is not read-only: moved
//! away from a point where the state differed, it would lose its effect.)

use super::cache::{Cache, Linearized};
use super::model::{ABSENT, KeyModel, StateId};
use std::time::Instant;

/// Bounds on one search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_states: u64,
    pub(crate) deadline: Option<Instant>,
}

/// How one search ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Linearizable,
    Violation(Failure),
    /// The limits were hit first.
    Unknown,
}

/// A failed search.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The operations (indices into `KeyModel::ops`) the search ever
    /// considered: those called before the latest return it got stuck at.
    /// Searching only them fails in exactly the same way, so the rest can
    /// be dropped from the explanation.
    pub(crate) relevant: Vec<usize>,
    /// The deepest partial linearization, when asked for.
    pub(crate) partial: Option<Partial>,
}

/// The longest linearizable prefix the search found (Porcupine's partial
/// linearizations).
#[derive(Clone, Debug)]
pub(crate) struct Partial {
    /// Operations in linearization order with the state after each.
    pub(crate) steps: Vec<(usize, StateId)>,
    /// The operation whose return was reached without it being placeable.
    pub(crate) blocking: usize,
}

const HEAD: u32 = 0;
const NIL: u32 = u32::MAX;

struct Frame {
    op: u32,
    state_before: StateId,
    /// Linearized as a state-preserving move: no alternative to try.
    forced: bool,
}

/// Result of trying to linearize one candidate.
enum Enter {
    Entered,
    Cached,
    OverLimit,
}

struct Search<'a> {
    model: &'a mut KeyModel,
    limits: Limits,
    record_partial: bool,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per node (1-based, in time order): its operation and whether it is a call.
    node_op: Vec<u32>,
    node_is_call: Vec<bool>,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
    linearized: Linearized,
    cache: Cache,
    stack: Vec<Frame>,
    state: StateId,
    states: u64,
    latest_stuck: u32,
    partial: Option<Partial>,
}

/// Searches `model` for a linearization. Returns the outcome and the number
/// of configurations explored.
pub(crate) fn search(model: &mut KeyModel, limits: Limits, record_partial: bool) -> (Outcome, u64) {
    let mut s = Search::new(model, limits, record_partial);
    let outcome = s.run();
    (outcome, s.states)
}

impl<'a> Search<'a> {
    fn new(model: &'a mut KeyModel, limits: Limits, record_partial: bool) -> Search<'a> {
        let n = model.ops.len();
        // Calls before returns at equal times: touching operations are concurrent.
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        for (i, op) in model.ops.iter().enumerate() {
            events.push((op.call, false, i as u32));
            events.push((op.ret.unwrap_or(u64::MAX), true, i as u32));
        }
        events.sort_unstable();
        let nodes = 2 * n + 1;
        let mut node_op = vec![0; nodes];
        let mut node_is_call = vec![false; nodes];
        let mut call_node = vec![0; n];
        let mut ret_node = vec![0; n];
        for (pos, &(_, is_ret, op)) in events.iter().enumerate() {
            let node = pos as u32 + 1;
            node_op[node as usize] = op;
            node_is_call[node as usize] = !is_ret;
            if is_ret {
                ret_node[op as usize] = node;
            } else {
                call_node[op as usize] = node;
            }
        }
        let next = (0..nodes as u32)
            .map(|i| if i + 1 < nodes as u32 { i + 1 } else { NIL })
            .collect();
        let prev = (0..nodes as u32).map(|i| i.wrapping_sub(1)).collect();
        let completed = model.completed();
        Search {
            model,
            limits,
            record_partial,
            next,
            prev,
            node_op,
            node_is_call,
            call_node,
            ret_node,
            linearized: Linearized::new(n, completed),
            cache: Cache::default(),
            stack: Vec::new(),
            state: ABSENT,
            states: 0,
            latest_stuck: 0,
            partial: None,
        }
    }

    fn run(&mut self) -> Outcome {
        // `Some(node)`: scanning candidates from `node` in the current
        // configuration; `None`: a configuration just entered.
        let mut scan: Option<u32> = None;
        loop {
            let mut node = match scan {
                Some(node) => node,
                None => {
                    if self.next[HEAD as usize] == NIL {
                        return Outcome::Linearizable;
                    }
                    match self.forced_move() {
                        Some(Enter::Entered) => continue,
                        Some(Enter::OverLimit) => return Outcome::Unknown,
                        // A state-preserving move leads somewhere already
                        // explored and failed, so this configuration fails.
                        Some(Enter::Cached) => match self.backtrack() {
                            Some(node) => {
                                scan = Some(node);
                                continue;
                            }
                            None => return self.violation(),
                        },
                        None => self.next[HEAD as usize],
                    }
                }
            };
            scan = None;
            let mut entered = false;
            while self.node_is_call[node as usize] {
                let op = self.node_op[node as usize];
                if let Some(after) = self.model.step(op as usize, self.state) {
                    match self.enter(op, after, false) {
                        Enter::Entered => {
                            entered = true;
                            break;
                        }
                        Enter::Cached => {}
                        Enter::OverLimit => return Outcome::Unknown,
                    }
                }
                node = self.next[node as usize];
            }
            if entered {
                continue;
            }
            // `node` is the first return left: its operation cannot be placed.
            self.note_stuck(node);
            match self.backtrack() {
                Some(node) => scan = Some(node),
                None => return self.violation(),
            }
        }
    }

    /// Linearizes the first read-only candidate legal in the current state.
    fn forced_move(&mut self) -> Option<Enter> {
        let mut node = self.next[HEAD as usize];
        while self.node_is_call[node as usize] {
            let op = self.node_op[node as usize];
            if self.model.is_read_only(op as usize)
                && self.model.step(op as usize, self.state) == Some(self.state)
            {
                return Some(self.enter(op, self.state, true));
            }
            node = self.next[node as usize];
        }
        None
    }

    fn enter(&mut self, op: u32, after: StateId, forced: bool) -> Enter {
        self.linearized.toggle(op as usize);
        if !self.cache.insert(&self.linearized, after) {
            self.linearized.toggle(op as usize);
            return Enter::Cached;
        }
        self.states += 1;
        if self.states > self.limits.max_states
            || (self.states.is_multiple_of(1024)
                && self.limits.deadline.is_some_and(|d| Instant::now() >= d))
        {
            return Enter::OverLimit;
        }
        self.stack.push(Frame {
            op,
            state_before: self.state,
            forced,
        });
        self.state = after;
        self.lift(op);
        Enter::Entered
    }

    /// Undoes moves up to the latest one with alternatives; returns the
    /// node after it, where the parent configuration's scan resumes.
    fn backtrack(&mut self) -> Option<u32> {
        while let Some(frame) = self.stack.pop() {
            self.linearized.toggle(frame.op as usize);
            self.state = frame.state_before;
            self.unlift(frame.op);
            if !frame.forced {
                return Some(self.next[self.call_node[frame.op as usize] as usize]);
            }
        }
        None
    }

    fn lift(&mut self, op: u32) {
        for node in [self.call_node[op as usize], self.ret_node[op as usize]] {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = n;
            if n != NIL {
                self.prev[n as usize] = p;
            }
        }
    }

    /// Reverses `lift`: the lifted nodes kept their links (dancing links).
    fn unlift(&mut self, op: u32) {
        for node in [self.ret_node[op as usize], self.call_node[op as usize]] {
            let (p, n) = (self.prev[node as usize], self.next[node as usize]);
            self.next[p as usize] = node;
            if n != NIL {
                self.prev[n as usize] = node;
            }
        }
    }

    fn note_stuck(&mut self, ret: u32) {
        self.latest_stuck = self.latest_stuck.max(ret);
        let depth = self.stack.len();
        if self.record_partial && self.partial.as_ref().is_none_or(|p| depth > p.steps.len()) {
            // The state after a move is the state before the next one.
            let steps = self
                .stack
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let after = self.stack.get(i + 1).map_or(self.state, |n| n.state_before);
                    (f.op as usize, after)
                })
                .collect();
            self.partial = Some(Partial {
                steps,
                blocking: self.node_op[ret as usize] as usize,
            });
        }
    }

    fn violation(&mut self) -> Outcome {
        let relevant = (0..self.model.ops.len())
            .filter(|&op| self.call_node[op] < self.latest_stuck)
            .collect();
        Outcome::Violation(Failure {
            relevant,
            partial: self.partial.take(),
        })
    }
}
