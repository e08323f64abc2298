//! The EPaxos executor (SOSP'13 section 4.3.2; PROTOCOL.md 4 and 7): the
//! dependency graph over committed instances, Tarjan's strongly connected
//! components (`plan`), components executed in reverse topological order
//! and, inside one, by `(seq, replica, slot)`.
//!
//! Edges: committed RMW `g` on key `k` with deps `r -> w` points at every
//! not-yet-executed instance `(r, s)`, `s <= w`, whose command is on `k`.
//! An instance whose command this replica does not know yet (a gap in
//! `r`'s slots) might be on `k`, and a known one on `k` that is not
//! committed has no final edges yet: both block `g` and everything that
//! reaches it. Missing slots are asked from peers at once (`catch_up`);
//! every blocker also gets a bounded wait (`recovery_timeout_us`) after
//! which explicit-prepare recovery starts. The executor only runs when
//! something was committed, so it never spins; and a blocked instance
//! remembers one blocker it reaches (its witness) and is looked at again
//! only once that witness commits, so a long catch-up costs work in
//! proportion to what executes, not to what waits.

use crate::execute::{ExecContext, reply_for};
use crate::instance::{Instance, InstanceId};
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosPersist, ExecutionRecord};
use crate::plan::{Plan, plan};
use registers::{Effect, Key, RegisterStore, ReplicaId, Time, WriterId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// Per replica: the highest slot any known instance depends on.
    /// Below it, an unknown slot is a gap to fill (`catch_up`).
    max_dep: Vec<Option<u64>>,
    /// Committed, not executed, and known to reach this uncommitted
    /// instance (its witness) in the last pass that looked at it.
    blocked_on: HashMap<InstanceId, InstanceId>,
    /// The reverse: witness -> the instances waiting on it.
    waiting_on: HashMap<InstanceId, Vec<InstanceId>>,
}

impl ExecState {
    pub(crate) fn new(replicas: u32) -> ExecState {
        ExecState {
            pending_by_key: HashMap::new(),
            committed_pending: BTreeSet::new(),
            contig_known: vec![0; replicas as usize],
            max_dep: vec![None; replicas as usize],
            blocked_on: HashMap::new(),
            waiting_on: HashMap::new(),
        }
    }

    pub(crate) fn note_deps(&mut self, deps: &crate::instance::Deps) {
        for (r, w) in deps.iter() {
            if let Some(m) = self.max_dep.get_mut(r.0 as usize) {
                *m = Some(m.map_or(w, |m| m.max(w)));
            }
        }
    }

    /// Per replica with a gap below a known dependency: its first
    /// unknown slot.
    pub(crate) fn gap_starts(&self) -> Vec<InstanceId> {
        (0..self.contig_known.len())
            .filter_map(|r| {
                let start = self.contig_known[r];
                let w = self.max_dep[r]?;
                (start <= w).then(|| InstanceId::new(ReplicaId(r as u32), start))
            })
            .collect()
    }

    /// `id` committed: whatever waited on it may be able to run now.
    pub(crate) fn unblock(&mut self, id: InstanceId) {
        for n in self.waiting_on.remove(&id).unwrap_or_default() {
            if self.blocked_on.get(&n) == Some(&id) {
                self.blocked_on.remove(&n);
            }
        }
    }

    fn block(&mut self, n: InstanceId, witness: InstanceId) {
        if self.blocked_on.insert(n, witness) != Some(witness) {
            self.waiting_on.entry(witness).or_default().push(n);
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

impl Epaxos {
    /// Successors of committed instance `id` in the dependency graph, or
    /// what blocks it (gaps first: they are cheap to find and, after an
    /// outage, the usual reason).
    fn successors(&self, id: InstanceId) -> Result<Vec<InstanceId>, Vec<InstanceId>> {
        if let Some(&w) = self.exec.blocked_on.get(&id) {
            return Err(vec![w]);
        }
        let Some(attrs) = self.instances.get(&id).and_then(|i| i.attrs.as_ref()) else {
            return Err(vec![id]);
        };
        let Some(key) = attrs.cmd.key() else {
            return Ok(Vec::new());
        };
        let mut blockers = Vec::new();
        for (r, w) in attrs.deps.iter() {
            self.gaps(r, w, &mut blockers);
        }
        if !blockers.is_empty() {
            return Err(blockers);
        }
        let mut succ = Vec::new();
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
        }
        if blockers.is_empty() {
            Ok(succ)
        } else {
            Err(blockers)
        }
    }

    /// Slots of `r` up to `w` whose command is unknown here: the first
    /// few, and the last one (the witness that resolves last when a
    /// catch-up fills the gap in slot order).
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
            .map(|(id, _)| id.slot);
        // `w + 1` ends the scan (absent when `w == u64::MAX`).
        for next_known in known.chain(w.checked_add(1)) {
            while let Some(e) = expect.filter(|e| *e < next_known && *e <= w) {
                if found == MAX_GAP_BLOCKERS {
                    break;
                }
                blockers.push(InstanceId::new(r, e));
                found += 1;
                expect = e.checked_add(1);
            }
            if found == MAX_GAP_BLOCKERS {
                break;
            }
            expect = next_known.checked_add(1);
        }
        // `w == u64::MAX`: no sentinel ended the chain; report what is left.
        while let Some(e) = expect.filter(|e| *e <= w && found < MAX_GAP_BLOCKERS) {
            blockers.push(InstanceId::new(r, e));
            found += 1;
            expect = e.checked_add(1);
        }
        if found > 0
            && let Some(last) = self.last_gap(r, start, w)
            && blockers.last() != Some(&last)
        {
            blockers.push(last);
        }
    }

    /// The highest slot of `r` in `start..=w` whose command is unknown.
    fn last_gap(&self, r: ReplicaId, start: u64, w: u64) -> Option<InstanceId> {
        let mut expect = w;
        let known_tail = self
            .instances
            .range(InstanceId::new(r, start)..=InstanceId::new(r, w))
            .rev()
            .filter(|(_, i)| i.is_known());
        for (id, _) in known_tail {
            if id.slot != expect {
                break;
            }
            if expect == start {
                return None;
            }
            expect -= 1;
        }
        Some(InstanceId::new(r, expect))
    }

    /// Executes everything that can be executed now, and arms the bounded
    /// wait for whatever blocks the rest.
    pub(crate) fn try_execute(
        &mut self,
        now: Time,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        // Instances still waiting on an uncommitted witness are skipped:
        // nothing they reach has changed in a way that could free them.
        let starts: Vec<InstanceId> = self
            .exec
            .committed_pending
            .iter()
            .filter(|id| !self.exec.blocked_on.contains_key(id))
            .copied()
            .collect();
        let mut visits = 0;
        let Plan {
            sccs,
            blocked,
            blockers,
        } = plan(starts, |id| {
            visits += 1;
            self.successors(id)
        });
        self.stats.executor_visits += visits;
        for (n, witness) in blocked {
            // A witness is uncommitted by construction; a committed one
            // would never release `n`, so it is not recorded.
            let open = !self
                .instances
                .get(&witness)
                .is_some_and(Instance::is_committed);
            if open && self.exec.committed_pending.contains(&n) {
                self.exec.block(n, witness);
            }
        }
        self.ask_catch_up(now, out);
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
