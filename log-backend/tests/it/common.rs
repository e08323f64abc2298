//! Test harnesses: one interface over both engines, so the contract suite
//! runs unchanged against each.

use std::sync::Arc;

use log_backend::{LogConfig, MemLog, Position, RocksLog, SharedLog, SyncMode};
use tempfile::TempDir;

pub trait Harness {
    fn log(&self) -> SharedLog;
    /// Restarts the engine: what was durable survives.
    fn restart(&mut self);
    /// Damages the stored entry at `position` so its checksum fails.
    fn corrupt(&mut self, position: Position);
}

pub struct MemHarness {
    log: MemLog,
}

impl MemHarness {
    pub fn new(config: LogConfig) -> MemHarness {
        MemHarness {
            log: MemLog::new(config, SyncMode::Immediate).unwrap(),
        }
    }
}

impl Harness for MemHarness {
    fn log(&self) -> SharedLog {
        Arc::new(self.log.clone())
    }
    fn restart(&mut self) {
        self.log.crash();
    }
    fn corrupt(&mut self, position: Position) {
        assert!(self.log.corrupt_entry(position));
    }
}

pub struct RocksHarness {
    pub dir: TempDir,
    config: LogConfig,
    log: Option<RocksLog>,
}

impl RocksHarness {
    pub fn new(config: LogConfig) -> RocksHarness {
        let dir = tempfile::tempdir().unwrap();
        let log = RocksLog::open(dir.path(), config.clone()).unwrap();
        RocksHarness {
            dir,
            config,
            log: Some(log),
        }
    }

    pub fn rocks(&self) -> RocksLog {
        self.log.clone().unwrap()
    }
}

const CFS: [&str; 4] = ["entries", "streams", "dedup", "meta"];

impl Harness for RocksHarness {
    fn log(&self) -> SharedLog {
        Arc::new(self.rocks())
    }
    fn restart(&mut self) {
        self.log = None;
        self.log = Some(RocksLog::open(self.dir.path(), self.config.clone()).unwrap());
    }
    fn corrupt(&mut self, position: Position) {
        // Rewrite the stored frame with one payload bit flipped, through
        // RocksDB itself, so only our checksum can notice.
        self.log = None;
        {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(false);
            let db = rocksdb::DB::open_cf(&opts, self.dir.path(), CFS).unwrap();
            let cf = db.cf_handle("entries").unwrap();
            let key = position.0.to_be_bytes();
            let mut v = db.get_cf(cf, key).unwrap().unwrap();
            let last = v.len() - 1;
            v[last] ^= 0x01;
            db.put_cf(cf, key, v).unwrap();
        }
        self.restart();
    }
}

/// A single-threaded executor for tests: polls every future until all are
/// ready, parking the thread between rounds.
pub fn block_on_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> Vec<F::Output> {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while out.iter().any(Option::is_none) {
        for (i, f) in futures.iter_mut().enumerate() {
            if out[i].is_none()
                && let Poll::Ready(v) = std::pin::Pin::new(f).poll(&mut cx)
            {
                out[i] = Some(v);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "futures never completed"
        );
        if out.iter().any(Option::is_none) {
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
    }
    out.into_iter().flatten().collect()
}
