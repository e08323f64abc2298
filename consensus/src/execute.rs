//! The RMW execution rule (Gryff, NSDI 2020, section 5; PROTOCOL.md 4)
//! and deduplication of retried RMWs (PROTOCOL.md 6).
//!
//! Executing RMW `g` with committed base `b`:
//! `eff = max_by_cs(b, last_rmw[k])`, `old = eff.value`, `new = g(old)`,
//! `cs' = (eff.ts, eff.writer, eff.rmwc + 1)`, `last_rmw[k] = (new, cs')`,
//! `apply(k, new, cs')` (a no-op if a newer write is there). Inputs are
//! only committed data and the per-key EPaxos order, so every replica
//! computes the same `(old, new, cs')`.
//!
//! Deduplication is per key: for each key, the latest `(request, outcome)`
//! of each client that ran an RMW on it. A retried op always targets the
//! same key, and the per-key execution order is the same everywhere, so
//! every replica makes the same dedup decision (a cluster-wide table would
//! not be: execution across keys interleaves differently per replica).
//! Bound: `dedup_clients_per_key` clients per key; beyond it the client
//! least recently executed on that key is forgotten (a deterministic
//! choice, since it depends only on the key's execution order).

use crate::instance::Command;
use crate::messages::{DedupEntry, EpaxosReply, ExecResult};
use registers::{ClientId, Key, Register, RegisterStore, max_by_cs};
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

    /// Executes a committed command with committed `base`.
    pub(crate) fn execute(
        &mut self,
        cmd: &Command,
        base: &Register,
        store: &mut RegisterStore,
    ) -> ExecResult {
        let Command::Rmw { op, key, rmw } = cmd else {
            return ExecResult::Nothing;
        };
        if let Some((seen, _)) = self.dedup.get(key).and_then(|d| d.clients.get(&op.client)) {
            if seen.op.request == op.request {
                return ExecResult::Duplicate(seen.clone());
            }
            if seen.op.request > op.request {
                return ExecResult::Nothing;
            }
        }
        let last = self.last_rmw(key);
        let eff = max_by_cs(base, &last);
        let outcome = rmw.apply(eff.value.as_ref());
        let cs = eff.cs.rmw_successor();
        let last_rmw = Register::new(outcome.new.clone(), cs);
        store.apply(key, &last_rmw);
        let entry = DedupEntry {
            op: *op,
            outcome,
            cs,
        };
        let result = ExecResult::Applied {
            key: key.clone(),
            last_rmw,
            register: store.get(key),
            entry,
        };
        self.replay(&result, store);
        result
    }

    /// Re-applies a persisted execution (after a restart), and is the one
    /// place `last_rmw` and the dedup table change.
    pub(crate) fn replay(&mut self, result: &ExecResult, store: &mut RegisterStore) {
        if let ExecResult::Applied {
            key,
            last_rmw,
            register,
            entry,
        } = result
        {
            store.apply(key, last_rmw);
            store.apply(key, register);
            self.last_rmw.insert(key.clone(), last_rmw.clone());
            self.dedup
                .entry(key.clone())
                .or_default()
                .insert(entry.clone(), self.capacity);
        }
    }
}

/// The client reply an execution implies (`None` for a no-op).
pub(crate) fn reply_for(cmd: &Command, result: &ExecResult) -> Option<EpaxosReply> {
    match (cmd, result) {
        (Command::Noop, _) => None,
        (_, ExecResult::Applied { entry, .. }) | (_, ExecResult::Duplicate(entry)) => {
            Some(EpaxosReply::Rmw {
                outcome: entry.outcome.clone(),
                cs: entry.cs,
            })
        }
        (_, ExecResult::Nothing) => Some(EpaxosReply::Superseded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{Carstamp, OpId, RequestId, RmwOp, Value, WriterId};

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
            let r = st.execute(&fadd(1, i + 1, "k"), &base, &mut store);
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
        st.execute(&fadd(1, 1, "k"), &Register::default(), &mut store);
        // A write at ts 5 committed as this RMW's base.
        let w5 = Register::new(Some(Value::from_i64(100)), cs(5, 7, 0));
        st.execute(&fadd(2, 1, "k"), &w5, &mut store);
        assert_eq!(
            store.get(&k),
            Register::new(Some(Value::from_i64(101)), cs(5, 7, 1))
        );
        // A newer write already in the store: the RMW still advances
        // last_rmw but the store keeps the write.
        let w9 = Register::new(Some(Value::from("w")), cs(9, 1, 0));
        store.apply(&k, &w9);
        st.execute(&fadd(3, 1, "k"), &w5, &mut store);
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
        let first = st.execute(&fadd(1, 1, "k"), &base, &mut store);
        let again = st.execute(&fadd(1, 1, "k"), &base, &mut store);
        let ExecResult::Applied { entry, .. } = first else {
            panic!()
        };
        assert_eq!(again, ExecResult::Duplicate(entry));
        assert_eq!(store.get(&Key::from("k")).value, Some(Value::from_i64(1)));
        // The same request number on another key is another op.
        assert!(matches!(
            st.execute(&fadd(1, 1, "j"), &base, &mut store),
            ExecResult::Applied { .. }
        ));
        st.execute(&fadd(1, 2, "k"), &base, &mut store);
        assert_eq!(
            st.execute(&fadd(1, 1, "k"), &base, &mut store),
            ExecResult::Nothing
        );
    }

    #[test]
    fn dedup_forgets_least_recent_client_beyond_capacity() {
        let mut st = RmwState::new(2);
        let mut store = RegisterStore::new();
        let base = Register::default();
        st.execute(&fadd(1, 1, "k"), &base, &mut store);
        st.execute(&fadd(2, 1, "k"), &base, &mut store);
        st.execute(&fadd(1, 2, "k"), &base, &mut store);
        st.execute(&fadd(3, 1, "k"), &base, &mut store); // evicts client 2
        assert!(matches!(
            st.execute(&fadd(1, 2, "k"), &base, &mut store),
            ExecResult::Duplicate(_)
        ));
        assert!(matches!(
            st.execute(&fadd(2, 1, "k"), &base, &mut store),
            ExecResult::Applied { .. }
        ));
    }
}
