//! The Tango backend over the in-memory log engine: records come back as
//! an equivalent list (after a restart, after checkpoints and trims), a
//! group is one atomic entry, and the last_rmw cross-check holds.

use super::*;
use consensus::{
    Attrs, Ballot, Command, DedupEntry, Deps, EpaxosPersist, ExecResult, ExecutionRecord,
    InstanceId, InstanceRecord, Status,
};
use log_backend::{LogConfig, MemLog, SyncMode};
use registers::{
    Carstamp, ClientId, Key, OpId, Register, RegisterPersist, ReplicaId, RequestId, RmwOp, Value,
    WriterId,
};

fn log() -> SharedLog {
    Arc::new(MemLog::new(LogConfig::default(), SyncMode::Immediate).unwrap())
}

fn policy() -> CheckpointPolicy {
    CheckpointPolicy {
        interval: Duration::from_secs(3600),
        min_new_entries: 1,
    }
}

fn open(log: &SharedLog) -> TangoDurability {
    TangoDurability::open(log.clone(), 1 << 20, policy()).unwrap()
}

fn reg(ts: u64, v: &str) -> Register {
    Register {
        value: Some(Value::from(v)),
        cs: Carstamp::for_write(ts, WriterId(7)),
    }
}

fn applied(key: &str, ts: u64, v: &str) -> Record {
    Record::Register(RegisterPersist::Applied {
        key: Key::from(key),
        reg: reg(ts, v),
    })
}

fn inst(slot: u64) -> InstanceId {
    InstanceId::new(ReplicaId(1), slot)
}

fn instance(slot: u64, status: Status) -> Record {
    let op = OpId {
        client: ClientId(3),
        request: RequestId(slot),
    };
    Record::Epaxos(EpaxosPersist::Instance(InstanceRecord {
        inst: inst(slot),
        promised: Ballot::ZERO,
        accepted: Ballot::ZERO,
        status,
        attrs: Some(Attrs {
            cmd: Command::Rmw {
                op,
                key: Key::from("n"),
                rmw: RmwOp::FetchAdd { delta: 1 },
            },
            seq: slot,
            deps: Deps::new(),
            base: Register::default(),
        }),
        unchanged: false,
    }))
}

fn executed(slot: u64, last: Register) -> Record {
    let op = OpId {
        client: ClientId(3),
        request: RequestId(slot),
    };
    let outcome = RmwOp::FetchAdd { delta: 1 }.apply(None);
    Record::Epaxos(EpaxosPersist::Executed(ExecutionRecord {
        inst: inst(slot),
        result: ExecResult::Applied {
            key: Key::from("n"),
            last_rmw: last.clone(),
            register: last.clone(),
            entry: DedupEntry {
                op,
                outcome,
                cs: last.cs,
            },
        },
    }))
}

async fn submit(d: &mut TangoDurability, records: Vec<Record>) {
    d.submit(records).await.unwrap();
}

#[tokio::test]
async fn records_come_back_from_the_objects_after_a_restart() {
    let log = log();
    let mut d = open(&log);
    submit(&mut d, vec![applied("a", 1, "x"), applied("b", 2, "y")]).await;
    submit(
        &mut d,
        vec![Record::Register(RegisterPersist::OpSeqReserved {
            up_to: 100,
        })],
    )
    .await;
    submit(&mut d, vec![instance(1, Status::PreAccepted)]).await;
    submit(
        &mut d,
        vec![
            instance(1, Status::Committed),
            instance(2, Status::PreAccepted),
        ],
    )
    .await;
    submit(&mut d, vec![executed(1, reg(3, "1"))]).await;
    // An older value of "a" arriving later does not win (apply-if-greater).
    submit(&mut d, vec![applied("a", 0, "old"), applied("a", 4, "z")]).await;
    submit(
        &mut d,
        vec![Record::Register(RegisterPersist::OpSeqReserved {
            up_to: 200,
        })],
    )
    .await;
    drop(d);
    let mut again = open(&log);
    let got = again.recover().unwrap();
    let expected = vec![
        applied("b", 2, "y"),
        // The executed RMW wrote register "n" in the same transaction.
        Record::Register(RegisterPersist::Applied {
            key: Key::from("n"),
            reg: reg(3, "1"),
        }),
        applied("a", 4, "z"),
        Record::Register(RegisterPersist::OpSeqReserved { up_to: 200 }),
        instance(1, Status::Committed),
        instance(2, Status::PreAccepted),
        executed(1, reg(3, "1")),
    ];
    assert_eq!(got, expected);
}

#[tokio::test]
async fn checkpoints_trim_the_log_and_restarts_still_see_everything() {
    let log = log();
    let mut d = open(&log);
    for i in 0..50u64 {
        submit(&mut d, vec![applied(&format!("k{i}"), i + 1, "v")]).await;
    }
    let trim = d.checkpoint_now().unwrap();
    assert!(trim > 0, "nothing trimmed");
    assert!(log.read(log_backend::Position(0)).is_err());
    submit(&mut d, vec![instance(9, Status::Accepted)]).await;
    drop(d);
    let got = open(&log).recover().unwrap();
    assert_eq!(got.len(), 51);
    assert_eq!(got[50], instance(9, Status::Accepted));
    // A second checkpoint on the restarted backend, and once more.
    let mut d = open(&log);
    submit(&mut d, vec![applied("k0", 99, "w")]).await;
    d.checkpoint_now().unwrap();
    drop(d);
    let got = open(&log).recover().unwrap();
    assert!(got.contains(&applied("k0", 99, "w")));
    assert_eq!(got.len(), 51);
}

#[tokio::test]
async fn raft_records_replay_in_journal_order() {
    let log = log();
    let mut d = open(&log);
    let r = |i: u64| Record::Raft(consensus::raft::RaftPersist::Incarnation(i));
    submit(&mut d, vec![r(3), r(1)]).await;
    submit(&mut d, vec![r(2)]).await;
    drop(d);
    let mut d = open(&log);
    assert_eq!(d.recover().unwrap(), vec![r(3), r(1), r(2)]);
    submit(&mut d, vec![r(5)]).await;
    drop(d);
    assert_eq!(open(&log).recover().unwrap(), vec![r(3), r(1), r(2), r(5)]);
}

#[tokio::test]
async fn a_group_too_large_for_one_entry_is_split_and_still_durable() {
    let log = log();
    let mut d = TangoDurability::open(log.clone(), (64 << 10) + 4096, policy()).unwrap();
    let big = "x".repeat(3000);
    let group: Vec<Record> = (0..5).map(|i| applied(&format!("b{i}"), 1, &big)).collect();
    let before = log.check_tail(&[]).unwrap().tail;
    submit(&mut d, group).await;
    let after = log.check_tail(&[]).unwrap().tail;
    assert!(
        after.0 - before.0 >= 2,
        "expected the group split over entries"
    );
    drop(d);
    assert_eq!(open(&log).recover().unwrap().len(), 5);
}

#[tokio::test]
async fn executions_in_one_entry_replay_in_the_order_they_were_made() {
    let log = log();
    let mut d = open(&log);
    // Slot 9 executed before slot 2 on the same key, in one group: the
    // instance ids sort the other way round.
    submit(
        &mut d,
        vec![executed(9, reg(5, "a")), executed(2, reg(6, "b"))],
    )
    .await;
    drop(d);
    let got = open(&log).recover().unwrap();
    assert_eq!(
        got,
        vec![
            Record::Register(RegisterPersist::Applied {
                key: Key::from("n"),
                reg: reg(6, "b"),
            }),
            executed(9, reg(5, "a")),
            executed(2, reg(6, "b")),
        ]
    );
}
