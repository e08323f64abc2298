//! Tango over the log: helpers, transactions decided identically by two
//! runtimes, decision records for partial views, checkpoints, trim and
//! restart.

use std::sync::Arc;

use log_backend::tango::record::{CommitRecord, ReadItem, Record, WriteItem};
use log_backend::tango::{
    ObjectId, Runtime, RuntimeConfig, TangoError, TangoMap, TangoRegister, TxOutcome,
};
use log_backend::{
    AppendId, ClientId, LogConfig, LogError, MemLog, Position, RocksLog, SharedLog, SyncMode,
};

const A: ObjectId = ObjectId(1);
const B: ObjectId = ObjectId(2);
const C: ObjectId = ObjectId(3);

fn mem_log() -> SharedLog {
    Arc::new(MemLog::new(LogConfig::default(), SyncMode::Immediate).unwrap())
}

fn rt(log: &SharedLog, client: u64) -> Arc<Runtime> {
    Runtime::new(log.clone(), RuntimeConfig::with_client(client)).unwrap()
}

fn rt_timeout(log: &SharedLog, client: u64, timeout_ms: u64) -> Arc<Runtime> {
    let mut c = RuntimeConfig::with_client(client);
    c.decision_timeout_ms = timeout_ms;
    Runtime::new(log.clone(), c).unwrap()
}

fn put_op(v: &[u8]) -> Vec<u8> {
    let mut d = vec![1];
    d.extend_from_slice(v);
    d
}

#[test]
fn register_and_map_are_linearizable_across_runtimes() {
    let log = mem_log();
    let (r1, r2) = (rt(&log, 1), rt(&log, 2));
    let (g1, g2) = (
        TangoRegister::open(&r1, B).unwrap(),
        TangoRegister::open(&r2, B).unwrap(),
    );
    assert_eq!(g2.read().unwrap(), None);
    g1.write(b"one").unwrap();
    assert_eq!(
        g2.read().unwrap(),
        Some(b"one".to_vec()),
        "a read after a write sees it"
    );
    g2.write(b"two").unwrap();
    assert_eq!(g1.read().unwrap(), Some(b"two".to_vec()));

    let (m1, m2) = (
        TangoMap::open(&r1, A).unwrap(),
        TangoMap::open(&r2, A).unwrap(),
    );
    m1.put(b"k", b"v").unwrap();
    m2.put(b"j", b"w").unwrap();
    m1.remove(b"k").unwrap();
    assert_eq!(m2.get(b"k").unwrap(), None);
    assert_eq!(m1.get(b"j").unwrap(), Some(b"w".to_vec()));
    assert_eq!(m1.snapshot().unwrap(), m2.snapshot().unwrap());
}

/// The same interleaving on both engines.
fn conflicting_transactions(log: SharedLog) {
    let (r1, r2) = (rt(&log, 1), rt(&log, 2));
    let (m1, m2) = (
        TangoMap::open(&r1, A).unwrap(),
        TangoMap::open(&r2, A).unwrap(),
    );
    let (g1, g2) = (
        TangoRegister::open(&r1, B).unwrap(),
        TangoRegister::open(&r2, B).unwrap(),
    );
    m1.put(b"x", b"0").unwrap();

    // Read-modify-write of x from both runtimes, interleaved: the second
    // committer read a version that is no longer current.
    let mut t1 = r1.begin().unwrap();
    let mut t2 = r2.begin().unwrap();
    assert_eq!(m1.get_in(&mut t1, b"x").unwrap(), Some(b"0".to_vec()));
    assert_eq!(m2.get_in(&mut t2, b"x").unwrap(), Some(b"0".to_vec()));
    m1.put_in(&mut t1, b"x", b"1").unwrap();
    m2.put_in(&mut t2, b"x", b"2").unwrap();
    let o1 = t1.commit().unwrap();
    let o2 = t2.commit().unwrap();
    assert!(matches!(o1, TxOutcome::Committed(_)));
    assert!(matches!(o2, TxOutcome::Aborted(_)));

    // Disjoint keys do not conflict.
    let mut t3 = r1.begin().unwrap();
    let mut t4 = r2.begin().unwrap();
    m1.get_in(&mut t3, b"y").unwrap();
    m2.get_in(&mut t4, b"z").unwrap();
    m1.put_in(&mut t3, b"y", b"3").unwrap();
    m2.put_in(&mut t4, b"z", b"4").unwrap();
    assert!(t3.commit().unwrap().is_committed());
    assert!(t4.commit().unwrap().is_committed());

    // A plain update between read and commit aborts too.
    let mut t5 = r2.begin().unwrap();
    assert_eq!(g2.read_in(&mut t5).unwrap(), None);
    g2.write_in(&mut t5, b"from-t5").unwrap();
    g1.write(b"plain").unwrap();
    assert!(matches!(t5.commit().unwrap(), TxOutcome::Aborted(_)));

    // Read-your-writes and read-only transactions.
    let mut t6 = r1.begin().unwrap();
    m1.put_in(&mut t6, b"w", b"mine").unwrap();
    assert_eq!(m1.get_in(&mut t6, b"w").unwrap(), Some(b"mine".to_vec()));
    assert!(t6.commit().unwrap().is_committed());
    let mut t7 = r2.begin().unwrap();
    m2.get_in(&mut t7, b"w").unwrap();
    assert_eq!(t7.commit().unwrap(), TxOutcome::ReadOnly);

    r1.query_helper().unwrap();
    r2.query_helper().unwrap();
    assert_eq!(m1.local_snapshot().unwrap(), m2.local_snapshot().unwrap());
    assert_eq!(m1.get(b"x").unwrap(), Some(b"1".to_vec()));
    assert_eq!(g2.read().unwrap(), Some(b"plain".to_vec()));
    assert_eq!(r1.recent_decisions(), r2.recent_decisions());
    assert_eq!(r1.recent_decisions().iter().filter(|(_, c)| !c).count(), 2);
}

