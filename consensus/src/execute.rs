//! The RMW execution rule (Gryff, NSDI 2020, section 5; PROTOCOL.md 4)
//! and deduplication of retried RMWs (PROTOCOL.md 6), shared by both
//! ordering engines: EPaxos (`executor`) and raft (`raft::apply`) call
//! `RmwState::execute` on each committed command in their order.
//!
//! Executing RMW `g` with committed base `b`:
//! `eff = max_by_cs(b, last_rmw[k])`, `old = eff.value`, `new = g(old)`,
//! `cs' = (eff.ts, eff.writer, eff.rmwc + 1)`, `last_rmw[k] = (new, cs')`,
//! `apply(k, new, cs')` (a no-op if a newer write is there). Inputs are
//! only committed data and the per-key order, so every replica computes
//! the same `(old, new, cs')`.
//!
//! The baselines ("EPaxos-all", "raft-all") order every operation, so the
//! register store changes only through execution and is the same at every
//! replica at the same point of the per-key order. There the committed
//! base is raised to the store's register at execution (which covers the
//! base and `last_rmw`), a put writes `(ts + 1, writer, 0)` over the
//! key's register (`writer` names the command's slot: unique, and equal
//! everywhere), and a get reads the register. So one store and one
//! carstamp order serve every mode, and the same checker applies.
//!
//! Deduplication is per key: for each key, the latest `(request, outcome)`
//! of each client that ran an RMW (or, in the baselines, a put) on it. A
//! retried op always targets the same key, and the per-key execution order
//! is the same everywhere, so every replica makes the same dedup decision
//! (a cluster-wide table would not be: execution across keys interleaves
//! differently per replica). Bound: `dedup_clients_per_key` clients per
//! key; beyond it the client least recently executed on that key is
//! forgotten (a deterministic choice, since it depends only on the key's
//! execution order).

use crate::instance::Command;
use crate::messages::{DedupEntry, EpaxosReply, ExecResult};
use registers::{
    Carstamp, ClientId, Key, OpId, Register, RegisterStore, RmwOutcome, WriterId, max_by_cs,
};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default)]
struct KeyDedup {
    clients: HashMap<ClientId, (DedupEntry, u64)>,
    /// Execution tick -> client, oldest first, for eviction.
    order: BTreeMap<u64, ClientId>,
    tick: u64,
}

impl KeyDedup {
    fn insert(&mut self, entry: DedupEntry, capacity: usize) {
        self.tick += 1;
        let client = entry.op.client;
        if let Some((_, old)) = self.clients.insert(client, (entry, self.tick)) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, client);
        while self.clients.len() > capacity {
            match self.order.pop_first() {
                Some((_, c)) => {
                    self.clients.remove(&c);
                }
                None => break,
            }
        }
    }
}

/// How a committed command meets the register store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExecContext {
    /// A baseline that orders every operation (see the module docs).
    pub every_op: bool,
    /// The writer id a put executed now gets (unique per command).
    pub writer: WriterId,
}

/// `last_rmw` and the dedup table of one replica.
#[derive(Clone, Debug)]
pub(crate) struct RmwState {
    last_rmw: HashMap<Key, Register>,
    dedup: HashMap<Key, KeyDedup>,
    capacity: usize,
}

impl RmwState {
    pub(crate) fn new(capacity: usize) -> RmwState {
        RmwState {
            last_rmw: HashMap::new(),
            dedup: HashMap::new(),
            capacity,
        }
    }

    pub(crate) fn last_rmw(&self, key: &Key) -> Register {
        self.last_rmw.get(key).cloned().unwrap_or_default()
    }

    /// The dedup decision for `op` on `key`: `Some` if it must not run.
    fn dedup(&self, key: &Key, op: &OpId) -> Option<ExecResult> {
        let (seen, _) = self.dedup.get(key)?.clients.get(&op.client)?;
        if seen.op.request == op.request {
            return Some(ExecResult::Duplicate(seen.clone()));
        }
        (seen.op.request > op.request).then_some(ExecResult::Nothing)
    }

