//! Subtle interleavings, scripted on the deterministic in-test network.

use crate::net::{Cluster, Msg, cs, fadd, int, op};
use consensus::{Command, EpaxosMsg, EpaxosReply, ExecResult, InstanceId, Status};
use registers::{Key, Register, ReplicaId, RmwOp, Value};

fn id(r: u32, s: u64) -> InstanceId {
    InstanceId::new(ReplicaId(r), s)
}

fn is_to(m: &Msg, to: u32) -> bool {
    m.to == ReplicaId(to)
}

/// The (old, new, cs') every replica computed for `inst`.
fn results(
    c: &Cluster,
    inst: InstanceId,
) -> Vec<(Option<Value>, Option<Value>, registers::Carstamp)> {
    c.nodes
        .iter()
        .filter_map(|n| n.executions.iter().find(|x| x.inst == inst))
        .map(|x| match &x.result {
            ExecResult::Applied { entry, .. } | ExecResult::Duplicate(entry) => (
                entry.outcome.old.clone(),
                entry.outcome.new.clone(),
                entry.cs,
            ),
            other => panic!("not an RMW execution for {inst:?}: {other:?}"),
        })
        .collect()
}

fn seed(c: &mut Cluster, key: &str, reg: &Register) {
    for r in 0..c.n() {
        c.write(r, key, reg);
    }
}

#[test]
fn rmw_and_a_newer_write_that_reaches_replicas_first_builds_on_the_write() {
    let mut c = Cluster::new(3);
    let old = Register::new(int(5), cs(1, 11, 0));
    seed(&mut c, "k", &old);
    let write = Register::new(int(7), cs(2, 22, 0));
    // The write reaches replicas 1 and 2 before the RMW's PreAccept.
    c.write(1, "k", &write);
    c.write(2, "k", &write);
    c.propose(0, op(1, 1), "k", fadd(1));
    c.run(10_000);
    c.check();
    // A replica's base' took the write: the slow path committed it as base.
    assert_eq!(c.committed(id(0, 0)).unwrap().base, write);
    let rs = results(&c, id(0, 0));
    assert_eq!(rs.len(), 3);
    assert!(
        rs.iter().all(|r| *r == (int(7), int(8), cs(2, 22, 1))),
        "{rs:?}"
    );
    // The write completes at replica 0 too (write-back); the RMW is newer.
    c.write(0, "k", &write);
    assert_eq!(c.assert_converged("k"), Register::new(int(8), cs(2, 22, 1)));
    assert_eq!(
        c.reply(0, op(1, 1)),
        Some(&EpaxosReply::Rmw {
            outcome: registers::RmwOutcome {
                old: int(7),
                new: int(8),
                applied: true,
                not_an_integer: false
            },
            cs: cs(2, 22, 1),
        })
    );
}

#[test]
fn rmw_executed_before_a_newer_write_is_overwritten_by_it_everywhere() {
    let mut c = Cluster::new(3);
    let old = Register::new(int(5), cs(1, 11, 0));
    seed(&mut c, "k", &old);
    c.propose(0, op(1, 1), "k", fadd(1));
    c.run(10_000);
    assert_eq!(c.nodes[0].m.stats().fast_commits, 1);
    // The write lands after the RMW everywhere: it is newer, so it wins.
    let write = Register::new(int(7), cs(2, 22, 0));
    for r in 0..3 {
        c.write(r, "k", &write);
    }
    c.check();
    let rs = results(&c, id(0, 0));
    assert!(
        rs.iter().all(|r| *r == (int(5), int(6), cs(1, 11, 1))),
        "{rs:?}"
    );
    assert_eq!(c.assert_converged("k"), write);
    for r in 0..3 {
        assert_eq!(
            c.nodes[r].m.last_rmw(&Key::from("k")),
            Register::new(int(6), cs(1, 11, 1))
        );
    }
}