#[test]
fn two_runtimes_decide_identically_mem() {
    conflicting_transactions(mem_log());
}

#[test]
fn two_runtimes_decide_identically_rocks() {
    let dir = tempfile::tempdir().unwrap();
    conflicting_transactions(Arc::new(
        RocksLog::open(dir.path(), LogConfig::default()).unwrap(),
    ));
}

/// Tango's "don't know!" case: a transaction reads A and writes C; a view
/// hosting C but not A learns the outcome from the decision record.
#[test]
fn partial_view_follows_the_decision_record() {
    let log = mem_log();
    let full = rt(&log, 1);
    let partial = rt(&log, 2);
    let fa = TangoMap::open(&full, A).unwrap();
    let fc = TangoMap::open(&full, C).unwrap();
    let pc = TangoMap::open(&partial, C).unwrap();
    fa.put(b"owner", b"me").unwrap();

    // Commits: A unchanged since the read.
    let mut t = full.begin().unwrap();
    assert_eq!(fa.get_in(&mut t, b"owner").unwrap(), Some(b"me".to_vec()));
    fc.put_in(&mut t, b"ledger", b"item1").unwrap();
    let ok = t.commit().unwrap();
    assert!(ok.is_committed());

    // Aborts: A changes (by a client that does not host it) after the read.
    let mut t = full.begin().unwrap();
    fa.get_in(&mut t, b"owner").unwrap();
    fc.put_in(&mut t, b"ledger", b"item2").unwrap();
    partial.update_helper(A, b"owner", &put_op(b"you")).unwrap();
    let TxOutcome::Aborted(aborted_at) = t.commit().unwrap() else {
        panic!("should abort")
    };

    assert_eq!(pc.get(b"ledger").unwrap(), Some(b"item1".to_vec()));
    assert_eq!(pc.snapshot().unwrap(), fc.snapshot().unwrap());
    assert_eq!(partial.decision(aborted_at), Some(false));
    assert_eq!(full.recent_decisions(), partial.recent_decisions());
    assert_eq!(full.stats().decisions_appended, 2);
    assert_eq!(partial.stats().decisions_appended, 0);
}

/// A commit record whose committer died before its decision record.
fn abandoned_commit(log: &SharedLog, a_version: Option<Position>) -> Position {
    let rec = Record::Commit(CommitRecord {
        reads: vec![ReadItem {
            object: A,
            key: b"owner".to_vec(),
            version: a_version,
        }],
        writes: vec![WriteItem {
            object: C,
            key: b"ledger".to_vec(),
            data: put_op(b"ghost"),
        }],
    });
    log.append(
        &[A.stream(), C.stream()],
        &rec.encode(),
        AppendId::new(ClientId(99), 1),
    )
    .unwrap()
}

