//! Subtle interleavings, delivered by hand on the test network: a read that
//! must write back, coordinators that crash mid-write, and writer-id
//! uniqueness across a restart (PROTOCOL.md 2, 3, 6).

use crate::net::{Net, Packet, key};
use registers::{Phase, RegisterMsg, RegisterReply, Value, WriterId};

fn is(p: &Packet, from: u32, to: u32, phase: Phase, reply: bool) -> bool {
    p.from.0 == from && p.to.0 == to && p.msg.phase() == phase && p.msg.is_reply() == reply
}

/// Runs a complete write at `at` on an otherwise quiet network.
fn complete_put(net: &mut Net, at: u32, v: &str) -> registers::Carstamp {
    let op = net.put(at, v);
    net.deliver_all();
    match net.reply(op) {
        Some(RegisterReply::Put { cs }) => *cs,
        other => panic!("put did not complete: {other:?}"),
    }
}

/// Runs a complete read at `at`, delivering everything.
fn complete_get(net: &mut Net, at: u32) -> Option<Value> {
    let op = net.get(at);
    net.deliver_all();
    net.got(op)
}

/// Replica 0 starts a write of "new" and gets its Write1 answered by 1 and
/// 2; its Write2 then sits in the queue, undelivered.
fn write_up_to_write2(net: &mut Net) {
    net.put(0, "new");
    for peer in [1, 2] {
        assert!(net.deliver_if(|p| is(p, 0, peer, Phase::Write1, false)));
        assert!(net.deliver_if(|p| is(p, peer, 0, Phase::Write1, true)));
    }
    net.drop_if(|p| p.msg.phase() == Phase::Write1);
}

#[test]
fn five_replica_read_writes_back_a_write_that_reached_only_some_replicas() {
    let mut net = Net::new(5, false);
    complete_put(&mut net, 0, "old");
    write_up_to_write2(&mut net);
    // Write2 reaches only replica 1 (the coordinator holds it too).
    assert!(net.deliver_if(|p| is(p, 0, 1, Phase::Write2, false)));
    net.drop_if(|p| p.msg.phase() == Phase::Write2);

    let read = net.get(4);
    // Read1 answered by 1 (new) and 3 (old): cs* = new, held by 1 and 4.
    for peer in [1, 3] {
        assert!(net.deliver_if(|p| is(p, 4, peer, Phase::Read1, false)));
        assert!(net.deliver_if(|p| is(p, peer, 4, Phase::Read1, true)));
    }
    assert!(
        net.reply(read).is_none(),
        "two holders of three: no fast path"
    );
    let read2_targets: Vec<u32> = net
        .queue
        .iter()
        .filter(|p| matches!(p.msg, RegisterMsg::Read2 { .. }))
        .map(|p| p.to.0)
        .collect();
    assert_eq!(
        read2_targets,
        vec![0, 2, 3],
        "non-holders get the write-back"
    );
    assert!(net.deliver_if(|p| is(p, 4, 3, Phase::Read2, false)));
    assert!(net.deliver_if(|p| is(p, 3, 4, Phase::Read2, true)));
    assert_eq!(net.got(read), Some(Value::from("new")));
    assert_eq!(net.machine(4).stats().reads_write_back, 1);

    // From now on every read returns the new value, wherever it goes.
    net.drop_if(|_| true);
    for at in 0..5 {
        assert_eq!(complete_get(&mut net, at), Some(Value::from("new")));
    }
}

#[test]
fn coordinator_dying_between_write1_and_write2_leaves_reads_consistent() {
    let mut net = Net::new(5, false);
    complete_put(&mut net, 0, "old");
    net.put(0, "new");
    for peer in [1, 2] {
        assert!(net.deliver_if(|p| is(p, 0, peer, Phase::Write1, false)));
    }
    // The replies are on their way (held aside here) when the coordinator dies.
    let in_transit: Vec<Packet> = net.queue.iter().filter(|p| p.to.0 == 0).cloned().collect();
    assert_eq!(in_transit.len(), 2);
    net.drop_if(|_| true);
    net.crash(0);
    for at in [1, 2, 3, 4, 1, 3] {
        assert_eq!(complete_get(&mut net, at), Some(Value::from("old")));
    }
    // It comes back; the replies from before the crash reach it.
    net.restart(0);
    net.queue.extend(in_transit);
    net.deliver_all();
    assert_eq!(net.machine(0).stats().ignored_unknown_op, 2);
    assert_eq!(net.machine(0).in_flight_len(), 0);
    for at in 0..5 {
        assert_eq!(complete_get(&mut net, at), Some(Value::from("old")));
    }
}

#[test]
fn stale_replies_from_before_a_restart_never_count_for_new_operations() {
    let mut net = Net::new(3, false);
    net.put(0, "lost");
    assert!(net.deliver_if(|p| is(p, 0, 1, Phase::Write1, false)));
    net.crash(0);
    net.restart(0);
    // A new operation is in flight when the old reply arrives.
    let read = net.get(0);
    assert!(net.deliver_if(|p| is(p, 1, 0, Phase::Write1, true)));
    assert_eq!(net.machine(0).stats().ignored_unknown_op, 1);
    assert!(net.reply(read).is_none());
    net.deliver_all();
    assert_eq!(net.got(read), None);
}

