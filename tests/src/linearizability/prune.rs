//! Dead-end pruning for the search. Plain WGL notices that an operation
//! cannot be placed only when it reaches that operation's return, after
//! trying every order of the operations in between. On a hot key with
//! unique written values that is exponential in the concurrency. A
//! configuration is cut at once when one of these holds:
//!
//! - starved: a remaining operation observed a value `v` (a Get's result,
//!   an RMW's old value) that is not the current state and that no
//!   remaining operation can write. That reader can never be placed.
//! - pinned: no remaining operation can write the current state `s`, a
//!   remaining reader `g` observed `s`, and a remaining operation `x` that
//!   returned before `g` was called cannot run in `s` without changing it.
//!   `x` must come before `g`, so the state leaves `s` before `g` and never
//!   comes back.
//! - overlapping zones (Gibbons and Korach 1997, "Testing shared memories",
//!   section 4, specialised to the remaining operations): call a value
//!   single-shot if exactly one remaining operation can write it. From that
//!   write to its last remaining reader the state must stay that value, so
//!   the value's remaining operations (its cluster) occupy a contiguous,
//!   state-preserving stretch of the linearization, and two clusters'
//!   stretches are disjoint. Let `f` be the earliest return in a cluster and
//!   `l` its latest reader call. If `f_u < l_v` and `f_v < l_u`, either
//!   order of the stretches puts an operation before one that returned
//!   before it was called: dead. The current state's cluster (when nothing
//!   can rewrite it) has already begun, so it conflicts with any cluster
//!   whose `f` precedes its `l`.
//!
//! Writers are counted generously (a pending CAS as a writer of its new
//! value though it may fail, a pending fetch-and-add as a writer of every
//! integer, nothing for an RMW that only observed): that can only prune
//! less, so pruning stays sound. The zone rule looks only at values the
//! current candidates read or write, and `pinned` looks a bounded distance
//! ahead, which keeps each check cheap and again only prunes less.

use super::model::{KeyModel, StateId, Transition};
use super::search::{HEAD, NIL, Search};

const NONE: u32 = u32::MAX;

/// Per-value counts of the readers and writers not yet linearized.
pub(crate) struct Starvation {
    /// Per op: the value it observed, and the values it may write.
    reads: Vec<Option<StateId>>,
    writes: Vec<Vec<StateId>>,
    /// Per op: a pending fetch-and-add that may write any integer.
    writes_any_integer: Vec<bool>,
    /// Per value: remaining readers and writers, and whether it is an
    /// 8-byte integer.
    readers: Vec<u32>,
    writers: Vec<u32>,
    is_integer: Vec<bool>,
    /// Per value: its readers (in call order) and writers.
    readers_of: Vec<Vec<u32>>,
    writers_of: Vec<Vec<u32>>,
    integer_writers: u32,
    /// Values with remaining readers and no remaining writer, as an
    /// indexed set.
    starved: Vec<StateId>,
    starved_pos: Vec<u32>,
}

impl Starvation {
    pub(crate) fn new(model: &KeyModel) -> Starvation {
        let n = model.ops.len();
        // Impossible outcomes read a value no one writes: one past the
        // table. A value the search interns later may reuse that id; then
        // the sentinel is merely not pruned on in that state, which is
        // sound (the operation still never steps).
        let never = model.values.len() as StateId;
        let values = model.values.len() + 1;
        let mut s = Starvation {
            reads: vec![None; n],
            writes: vec![Vec::new(); n],
            writes_any_integer: vec![false; n],
            readers: vec![0; values],
            writers: vec![0; values],
            is_integer: (0..values)
                .map(|v| (v as StateId) < never && model.values.is_integer(v as StateId))
                .collect(),
            readers_of: vec![Vec::new(); values],
            writers_of: vec![Vec::new(); values],
            integer_writers: 0,
            starved: Vec::new(),
            starved_pos: vec![NONE; values],
        };
        for (op, o) in model.ops.iter().enumerate() {
            let (read, writes) = match &o.transition {
                Transition::Get { observed } => (Some(*observed), Vec::new()),
                Transition::Put { value } => (None, vec![*value]),
                // A read-only RMW "writes" its old value only where the
                // state already is that value: it never restores it.
                Transition::RmwDone { old, new } if old == new => (Some(*old), Vec::new()),
                Transition::RmwDone { old, new } => (Some(*old), vec![*new]),
                Transition::Impossible => (Some(never), Vec::new()),
                Transition::RmwPending {
                    writes,
                    writes_any_integer,
                    ..
                } => {
                    s.writes_any_integer[op] = *writes_any_integer;
                    (None, writes.clone())
                }
            };
            if let Some(r) = read {
                s.readers[r as usize] += 1;
                s.readers_of[r as usize].push(op as u32);
            }
            for &w in &writes {
                s.writers[w as usize] += 1;
                s.writers_of[w as usize].push(op as u32);
            }
            s.reads[op] = read;
            s.writes[op] = writes;
            if s.writes_any_integer[op] {
                s.integer_writers += 1;
            }
        }
        for v in 0..values {
            s.refresh(v as StateId);
        }
        s
    }

