//! Bad input gets its own typed error, never a panic: an oversized entry,
//! a read below the trim point, an append after seal, a corrupted entry on
//! disk. (Garbage on a Tango object's stream: see `tango.rs`.)

use log_backend::{AppendId, ClientId, LogConfig, LogError, Position, StreamId};

use crate::common::{Harness, RocksHarness};

#[test]
fn each_bad_input_has_its_own_error_on_disk() {
    let config = LogConfig {
        max_entry_bytes: 4096,
        ..LogConfig::default()
    };
    let mut h = RocksHarness::new(config);
    let log = h.log();
    let id = |s| AppendId::new(ClientId(1), s);
    let s = [StreamId(1)];

    let too_large = log.append(&s, &[0; 4097], id(1)).unwrap_err();
    for i in 0..4 {
        log.append(&s, b"ok", id(i + 2)).unwrap();
    }
    log.prefix_trim(Position(2)).unwrap();
    let trimmed = log.read(Position(1)).unwrap_err();
    drop(log);
    h.corrupt(Position(3));
    let log = h.log();
    let corrupted = log.read(Position(3)).unwrap_err();
    log.seal().unwrap();
    let sealed = log.append(&s, b"late", id(9)).unwrap_err();

    assert_eq!(
        too_large,
        LogError::EntryTooLarge {
            size: 4097,
            limit: 4096
        }
    );
    assert_eq!(
        trimmed,
        LogError::Trimmed {
            position: Position(1),
            trim_point: Position(2)
        }
    );
    assert!(matches!(
        corrupted,
        LogError::Corrupted {
            position: Position(3),
            ..
        }
    ));
    assert_eq!(sealed, LogError::Sealed);
    // Caller mistakes are not fatal; corruption is.
    assert!(!too_large.is_fatal() && !trimmed.is_fatal() && !sealed.is_fatal());
    assert!(corrupted.is_fatal());
}