#[test]
fn a_write2_that_reached_one_replica_once_read_stays_read() {
    // Every choice of which two peers the second read hears from.
    let live = [1u32, 2, 3, 4];
    for first in live {
        for second in live {
            for third in live {
                if first == second || first == third || second == third {
                    continue;
                }
                check_dead_writer(first, [second, third]);
            }
        }
    }
}

/// Replica 0 dies right after its Write2 reached replica 1 only. A read at
/// `reader` that hears from `peers` may or may not see "new"; once any read
/// returned "new", every later read returns "new".
fn check_dead_writer(reader: u32, peers: [u32; 2]) {
    let mut net = Net::new(5, false);
    complete_put(&mut net, 0, "old");
    write_up_to_write2(&mut net);
    assert!(net.deliver_if(|p| is(p, 0, 1, Phase::Write2, false)));
    net.crash(0);
    net.drop_if(|p| p.from.0 == 0 || p.to.0 == 0);

    let read = net.get(reader);
    for peer in peers {
        assert!(net.deliver_if(|p| is(p, reader, peer, Phase::Read1, false)));
        assert!(net.deliver_if(|p| is(p, peer, reader, Phase::Read1, true)));
    }
    // Finish whatever write-back the read needs.
    net.deliver_all_if(|p| p.msg.phase() == Phase::Read2);
    let first = net.got(read);
    let saw_new = reader == 1 || peers.contains(&1);
    let expected = if saw_new { "new" } else { "old" };
    assert_eq!(first, Some(Value::from(expected)), "{reader} {peers:?}");
    net.drop_if(|_| true);

    let mut seen_new = saw_new;
    for at in [1, 2, 3, 4, 2, 4] {
        let v = complete_get(&mut net, at);
        if seen_new {
            assert_eq!(v, Some(Value::from("new")), "went back in time");
        }
        seen_new |= v == Some(Value::from("new"));
    }
    // The dead writer comes back: its own copy is on disk and now spreads.
    net.restart(0);
    for at in 0..5 {
        assert_eq!(complete_get(&mut net, at), Some(Value::from("new")));
    }
}

#[test]
fn writer_ids_stay_unique_across_restarts() {
    // Small blocks so that reservations happen often.
    let mut net = Net::with(3, |c| c.op_seq_block = 2);
    let mut used: Vec<WriterId> = Vec::new();
    for round in 0..4 {
        for i in 0..3 {
            let cs = complete_put(&mut net, 0, &format!("v{round}.{i}"));
            assert!(used.iter().all(|w| *w < cs.writer), "{cs:?} after {used:?}");
            used.push(cs.writer);
        }
        // A write whose Write1 went out and then the crash.
        net.put(0, "interrupted");
        let seqs: Vec<u64> = net.queue.iter().map(|p| p.msg.op_ref().seq).collect();
        net.crash(0);
        net.drop_if(|_| true);
        net.restart(0);
        assert!(seqs.iter().all(|s| *s < net.machine(0).next_op_seq()));
    }
    // Every writer id names replica 0, and all completed writes differ.
    assert!(used.iter().all(|w| w.replica().0 == 0));
    let mut sorted = used.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), used.len());
    assert_eq!(complete_get(&mut net, 2), Some(Value::from("v3.2")));
    // Concurrent writers with the same ts still get distinct carstamps.
    let a = net.put(1, "a");
    let b = net.put(2, "b");
    net.deliver_all();
    let (Some(RegisterReply::Put { cs: ca }), Some(RegisterReply::Put { cs: cb })) =
        (net.reply(a), net.reply(b))
    else {
        panic!("puts did not complete")
    };
    assert_ne!(ca, cb);
    let store_cs = net.nodes[0].store.get(&key()).cs;
    assert_eq!(store_cs, *ca.max(cb));
}

#[test]
fn thrifty_operations_finish_through_the_timeout_when_near_peers_are_dead() {
    // Replica 0's nearest peers are 1 and 2 (id order); both are dead.
    let mut net = Net::new(5, true);
    net.crash(1);
    net.crash(2);
    let put = net.put(0, "v");
    net.deliver_all();
    assert!(
        net.reply(put).is_none(),
        "thrifty Write1 went only to the dead"
    );
    net.fire_timers(0);
    net.deliver_all();
    // Write1 completed through 3 and 4; Write2 again went to the nearest.
    assert!(net.reply(put).is_none());
    net.fire_timers(0);
    net.deliver_all();
    assert!(matches!(net.reply(put), Some(RegisterReply::Put { .. })));
    let get = net.get(0);
    net.deliver_all();
    net.fire_timers(0);
    net.deliver_all();
    assert_eq!(net.got(get), Some(Value::from("v")));
    assert_eq!(net.machine(0).stats().phase_timeouts, 3);
    // The dead come back; a read from one of them sees the write.
    net.restart(1);
    net.restart(2);
    assert_eq!(complete_get(&mut net, 2), Some(Value::from("v")));
}