#[test]
fn write_landing_between_commit_and_execution_at_one_replica_does_not_change_the_rmw() {
    let mut c = Cluster::new(3);
    let old = Register::new(int(5), cs(1, 11, 0));
    seed(&mut c, "k", &old);
    c.propose(0, op(1, 1), "k", fadd(1));
    // PreAccepts and the reply: the fast path commits with the old base.
    assert!(c.deliver_where(|m| is_to(m, 1)));
    assert!(c.deliver_where(|m| is_to(m, 0)));
    // The write reaches replica 2 before the Commit does.
    let write = Register::new(int(7), cs(2, 22, 0));
    c.write(2, "k", &write);
    c.run(10_000);
    c.check();
    let rs = results(&c, id(0, 0));
    assert_eq!(rs.len(), 3);
    assert!(
        rs.iter().all(|r| *r == (int(5), int(6), cs(1, 11, 1))),
        "{rs:?}"
    );
    assert_eq!(c.value(2, "k"), write);
    c.write(0, "k", &write);
    c.write(1, "k", &write);
    assert_eq!(c.assert_converged("k"), write);
}

#[test]
fn ten_fetch_adds_from_three_leaders_with_stale_bases_sum_to_ten_everywhere() {
    let mut c = Cluster::new(3);
    // All proposals first: every leader's base is the stale initial value.
    for i in 0..10u64 {
        c.propose((i % 3) as u32, op(i, 1), "k", fadd(1));
    }
    // Deliver in an order that interleaves leaders (newest first).
    while !c.net.is_empty() {
        let last = c.net.len() - 1;
        c.deliver(last);
    }
    c.run(100_000);
    let orders = c.check();
    assert_eq!(orders[&Key::from("k")].len(), 10);
    for r in 0..3 {
        assert_eq!(c.value(r, "k"), Register::new(int(10), cs(0, 0, 10)));
        assert_eq!(
            c.nodes[r as usize].m.last_rmw(&Key::from("k")),
            Register::new(int(10), cs(0, 0, 10))
        );
        assert_eq!(c.nodes[r as usize].executions.len(), 10);
    }
    let replies: usize = c.nodes.iter().map(|n| n.replies.len()).sum();
    assert_eq!(replies, 10);
    // Every observed old value 0..9 appears exactly once.
    let mut olds: Vec<i64> = c
        .nodes
        .iter()
        .flat_map(|n| n.replies.iter())
        .map(|(_, r)| match r {
            EpaxosReply::Rmw { outcome, .. } => {
                outcome.old.as_ref().map_or(0, |v| v.to_i64().unwrap())
            }
            other => panic!("not an RMW reply: {other:?}"),
        })
        .collect();
    olds.sort();
    assert_eq!(olds, (0..10).collect::<Vec<_>>());
}

#[test]
fn leader_crash_after_pre_accept_is_recovered_with_the_same_base() {
    let mut c = Cluster::new(3);
    let old = Register::new(int(5), cs(1, 11, 0));
    seed(&mut c, "k", &old);
    c.propose(0, op(1, 1), "k", fadd(1));
    // Only replica 1 gets the PreAccept; the leader dies before the reply.
    assert!(c.deliver_where(|m| is_to(m, 1)));
    c.crash(0);
    // Replica 2's register moves on meanwhile (a write the RMW may miss).
    let write = Register::new(int(7), cs(2, 22, 0));
    c.write(2, "k", &write);
    c.run(10_000);
    // Recovery saw one unchanged pre-accept with the leader absent: the
    // proposal may have been fast-committed, so it is kept as is.
    let chosen = c.committed(id(0, 0)).expect("recovered");
    assert_eq!(chosen.base, old);
    assert!(matches!(chosen.cmd, Command::Rmw { .. }));
    c.restart(0);
    c.run(10_000);
    c.check();
    let rs = results(&c, id(0, 0));
    assert_eq!(rs.len(), 3, "all three executed, the restarted leader too");
    assert!(rs.iter().all(|r| *r == (int(5), int(6), cs(1, 11, 1))));
    assert!(
        c.nodes
            .iter()
            .map(|n| n.m.stats().recoveries_started)
            .sum::<u64>()
            >= 1
    );
}

