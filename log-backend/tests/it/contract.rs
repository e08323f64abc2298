//! The log contract (LOGSTACK.md §1), one suite run against both engines.

use std::collections::BTreeSet;
use std::time::Duration;

use log_backend::{AppendId, ClientId, LogConfig, LogError, Position, StreamId};

use crate::common::{Harness, MemHarness, RocksHarness, block_on_all};

fn id(c: u64, s: u64) -> AppendId {
    AppendId::new(ClientId(c), s)
}

const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);
const S3: StreamId = StreamId(3);

fn append_read_round_trip(h: &mut dyn Harness) {
    let log = h.log();
    assert_eq!(
        log.append(&[S2, S1, S2], b"a", id(1, 1)).unwrap(),
        Position(0)
    );
    assert_eq!(log.append(&[S1], b"bb", id(1, 2)).unwrap(), Position(1));
    let e = log.read(Position(0)).unwrap();
    assert_eq!(e.position, Position(0));
    assert_eq!(e.streams, vec![S1, S2], "streams sorted and deduplicated");
    assert_eq!(e.payload, b"a");
    assert_eq!(e.id, id(1, 1));
    assert_eq!(log.read(Position(1)).unwrap().payload, b"bb");
    assert!(matches!(
        log.read(Position(2)),
        Err(LogError::NotWritten {
            position: Position(2),
            tail: Position(2)
        })
    ));
}

fn multi_stream_append_is_in_every_stream(h: &mut dyn Harness) {
    let log = h.log();
    log.append(&[S1, S2], b"0", id(1, 1)).unwrap();
    log.append(&[S2], b"1", id(1, 2)).unwrap();
    log.append(&[S1, S3], b"2", id(1, 3)).unwrap();
    log.append(&[S1], b"3", id(1, 4)).unwrap();
    let pos = |s, from, limit| -> Vec<u64> {
        log.read_next(s, Position(from), limit)
            .unwrap()
            .iter()
            .map(|e| e.position.0)
            .collect()
    };
    assert_eq!(pos(S1, 0, 100), vec![0, 2, 3]);
    assert_eq!(pos(S2, 0, 100), vec![0, 1]);
    assert_eq!(pos(S3, 0, 100), vec![2]);
    assert_eq!(pos(S1, 1, 100), vec![2, 3]);
    assert_eq!(pos(S1, 0, 2), vec![0, 2]);
    assert_eq!(pos(S1, 4, 100), Vec::<u64>::new());
    assert_eq!(pos(StreamId(99), 0, 100), Vec::<u64>::new());
}

fn retries_are_exactly_once(h: &mut dyn Harness) {
    let log = h.log();
    let p = log.append(&[S1], b"first", id(7, 1)).unwrap();
    assert_eq!(log.append(&[S1], b"first", id(7, 1)).unwrap(), p);
    assert_eq!(log.append(&[S2], b"other payload", id(7, 1)).unwrap(), p);
    assert_eq!(log.check_tail(&[]).unwrap().tail, Position(1));
    assert_eq!(log.read(p).unwrap().payload, b"first");
    // Another client's seq 1 is a different append.
    assert_eq!(log.append(&[S1], b"x", id(8, 1)).unwrap(), Position(1));
    assert_eq!(log.last_seq(ClientId(7)).unwrap(), Some(1));
    assert_eq!(log.last_seq(ClientId(9)).unwrap(), None);
    drop(log);
    h.restart();
    let log = h.log();
    assert_eq!(
        log.append(&[S1], b"first", id(7, 1)).unwrap(),
        p,
        "dedup survives restart"
    );
    assert_eq!(log.last_seq(ClientId(7)).unwrap(), Some(1));
    assert_eq!(log.append(&[S1], b"y", id(7, 2)).unwrap(), Position(2));
}

fn check_tail_is_a_consistent_snapshot(h: &mut dyn Harness) {
    let log = h.log();
    let t = log.check_tail(&[S1, S2]).unwrap();
    assert_eq!(t.tail, Position(0));
    assert_eq!(t.streams, vec![(S1, None), (S2, None)]);
    assert!(!t.sealed);
    log.append(&[S1], b"", id(1, 1)).unwrap();
    log.append(&[S1, S2], b"", id(1, 2)).unwrap();
    log.append(&[S3], b"", id(1, 3)).unwrap();
    let t = log.check_tail(&[S2, S1, StreamId(50)]).unwrap();
    assert_eq!(t.tail, Position(3));
    assert_eq!(
        t.streams,
        vec![
            (S2, Some(Position(1))),
            (S1, Some(Position(1))),
            (StreamId(50), None)
        ]
    );
    assert_eq!(t.last_of(S1), Some(Position(1)));
}

