//! The "EPaxos-all" baseline (`every_op`): gets and puts are commands,
//! execution runs on the register store, puts are answered at commit and
//! everything else after the leader's own execution.

use crate::net::{Cluster, Msg, op};
use consensus::{BadInput, Command, EpaxosConfig, EpaxosMsg, EpaxosReply, ExecResult};
use registers::{Carstamp, Key, ReplicaId, RmwOp, Value};

fn every_op(n: u32) -> Cluster {
    Cluster::with_config(EpaxosConfig {
        phase_timeout_us: 1_000,
        recovery_timeout_us: 5_000,
        every_op: true,
        ..EpaxosConfig::new(ReplicaId(0), n)
    })
}

fn put(c: u64, r: u64, v: &str) -> Command {
    Command::Put {
        op: op(c, r),
        key: Key::from("k"),
        value: Some(Value::from(v)),
    }
}

fn get(c: u64, r: u64) -> Command {
    Command::Get {
        op: op(c, r),
        key: Key::from("k"),
    }
}

fn between(m: &Msg, a: u32, b: u32) -> bool {
    (m.from.0, m.to.0) == (a, b) || (m.from.0, m.to.0) == (b, a)
}

#[test]
fn gets_puts_and_rmws_run_in_one_order_on_the_store_everywhere() {
    let mut c = every_op(3);
    c.propose_command(0, put(1, 1, "a")).unwrap();
    c.run(10_000);
    c.propose_command(1, get(2, 1)).unwrap();
    c.run(10_000);
    assert_eq!(
        c.reply(1, op(2, 1)),
        Some(&EpaxosReply::Get {
            value: Some(Value::from("a")),
            cs: c.value(0, "k").cs
        })
    );
    c.propose_command(
        2,
        Command::Rmw {
            op: op(3, 1),
            key: Key::from("k"),
            rmw: RmwOp::CompareAndSwap {
                expected: Some(Value::from("a")),
                new: Some(Value::from("b")),
            },
        },
    )
    .unwrap();
    c.propose_command(0, put(1, 2, "c")).unwrap();
    c.run(10_000);
    let Some(EpaxosReply::Rmw { outcome, .. }) = c.reply(2, op(3, 1)) else {
        panic!("{:?}", c.reply(2, op(3, 1)))
    };
    // The CAS and the concurrent put are ordered one way or the other;
    // the CAS observed "a" unless the put came first.
    let final_value = c.value(0, "k").value;
    if outcome.applied {
        assert_eq!(outcome.old, Some(Value::from("a")));
    } else {
        assert_eq!(outcome.old, Some(Value::from("c")));
        assert_eq!(final_value, Some(Value::from("c")));
    }
    for r in 1..3 {
        assert_eq!(c.value(r, "k"), c.value(0, "k"), "replica {r}");
    }
    c.check_one_value();
    c.check_per_key_order();
    // Every write got its own carstamp, in execution order.
    let written: Vec<Carstamp> = c.nodes[0]
        .executions
        .iter()
        .filter_map(|x| match &x.result {
            ExecResult::Written { register, .. } => Some(register.cs),
            ExecResult::Applied { last_rmw, .. } => Some(last_rmw.cs),
            _ => None,
        })
        .collect();
    assert!(written.windows(2).all(|w| w[0] < w[1]), "{written:?}");
}

#[test]
fn a_put_is_answered_at_commit_even_while_its_execution_waits() {
    let mut c = every_op(3);
    // Replica 1 proposes a get; only replica 0 pre-accepts it.
    c.propose_command(1, get(2, 1)).unwrap();
    assert!(c.deliver_where(|m| m.from.0 == 1
        && m.to.0 == 0
        && matches!(m.msg, EpaxosMsg::PreAccept { .. })));
    c.drop_where(|m| m.from.0 == 1 || m.to.0 == 1);
    // Replica 0's put depends on that get, which it cannot execute.
    c.propose_command(0, put(1, 1, "a")).unwrap();
    while c.deliver_where(|m| between(m, 0, 2)) {}
    assert_eq!(
        c.reply(0, op(1, 1)),
        Some(&EpaxosReply::Put { cs: Carstamp::ZERO })
    );
    assert!(
        c.nodes[0].executions.is_empty(),
        "the put waits for the get"
    );
    assert_eq!(c.value(0, "k").value, None);
}

#[test]
fn an_rmw_is_answered_after_the_leaders_execution_without_notices() {
    let mut c = every_op(5);
    c.propose_command(
        0,
        Command::Rmw {
            op: op(1, 1),
            key: Key::from("k"),
            rmw: RmwOp::FetchAdd { delta: 4 },
        },
    )
    .unwrap();
    // A fast quorum of 4: replicas 0..4 answer; replica 4 hears nothing.
    for _ in 0..50 {
        if !c.deliver_where(|m| m.to.0 != 4 && m.from.0 != 4) {
            break;
        }
    }
    let Some(EpaxosReply::Rmw { outcome, .. }) = c.reply(0, op(1, 1)) else {
        panic!("no reply")
    };
    assert_eq!(outcome.new, Some(Value::from_i64(4)));
    assert!(
        !c.net
            .iter()
            .any(|m| matches!(m.msg, EpaxosMsg::Executed { .. })),
        "EPaxos-all needs no Executed notices"
    );
}

#[test]
fn gryff_replicas_refuse_gets_and_puts() {
    let mut gryff = Cluster::new(3);
    assert_eq!(
        gryff.propose_command(0, put(1, 1, "a")),
        Err(BadInput::BaselineOnly)
    );
    assert_eq!(
        gryff.propose_command(0, Command::Noop),
        Err(BadInput::NotAClientCommand)
    );
    // A PreAccept of a get from an EPaxos-all peer is refused too.
    let mut all = every_op(3);
    all.propose_command(0, get(1, 1)).unwrap();
    let pre = all
        .net
        .iter()
        .find(|m| m.to.0 == 1)
        .map(|m| m.msg.clone())
        .unwrap();
    let node = &mut gryff.nodes[1];
    let mut out = Vec::new();
    let res = node.m.handle_message(
        registers::Time(0),
        ReplicaId(0),
        pre,
        &mut node.store,
        &mut out,
    );
    assert_eq!(res, Err(BadInput::BaselineOnly));
    assert!(out.is_empty());
}
