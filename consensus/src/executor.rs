//! The EPaxos executor (SOSP'13 section 4.3.2; PROTOCOL.md 4 and 7): the
//! dependency graph over committed instances, Tarjan's strongly connected
//! components (iterative, so no recursion depth), components executed in
//! reverse topological order and, inside one, by `(seq, replica, slot)`.
//!
//! Edges: committed RMW `g` on key `k` with deps `r -> w` points at every
//! not-yet-executed instance `(r, s)`, `s <= w`, whose command is on `k`.
//! An instance whose command this replica does not know yet (a gap in
//! `r`'s slots) might be on `k`, and a known one on `k` that is not
//! committed has no final edges yet: both block `g` and everything that
//! reaches it. Blockers get a bounded wait (`recovery_timeout_us`) after
//! which explicit-prepare recovery starts; the executor itself only runs
//! when something was committed or recovered, so it never spins.

use crate::execute::{ExecContext, reply_for};
use crate::instance::{Instance, InstanceId};
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosPersist, ExecutionRecord};
use registers::{Effect, Key, RegisterStore, ReplicaId, Time, WriterId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;

/// Unknown slots reported per dependency gap in one pass (recovering the
/// first few is enough to make progress; the rest follow).
const MAX_GAP_BLOCKERS: usize = 4;

/// The executor's view of the instance space.
#[derive(Clone, Debug)]
pub(crate) struct ExecState {
    /// Per key and replica: slots known to carry a command on the key and
    /// not executed here yet.
    pending_by_key: HashMap<Key, BTreeMap<ReplicaId, BTreeSet<u64>>>,
    /// Committed here, not executed yet.
    pub committed_pending: BTreeSet<InstanceId>,
    /// Per replica: every slot below this one has a known command.
    contig_known: Vec<u64>,
}

impl ExecState {
    pub(crate) fn new(replicas: u32) -> ExecState {
        ExecState {
            pending_by_key: HashMap::new(),
            committed_pending: BTreeSet::new(),
            contig_known: vec![0; replicas as usize],
        }
    }

    pub(crate) fn remember(&mut self, id: InstanceId, key: &Key) {
        self.pending_by_key
            .entry(key.clone())
            .or_default()
            .entry(id.replica)
            .or_default()
            .insert(id.slot);
    }

    pub(crate) fn forget(&mut self, id: InstanceId, key: &Key) {
        if let Some(per_replica) = self.pending_by_key.get_mut(key) {
            if let Some(slots) = per_replica.get_mut(&id.replica) {
                slots.remove(&id.slot);
                if slots.is_empty() {
                    per_replica.remove(&id.replica);
                }
            }
            if per_replica.is_empty() {
                self.pending_by_key.remove(key);
            }
        }
    }

    pub(crate) fn advance_contig(
        &mut self,
        r: ReplicaId,
        instances: &BTreeMap<InstanceId, Instance>,
    ) {
        let Some(c) = self.contig_known.get_mut(r.0 as usize) else {
            return;
        };
        while instances
            .get(&InstanceId::new(r, *c))
            .is_some_and(Instance::is_known)
        {
            *c += 1;
        }
    }
}

/// Outcome of one planning pass: components ready to execute, in order,
/// and the instances that blocked the rest.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan<N> {
    pub sccs: Vec<Vec<N>>,
    pub blockers: BTreeSet<N>,
}

struct Frame<N> {
    node: N,
    succ: Vec<N>,
    next: usize,
}

/// Tarjan's bookkeeping, shared by every start node of one pass.
struct Tarjan<N> {
    index: HashMap<N, usize>,
    low: HashMap<N, usize>,
    on_stack: HashSet<N>,
    blocked: HashSet<N>,
    stack: Vec<N>,
    calls: Vec<Frame<N>>,
    counter: usize,
}

impl<N: Copy + Ord + Hash> Tarjan<N> {
    /// Starts visiting `n`; false if `n` is blocked.
    fn visit(&mut self, n: N, succ: Result<Vec<N>, Vec<N>>, blockers: &mut BTreeSet<N>) -> bool {
        match succ {
            Ok(s) => {
                self.index.insert(n, self.counter);
                self.low.insert(n, self.counter);
                self.counter += 1;
                self.stack.push(n);
                self.on_stack.insert(n);
                self.calls.push(Frame {
                    node: n,
                    succ: s,
                    next: 0,
                });
                true
            }
            Err(b) => {
                blockers.extend(b);
                self.blocked.insert(n);
                false
            }
        }
    }

    fn lower(&mut self, v: N, to: usize) {
        if let Some(l) = self.low.get_mut(&v) {
            *l = (*l).min(to);
        }
    }