#[test]
fn leader_crash_before_any_pre_accept_arrives_commits_a_no_op_everywhere() {
    let mut c = Cluster::new(3);
    c.propose(0, op(1, 1), "k", fadd(1));
    // A later instance from replica 1 depends on (0, 0) via replica 1's
    // own view only if 1 saw it; make 1 see nothing, but let 2 learn of
    // the slot through a Prepare-worthy gap: propose at 0 twice.
    c.propose(0, op(2, 1), "k", fadd(1));
    // Only (0, 1)'s PreAccepts go out; (0, 0)'s are lost; the leader dies.
    c.drop_where(|m| matches!(&m.msg, EpaxosMsg::PreAccept { inst, .. } if inst.slot == 0));
    c.deliver_where(|m| is_to(m, 1));
    c.deliver_where(|m| is_to(m, 2));
    c.crash(0);
    c.run(100_000);
    // (0, 1) depends on (0, 0), which nobody but the dead leader knew:
    // the executors' bounded wait recovered it as a no-op.
    assert_eq!(c.committed(id(0, 0)).unwrap().cmd, Command::Noop);
    assert!(matches!(
        c.committed(id(0, 1)).unwrap().cmd,
        Command::Rmw { .. }
    ));
    c.restart(0);
    c.run(100_000);
    c.check();
    for r in 0..3 {
        assert_eq!(c.executed_ids(r).len(), 2, "replica {r}");
        assert_eq!(c.value(r, "k").value, int(1));
    }
}

#[test]
fn a_retried_rmw_proposed_at_another_replica_is_applied_once() {
    let mut c = Cluster::new(3);
    c.propose(0, op(9, 1), "k", fadd(5));
    c.run(10_000);
    assert!(c.reply(0, op(9, 1)).is_some());
    // The client did not get the reply (say) and retries at replica 1.
    c.propose(1, op(9, 1), "k", fadd(5));
    c.run(10_000);
    c.check();
    assert_eq!(c.reply(1, op(9, 1)), c.reply(0, op(9, 1)));
    for r in 0..3 {
        assert_eq!(c.value(r, "k").value, int(5));
        assert_eq!(c.nodes[r as usize].m.stats().duplicates_suppressed, 1);
    }
}

#[test]
fn concurrent_retries_at_two_replicas_are_applied_once_whichever_commits_first() {
    for first in [0u32, 1] {
        let mut c = Cluster::new(3);
        c.propose(0, op(9, 1), "k", fadd(5));
        c.propose(1, op(9, 1), "k", fadd(5));
        c.propose(1, op(9, 1), "k", fadd(5)); // absorbed: already in flight
        assert_eq!(c.nodes[1].m.stats().duplicate_proposals, 1);
        while c.deliver_where(|m| m.from == ReplicaId(first)) {}
        c.run(10_000);
        c.check();
        for r in 0..3 {
            assert_eq!(c.value(r, "k").value, int(5), "first={first}");
        }
        assert_eq!(c.reply(0, op(9, 1)), c.reply(1, op(9, 1)));
    }
}

#[test]
fn a_dependency_cycle_executes_in_the_same_order_everywhere() {
    let mut c = Cluster::new(3);
    c.propose(
        0,
        op(1, 1),
        "k",
        RmwOp::CompareAndSwap {
            expected: None,
            new: int(1),
        },
    );
    c.propose(
        1,
        op(2, 1),
        "k",
        RmwOp::CompareAndSwap {
            expected: None,
            new: int(2),
        },
    );
    // Each leader's PreAccept reaches the other leader after it proposed
    // its own: both get the other in their deps.
    assert!(c.deliver_where(|m| m.from == ReplicaId(0) && is_to(m, 1)));
    assert!(c.deliver_where(|m| m.from == ReplicaId(1) && is_to(m, 0)));
    c.run(10_000);
    let a = c.committed(id(0, 0)).unwrap();
    let b = c.committed(id(1, 0)).unwrap();
    assert_eq!(a.deps.get(ReplicaId(1)), Some(0), "cycle: {a:?}");
    assert_eq!(b.deps.get(ReplicaId(0)), Some(0), "cycle: {b:?}");
    let orders = c.check();
    // Same seq: the tie-break is (seq, replica, slot), so (0, 0) first.
    assert_eq!(a.seq, b.seq);
    assert_eq!(orders[&Key::from("k")], vec![id(0, 0), id(1, 0)]);
    for r in 0..3 {
        assert_eq!(c.executed_ids(r), vec![id(0, 0), id(1, 0)]);
        assert_eq!(
            c.value(r, "k").value,
            int(1),
            "the CAS of (1, 0) failed everywhere"
        );
    }
}

