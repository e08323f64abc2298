//! The server's configuration: one TOML file per replica, overridable by
//! command-line flags (`main.rs`). Every field is documented here; the
//! file's format is the serde form of [`ServerConfig`] (see the crate
//! README for an example). `validate()` names the offending field and the
//! file it came from, so a typo never turns into a panic or a silent
//! default.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration the server refuses to start with: which file, which
/// field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {reason}")]
    Read { file: PathBuf, reason: String },
    /// TOML syntax errors and type errors; toml's message quotes the line
    /// and names the key.
    #[error("config file {file}: {reason}")]
    Parse { file: PathBuf, reason: String },
    #[error("config {file}: field `{field}`: {reason}")]
    Invalid {
        file: PathBuf,
        field: String,
        reason: String,
    },
}

/// Where a configuration came from, for error messages.
pub const FLAGS_ONLY: &str = "<command-line flags>";

/// One replica of the cluster, as every member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaEntry {
    /// The replica's id; ids are `0..n`, one per region.
    pub id: u32,
    /// The region's name (reported by Ping; informational).
    pub region: String,
    /// Where the replica serves the public `gryff.v1.Kv` API.
    pub client_addr: SocketAddr,
    /// Where the replica serves the internal `gryff.v1.Peer` stream.
    pub peer_addr: SocketAddr,
}

/// Bounds on client input and on the work the server takes on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest key accepted, in bytes (default 4 KiB). Longer keys get
    /// INVALID_ARGUMENT naming this limit.
    pub max_key_bytes: usize,
    /// Longest value accepted (puts, CAS operands, put-if-absent), in bytes
    /// (default 1 MiB). Longer values get INVALID_ARGUMENT naming this limit.
    pub max_value_bytes: usize,
    /// Client operations in flight at once (default 10000); past it new
    /// ones get RESOURCE_EXHAUSTED (the client retries elsewhere).
    pub max_inflight_ops: usize,
    /// Longest a client operation may wait for the replica, in ms (default
    /// 10000), if the call's own deadline is not shorter; then UNAVAILABLE.
    pub request_timeout_ms: u64,
    /// Capacity of the driver's inbox for peer messages (default 65536
    /// batches); a full inbox slows the peer streams (HTTP/2 back pressure).
    pub peer_inbox: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_key_bytes: 4096,
            max_value_bytes: 1 << 20,
            max_inflight_ops: 10_000,
            request_timeout_ms: 10_000,
            peer_inbox: 65_536,
        }
    }
}

/// The replica-to-replica transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerConfig {
    /// Messages queued per peer while its stream is slow or down (default
    /// 65536); past it new messages to that peer are dropped and counted
    /// (the protocol re-sends after its phase timeouts).
    pub queue_capacity: usize,
    /// Most messages in one `PeerBatch` (default 512).
    pub max_batch_messages: usize,
    /// Most encoded bytes in one `PeerBatch` (default 4 MiB); a single
    /// larger message still travels alone.
    pub max_batch_bytes: usize,
    /// Largest encoded peer message accepted (default 8 MiB); larger ones
    /// are rejected and counted. Must exceed what a `max_value_bytes` value
    /// produces (a few copies of it in an EPaxos message).
    pub max_message_bytes: usize,
    /// First pause before reconnecting to a peer, in ms (default 20).
    pub reconnect_min_ms: u64,
    /// Longest pause between reconnects, in ms (default 1000).
    pub reconnect_max_ms: u64,
    /// Bound on opening a connection to a peer, in ms (default 1000).
    pub connect_timeout_ms: u64,
    /// Emulated WAN (`geo-bench run --wan inproc`): entry `i` is the
    /// one-way delay, in microseconds, that every message to replica `i`
    /// is held before it is sent. Empty (the default): no delay. When set
    /// it lists every replica (this one's entry is ignored), each at most
    /// 10 s.
    pub emulated_delay_us: Vec<u64>,
}