fn trim_forgets_the_prefix(h: &mut dyn Harness) {
    let log = h.log();
    for i in 0..10 {
        let s = if i < 5 { S1 } else { S2 };
        log.append(&[s], &[i as u8], id(1, i + 1)).unwrap();
    }
    log.prefix_trim(Position(5)).unwrap();
    assert_eq!(
        log.read(Position(3)),
        Err(LogError::Trimmed {
            position: Position(3),
            trim_point: Position(5)
        })
    );
    assert_eq!(log.read(Position(5)).unwrap().payload, vec![5]);
    assert!(matches!(
        log.read_next(S2, Position(0), 10),
        Err(LogError::Trimmed {
            position: Position(0),
            trim_point: Position(5)
        })
    ));
    assert_eq!(log.read_next(S2, Position(5), 10).unwrap().len(), 5);
    assert!(log.read_next(S1, Position(5), 10).unwrap().is_empty());
    let t = log.check_tail(&[S1, S2]).unwrap();
    assert_eq!(t.trim_point, Position(5));
    assert_eq!(t.streams, vec![(S1, None), (S2, Some(Position(9)))]);
    // Lower trims are no-ops; trimming past the tail is refused.
    log.prefix_trim(Position(2)).unwrap();
    assert_eq!(log.check_tail(&[]).unwrap().trim_point, Position(5));
    assert_eq!(
        log.prefix_trim(Position(11)),
        Err(LogError::TrimBeyondTail {
            requested: Position(11),
            tail: Position(10)
        })
    );
    log.prefix_trim(Position(10)).unwrap();
    assert!(matches!(
        log.read(Position(9)),
        Err(LogError::Trimmed { .. })
    ));
    drop(log);
    h.restart();
    let log = h.log();
    let t = log.check_tail(&[S2]).unwrap();
    assert_eq!((t.tail, t.trim_point), (Position(10), Position(10)));
    assert_eq!(t.streams, vec![(S2, None)]);
    assert_eq!(log.append(&[S1], b"after", id(2, 1)).unwrap(), Position(10));
}

fn seal_stops_appends(h: &mut dyn Harness) {
    let log = h.log();
    log.append(&[S1], b"a", id(1, 1)).unwrap();
    assert_eq!(log.seal().unwrap(), Position(1));
    assert_eq!(log.append(&[S1], b"b", id(1, 2)), Err(LogError::Sealed));
    assert_eq!(
        log.append_async(&[S1], b"b", id(1, 3)).wait(),
        Err(LogError::Sealed)
    );
    assert_eq!(log.seal().unwrap(), Position(1), "seal is idempotent");
    assert_eq!(log.read(Position(0)).unwrap().payload, b"a");
    assert!(log.check_tail(&[]).unwrap().sealed);
    drop(log);
    h.restart();
    let log = h.log();
    assert!(log.check_tail(&[]).unwrap().sealed, "seal is durable");
    assert_eq!(log.append(&[S1], b"c", id(1, 4)), Err(LogError::Sealed));
}