#[test]
fn abandoned_transaction_is_aborted_by_a_later_decision_record() {
    let log = mem_log();
    let full = rt_timeout(&log, 1, 60_000);
    let partial = rt_timeout(&log, 2, 50);
    let fa = TangoMap::open(&full, A).unwrap();
    let fc = TangoMap::open(&full, C).unwrap();
    let pc = TangoMap::open(&partial, C).unwrap();
    let v = fa.put(b"owner", b"me").unwrap();
    // Valid read set: had its committer lived, this would commit.
    let commit = abandoned_commit(&log, Some(v));
    pc.put(b"after", b"1").unwrap();

    // The partial view cannot decide; after its timeout it aborts it.
    let started = std::time::Instant::now();
    assert_eq!(pc.get(b"ledger").unwrap(), None);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    assert_eq!(
        pc.get(b"after").unwrap(),
        Some(b"1".to_vec()),
        "playback moved on"
    );
    assert_eq!(partial.decision(commit), Some(false));
    assert_eq!(partial.stats().decisions_appended, 1);

    // The committer comes back late and appends its own (commit) decision.
    let late = Record::Decision {
        commit,
        committed: true,
    };
    log.append(
        &[A.stream(), C.stream()],
        &late.encode(),
        AppendId::new(ClientId(99), 2),
    )
    .unwrap();

    // The full view could validate it, but the first decision wins.
    assert_eq!(fc.get(b"ledger").unwrap(), None);
    assert_eq!(full.decision(commit), Some(false));
    assert_eq!(fc.snapshot().unwrap(), pc.snapshot().unwrap());
    // So does a view built later from the whole log.
    let late_view = rt(&log, 3);
    let lc = TangoMap::open(&late_view, C).unwrap();
    assert_eq!(lc.get(b"ledger").unwrap(), None);
    assert_eq!(late_view.decision(commit), Some(false));
}

#[test]
fn a_full_view_decides_an_abandoned_transaction_by_validation() {
    let log = mem_log();
    let full = rt_timeout(&log, 1, 30);
    let partial = rt_timeout(&log, 2, 60_000);
    let fa = TangoMap::open(&full, A).unwrap();
    let fc = TangoMap::open(&full, C).unwrap();
    let pc = TangoMap::open(&partial, C).unwrap();
    let v = fa.put(b"owner", b"me").unwrap();
    let commit = abandoned_commit(&log, Some(v));
    assert_eq!(fc.get(b"ledger").unwrap(), Some(b"ghost".to_vec()));
    assert_eq!(pc.get(b"ledger").unwrap(), Some(b"ghost".to_vec()));
    assert_eq!(partial.decision(commit), Some(true));
}

#[test]
fn checkpoint_trim_and_restart_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let open =
        || -> SharedLog { Arc::new(RocksLog::open(dir.path(), LogConfig::default()).unwrap()) };
    let expected_map;
    {
        let log = open();
        let mut cfg = RuntimeConfig::with_client(1);
        cfg.checkpoint_chunk_bytes = 64; // several chunks per checkpoint
        let r = Runtime::new(log.clone(), cfg).unwrap();
        let m = TangoMap::open(&r, A).unwrap();
        let g = TangoRegister::open(&r, B).unwrap();
        for i in 0..50u32 {
            m.put(format!("k{i}").as_bytes(), &i.to_be_bytes()).unwrap();
        }
        g.write(b"r1").unwrap();
        assert!(matches!(
            r.trim_below_checkpoints(&[A, B]),
            Err(TangoError::NoCheckpoint(_))
        ));
        r.query_helper().unwrap();
        let ca = r.checkpoint(A).unwrap();
        let cb = r.checkpoint(B).unwrap();
        assert!(ca.chunks > 1);
        for i in 50..60u32 {
            m.put(format!("k{i}").as_bytes(), &i.to_be_bytes()).unwrap();
        }
        m.remove(b"k0").unwrap();
        g.write(b"r2").unwrap();
        let trim = r.trim_below_checkpoints(&[A, B]).unwrap();
        assert_eq!(trim, ca.reflects.min(cb.reflects));
        assert!(matches!(
            log.read(Position(0)),
            Err(LogError::Trimmed { .. })
        ));
        expected_map = m.snapshot().unwrap();
        assert_eq!(expected_map.len(), 59);
    }
    // Restart: a new process (fresh runtime, reopened log) restores the
    // latest checkpoints and replays the rest.
    let log = open();
    let r = rt(&log, 1);
    let m = TangoMap::open(&r, A).unwrap();
    let g = TangoRegister::open(&r, B).unwrap();
    assert_eq!(r.stats().restored, 2);
    assert_eq!(m.snapshot().unwrap(), expected_map);
    assert_eq!(g.read().unwrap(), Some(b"r2".to_vec()));
    // Versions came back too: a transaction over restored keys validates.
    let mut t = r.begin().unwrap();
    m.get_in(&mut t, b"k1").unwrap();
    m.put_in(&mut t, b"k1", b"new").unwrap();
    assert!(t.commit().unwrap().is_committed());
}

