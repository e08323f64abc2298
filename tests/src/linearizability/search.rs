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
//! Three additions to Porcupine, each exact (the search finds a
//! linearization iff one exists), which keep hot keys with dozens of
//! concurrent clients tractable (`CheckConfig::plain_wgl` turns them off):
//!
//! - Read-only moves. A read-only operation (one that leaves the state
//!   unchanged wherever it is legal: a completed Get, a CAS that reported
//!   failure) legal in the current state is linearized at once, without a
//!   backtrack point. If any linearization of the rest exists from here,
//!   moving that operation to its front keeps every state the same (it
//!   changed nothing where it was), it is legal at the front (it is legal
//!   now), and no remaining operation must precede it because its call
//!   precedes every remaining return. (A Put of the current value is not
//!   read-only: moved away from a point where the state differed, it would
//!   lose its effect.)
//! - Dead ends are cut before the search reaches the return that proves
//!   them (`prune`).
//! - Dead writes (Puts of a value nobody can observe, `model`) are never
//!   branched on: they go just before the next Put linearized (`enter`).

use super::cache::{Cache, Linearized};
use super::model::{ABSENT, KeyModel, StateId, Transition};
use super::prune::DeadEnd;
use super::remaining::Remaining;
use std::time::Instant;

/// Bounds on one search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_states: u64,
    pub(crate) deadline: Option<Instant>,
}

/// What a search does besides deciding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// Search as Porcupine does, without this checker's reductions
    /// (read-only moves, dead-end pruning, dead-write placement): to
    /// cross-check them, and to show the longest prefix plain WGL reaches,
    /// which reads better in explanations.
    pub(crate) plain: bool,
    /// Keep the deepest partial linearization.
    pub(crate) record_partial: bool,
}

impl Options {
    pub(crate) const CHECK: Options = Options {
        plain: false,
        record_partial: false,
    };
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

pub(super) const HEAD: u32 = 0;
pub(super) const NIL: u32 = u32::MAX;

pub(super) struct Frame {
    op: u32,
    state_before: StateId,
    /// Linearized as a state-preserving move: no alternative to try.
    forced: bool,
    /// Where the parent configuration's scan resumes; `None`: after `op`'s
    /// call node.
    resume: Option<u32>,
    /// Dead writes linearized just before `op` (the last ones in `absorbed`).
    absorbed: u32,
}

/// Result of trying to linearize one candidate.
enum Enter {
    Entered,
    Cached,
    OverLimit,
}

pub(super) struct Search<'a> {
    pub(super) model: &'a mut KeyModel,
    pub(super) limits: Limits,
    pub(super) options: Options,
    pub(super) next: Vec<u32>,
    pub(super) prev: Vec<u32>,
    /// Per node (1-based, in time order): its operation and whether it is a call.
    pub(super) node_op: Vec<u32>,
    pub(super) node_is_call: Vec<bool>,
    pub(super) node_time: Vec<u64>,
    pub(super) call_node: Vec<u32>,
    pub(super) ret_node: Vec<u32>,
    pub(super) linearized: Linearized,
    pub(super) remaining_ops: Remaining,
    /// Per value: the last `window_stamp` it was collected under.
    pub(super) value_stamp: Vec<u32>,
    pub(super) window_stamp: u32,
    pub(super) cache: Cache,
    pub(super) stack: Vec<Frame>,
    /// Dead writes placed by the frames on `stack`, in order.
    pub(super) absorbed: Vec<u32>,
    pub(super) state: StateId,
    pub(super) states: u64,
    pub(super) latest_stuck: u32,
    pub(super) partial: Option<Partial>,
}

/// Searches `model` for a linearization. Returns the outcome and the number
/// of configurations explored.
pub(crate) fn search(model: &mut KeyModel, limits: Limits, options: Options) -> (Outcome, u64) {
    let mut s = Search::new(model, limits, options);
    let outcome = s.run();
    (outcome, s.states)
}

