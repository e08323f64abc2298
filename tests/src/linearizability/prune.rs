//! Dead-end pruning for the search. Plain WGL notices that an operation
//! cannot be placed only when it reaches that operation's return, after
//! trying every order of the operations in between. On a hot key that is
//! exponential in the concurrency. A configuration is cut at once when one
//! of these holds (writer counts from `remaining`, generous, so each rule
//! only ever cuts configurations that truly have no way forward):
//!
//! - starved: a remaining operation observed a value `v` (a Get's result,
//!   an RMW's old value) that is not the current state, and no remaining
//!   operation that can write `v` was called before that reader returned
//!   (none at all, or all too late). That reader can never be placed.
//! - pinned: a remaining reader `g` observed the current state `s`, a
//!   remaining operation `x` that returned before `g` was called cannot run
//!   in `s` without changing it, and no remaining operation that can write
//!   `s` was called before `g` returned. `x` must come before `g`, so the
//!   state leaves `s` before `g` and cannot come back in time.
//! - overlapping zones (Gibbons and Korach 1997, "Testing shared memories",
//!   section 4, applied to the remaining operations): call a value
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
//! The per-value rules look only at values the current candidates (and the
//! first return's operation) read or write, and `pinned` looks a bounded
//! distance ahead: that keeps each check cheap and only cuts less.

use super::model::StateId;
use super::search::{HEAD, NIL, Search};

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
    /// Checks the rules of this module on the current configuration.
    pub(crate) fn dead_end(&mut self) -> Option<DeadEnd> {
        let values = self.window_values();
        if let Some(reader) = self.starved_reader(&values) {
            return Some(DeadEnd {
                decided_by: self.ret_node[reader],
                blocking: reader,
            });
        }
        let reader = match self.pinned_reader() {
            Some(reader) => reader,
            None => self.overlapping_zones(&values)?,
        };
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

    /// The values the candidates and the first return's operation read or
    /// write, other than the current state.
    fn window_values(&mut self) -> Vec<StateId> {
        self.window_stamp += 1;
        let stamp = self.window_stamp;
        let mut values: Vec<StateId> = Vec::new();
        let mut node = self.next[HEAD as usize];
        while node != NIL {
            let op = self.node_op[node as usize] as usize;
            let read = self.remaining_ops.reads(op);
            for &v in read.iter().chain(self.remaining_ops.writes(op)) {
                // Recorded values only: the search's own have no readers.
                let Some(seen) = self.value_stamp.get_mut(v as usize) else {
                    continue;
                };
                if v != self.state && *seen != stamp {
                    *seen = stamp;
                    values.push(v);
                }
            }
            if !self.node_is_call[node as usize] {
                break;
            }
            node = self.next[node as usize];
        }
        values
    }

    /// A reader that can never see its value: of a value no one can write
    /// any more, or (for the window's values) whose writers all come too
    /// late for it.
    fn starved_reader(&mut self, values: &[StateId]) -> Option<usize> {
        if let Some(value) = self.remaining_ops.starved_value(self.state) {
            return self
                .remaining_ops
                .readers_of(value)
                .iter()
                .map(|&op| op as usize)
                .filter(|&op| self.remaining(op))
                .min_by_key(|&op| self.ret_node[op]);
        }
        for &v in values {
            let Some(reader) = self.remaining_ops.first_returning_reader(v) else {
                continue;
            };
            let deadline = self.ret_time(reader);
            if self
                .remaining_ops
                .first_writer_call(v)
                .is_none_or(|call| deadline < call)
            {
                return Some(reader);
            }
        }
        None
    }

    /// The latest remaining reader of `v`.
    fn last_reader(&self, v: StateId) -> Option<usize> {
        self.remaining_ops
            .readers_of(v)
            .iter()
            .rev()
            .map(|&op| op as usize)
            .find(|&op| self.remaining(op))
    }

    /// A remaining reader of the current state that can no longer see it.
    fn pinned_reader(&mut self) -> Option<usize> {
        let s = self.state;
        let reader = self.last_reader(s)?;
        let reader_call = self.call_time(reader);
        if self
            .remaining_ops
            .first_writer_call(s)
            .is_some_and(|call| call <= self.ret_time(reader))
        {
            return None;
        }
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
    fn zone(&mut self, v: StateId) -> Option<Zone> {
        let writer = self.remaining_ops.sole_writer(v)?;
        let mut zone = Zone {
            first_ret: self.ret_time(writer),
            last_call: self.call_time(writer),
            last_caller: writer,
        };
        for &reader in self.remaining_ops.readers_of(v) {
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
    fn overlapping_zones(&mut self, values: &[StateId]) -> Option<usize> {
        let mut zones: Vec<Zone> = Vec::new();
        let s = self.state;
        if !self.remaining_ops.has_writer(s)
            && let Some(reader) = self.last_reader(s)
        {
            // Begun already: it precedes every other cluster.
            zones.push(Zone {
                first_ret: 0,
                last_call: self.call_time(reader),
                last_caller: reader,
            });
        }
        for &v in values {
            zones.extend(self.zone(v));
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
