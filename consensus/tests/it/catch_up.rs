//! A replica that was down while its peers committed hundreds of
//! instances learns them from its peers (catch-up) instead of recovering
//! them one explicit prepare at a time, and its executor's work stays
//! proportional to what it executes.

use crate::net::{Cluster, Msg, fadd, int, op};
use consensus::{EpaxosMsg, EpaxosReply, InstanceId};
use registers::ReplicaId;

/// Delivers messages (FIFO) and fires timers until replica `r` answered
/// `op`, or `max_steps`. Returns the virtual time that took.
fn until_reply(c: &mut Cluster, r: u32, o: registers::OpId, max_steps: usize) -> u64 {
    let t0 = c.now;
    for _ in 0..max_steps {
        if c.reply(r, o).is_some() {
            return c.now.0 - t0.0;
        }
        if !c.net.is_empty() {
            c.deliver(0);
        } else if !c.fire_next_timer() {
            break;
        }
    }
    panic!("replica {r} never answered {o:?}");
}

#[test]
fn a_restarted_replica_learns_missed_commits_without_explicit_prepare() {
    const MISSED: u64 = 600;
    let mut c = Cluster::new(3);
    c.crash(2);
    let mut on_k = 0;
    for i in 0..MISSED {
        // A third of the commands on the hot key, the rest on keys of
        // their own: both leave gaps in replica 2's view of the slots.
        let key = if i % 3 == 0 {
            on_k += 1;
            "k".to_string()
        } else {
            format!("o{i}")
        };
        c.propose((i % 2) as u32, op(i, 1), &key, fadd(1));
        c.run(100_000);
    }
    c.restart(2);
    let before = c.nodes[2].m.stats().executor_visits;
    let o = op(MISSED, 1);
    c.propose(2, o, "k", fadd(1));
    let took = until_reply(&mut c, 2, o, 1_000_000);

    let stats = c.nodes[2].m.stats().clone();
    assert!(
        matches!(c.reply(2, o), Some(EpaxosReply::Rmw { outcome, .. }) if outcome.old == int(on_k)),
        "{:?}",
        c.reply(2, o)
    );
    assert_eq!(stats.recoveries_started, 0, "{stats:?}");
    // No bounded wait expired: the answer needed messages only.
    assert!(
        took < c.cfg.recovery_timeout_us,
        "catching up took {took} us of virtual time"
    );
    // Each of the ~MISSED executions costs a bounded number of executor
    // visits, not one pass over everything still pending per commit.
    let visits = stats.executor_visits - before;
    assert!(
        visits < 20 * MISSED,
        "{visits} executor visits for {} executions",
        stats.executed
    );
    c.run(1_000_000);
    c.check();
    assert_eq!(c.nodes[2].m.stats().executed, MISSED + 1);
}

#[test]
fn a_catch_up_is_answered_with_at_most_one_batch_of_commits_from_the_slot_asked() {
    let mut c = Cluster::new(3);
    for i in 0..300u64 {
        c.propose(0, op(i, 1), &format!("o{i}"), fadd(1));
        c.run(100_000);
    }
    c.net.push(Msg {
        from: ReplicaId(2),
        to: ReplicaId(0),
        msg: EpaxosMsg::CatchUp {
            from: InstanceId::new(ReplicaId(0), 10),
        },
    });
    c.deliver(0);
    let slots: Vec<u64> = c
        .net
        .iter()
        .map(|m| match &m.msg {
            EpaxosMsg::Commit { inst, .. } if m.to == ReplicaId(2) => inst.slot,
            other => panic!("unexpected answer {other:?}"),
        })
        .collect();
    let batch = consensus::catch_up::CATCH_UP_BATCH;
    assert_eq!(slots, (10..10 + batch).collect::<Vec<_>>());
    assert_eq!(c.nodes[0].m.stats().catch_up_commits_sent, batch);
}