    /// Every node still on the call stack or Tarjan's stack reaches the
    /// blocker: none of them can execute in this pass.
    fn block_all(&mut self) {
        for f in self.calls.drain(..) {
            self.blocked.insert(f.node);
        }
        for x in self.stack.drain(..) {
            self.on_stack.remove(&x);
            self.blocked.insert(x);
        }
    }
}

/// Iterative Tarjan from every start node in order. `succ(n)` gives the
/// successors of `n`, or the nodes blocking it; a blocked node blocks
/// every node that reaches it. Components come out in reverse topological
/// order (dependencies first), each unsorted.
pub(crate) fn plan<N, F>(starts: impl IntoIterator<Item = N>, mut succ: F) -> Plan<N>
where
    N: Copy + Ord + Hash,
    F: FnMut(N) -> Result<Vec<N>, Vec<N>>,
{
    let mut t = Tarjan {
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: HashSet::new(),
        blocked: HashSet::new(),
        stack: Vec::new(),
        calls: Vec::new(),
        counter: 0,
    };
    let mut out = Plan {
        sccs: Vec::new(),
        blockers: BTreeSet::new(),
    };
    for start in starts {
        if t.index.contains_key(&start) || t.blocked.contains(&start) {
            continue;
        }
        if !t.visit(start, succ(start), &mut out.blockers) {
            continue;
        }
        while let Some(top) = t.calls.last_mut() {
            if top.next < top.succ.len() {
                let w = top.succ[top.next];
                top.next += 1;
                let v = top.node;
                if t.blocked.contains(&w) {
                    t.block_all();
                } else if !t.index.contains_key(&w) {
                    if !t.visit(w, succ(w), &mut out.blockers) {
                        t.block_all();
                    }
                } else if t.on_stack.contains(&w) {
                    let iw = t.index[&w];
                    t.lower(v, iw);
                }
                continue;
            }
            let Some(done) = t.calls.pop() else { break };
            let v = done.node;
            let lv = t.low[&v];
            if lv == t.index[&v] {
                let mut scc = Vec::new();
                while let Some(x) = t.stack.pop() {
                    t.on_stack.remove(&x);
                    scc.push(x);
                    if x == v {
                        break;
                    }
                }
                out.sccs.push(scc);
            }
            if let Some(parent) = t.calls.last().map(|f| f.node) {
                t.lower(parent, lv);
            }
        }
    }
    out
}

impl Epaxos {
    /// Successors of committed instance `id` in the dependency graph, or
    /// what blocks it.
    fn successors(&self, id: InstanceId) -> Result<Vec<InstanceId>, Vec<InstanceId>> {
        let Some(attrs) = self.instances.get(&id).and_then(|i| i.attrs.as_ref()) else {
            return Err(vec![id]);
        };
        let Some(key) = attrs.cmd.key() else {
            return Ok(Vec::new());
        };
        let mut succ = Vec::new();
        let mut blockers = Vec::new();
        let pending = self.exec.pending_by_key.get(key);
        for (r, w) in attrs.deps.iter() {
            if let Some(slots) = pending.and_then(|p| p.get(&r)) {
                for &s in slots.range(..=w) {
                    let d = InstanceId::new(r, s);
                    if d == id {
                        continue;
                    }
                    match self.instances.get(&d) {
                        Some(i) if i.is_committed() => succ.push(d),
                        _ => blockers.push(d),
                    }
                }
            }
            self.gaps(r, w, &mut blockers);
        }
        if blockers.is_empty() {
            Ok(succ)
        } else {
            Err(blockers)
        }
    }

    /// Slots of `r` up to `w` whose command is unknown here.
    fn gaps(&self, r: ReplicaId, w: u64, blockers: &mut Vec<InstanceId>) {
        let Some(&start) = self.exec.contig_known.get(r.0 as usize) else {
            return;
        };
        if start > w {
            return;
        }
        let mut found = 0;
        let mut expect = Some(start);
        let known = self
            .instances
            .range(InstanceId::new(r, start)..=InstanceId::new(r, w))
            .filter(|(_, i)| i.is_known())
            .map(|(id, _)| id.slot)
            .chain(w.checked_add(1));
        for next_known in known {
            while let Some(e) = expect.filter(|e| *e < next_known && *e <= w) {
                if found == MAX_GAP_BLOCKERS {
                    return;
                }
                blockers.push(InstanceId::new(r, e));
                found += 1;
                expect = e.checked_add(1);
            }
            expect = next_known.checked_add(1);
        }
        // `w == u64::MAX`: the chain had no sentinel; report what is left.
        while let Some(e) = expect.filter(|e| *e <= w && found < MAX_GAP_BLOCKERS) {
            blockers.push(InstanceId::new(r, e));
            found += 1;
            expect = e.checked_add(1);
        }
    }