impl Default for PeerConfig {
    fn default() -> PeerConfig {
        PeerConfig {
            queue_capacity: 65_536,
            max_batch_messages: 512,
            max_batch_bytes: 4 << 20,
            max_message_bytes: 8 << 20,
            reconnect_min_ms: 20,
            reconnect_max_ms: 1000,
            connect_timeout_ms: 1000,
            emulated_delay_us: Vec::new(),
        }
    }
}

/// Which durability backend holds the replica's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Tango objects over a RocksDB log in `data_dir` (the default).
    Rocksdb,
    /// Records in memory only: NOT durable, for tests and experiments.
    Memory,
}

/// How records are made durable (PROTOCOL.md 5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DurabilityConfig {
    /// "rocksdb" (default) or "memory".
    pub backend: Backend,
    /// fsync every group commit (default true). false acknowledges what is
    /// only written, not synced: NOT durable across a machine crash.
    pub fsync: bool,
    /// Most appends in one group commit (default 1024).
    pub group_commit_max_records: usize,
    /// How long the oldest append may wait for company before its group is
    /// written, in µs (default 0: no window; groups grow with the load,
    /// since appends arriving during an fsync form the next group).
    pub group_commit_max_delay_us: u64,
    /// Checkpoint the objects and trim the log at most this often, in
    /// seconds (default 30)...
    pub checkpoint_interval_secs: u64,
    /// ...and only once the log grew by this many entries (default 10000).
    pub checkpoint_min_entries: u64,
}

impl Default for DurabilityConfig {
    fn default() -> DurabilityConfig {
        DurabilityConfig {
            backend: Backend::Rocksdb,
            fsync: true,
            group_commit_max_records: 1024,
            group_commit_max_delay_us: 0,
            checkpoint_interval_secs: 30,
            checkpoint_min_entries: 10_000,
        }
    }
}

impl DurabilityConfig {
    /// The largest log entry the replica may need: an executed RMW writes
    /// its value a few times (register, last_rmw, the execution record
    /// with its outcome), plus keys and framing.
    pub fn max_entry_bytes(&self, limits: &Limits) -> usize {
        8 * (limits.max_value_bytes + limits.max_key_bytes) + (1 << 20)
    }
}

/// Protocol settings passed to the replica machine (timeouts are the
/// machine's own defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// What the cluster runs, the same on every replica: "gryff-epaxos"
    /// (default: registers for gets and puts, EPaxos for RMWs),
    /// "gryff-raft" (RMWs through raft), or the baselines "epaxos-all" and
    /// "raft-all" (every operation through consensus).
    pub mode: String,
    /// raft-all only: the replica the raft leader is placed on (default 0).
    pub raft_leader: u32,
    /// The other replicas, nearest first (thrifty phases go to the nearest
    /// quorum). Default: by id.
    pub peers_nearest_first: Option<Vec<u32>>,
    /// How long a register or EPaxos phase waits before re-sending to every
    /// replica, in ms (default: the machine's, 1000, sized for WAN round
    /// trips; a LAN cluster can use much less).
    pub phase_timeout_ms: Option<u64>,
    /// How long EPaxos waits on an instance it cannot commit or execute
    /// (e.g. its leader died) before recovering it, in ms (default: the
    /// machine's, 2000).
    pub recovery_timeout_ms: Option<u64>,
}

impl Default for ProtocolConfig {
    fn default() -> ProtocolConfig {
        ProtocolConfig {
            mode: "gryff-epaxos".into(),
            raft_leader: 0,
            peers_nearest_first: None,
            phase_timeout_ms: None,
            recovery_timeout_ms: None,
        }
    }
}

