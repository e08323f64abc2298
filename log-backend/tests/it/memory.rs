//! The memory engine's crash model: only what was synced survives.

use std::time::Duration;

use log_backend::{
    AppendId, ClientId, Log, LogConfig, LogError, MemLog, Position, StreamId, SyncMode,
};

fn id(s: u64) -> AppendId {
    AppendId::new(ClientId(1), s)
}

#[test]
fn crash_drops_the_unsynced_suffix() {
    let log = MemLog::new(LogConfig::default(), SyncMode::Manual).unwrap();
    let s = [StreamId(1)];
    let a: Vec<_> = (1..=3).map(|i| log.append_async(&s, b"a", id(i))).collect();
    assert!(
        a.iter().all(|f| !f.is_ready()),
        "nothing is acknowledged before sync"
    );
    assert_eq!(
        log.check_tail(&s).unwrap().tail,
        Position(0),
        "unsynced is invisible"
    );
    assert!(matches!(
        log.read(Position(0)),
        Err(LogError::NotWritten { .. })
    ));
    log.sync();
    let acked: Vec<_> = a.into_iter().map(|f| f.wait().unwrap()).collect();
    assert_eq!(acked, vec![Position(0), Position(1), Position(2)]);

    let b: Vec<_> = (4..=5).map(|i| log.append_async(&s, b"b", id(i))).collect();
    // A retry of an unsynced append waits for the same sync.
    let retry = log.append_async(&s, b"b", id(5));
    assert_eq!(log.unsynced_len(), 2);
    log.crash();
    for f in b {
        assert_eq!(f.wait(), Err(LogError::Closed));
    }
    assert_eq!(retry.wait(), Err(LogError::Closed));
    let t = log.check_tail(&s).unwrap();
    assert_eq!((t.tail, t.streams[0].1), (Position(3), Some(Position(2))));
    assert_eq!(
        log.last_seq(ClientId(1)).unwrap(),
        Some(3),
        "lost appends left the dedup table"
    );
    // The lost sequence numbers are new appends again.
    let f = log.append_async(&s, b"again", id(4));
    log.sync();
    assert_eq!(f.wait().unwrap(), Position(3));
    assert_eq!(log.read(Position(3)).unwrap().payload, b"again");
}

#[test]
fn blocking_append_in_manual_mode_waits_for_sync() {
    let log = MemLog::new(LogConfig::default(), SyncMode::Manual).unwrap();
    let l2 = log.clone();
    let t = std::thread::spawn(move || l2.append(&[StreamId(1)], b"x", id(1)));
    while log.unsynced_len() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    log.sync();
    assert_eq!(t.join().unwrap(), Ok(Position(0)));
    assert_eq!(log.stats().records, 1);
}

#[test]
fn seal_syncs_what_came_before() {
    let log = MemLog::new(LogConfig::default(), SyncMode::Manual).unwrap();
    let f = log.append_async(&[StreamId(1)], b"x", id(1));
    assert_eq!(log.seal().unwrap(), Position(1));
    assert_eq!(f.wait(), Ok(Position(0)));
    log.crash();
    assert_eq!(log.read(Position(0)).unwrap().payload, b"x");
    assert!(log.check_tail(&[]).unwrap().sealed);
}