#[test]
fn a_lagging_view_reloads_from_a_checkpoint_after_trim() {
    let log = mem_log();
    let (r1, r2) = (rt(&log, 1), rt(&log, 2));
    let m1 = TangoMap::open(&r1, A).unwrap();
    let m2 = TangoMap::open(&r2, A).unwrap();
    m1.put(b"a", b"1").unwrap();
    assert_eq!(m2.get(b"a").unwrap(), Some(b"1".to_vec()));
    for i in 0..20u8 {
        m1.put(&[i], &[i]).unwrap();
    }
    r1.query_helper().unwrap();
    r1.checkpoint(A).unwrap();
    m1.put(b"late", b"2").unwrap();
    r1.trim_below_checkpoints(&[A]).unwrap();
    // r2 is behind the trim point: it restores and catches up.
    assert_eq!(m2.snapshot().unwrap(), m1.snapshot().unwrap());
    assert_eq!(r2.stats().restored, 1);
}

#[test]
fn new_objects_on_a_trimmed_log() {
    let log = mem_log();
    let r = rt(&log, 1);
    let m = TangoMap::create(&r, A).unwrap();
    m.put(b"k", b"v").unwrap();
    r.query_helper().unwrap();
    r.checkpoint(A).unwrap();
    r.trim_below_checkpoints(&[A]).unwrap();
    // An object with no checkpoint cannot be rebuilt from a trimmed log...
    let r2 = rt(&log, 2);
    assert!(matches!(
        TangoMap::open(&r2, B),
        Err(TangoError::ViewLost { .. })
    ));
    // ...unless it is created as new.
    let b = TangoMap::create(&r2, B).unwrap();
    b.put(b"x", b"y").unwrap();
    let r3 = rt(&log, 3);
    assert_eq!(
        TangoMap::open(&r3, B).unwrap().get(b"x").unwrap(),
        Some(b"y".to_vec())
    );
    assert_eq!(
        TangoMap::open(&r3, A).unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn restarted_runtime_continues_its_sequence() {
    let log = mem_log();
    let r = rt(&log, 7);
    let g = TangoRegister::open(&r, B).unwrap();
    g.write(b"a").unwrap();
    drop((g, r));
    let r = rt(&log, 7);
    let g = TangoRegister::open(&r, B).unwrap();
    // Had it reused seq 1, dedup would have swallowed this write.
    g.write(b"b").unwrap();
    assert_eq!(g.read().unwrap(), Some(b"b".to_vec()));
}

#[test]
fn runtime_rejects_misuse_with_errors() {
    let log = mem_log();
    let r = rt(&log, 1);
    let m = TangoMap::open(&r, A).unwrap();
    assert!(matches!(
        TangoMap::open(&r, A),
        Err(TangoError::AlreadyHosted(_))
    ));
    assert!(matches!(
        TangoMap::open(&r, ObjectId(1 << 63)),
        Err(TangoError::InvalidObjectId(_))
    ));
    assert!(matches!(
        r.view(A, |_: &log_backend::tango::RegisterState| ()),
        Err(TangoError::WrongType(_))
    ));
    let mut t = r.begin().unwrap();
    assert!(matches!(
        t.read_with(C, b"k", |_: &log_backend::tango::MapState| ()),
        Err(TangoError::UnknownObject(_))
    ));
    m.put_in(&mut t, b"k", b"v").unwrap();
    assert!(t.commit().unwrap().is_committed(), "write-only commits");
}

#[test]
fn garbage_on_an_object_stream_is_skipped_by_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let log: SharedLog = Arc::new(RocksLog::open(dir.path(), LogConfig::default()).unwrap());
    let a = ObjectId(1);
    let r1 = Runtime::new(log.clone(), RuntimeConfig::with_client(1)).unwrap();
    let r2 = Runtime::new(log.clone(), RuntimeConfig::with_client(2)).unwrap();
    let m1 = TangoMap::open(&r1, a).unwrap();
    let m2 = TangoMap::open(&r2, a).unwrap();
    m1.put(b"k", b"v1").unwrap();
    let junk: [&[u8]; 5] = [
        b"",
        b"\x01",
        b"\x01\x02\xff\xff\xff\xff",
        b"\x01\x01\0\0\0\0\0\0\0\x01\xff\xff\xff\xff",
        &[0xAB; 100],
    ];
    for (i, j) in junk.iter().enumerate() {
        log.append(&[a.stream()], j, AppendId::new(ClientId(66), i as u64 + 1))
            .unwrap();
    }
    // A valid record with an op the map cannot decode.
    r1.update_helper(a, b"k", b"\x09bad-op").unwrap();
    m2.put(b"k2", b"v2").unwrap();
    assert_eq!(m1.snapshot().unwrap(), m2.snapshot().unwrap());
    assert_eq!(m1.get(b"k").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(m2.get(b"k2").unwrap(), Some(b"v2".to_vec()));
    assert_eq!(r1.stats().skipped, 6);
    assert_eq!(r2.stats().skipped, 6);
}