/// The whole configuration of one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Identifies the cluster; peers of another cluster are refused
    /// (default 1).
    pub cluster_id: u64,
    /// This replica's id, an `id` of `replicas`.
    pub replica_id: u32,
    /// Where this replica keeps its log; created if missing, must be
    /// writable.
    pub data_dir: PathBuf,
    /// Every replica of the cluster, this one included, ids `0..n`.
    pub replicas: Vec<ReplicaEntry>,
    /// Bind address of the Kv service (default: this replica's
    /// `client_addr`), e.g. `0.0.0.0:7100` behind NAT.
    pub listen_client: Option<SocketAddr>,
    /// Bind address of the Peer service (default: this replica's
    /// `peer_addr`).
    pub listen_peer: Option<SocketAddr>,
    /// Prometheus text metrics over HTTP at `/metrics` (default: off).
    pub metrics_addr: Option<SocketAddr>,
    /// Log the counters every this many seconds (0 = never; default 0).
    pub stats_interval_secs: u64,
    pub limits: Limits,
    pub peer: PeerConfig,
    pub durability: DurabilityConfig,
    pub protocol: ProtocolConfig,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            cluster_id: 1,
            replica_id: 0,
            data_dir: PathBuf::from("data"),
            replicas: Vec::new(),
            listen_client: None,
            listen_peer: None,
            metrics_addr: None,
            stats_interval_secs: 0,
            limits: Limits::default(),
            peer: PeerConfig::default(),
            durability: DurabilityConfig::default(),
            protocol: ProtocolConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Parses a TOML document; `file` names it in errors.
    pub fn from_toml(text: &str, file: &Path) -> Result<ServerConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads and parses `file` (not yet validated: flags may still change it).
    pub fn load(file: &Path) -> Result<ServerConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        ServerConfig::from_toml(&text, file)
    }

    /// The TOML form (what `dev` writes for each replica).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// This replica's entry (valid configs only).
    pub fn me(&self) -> Option<&ReplicaEntry> {
        self.replicas.iter().find(|r| r.id == self.replica_id)
    }

    pub fn client_listen(&self) -> Option<SocketAddr> {
        self.listen_client.or(self.me().map(|r| r.client_addr))
    }

    pub fn peer_listen(&self) -> Option<SocketAddr> {
        self.listen_peer.or(self.me().map(|r| r.peer_addr))
    }

    /// Peer ids nearest first (the configured order, or by id).
    pub fn peers_nearest_first(&self) -> Vec<u32> {
        match &self.protocol.peers_nearest_first {
            Some(order) => order.clone(),
            None => self
                .replicas
                .iter()
                .map(|r| r.id)
                .filter(|id| *id != self.replica_id)
                .collect(),
        }
    }

    /// Checks everything the server relies on; `file` names the source.
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            field: field.to_string(),
            reason,
        };
        if self.replicas.is_empty() {
            return Err(bad(
                "replicas",
                "no replicas listed (need every replica, this one included)".into(),
            ));
        }
        for (i, r) in self.replicas.iter().enumerate() {
            if r.id as usize != i {
                return Err(bad(
                    &format!("replicas[{i}].id"),
                    format!("is {}, expected {i}: ids must be 0..n in order", r.id),
                ));
            }
            if r.region.trim().is_empty() {
                return Err(bad(&format!("replicas[{i}].region"), "is empty".into()));
            }
            for (j, other) in self.replicas.iter().enumerate().take(i) {
                let addrs = [r.client_addr, r.peer_addr];
                if addrs.contains(&other.client_addr) || addrs.contains(&other.peer_addr) {
                    return Err(bad(
                        &format!("replicas[{i}]"),
                        format!("shares an address with replicas[{j}]"),
                    ));
                }
            }
            if r.client_addr == r.peer_addr {
                return Err(bad(
                    &format!("replicas[{i}].peer_addr"),
                    "equals client_addr".into(),
                ));
            }
        }
        if self.me().is_none() {
            return Err(bad(
                "replica_id",
                format!(
                    "{} is not among the replicas (0..{})",
                    self.replica_id,
                    self.replicas.len()
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "is empty".into()));
        }
        self.validate_peers_order(&bad)?;
        let delays = &self.peer.emulated_delay_us;
        if !delays.is_empty() && delays.len() != self.replicas.len() {
            return Err(bad(
                "peer.emulated_delay_us",
                format!(
                    "lists {} delays for {} replicas (one per replica, or none)",
                    delays.len(),
                    self.replicas.len()
                ),
            ));
        }
        if let Some(d) = delays.iter().find(|d| **d > 10_000_000) {
            return Err(bad(
                "peer.emulated_delay_us",
                format!("{d} us is over the 10 s bound"),
            ));
        }
        if crate::adapter::mode(&self.protocol).is_none() {
            return Err(bad(
                "protocol.mode",
                format!(
                    "unknown mode {:?}: expected one of {}",
                    self.protocol.mode,
                    crate::adapter::MODES.join(", ")
                ),
            ));
        }
        for (field, v) in [
            ("protocol.phase_timeout_ms", self.protocol.phase_timeout_ms),
            (
                "protocol.recovery_timeout_ms",
                self.protocol.recovery_timeout_ms,
            ),
        ] {
            if v == Some(0) {
                return Err(bad(field, "must be positive".into()));
            }
        }
        if self.protocol.raft_leader as usize >= self.replicas.len() {
            return Err(bad(
                "protocol.raft_leader",
                format!("{} is not a replica id", self.protocol.raft_leader),
            ));
        }
        let l = &self.limits;
        let positive = [
            ("limits.max_key_bytes", l.max_key_bytes as u64),
            ("limits.max_value_bytes", l.max_value_bytes as u64),
            ("limits.max_inflight_ops", l.max_inflight_ops as u64),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.peer_inbox", l.peer_inbox as u64),
            ("peer.queue_capacity", self.peer.queue_capacity as u64),
            (
                "peer.max_batch_messages",
                self.peer.max_batch_messages as u64,
            ),
            ("peer.max_batch_bytes", self.peer.max_batch_bytes as u64),
            ("peer.reconnect_min_ms", self.peer.reconnect_min_ms),
            ("peer.connect_timeout_ms", self.peer.connect_timeout_ms),
            (
                "durability.group_commit_max_records",
                self.durability.group_commit_max_records as u64,
            ),
            (
                "durability.checkpoint_interval_secs",
                self.durability.checkpoint_interval_secs,
            ),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(bad(field, "must be positive".into()));
            }
        }
        if self.peer.reconnect_max_ms < self.peer.reconnect_min_ms {
            return Err(bad(
                "peer.reconnect_max_ms",
                format!(
                    "{} is below peer.reconnect_min_ms ({})",
                    self.peer.reconnect_max_ms, self.peer.reconnect_min_ms
                ),
            ));
        }
        if self.durability.group_commit_max_delay_us > 1_000_000 {
            return Err(bad(
                "durability.group_commit_max_delay_us",
                "must be at most one second".into(),
            ));
        }
        if self.durability.max_entry_bytes(l) > (1 << 30) {
            return Err(bad(
                "limits.max_value_bytes",
                "is too large for one log entry (at most about 128 MiB)".into(),
            ));
        }
        // An EPaxos message may carry a value a few times (base, command).
        let needed = 4 * (l.max_value_bytes + l.max_key_bytes) + 4096;
        if self.peer.max_message_bytes < needed {
            return Err(bad(
                "peer.max_message_bytes",
                format!(
                    "{} is too small for limits.max_value_bytes = {} and limits.max_key_bytes = {} (need at least {needed})",
                    self.peer.max_message_bytes, l.max_value_bytes, l.max_key_bytes
                ),
            ));
        }
        self.replica_config()
            .validate()
            .map_err(|e| bad("replicas", e.to_string()))
    }

    fn validate_peers_order(
        &self,
        bad: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let Some(order) = &self.protocol.peers_nearest_first else {
            return Ok(());
        };
        let mut expected: Vec<u32> = self
            .replicas
            .iter()
            .map(|r| r.id)
            .filter(|id| *id != self.replica_id)
            .collect();
        let mut got = order.clone();
        got.sort_unstable();
        expected.sort_unstable();
        if got != expected {
            return Err(bad(
                "protocol.peers_nearest_first",
                format!("must list every other replica once: {expected:?}, got {order:?}"),
            ));
        }
        Ok(())
    }

    /// The replica machine's configuration.
    pub fn replica_config(&self) -> replica::ReplicaConfig {
        crate::adapter::replica_config(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn three() -> ServerConfig {
        let entry = |id: u32| ReplicaEntry {
            id,
            region: format!("r{id}"),
            client_addr: format!("127.0.0.1:{}", 7100 + id).parse().unwrap(),
            peer_addr: format!("127.0.0.1:{}", 7200 + id).parse().unwrap(),
        };
        ServerConfig {
            replica_id: 1,
            replicas: (0..3).map(entry).collect(),
            ..ServerConfig::default()
        }
    }

    fn invalid_field(cfg: &ServerConfig) -> String {
        match cfg.validate(Path::new("r.toml")) {
            Err(ConfigError::Invalid { field, file, .. }) => {
                assert_eq!(file, PathBuf::from("r.toml"));
                field
            }
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn a_three_replica_config_is_valid_and_round_trips_through_toml() {
        let cfg = three();
        cfg.validate(Path::new("x")).unwrap();
        let back = ServerConfig::from_toml(&cfg.to_toml(), Path::new("x")).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(cfg.peers_nearest_first(), vec![0, 2]);
        assert_eq!(cfg.client_listen(), Some("127.0.0.1:7101".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let mut c = three();
        c.replica_id = 7;
        assert_eq!(invalid_field(&c), "replica_id");
        let mut c = three();
        c.replicas[2].id = 5;
        assert_eq!(invalid_field(&c), "replicas[2].id");
        let mut c = three();
        c.replicas[1].client_addr = c.replicas[0].peer_addr;
        assert_eq!(invalid_field(&c), "replicas[1]");
        let mut c = three();
        c.limits.max_key_bytes = 0;
        assert_eq!(invalid_field(&c), "limits.max_key_bytes");
        let mut c = three();
        c.limits.max_value_bytes = 64 << 20;
        assert_eq!(invalid_field(&c), "peer.max_message_bytes");
        let mut c = three();
        c.protocol.peers_nearest_first = Some(vec![0, 0]);
        assert_eq!(invalid_field(&c), "protocol.peers_nearest_first");
        let mut c = three();
        c.protocol.mode = "paxos".into();
        assert_eq!(invalid_field(&c), "protocol.mode");
        let mut c = three();
        c.peer.emulated_delay_us = vec![0, 36_000];
        assert_eq!(invalid_field(&c), "peer.emulated_delay_us");
        c.peer.emulated_delay_us = vec![0, 36_000, 11_000_000];
        assert_eq!(invalid_field(&c), "peer.emulated_delay_us");
        c.peer.emulated_delay_us = vec![0, 36_000, 44_000];
        c.validate(Path::new("x")).unwrap();
        let mut c = three();
        c.peer.reconnect_max_ms = 1;
        assert_eq!(invalid_field(&c), "peer.reconnect_max_ms");
        let msg = c
            .validate(Path::new("/etc/r1.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/etc/r1.toml") && msg.contains("peer.reconnect_max_ms"));
    }

    #[test]
    fn parse_errors_name_the_file_and_the_key() {
        let text = "replica_id = \"one\"\n";
        let err = ServerConfig::from_toml(text, Path::new("bad.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("bad.toml") && msg.contains("replica_id"),
            "{msg}"
        );
        let unknown = "replica_idd = 1\n";
        let msg = ServerConfig::from_toml(unknown, Path::new("u.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("u.toml") && msg.contains("replica_idd"),
            "{msg}"
        );
        let nested = "[limits]\nmax_key_bytes = -1\n";
        let msg = ServerConfig::from_toml(nested, Path::new("n.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("max_key_bytes"), "{msg}");
        let missing = ServerConfig::load(Path::new("/nonexistent/kv.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }
}