#[test]
fn a_restarted_replica_keeps_its_executions_and_never_applies_twice() {
    let mut c = Cluster::new(3);
    for i in 0..4u64 {
        c.propose(1, op(i, 1), "k", fadd(1));
        c.run(10_000);
    }
    c.crash(2);
    c.restart(2);
    assert_eq!(c.value(2, "k").value, int(4));
    assert_eq!(c.nodes[2].m.last_rmw(&Key::from("k")).cs, cs(0, 0, 4));
    // Retries of executed ops are still recognised after the restart.
    c.propose(2, op(3, 1), "k", fadd(1));
    c.propose(2, op(7, 1), "k", fadd(1));
    c.run(10_000);
    c.check();
    assert_eq!(c.assert_converged("k").value, int(5));
    assert!(matches!(
        c.reply(2, op(3, 1)),
        Some(EpaxosReply::Rmw { .. })
    ));
    assert_eq!(c.nodes[2].executions.len(), 6);
}

#[test]
fn an_unknown_instance_recovered_by_a_replica_with_no_info_becomes_a_no_op() {
    let mut c = Cluster::new(3);
    // Replica 1 was told (by a dependency) about slot 0 of replica 2,
    // which no one ever proposed; its bounded wait fires and it recovers.
    c.fire(1, consensus::EpaxosTimer::Recover { inst: id(2, 0) });
    assert!(
        c.net
            .iter()
            .any(|m| matches!(m.msg, EpaxosMsg::Prepare { .. }))
    );
    c.run(10_000);
    assert_eq!(c.committed(id(2, 0)).unwrap().cmd, Command::Noop);
    assert_eq!(
        c.nodes[1].m.status(id(2, 0)),
        Some((Status::Committed, true))
    );
    c.check();
}

#[test]
fn a_leader_that_crashed_between_its_commit_and_its_broadcast_sends_the_commit_after_restart() {
    let mut c = Cluster::new(3);
    c.propose(0, op(1, 1), "k", fadd(1));
    assert!(c.deliver_where(|m| is_to(m, 1)));
    c.drop_where(|m| is_to(m, 2));
    assert!(c.deliver_where(|m| is_to(m, 0)));
    // The fast-path commit is durable at 0; the crash loses its broadcast
    // and the execution record that followed it.
    c.crash(0);
    let node = &mut c.nodes[0];
    let executed_at = node
        .persisted
        .iter()
        .position(|p| matches!(p, consensus::EpaxosPersist::Executed(_)))
        .expect("leader executed");
    node.persisted.truncate(executed_at);
    node.executions.clear();
    c.restart(0);
    assert!(
        c.net
            .iter()
            .filter(|m| matches!(m.msg, EpaxosMsg::Commit { .. }))
            .count()
            == 2
    );
    c.run(10_000);
    c.check();
    for r in 0..3 {
        assert_eq!(c.executed_ids(r), vec![id(0, 0)]);
        assert_eq!(c.value(r, "k").value, int(1));
    }
    // Nobody needed to recover: the re-sent commit arrived first.
    assert_eq!(
        c.nodes
            .iter()
            .map(|n| n.m.stats().recoveries_started)
            .sum::<u64>(),
        0
    );
}
