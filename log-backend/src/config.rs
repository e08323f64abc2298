//! Configuration of the log engines (LOGSTACK.md §1): the entry limits, the
//! group-commit window and the dedup table bounds. One struct per
//! component, `Default`, `validate()`, loadable from TOML through serde.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::LogError;

/// Limits and windows shared by every engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Largest payload accepted by `append`, in bytes (default 1 MiB).
    pub max_entry_bytes: usize,
    /// Most streams one entry may name (default 64).
    pub max_streams_per_entry: usize,
    /// Most entries one `read_next` call returns, whatever the caller asks
    /// (default 4096); bounds the memory of one read.
    pub max_read_batch: usize,
    pub group_commit: GroupCommitConfig,
    pub dedup: DedupConfig,
}

/// The group-commit window of the RocksDB engine: the writer thread keeps
/// collecting appends into one WriteBatch until one of the three bounds is
/// hit, then writes it with one fsync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommitConfig {
    /// Most appends in one batch (default 1024). Also the bound on queued
    /// work: while the open batch is full, blocking appends wait and
    /// async appends stay pending.
    pub max_records: usize,
    /// Most payload bytes in one batch (default 8 MiB). One entry larger
    /// than this still goes alone in its own batch.
    pub max_bytes: usize,
    /// Longest time the oldest open-batch append waits for company before the
    /// batch is written, in microseconds. Counted from the arrival of that
    /// append, so time spent waiting for the previous fsync counts too.
    ///
    /// Default 0: the writer takes the open batch as soon as it is
    /// free. Appends that arrive during an fsync form the next batch, so
    /// batches grow with load without any wait (as in RocksDB's own write
    /// group, or PostgreSQL with commit_delay = 0); on this project's
    /// machines a window only added latency (see the crate README).
    pub max_delay_us: u64,
    /// With a window (`max_delay_us` > 0): close it early once no append
    /// has arrived for this long, in microseconds, counted from the latest
    /// arrival or from when the writer became ready, whichever is later.
    /// Lets a burst (for instance the appenders the previous batch just
    /// acknowledged) join one batch without waiting out the whole window.
    /// 0 (default): no early close.
    pub linger_gap_us: u64,
    /// fsync every batch (default true). False is only for tests that do
    /// not care about durability; acknowledgements then mean "written".
    pub sync: bool,
}

/// Bounds of the exactly-once table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupConfig {
    /// Recent sequence numbers remembered per client (default 1024). A
    /// sequence number below a client's window is refused (`SeqTooOld`).
    pub window_per_client: usize,
    /// Clients remembered (default 4096). Past it, the client that appended
    /// least recently is forgotten; its later retries are not recognised.
    pub max_clients: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_entry_bytes: 1 << 20,
            max_streams_per_entry: 64,
            max_read_batch: 4096,
            group_commit: GroupCommitConfig::default(),
            dedup: DedupConfig::default(),
        }
    }
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_records: 1024,
            max_bytes: 8 << 20,
            max_delay_us: 0,
            linger_gap_us: 0,
            sync: true,
        }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window_per_client: 1024,
            max_clients: 4096,
        }
    }
}

fn require(ok: bool, what: &str) -> Result<(), LogError> {
    if ok {
        Ok(())
    } else {
        Err(LogError::InvalidConfig(what.to_string()))
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), LogError> {
        require(self.max_entry_bytes > 0, "max_entry_bytes must be > 0")?;
        // The frame stores the payload length in 32 bits.
        require(
            self.max_entry_bytes <= u32::MAX as usize / 2,
            "max_entry_bytes must be below 2 GiB",
        )?;
        require(
            (1..=u16::MAX as usize).contains(&self.max_streams_per_entry),
            "max_streams_per_entry must be in 1..=65535",
        )?;
        require(self.max_read_batch > 0, "max_read_batch must be > 0")?;
        self.group_commit.validate()?;
        self.dedup.validate()
    }
}

impl GroupCommitConfig {
    pub fn validate(&self) -> Result<(), LogError> {
        require(self.max_records > 0, "group_commit.max_records must be > 0")?;
        require(self.max_bytes > 0, "group_commit.max_bytes must be > 0")?;
        require(
            self.max_delay_us <= 1_000_000,
            "group_commit.max_delay_us must be at most one second",
        )?;
        require(
            self.linger_gap_us <= self.max_delay_us,
            "group_commit.linger_gap_us must be at most max_delay_us",
        )
    }

    pub fn max_delay(&self) -> Duration {
        Duration::from_micros(self.max_delay_us)
    }

    pub fn linger_gap(&self) -> Duration {
        Duration::from_micros(self.linger_gap_us)
    }
}

impl DedupConfig {
    pub fn validate(&self) -> Result<(), LogError> {
        require(
            self.window_per_client > 0,
            "dedup.window_per_client must be > 0",
        )?;
        require(self.max_clients > 0, "dedup.max_clients must be > 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        LogConfig::default().validate().unwrap();
    }

    #[test]
    fn zero_window_is_rejected() {
        let mut c = LogConfig::default();
        c.group_commit.max_records = 0;
        assert!(matches!(c.validate(), Err(LogError::InvalidConfig(_))));
    }
}
