//! Checks on the replicas' final state after a run: carstamps name one
//! value everywhere, and replicas agree on the order of executed RMWs.

use super::protocol::ReplicaSnapshot;
use registers::{Carstamp, Key, OpId, Value};
use std::collections::BTreeMap;

/// The RMWs one replica executed on one key, in order.
type RmwSequence = Vec<(OpId, Carstamp)>;

/// The replicas disagree; the message names the key and the replicas.
pub fn check_convergence(snapshots: &[Option<ReplicaSnapshot>]) -> Result<(), String> {
    // 1. One carstamp, one value: two different values under one carstamp
    //    would make replicas diverge forever (PROTOCOL.md 1).
    let mut seen: BTreeMap<(&Key, Carstamp), (usize, &Option<Value>)> = BTreeMap::new();
    for (r, snap) in snapshots.iter().enumerate() {
        let Some(snap) = snap else { continue };
        for (key, reg) in &snap.registers {
            if let Some((other, value)) = seen.insert((key, reg.cs), (r, &reg.value))
                && value != &reg.value
            {
                return Err(format!(
                    "key {key:?}: replicas {other} and {r} hold different values under carstamp {:?}: {value:?} vs {:?}",
                    reg.cs, reg.value
                ));
            }
        }
    }
    // 2. RMW execution order: every replica executed a prefix of one sequence.
    let mut longest: BTreeMap<&Key, (usize, &RmwSequence)> = BTreeMap::new();
    for (r, snap) in snapshots.iter().enumerate() {
        let Some(snap) = snap else { continue };
        for (key, seq) in &snap.rmw_executions {
            let entry = longest.entry(key).or_insert((r, seq));
            let (a, b) = if seq.len() > entry.1.len() {
                (entry.1, seq)
            } else {
                (seq, entry.1)
            };
            if b[..a.len()] != a[..] {
                let at = a
                    .iter()
                    .zip(b.iter())
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
                return Err(format!(
                    "key {key:?}: replicas {} and {r} executed RMWs in different orders (first difference at #{at}: {:?} vs {:?})",
                    entry.0, a[at], b[at]
                ));
            }
            if seq.len() > entry.1.len() {
                *entry = (r, seq);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use registers::{ClientId, Register, RequestId, WriterId};

    fn snap(v: &str, ts: u64, rmws: &[u64]) -> Option<ReplicaSnapshot> {
        let key = Key::from("k");
        let cs = Carstamp {
            ts,
            writer: WriterId(1),
            rmwc: 0,
        };
        let mut s = ReplicaSnapshot::default();
        s.registers
            .insert(key.clone(), Register::new(Some(Value::from(v)), cs));
        let seq = rmws
            .iter()
            .map(|&r| {
                (
                    OpId {
                        client: ClientId(1),
                        request: RequestId(r),
                    },
                    cs,
                )
            })
            .collect();
        s.rmw_executions.insert(key, seq);
        Some(s)
    }

    #[test]
    fn agreeing_replicas_pass() {
        assert_eq!(
            check_convergence(&[snap("a", 1, &[1, 2]), snap("a", 1, &[1]), None]),
            Ok(())
        );
        assert_eq!(
            check_convergence(&[snap("a", 1, &[]), snap("b", 2, &[])]),
            Ok(())
        );
    }

    #[test]
    fn one_carstamp_two_values_fails() {
        let err = check_convergence(&[snap("a", 1, &[]), snap("b", 1, &[])]).unwrap_err();
        assert!(err.contains("different values"), "{err}");
    }

    #[test]
    fn diverging_rmw_orders_fail() {
        let err = check_convergence(&[snap("a", 1, &[1, 2]), snap("a", 1, &[2])]).unwrap_err();
        assert!(err.contains("different orders"), "{err}");
    }
}