    /// Executes a committed command with committed `base`.
    pub(crate) fn execute(
        &mut self,
        cmd: &Command,
        base: &Register,
        ctx: ExecContext,
        store: &mut RegisterStore,
    ) -> ExecResult {
        let result = match cmd {
            Command::Noop => return ExecResult::Nothing,
            Command::Get { key, .. } => return ExecResult::Read(store.get(key)),
            Command::Put { op, key, value } => {
                if let Some(skip) = self.dedup(key, op) {
                    return skip;
                }
                let current = store.get(key);
                let register = Register::new(
                    value.clone(),
                    Carstamp::for_write(current.cs.ts, ctx.writer),
                );
                let entry = DedupEntry {
                    op: *op,
                    outcome: RmwOutcome {
                        old: current.value,
                        new: value.clone(),
                        applied: true,
                        not_an_integer: false,
                    },
                    cs: register.cs,
                };
                ExecResult::Written {
                    key: key.clone(),
                    register,
                    entry,
                }
            }
            Command::Rmw { op, key, rmw } => {
                if let Some(skip) = self.dedup(key, op) {
                    return skip;
                }
                let current = store.get(key);
                let committed = if ctx.every_op {
                    max_by_cs(base, &current)
                } else {
                    base
                };
                let last = self.last_rmw(key);
                let eff = max_by_cs(committed, &last);
                let outcome = rmw.apply(eff.value.as_ref());
                let cs = eff.cs.rmw_successor();
                let last_rmw = Register::new(outcome.new.clone(), cs);
                let register = max_by_cs(&current, &last_rmw).clone();
                let entry = DedupEntry {
                    op: *op,
                    outcome,
                    cs,
                };
                ExecResult::Applied {
                    key: key.clone(),
                    last_rmw,
                    register,
                    entry,
                }
            }
        };
        self.replay(&result, store);
        result
    }

    /// Re-applies a persisted execution (after a restart), and is the one
    /// place the store, `last_rmw` and the dedup table change.
    pub(crate) fn replay(&mut self, result: &ExecResult, store: &mut RegisterStore) {
        match result {
            ExecResult::Applied {
                key,
                last_rmw,
                register,
                entry,
            } => {
                store.apply(key, last_rmw);
                store.apply(key, register);
                self.last_rmw.insert(key.clone(), last_rmw.clone());
                self.remember(key, entry);
            }
            ExecResult::Written {
                key,
                register,
                entry,
            } => {
                store.apply(key, register);
                self.remember(key, entry);
            }
            ExecResult::Nothing | ExecResult::Duplicate(_) | ExecResult::Read(_) => {}
        }
    }

    fn remember(&mut self, key: &Key, entry: &DedupEntry) {
        self.dedup
            .entry(key.clone())
            .or_default()
            .insert(entry.clone(), self.capacity);
    }
}

