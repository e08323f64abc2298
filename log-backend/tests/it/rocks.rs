//! RocksDB-engine specifics: group commit, backpressure, on-disk
//! corruption detected by RocksDB itself.

use std::path::Path;

use log_backend::{AppendId, ClientId, Log, LogConfig, LogError, Position, RocksLog, StreamId};

use crate::common::block_on_all;

#[test]
fn concurrent_appends_share_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = RocksLog::open(dir.path(), LogConfig::default()).unwrap();
    let threads: Vec<_> = (0..32u64)
        .map(|c| {
            let log = log.clone();
            std::thread::spawn(move || {
                for s in 1..=20 {
                    log.append(&[StreamId(c)], &[0; 128], AppendId::new(ClientId(c), s))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = log.stats();
    assert_eq!(st.records, 640);
    assert!(
        st.batches < 640 && st.max_batch_records > 1,
        "no group commit happened: {st:?}"
    );
}

#[test]
fn async_submissions_wait_for_queue_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::default();
    config.group_commit.max_records = 4;
    let log = RocksLog::open(dir.path(), config).unwrap();
    let futures: Vec<_> = (1..=200u64)
        .map(|s| log.append_async(&[StreamId(1)], b"x", AppendId::new(ClientId(1), s)))
        .collect();
    let results = block_on_all(futures);
    let mut positions: Vec<u64> = results.into_iter().map(|r| r.unwrap().0).collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..200).collect::<Vec<_>>());
    assert!(log.stats().max_batch_records <= 4);
}

fn flip_marker_in_ssts(dir: &Path, marker: &[u8]) -> usize {
    let mut flipped = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "sst") {
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
                bytes[at] ^= 0x40;
                std::fs::write(&path, bytes).unwrap();
                flipped += 1;
            }
        }
    }
    flipped
}

#[test]
fn corrupted_sst_block_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let marker = b"MARKER-7f3a9c-MARKER";
    {
        let log = RocksLog::open(dir.path(), LogConfig::default()).unwrap();
        // Entries of ~3 KiB, so each sits in its own 4 KiB data block and
        // the damage stays within the entry at position 2.
        for s in 1..=5u64 {
            let mut payload = vec![b'.'; 3000];
            if s == 3 {
                payload[1000..1000 + marker.len()].copy_from_slice(marker);
            }
            log.append(&[StreamId(1)], &payload, AppendId::new(ClientId(1), s))
                .unwrap();
        }
        log.flush().unwrap();
    }
    assert_eq!(
        flip_marker_in_ssts(dir.path(), marker),
        1,
        "marker found in one SST"
    );
    let log = RocksLog::open(dir.path(), LogConfig::default()).unwrap();
    match log.read(Position(2)) {
        Err(LogError::Corrupted { position, .. }) => assert_eq!(position, Position(2)),
        other => panic!("expected Corrupted, got {other:?}"),
    }
    assert!(log.read(Position(1)).is_ok(), "other blocks are intact");
}

#[test]
fn reopen_rejects_a_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _log = RocksLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        RocksLog::open(dir.path(), LogConfig::default()),
        Err(LogError::Engine(_))
    ));
}

#[test]
fn invalid_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::default();
    config.group_commit.max_records = 0;
    assert!(matches!(
        RocksLog::open(dir.path(), config),
        Err(LogError::InvalidConfig(_))
    ));
}

#[test]
fn the_window_gathers_a_batch_and_a_gap_closes_it_early() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig::default();
    config.group_commit.max_delay_us = 200_000;
    let log = RocksLog::open(dir.path(), config.clone()).unwrap();
    let id = |s| AppendId::new(ClientId(1), s);
    // Ten appends submitted over ~20 ms all wait for the window: one batch.
    let futures: Vec<_> = (1..=10)
        .map(|s| {
            std::thread::sleep(Duration::from_millis(2));
            log.append_async(&[StreamId(1)], b"x", id(s))
        })
        .collect();
    for f in futures {
        f.wait().unwrap();
    }
    let st = log.stats();
    assert_eq!((st.batches, st.max_batch_records), (1, 10));
    drop(log);

    // With a linger gap, a pause in arrivals closes the window long before
    // max_delay.
    config.group_commit.max_delay_us = 1_000_000;
    config.group_commit.linger_gap_us = 5_000;
    let log = RocksLog::open(dir.path(), config).unwrap();
    let started = Instant::now();
    log.append(&[StreamId(1)], b"y", id(11)).unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(5), "lingered {took:?}");
    assert!(
        took < Duration::from_millis(500),
        "waited out the window: {took:?}"
    );
}