    fn is_starved(&self, v: StateId) -> bool {
        let v = v as usize;
        self.readers[v] > 0
            && self.writers[v] == 0
            && !(self.is_integer[v] && self.integer_writers > 0)
    }

    fn refresh(&mut self, v: StateId) {
        let starved = self.is_starved(v);
        let pos = self.starved_pos[v as usize];
        if starved && pos == NONE {
            self.starved_pos[v as usize] = self.starved.len() as u32;
            self.starved.push(v);
        } else if !starved && pos != NONE {
            let last = self.starved.pop().expect("non-empty");
            if last != v {
                self.starved[pos as usize] = last;
                self.starved_pos[last as usize] = pos;
            }
            self.starved_pos[v as usize] = NONE;
        }
    }

    /// Accounts for `op` being linearized (`delta` = -1) or undone (+1).
    fn apply(&mut self, op: usize, linearized: bool) {
        let bump = |count: &mut u32| {
            if linearized { *count -= 1 } else { *count += 1 }
        };
        if let Some(r) = self.reads[op] {
            bump(&mut self.readers[r as usize]);
            self.refresh(r);
        }
        for i in 0..self.writes[op].len() {
            let w = self.writes[op][i];
            bump(&mut self.writers[w as usize]);
            self.refresh(w);
        }
        if self.writes_any_integer[op] {
            let before = self.integer_writers > 0;
            bump(&mut self.integer_writers);
            if before != (self.integer_writers > 0) {
                for v in 0..self.readers.len() {
                    if self.is_integer[v] {
                        self.refresh(v as StateId);
                    }
                }
            }
        }
    }

    pub(crate) fn linearize(&mut self, op: usize) {
        self.apply(op, true);
    }

    pub(crate) fn undo(&mut self, op: usize) {
        self.apply(op, false);
    }

    /// A starved value other than `state`, if any: the configuration is dead.
    pub(crate) fn starved_value(&self, state: StateId) -> Option<StateId> {
        self.starved.iter().copied().find(|&v| v != state)
    }

    /// The readers of `v`, in call order.
    pub(crate) fn readers_of(&self, v: StateId) -> &[u32] {
        self.readers_of.get(v as usize).map_or(&[], Vec::as_slice)
    }

    /// The only remaining operation that can write `v`, if exactly one can.
    fn sole_writer(&self, v: StateId, linearized: &super::cache::Linearized) -> Option<usize> {
        let i = v as usize;
        if i >= self.writers.len()
            || self.writers[i] != 1
            || (self.is_integer[i] && self.integer_writers > 0)
        {
            return None;
        }
        self.writers_of[i]
            .iter()
            .map(|&op| op as usize)
            .find(|&op| !linearized.contains(op))
    }

    /// Whether some remaining operation may write `v`.
    pub(crate) fn has_writer(&self, v: StateId) -> bool {
        let v = v as usize;
        // Values interned during the search have no recorded writer.
        v >= self.writers.len()
            || self.writers[v] > 0
            || (self.is_integer[v] && self.integer_writers > 0)
    }
}

/// A configuration with no way forward: `blocking` can never be placed, and
/// every operation that decided so was called before node `decided_by`.
pub(crate) struct DeadEnd {
    pub(crate) decided_by: u32,
    pub(crate) blocking: usize,
}

/// How far ahead `pinned` looks, in list nodes.
const PIN_LOOKAHEAD: usize = 256;

/// A cluster's zone: earliest return `first_ret`, latest reader call
/// `last_call`, and the operation making that call.
#[derive(Clone, Copy)]
struct Zone {
    first_ret: u64,
    last_call: u64,
    last_caller: usize,
}