/// The client reply an execution implies (`None` for a no-op).
pub(crate) fn reply_for(cmd: &Command, result: &ExecResult) -> Option<EpaxosReply> {
    Some(match (cmd, result) {
        (Command::Noop, _) => return None,
        (_, ExecResult::Nothing) => EpaxosReply::Superseded,
        (Command::Get { .. }, ExecResult::Read(r)) => EpaxosReply::Get {
            value: r.value.clone(),
            cs: r.cs,
        },
        (Command::Put { .. }, ExecResult::Written { entry, .. } | ExecResult::Duplicate(entry)) => {
            EpaxosReply::Put { cs: entry.cs }
        }
        (Command::Rmw { .. }, ExecResult::Applied { entry, .. } | ExecResult::Duplicate(entry)) => {
            EpaxosReply::Rmw {
                outcome: entry.outcome.clone(),
                cs: entry.cs,
            }
        }
        // A result of another command kind cannot come from `execute`;
        // kept total so that nothing panics: nobody gets an answer.
        _ => EpaxosReply::Superseded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{RequestId, RmwOp, Value};

    fn op(c: u64, r: u64) -> OpId {
        OpId {
            client: ClientId(c),
            request: RequestId(r),
        }
    }

    fn fadd(c: u64, r: u64, key: &str) -> Command {
        Command::Rmw {
            op: op(c, r),
            key: Key::from(key),
            rmw: RmwOp::FetchAdd { delta: 1 },
        }
    }

    const GRYFF: ExecContext = ExecContext {
        every_op: false,
        writer: WriterId(0),
    };

    impl RmwState {
        fn execute_gryff(
            &mut self,
            cmd: &Command,
            base: &Register,
            store: &mut RegisterStore,
        ) -> ExecResult {
            self.execute(cmd, base, GRYFF, store)
        }
    }

    fn all(writer: u64) -> ExecContext {
        ExecContext {
            every_op: true,
            writer: WriterId(writer),
        }
    }

    fn put(c: u64, r: u64, v: &str) -> Command {
        Command::Put {
            op: op(c, r),
            key: Key::from("k"),
            value: Some(Value::from(v)),
        }
    }

    #[test]
    fn baseline_puts_follow_the_store_and_rmws_build_on_it() {
        let mut st = RmwState::new(8);
        let mut store = RegisterStore::new();
        let k = Key::from("k");
        let w = st.execute(&put(1, 1, "a"), &Register::default(), all(7), &mut store);
        assert!(w.changed_state());
        assert_eq!(
            store.get(&k),
            Register::new(Some(Value::from("a")), cs(1, 7, 0))
        );
        // The RMW's committed base is stale; in a baseline the store wins.
        let r = st.execute(
            &Command::Rmw {
                op: op(2, 1),
                key: k.clone(),
                rmw: RmwOp::PutIfAbsent {
                    value: Value::from("x"),
                },
            },
            &Register::default(),
            all(8),
            &mut store,
        );
        let ExecResult::Applied { entry, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(entry.outcome.old, Some(Value::from("a")));
        assert_eq!(entry.cs, cs(1, 7, 1));
        let w2 = st.execute(&put(1, 2, "b"), &Register::default(), all(9), &mut store);
        assert!(
            matches!(w2, ExecResult::Written { ref register, .. } if register.cs == cs(2, 9, 0))
        );
        let got = st.execute(
            &Command::Get {
                op: op(3, 1),
                key: k.clone(),
            },
            &Register::default(),
            all(10),
            &mut store,
        );
        assert_eq!(got, ExecResult::Read(store.get(&k)));
        assert!(!got.changed_state());
        assert_eq!(
            reply_for(
                &Command::Get {
                    op: op(3, 1),
                    key: k.clone()
                },
                &got
            ),
            Some(EpaxosReply::Get {
                value: Some(Value::from("b")),
                cs: cs(2, 9, 0)
            })
        );
        // A retried put is not written twice.
        let again = st.execute(&put(1, 2, "b"), &Register::default(), all(11), &mut store);
        assert!(matches!(again, ExecResult::Duplicate(ref e) if e.cs == cs(2, 9, 0)));
        assert_eq!(
            reply_for(&put(1, 2, "b"), &again),
            Some(EpaxosReply::Put { cs: cs(2, 9, 0) })
        );
        assert_eq!(store.get(&k).cs, cs(2, 9, 0));
        assert_eq!(
            st.execute(&put(1, 1, "old"), &Register::default(), all(12), &mut store),
            ExecResult::Nothing
        );
    }

    #[test]
    fn gryff_rmws_ignore_the_live_register() {
        // Outside the baselines the store holds register-protocol writes
        // that differ between replicas: execution must not read it.
        let mut st = RmwState::new(8);
        let mut store = RegisterStore::new();
        let k = Key::from("k");
        store.apply(&k, &Register::new(Some(Value::from_i64(50)), cs(3, 1, 0)));
        let r = st.execute_gryff(&fadd(1, 1, "k"), &Register::default(), &mut store);
        let ExecResult::Applied { entry, .. } = r else {
            panic!()
        };
        assert_eq!(entry.outcome.old, None);
        assert_eq!(entry.cs, cs(0, 0, 1));
    }

    fn cs(ts: u64, w: u64, rmwc: u32) -> Carstamp {
        Carstamp {
            ts,
            writer: WriterId(w),
            rmwc,
        }
    }

    #[test]
    fn stale_base_uses_last_rmw_and_bumps_rmwc() {
        let mut st = RmwState::new(8);
        let mut store = RegisterStore::new();
        let k = Key::from("k");
        let base = Register::default();
        for i in 0..3u64 {
            let r = st.execute_gryff(&fadd(1, i + 1, "k"), &base, &mut store);
            let ExecResult::Applied { last_rmw, .. } = r else {
                panic!("not applied: {r:?}")
            };
            assert_eq!(last_rmw.cs, cs(0, 0, i as u32 + 1));
            assert_eq!(last_rmw.value, Some(Value::from_i64(i as i64 + 1)));
        }
        assert_eq!(store.get(&k).value, Some(Value::from_i64(3)));
        assert_eq!(st.last_rmw(&k).cs, cs(0, 0, 3));
    }

    #[test]
    fn newer_base_wins_over_last_rmw_and_newer_write_wins_in_store() {
        let mut st = RmwState::new(8);
        let mut store = RegisterStore::new();
        let k = Key::from("k");
        st.execute_gryff(&fadd(1, 1, "k"), &Register::default(), &mut store);
        // A write at ts 5 committed as this RMW's base.
        let w5 = Register::new(Some(Value::from_i64(100)), cs(5, 7, 0));
        st.execute_gryff(&fadd(2, 1, "k"), &w5, &mut store);
        assert_eq!(
            store.get(&k),
            Register::new(Some(Value::from_i64(101)), cs(5, 7, 1))
        );
        // A newer write already in the store: the RMW still advances
        // last_rmw but the store keeps the write.
        let w9 = Register::new(Some(Value::from("w")), cs(9, 1, 0));
        store.apply(&k, &w9);
        st.execute_gryff(&fadd(3, 1, "k"), &w5, &mut store);
        assert_eq!(store.get(&k), w9);
        assert_eq!(
            st.last_rmw(&k),
            Register::new(Some(Value::from_i64(102)), cs(5, 7, 2))
        );
    }

    #[test]
    fn retries_are_deduplicated_per_key() {
        let mut st = RmwState::new(8);
        let mut store = RegisterStore::new();
        let base = Register::default();
        let first = st.execute_gryff(&fadd(1, 1, "k"), &base, &mut store);
        let again = st.execute_gryff(&fadd(1, 1, "k"), &base, &mut store);
        let ExecResult::Applied { entry, .. } = first else {
            panic!()
        };
        assert_eq!(again, ExecResult::Duplicate(entry));
        assert_eq!(store.get(&Key::from("k")).value, Some(Value::from_i64(1)));
        // The same request number on another key is another op.
        assert!(matches!(
            st.execute_gryff(&fadd(1, 1, "j"), &base, &mut store),
            ExecResult::Applied { .. }
        ));
        st.execute_gryff(&fadd(1, 2, "k"), &base, &mut store);
        assert_eq!(
            st.execute_gryff(&fadd(1, 1, "k"), &base, &mut store),
            ExecResult::Nothing
        );
    }

    #[test]
    fn dedup_forgets_least_recent_client_beyond_capacity() {
        let mut st = RmwState::new(2);
        let mut store = RegisterStore::new();
        let base = Register::default();
        st.execute_gryff(&fadd(1, 1, "k"), &base, &mut store);
        st.execute_gryff(&fadd(2, 1, "k"), &base, &mut store);
        st.execute_gryff(&fadd(1, 2, "k"), &base, &mut store);
        st.execute_gryff(&fadd(3, 1, "k"), &base, &mut store); // evicts client 2
        assert!(matches!(
            st.execute_gryff(&fadd(1, 2, "k"), &base, &mut store),
            ExecResult::Duplicate(_)
        ));
        assert!(matches!(
            st.execute_gryff(&fadd(2, 1, "k"), &base, &mut store),
            ExecResult::Applied { .. }
        ));
    }
}