    /// Executes everything that can be executed now, and arms the bounded
    /// wait for whatever blocks the rest.
    pub(crate) fn try_execute(
        &mut self,
        now: Time,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let starts: Vec<InstanceId> = self.exec.committed_pending.iter().copied().collect();
        let Plan { sccs, blockers } = plan(starts, |id| self.successors(id));
        for b in blockers {
            self.arm_recovery(now, b, out);
        }
        let mut reproposals = Vec::new();
        for mut scc in sccs {
            scc.sort_by_key(|id| {
                let seq = self
                    .instances
                    .get(id)
                    .and_then(|i| i.attrs.as_ref())
                    .map_or(0, |a| a.seq);
                (seq, id.replica, id.slot)
            });
            for id in scc {
                if let Some(again) = self.execute_one(id, store, out) {
                    reproposals.push(again);
                }
            }
        }
        for a in reproposals {
            self.start_proposal(now, a.op, a.cmd, store, out);
        }
    }

    /// Executes one committed instance; returns the client op to propose
    /// again if recovery turned this replica's own instance into a no-op.
    fn execute_one(
        &mut self,
        id: InstanceId,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) -> Option<crate::reply::Awaiting> {
        let inst = self.instances.get_mut(&id)?;
        let attrs = inst.attrs.clone()?;
        debug_assert!(
            inst.is_committed() && !inst.executed,
            "executing {id:?} twice"
        );
        inst.executed = true;
        self.exec.committed_pending.remove(&id);
        if let Some(k) = attrs.cmd.key() {
            self.exec.forget(id, k);
        }
        let ctx = ExecContext {
            every_op: self.cfg.every_op,
            writer: WriterId::new(id.replica, id.slot),
        };
        let result = self.rmw.execute(&attrs.cmd, &attrs.base, ctx, store);
        if matches!(result, crate::messages::ExecResult::Duplicate(_)) {
            self.stats.duplicates_suppressed += 1;
        }
        self.stats.executed += 1;
        let reply = reply_for(&attrs.cmd, &result);
        out.push(Effect::Persist(EpaxosPersist::Executed(ExecutionRecord {
            inst: id,
            result,
        })));
        match reply {
            Some(reply) if id.replica == self.cfg.replica => {
                self.executed_locally(id, reply, out);
                None
            }
            // EPaxos-all leaders answer after their own execution: no
            // notices needed.
            Some(_) if self.cfg.every_op => None,
            Some(_) => {
                self.send(id.replica, EpaxosMsg::Executed { inst: id }, out);
                None
            }
            None => {
                let lost = self.awaiting.remove(&id)?;
                self.in_flight.remove(&lost.op);
                Some(lost)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &'a [(u32, &'a [u32])]) -> impl Fn(u32) -> Result<Vec<u32>, Vec<u32>> + 'a {
        move |n| {
            Ok(edges
                .iter()
                .find(|(m, _)| *m == n)
                .map(|(_, s)| s.to_vec())
                .unwrap_or_default())
        }
    }

    #[test]
    fn components_come_out_dependencies_first() {
        // 1 -> 2 -> 3 -> 2, 3 -> 4
        let g = [(1, &[2][..]), (2, &[3][..]), (3, &[2, 4][..]), (4, &[][..])];
        let p = plan([1, 2, 3, 4], graph(&g));
        let mut sccs: Vec<Vec<u32>> = p.sccs;
        for s in &mut sccs {
            s.sort();
        }
        assert_eq!(sccs, vec![vec![4], vec![2, 3], vec![1]]);
        assert!(p.blockers.is_empty());
    }

    #[test]
    fn a_blocker_blocks_everything_that_reaches_it_and_nothing_else() {
        // 1 -> 2 -> 3(blocked by 99); 2 -> 1 (cycle); 5 -> 6
        let succ = |n: u32| match n {
            1 => Ok(vec![2]),
            2 => Ok(vec![1, 3]),
            3 => Err(vec![99]),
            5 => Ok(vec![6]),
            4 => Ok(vec![2]),
            _ => Ok(vec![]),
        };
        let p = plan([1, 4, 5], succ);
        assert_eq!(p.sccs, vec![vec![6], vec![5]]);
        assert_eq!(p.blockers, BTreeSet::from([99]));
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let succ = |n: u32| Ok(if n > 0 { vec![n - 1] } else { vec![] });
        let p = plan([200_000u32], succ);
        assert_eq!(p.sccs.len(), 200_001);
        assert_eq!(p.sccs[0], vec![0]);
    }
}