impl Search<'_> {
    /// Checks the three rules of this module on the current configuration.
    pub(crate) fn dead_end(&mut self) -> Option<DeadEnd> {
        if let Some(reader) = self.starved_reader() {
            return Some(DeadEnd {
                decided_by: self.ret_node[reader],
                blocking: reader,
            });
        }
        let reader = self.pinned_reader().or_else(|| self.overlapping_zones())?;
        Some(DeadEnd {
            decided_by: self.call_node[reader] + 1,
            blocking: reader,
        })
    }

    fn remaining(&self, op: usize) -> bool {
        !self.linearized.contains(op)
    }

    fn call_time(&self, op: usize) -> u64 {
        self.node_time[self.call_node[op] as usize]
    }

    fn ret_time(&self, op: usize) -> u64 {
        self.node_time[self.ret_node[op] as usize]
    }

    /// Of the readers of a starved value, the one that must be placed first.
    fn starved_reader(&self) -> Option<usize> {
        let value = self.starvation.starved_value(self.state)?;
        self.starvation
            .readers_of(value)
            .iter()
            .map(|&op| op as usize)
            .filter(|&op| self.remaining(op))
            .min_by_key(|&op| self.ret_node[op])
    }

    /// The latest remaining reader of `v`.
    fn last_reader(&self, v: StateId) -> Option<usize> {
        self.starvation
            .readers_of(v)
            .iter()
            .rev()
            .map(|&op| op as usize)
            .find(|&op| self.remaining(op))
    }

    /// A remaining reader of the current state that can no longer see it.
    fn pinned_reader(&mut self) -> Option<usize> {
        let s = self.state;
        if self.starvation.has_writer(s) {
            return None;
        }
        let reader = self.last_reader(s)?;
        let reader_call = self.call_time(reader);
        let mut node = self.next[HEAD as usize];
        for _ in 0..PIN_LOOKAHEAD {
            if node == NIL || self.node_time[node as usize] >= reader_call {
                break;
            }
            if !self.node_is_call[node as usize] {
                let x = self.node_op[node as usize] as usize;
                if self.model.step(x, s) != Some(s) {
                    return Some(reader);
                }
            }
            node = self.next[node as usize];
        }
        None
    }

    /// The zone of single-shot value `v` over its remaining operations.
    fn zone(&self, v: StateId) -> Option<Zone> {
        let writer = self.starvation.sole_writer(v, &self.linearized)?;
        let mut zone = Zone {
            first_ret: self.ret_time(writer),
            last_call: self.call_time(writer),
            last_caller: writer,
        };
        for &reader in self.starvation.readers_of(v) {
            let reader = reader as usize;
            if self.remaining(reader) {
                zone.first_ret = zone.first_ret.min(self.ret_time(reader));
                if self.call_time(reader) >= zone.last_call {
                    zone.last_call = self.call_time(reader);
                    zone.last_caller = reader;
                }
            }
        }
        Some(zone)
    }

    /// Two clusters that cannot both fit: returns the latest-called
    /// operation involved.
    fn overlapping_zones(&self) -> Option<usize> {
        let mut zones: Vec<Zone> = Vec::new();
        let mut seen: Vec<StateId> = vec![self.state];
        let s = self.state;
        if !self.starvation.has_writer(s)
            && let Some(reader) = self.last_reader(s)
        {
            // Begun already: it precedes every other cluster.
            zones.push(Zone {
                first_ret: 0,
                last_call: self.call_time(reader),
                last_caller: reader,
            });
        }
        // The candidates and the first return's operation.
        let mut node = self.next[HEAD as usize];
        while node != NIL {
            let op = self.node_op[node as usize] as usize;
            let writes = self.starvation.writes[op].iter().copied();
            for v in self.starvation.reads[op].into_iter().chain(writes) {
                if !seen.contains(&v) {
                    seen.push(v);
                    zones.extend(self.zone(v));
                }
            }
            if !self.node_is_call[node as usize] {
                break;
            }
            node = self.next[node as usize];
        }
        first_overlap(&mut zones)
    }
}

/// Finds zones `u`, `v` with `u.first_ret < v.last_call` and
/// `v.first_ret < u.last_call`; returns the later of their last callers.
fn first_overlap(zones: &mut [Zone]) -> Option<usize> {
    zones.sort_unstable_by_key(|z| z.first_ret);
    // prefix_max[i]: the zone with the latest `last_call` among zones[..=i].
    let mut prefix_max: Vec<usize> = Vec::with_capacity(zones.len());
    for (i, z) in zones.iter().enumerate() {
        let best = match prefix_max.last() {
            Some(&j) if zones[j].last_call >= z.last_call => j,
            _ => i,
        };
        prefix_max.push(best);
    }
    // Pairs are symmetric, so look only at partners earlier in the order;
    // those with `first_ret < v.last_call` form a prefix.
    for (i, v) in zones.iter().enumerate() {
        let prefix = zones[..i].partition_point(|u| u.first_ret < v.last_call);
        if prefix == 0 {
            continue;
        }
        let u = &zones[prefix_max[prefix - 1]];
        if v.first_ret < u.last_call {
            let later = if u.last_call > v.last_call { u } else { v };
            return Some(later.last_caller);
        }
    }
    None
}