impl<'a> Search<'a> {
    fn new(model: &'a mut KeyModel, limits: Limits, options: Options) -> Search<'a> {
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
        let mut node_time = vec![0; nodes];
        let mut call_node = vec![0; n];
        let mut ret_node = vec![0; n];
        for (pos, &(time, is_ret, op)) in events.iter().enumerate() {
            let node = pos as u32 + 1;
            node_time[node as usize] = time;
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
        let remaining_ops = Remaining::new(model);
        let value_stamp = vec![0; model.values.len()];
        Search {
            model,
            limits,
            options,
            next,
            prev,
            node_op,
            node_is_call,
            node_time,
            call_node,
            ret_node,
            linearized: Linearized::new(n, completed),
            remaining_ops,
            value_stamp,
            window_stamp: 0,
            cache: Cache::default(),
            stack: Vec::new(),
            absorbed: Vec::new(),
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
                    // A read-only move only removes a reader, which makes no
                    // rule of `prune` fire that did not fire before it; the
                    // next free move's configuration is checked instead.
                    let after_read = self.stack.last().is_some_and(|f| f.forced);
                    let dead = if self.options.plain || after_read {
                        None
                    } else {
                        self.dead_end()
                    };
                    if let Some(DeadEnd {
                        decided_by,
                        blocking,
                    }) = dead
                    {
                        self.note_stuck(decided_by, blocking);
                        match self.backtrack() {
                            Some(node) => {
                                scan = Some(node);
                                continue;
                            }
                            None => return self.violation(),
                        }
                    }
                    let forced = if self.options.plain {
                        None
                    } else {
                        self.forced_move()
                    };
                    match forced {
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
                // Dead writes are only placed by `enter` or at their return.
                if !self.dead_write(op)
                    && let Some(after) = self.model.step(op as usize, self.state)
                {
                    match self.enter(op, after, false, None) {
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
            // `node` is the first return left: its operation goes now or
            // never. Only a dead write still has a choice here.
            let op = self.node_op[node as usize];
            if self.dead_write(op)
                && let Some(after) = self.model.step(op as usize, self.state)
            {
                match self.enter(op, after, false, Some(node)) {
                    Enter::Entered => continue,
                    Enter::Cached => {}
                    Enter::OverLimit => return Outcome::Unknown,
                }
            }
            self.note_stuck(node, op as usize);
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
                return Some(self.enter(op, self.state, true, None));
            }
            node = self.next[node as usize];
        }
        None
    }

    /// Whether `op` is a dead write the search places specially.
    fn dead_write(&self, op: u32) -> bool {
        !self.options.plain && self.model.ops[op as usize].dead_write
    }

    /// Linearizes `op` (a Put chosen freely first places every dead write
    /// among the candidates just before it), unless the configuration this
    /// leads to was seen before.
    ///
    /// Placing the dead writes there loses nothing: in any linearization
    /// from here, a candidate dead write `w` sits right before some Put
    /// (see `model::unobserved_puts`); moving it earlier, to right before
    /// this Put, changes no state anyone sees, and no operation between the
    /// two places must precede `w`, since each returns after the first
    /// remaining return, which is after `w`'s call.
    fn enter(&mut self, op: u32, after: StateId, forced: bool, resume: Option<u32>) -> Enter {
        let from = self.absorbed.len();
        let is_put = matches!(
            self.model.ops[op as usize].transition,
            Transition::Put { .. }
        );
        if !forced && is_put && !self.dead_write(op) && !self.options.plain {
            let mut node = self.next[HEAD as usize];
            while self.node_is_call[node as usize] {
                let w = self.node_op[node as usize];
                if w != op && self.model.ops[w as usize].dead_write {
                    self.absorbed.push(w);
                }
                node = self.next[node as usize];
            }
        }
        for i in from..self.absorbed.len() {
            self.linearized.toggle(self.absorbed[i] as usize);
        }
        self.linearized.toggle(op as usize);
        if !self.cache.insert(&self.linearized, after) {
            self.linearized.toggle(op as usize);
            for i in from..self.absorbed.len() {
                self.linearized.toggle(self.absorbed[i] as usize);
            }
            self.absorbed.truncate(from);
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
            resume,
            absorbed: (self.absorbed.len() - from) as u32,
        });
        for i in from..self.absorbed.len() {
            let w = self.absorbed[i];
            self.remaining_ops.linearize(w as usize);
            self.lift(w);
        }
        self.remaining_ops.linearize(op as usize);
        self.lift(op);
        self.state = after;
        Enter::Entered
    }

    /// Undoes moves up to the latest one with alternatives; returns the
    /// node where the parent configuration's scan resumes.
    fn backtrack(&mut self) -> Option<u32> {
        while let Some(frame) = self.stack.pop() {
            self.state = frame.state_before;
            self.unlift(frame.op);
            self.remaining_ops.undo(frame.op as usize);
            self.linearized.toggle(frame.op as usize);
            for _ in 0..frame.absorbed {
                let w = self.absorbed.pop().expect("absorbed by this frame");
                self.unlift(w);
                self.remaining_ops.undo(w as usize);
                self.linearized.toggle(w as usize);
            }
            if !frame.forced {
                let after_call = self.next[self.call_node[frame.op as usize] as usize];
                return Some(frame.resume.unwrap_or(after_call));
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

    /// Records a dead end: `blocking` cannot be placed, and everything that
    /// decided it was called before `node`. `violation` keeps the operations
    /// called before the latest such node, which must include every reason.
    fn note_stuck(&mut self, node: u32, blocking: usize) {
        self.latest_stuck = self.latest_stuck.max(node);
        let depth = self.stack.len() + self.absorbed.len();
        if self.options.record_partial
            && self.partial.as_ref().is_none_or(|p| depth > p.steps.len())
        {
            let mut steps = Vec::with_capacity(depth);
            let mut absorbed = self.absorbed.iter();
            for (i, frame) in self.stack.iter().enumerate() {
                for &w in absorbed.by_ref().take(frame.absorbed as usize) {
                    // A dead write's value, overwritten at once by `op`.
                    let Transition::Put { value } = self.model.ops[w as usize].transition else {
                        unreachable!("only Puts are absorbed")
                    };
                    steps.push((w as usize, value));
                }
                // The state after a move is the state before the next one.
                let after = self.stack.get(i + 1).map_or(self.state, |n| n.state_before);
                steps.push((frame.op as usize, after));
            }
            self.partial = Some(Partial { steps, blocking });
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
