//! One planning pass of the executor: iterative Tarjan (no recursion
//! depth) over a graph given by a successor function that may instead
//! report what blocks a node. Components come out in reverse topological
//! order; every node that reaches a blocker is blocked too, and is given
//! one *witness* blocker it reaches, so the executor can leave it alone
//! until that witness is resolved.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

/// Outcome of one planning pass: components ready to execute, in order,
/// the nodes that cannot execute yet (each with a blocker it reaches),
/// and every blocker reported.
#[derive(Debug)]
pub(crate) struct Plan<N> {
    pub sccs: Vec<Vec<N>>,
    pub blocked: HashMap<N, N>,
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
    /// Blocked node -> a blocker it reaches.
    blocked: HashMap<N, N>,
    stack: Vec<N>,
    calls: Vec<Frame<N>>,
    counter: usize,
}

impl<N: Copy + Ord + Hash> Tarjan<N> {
    /// Starts visiting `n`; its witness if `n` is blocked.
    fn visit(
        &mut self,
        n: N,
        succ: Result<Vec<N>, Vec<N>>,
        blockers: &mut BTreeSet<N>,
    ) -> Option<N> {
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
                None
            }
            Err(b) => {
                // The highest blocker is the witness: gaps fill in slot
                // order, so it tends to be the last one resolved.
                let witness = b.iter().max().copied().unwrap_or(n);
                blockers.extend(b);
                self.blocked.insert(n, witness);
                Some(witness)
            }
        }
    }

    fn lower(&mut self, v: N, to: usize) {
        if let Some(l) = self.low.get_mut(&v) {
            *l = (*l).min(to);
        }
    }

    /// Every node still on the call stack or Tarjan's stack reaches the
    /// blocker `witness`: none of them can execute in this pass.
    fn block_all(&mut self, witness: N) {
        for f in self.calls.drain(..) {
            self.blocked.insert(f.node, witness);
        }
        for x in self.stack.drain(..) {
            self.on_stack.remove(&x);
            self.blocked.insert(x, witness);
        }
    }
}

/// Iterative Tarjan from every start node in order. `succ(n)` gives the
/// successors of `n`, or the nodes blocking it (never empty); a blocked
/// node blocks every node that reaches it. Components come out in reverse
/// topological order (dependencies first), each unsorted.
pub(crate) fn plan<N, F>(starts: impl IntoIterator<Item = N>, mut succ: F) -> Plan<N>
where
    N: Copy + Ord + Hash,
    F: FnMut(N) -> Result<Vec<N>, Vec<N>>,
{
    let mut t = Tarjan {
        index: HashMap::new(),
        low: HashMap::new(),
        on_stack: HashSet::new(),
        blocked: HashMap::new(),
        stack: Vec::new(),
        calls: Vec::new(),
        counter: 0,
    };
    let mut sccs = Vec::new();
    let mut blockers = BTreeSet::new();
    for start in starts {
        if t.index.contains_key(&start) || t.blocked.contains_key(&start) {
            continue;
        }
        if t.visit(start, succ(start), &mut blockers).is_some() {
            continue;
        }
        while let Some(top) = t.calls.last_mut() {
            if top.next < top.succ.len() {
                let w = top.succ[top.next];
                top.next += 1;
                let v = top.node;
                if let Some(&witness) = t.blocked.get(&w) {
                    t.block_all(witness);
                } else if !t.index.contains_key(&w) {
                    if let Some(witness) = t.visit(w, succ(w), &mut blockers) {
                        t.block_all(witness);
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
                sccs.push(scc);
            }
            if let Some(parent) = t.calls.last().map(|f| f.node) {
                t.lower(parent, lv);
            }
        }
    }
    Plan {
        sccs,
        blocked: t.blocked,
        blockers,
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
        assert!(p.blocked.is_empty());
    }

    #[test]
    fn a_blocker_blocks_everything_that_reaches_it_and_nothing_else() {
        // 1 -> 2 -> 3(blocked by 98 and 99); 2 -> 1 (cycle); 4 -> 2; 5 -> 6
        let succ = |n: u32| match n {
            1 => Ok(vec![2]),
            2 => Ok(vec![1, 3]),
            3 => Err(vec![98, 99]),
            5 => Ok(vec![6]),
            4 => Ok(vec![2]),
            _ => Ok(vec![]),
        };
        let p = plan([1, 4, 5], succ);
        assert_eq!(p.sccs, vec![vec![6], vec![5]]);
        assert_eq!(p.blockers, BTreeSet::from([98, 99]));
        // Each blocked node names the highest blocker it reaches.
        let blocked: BTreeSet<(u32, u32)> = p.blocked.into_iter().collect();
        assert_eq!(
            blocked,
            BTreeSet::from([(1, 99), (2, 99), (3, 99), (4, 99)])
        );
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let succ = |n: u32| Ok(if n > 0 { vec![n - 1] } else { vec![] });
        let p = plan([200_000u32], succ);
        assert_eq!(p.sccs.len(), 200_001);
        assert_eq!(p.sccs[0], vec![0]);
    }
}