fn subscribe_follows_the_tail(h: &mut dyn Harness) {
    let log = h.log();
    log.append(&[S1], b"0", id(1, 1)).unwrap();
    let mut sub = log.subscribe(Position(0));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for i in 1..20u64 {
                log.append(&[S2], &i.to_be_bytes(), id(2, i)).unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 20 {
        let e = sub
            .next_timeout(Duration::from_secs(10))
            .unwrap()
            .expect("entry within 10 s");
        seen.push(e.position.0);
    }
    writer.join().unwrap();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    assert_eq!(sub.next_timeout(Duration::from_millis(20)).unwrap(), None);
    // Resume from a saved position.
    let mut again = log.subscribe(Position(15));
    assert_eq!(again.try_next().unwrap().unwrap().position, Position(15));
    assert_eq!(again.next_position(), Position(16));
    log.prefix_trim(Position(10)).unwrap();
    let mut old = log.subscribe(Position(3));
    assert!(matches!(old.try_next(), Err(LogError::Trimmed { .. })));
}

fn async_appends_need_no_thread_each(h: &mut dyn Harness) {
    let log = h.log();
    let futures: Vec<_> = (1..=300u64)
        .map(|i| log.append_async(&[StreamId(i % 3)], &i.to_be_bytes(), id(5, i)))
        .collect();
    let results = block_on_all(futures);
    let positions: BTreeSet<u64> = results.into_iter().map(|r| r.unwrap().0).collect();
    assert_eq!(positions, (0..300).collect::<BTreeSet<_>>());
    // Futures resolved in submission order got positions in that order.
    for i in 1..=300u64 {
        assert_eq!(log.read(Position(i - 1)).unwrap().id, id(5, i));
    }
}

fn concurrent_appenders_get_dense_positions(h: &mut dyn Harness) {
    let log = h.log();
    let threads: Vec<_> = (0..8u64)
        .map(|c| {
            let log = log.clone();
            std::thread::spawn(move || {
                (1..=100u64)
                    .map(|s| log.append(&[StreamId(c)], b"x", id(c, s)).unwrap().0)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for t in threads {
        let mine = t.join().unwrap();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "one client's appends are ordered"
        );
        all.extend(mine);
    }
    assert_eq!(all, (0..800).collect::<BTreeSet<_>>());
    assert_eq!(log.check_tail(&[]).unwrap().tail, Position(800));
}

fn durable_across_restart(h: &mut dyn Harness) {
    let log = h.log();
    for i in 0..20u64 {
        log.append(&[StreamId(i % 2)], &i.to_be_bytes(), id(1, i + 1))
            .unwrap();
    }
    drop(log);
    h.restart();
    let log = h.log();
    for i in 0..20u64 {
        assert_eq!(log.read(Position(i)).unwrap().payload, i.to_be_bytes());
    }
    assert_eq!(
        log.read_next(StreamId(1), Position(0), 100).unwrap().len(),
        10
    );
    assert_eq!(log.append(&[S1], b"next", id(1, 21)).unwrap(), Position(20));
}

fn size_and_stream_limits(h: &mut dyn Harness) {
    let log = h.log();
    let limit = 1 << 20;
    assert_eq!(
        log.append(&[S1], &vec![0; limit + 1], id(1, 1)),
        Err(LogError::EntryTooLarge {
            size: limit + 1,
            limit
        })
    );
    assert_eq!(
        log.append(&[S1], &vec![7; limit], id(1, 2)).unwrap(),
        Position(0)
    );
    assert_eq!(log.read(Position(0)).unwrap().payload.len(), limit);
    assert_eq!(log.append(&[], b"x", id(1, 3)), Err(LogError::NoStreams));
    let many: Vec<StreamId> = (0..65).map(StreamId).collect();
    assert_eq!(
        log.append(&many, b"x", id(1, 4)),
        Err(LogError::TooManyStreams {
            count: 65,
            limit: 64
        })
    );
    assert_eq!(
        log.check_tail(&[]).unwrap().tail,
        Position(1),
        "rejects wrote nothing"
    );
}

fn corrupted_entry_is_a_typed_error(h: &mut dyn Harness) {
    let log = h.log();
    for i in 0..3u64 {
        log.append(&[S1], b"payload", id(1, i + 1)).unwrap();
    }
    drop(log);
    h.corrupt(Position(1));
    let log = h.log();
    assert!(matches!(
        log.read(Position(1)),
        Err(LogError::Corrupted {
            position: Position(1),
            ..
        })
    ));
    assert!(log.read(Position(0)).is_ok());
    assert!(log.read(Position(2)).is_ok());
    assert!(matches!(
        log.read_next(S1, Position(0), 10),
        Err(LogError::Corrupted {
            position: Position(1),
            ..
        })
    ));
    assert!(log.read(Position(1)).unwrap_err().is_fatal());
}

macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod mem {
            $( #[test] fn $name() { super::$name(&mut crate::common::MemHarness::new(Default::default())); } )*
        }
        mod rocks {
            $( #[test] fn $name() { super::$name(&mut crate::common::RocksHarness::new(Default::default())); } )*
        }
    };
}

both_engines!(
    append_read_round_trip,
    multi_stream_append_is_in_every_stream,
    retries_are_exactly_once,
    check_tail_is_a_consistent_snapshot,
    trim_forgets_the_prefix,
    seal_stops_appends,
    subscribe_follows_the_tail,
    async_appends_need_no_thread_each,
    concurrent_appenders_get_dense_positions,
    durable_across_restart,
    size_and_stream_limits,
    corrupted_entry_is_a_typed_error,
);

/// Tests that need a non-default config, for both engines.
fn small_config() -> LogConfig {
    let mut c = LogConfig {
        max_entry_bytes: 100,
        ..LogConfig::default()
    };
    c.dedup.window_per_client = 4;
    c
}

fn configured_limits(h: &mut dyn Harness) {
    let log = h.log();
    assert_eq!(
        log.append(&[S1], &[0; 101], id(1, 1)),
        Err(LogError::EntryTooLarge {
            size: 101,
            limit: 100
        })
    );
    for s in 1..=10 {
        log.append(&[S1], b"x", id(1, s)).unwrap();
    }
    assert_eq!(
        log.append(&[S1], b"x", id(1, 2)),
        Err(LogError::SeqTooOld {
            client: ClientId(1),
            seq: 2,
            floor: 7
        })
    );
    assert_eq!(log.append(&[S1], b"x", id(1, 8)).unwrap(), Position(7));
    drop(log);
    h.restart();
    assert!(matches!(
        h.log().append(&[S1], b"x", id(1, 3)),
        Err(LogError::SeqTooOld { .. })
    ));
}

#[test]
fn configured_limits_mem() {
    configured_limits(&mut MemHarness::new(small_config()));
}

#[test]
fn configured_limits_rocks() {
    configured_limits(&mut RocksHarness::new(small_config()));
}
