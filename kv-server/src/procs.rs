//! A cluster of `kv-server run` processes on loopback: configs written to
//! a directory, one child process per replica with its output in
//! `r<i>.log`, SIGKILL and restart of single replicas, and a bounded
//! wait until a replica answers Ping. Used by `dev`, `kv-bench` and the
//! multi-process tests.

use crate::config::{ReplicaEntry, ServerConfig};
use anyhow::{Context, bail};
use client_sdk::proto::PingRequest;
use client_sdk::proto::kv_client::KvClient;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Region names for local clusters (EVALUATION.md's order).
pub const REGIONS: [&str; 5] = ["ca", "va", "ir", "or", "jp"];

/// A listener on a free loopback port below the kernel's ephemeral range:
/// the port is released before the replica binds it, and a port from the
/// ephemeral range could meanwhile become the local end of some outgoing
/// connection ("address in use" at start-up).
pub fn free_listener() -> anyhow::Result<TcpListener> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = if low > 12_000 {
        (10_000, low)
    } else {
        (low, u16::MAX)
    };
    for _ in 0..200 {
        let port = rand::random_range(from..to);
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(l);
        }
    }
    TcpListener::bind("127.0.0.1:0").context("no free loopback port")
}

/// The configs of an n-replica loopback cluster with data under `dir`:
/// replica i serves clients on base+i and peers on base+100+i, or on free
/// ports when `base_port` is None.
pub fn loopback_configs(
    n: usize,
    dir: &Path,
    base_port: Option<u16>,
) -> anyhow::Result<Vec<ServerConfig>> {
    if !(1..=REGIONS.len()).contains(&n) {
        bail!(
            "a local cluster has 1 to {} replicas, not {n}",
            REGIONS.len()
        );
    }
    let mut replicas = Vec::new();
    // Held until every port is chosen, so that no port is chosen twice.
    let mut held = Vec::new();
    let mut pick = || -> anyhow::Result<u16> {
        let l = free_listener()?;
        let port = l.local_addr()?.port();
        held.push(l);
        Ok(port)
    };
    for (i, region) in REGIONS.iter().enumerate().take(n) {
        let (c, p) = match base_port {
            Some(b) => (b + i as u16, b + 100 + i as u16),
            None => (pick()?, pick()?),
        };
        replicas.push(ReplicaEntry {
            id: i as u32,
            region: region.to_string(),
            client_addr: SocketAddr::from(([127, 0, 0, 1], c)),
            peer_addr: SocketAddr::from(([127, 0, 0, 1], p)),
        });
    }
    Ok((0..n)
        .map(|i| ServerConfig {
            replica_id: i as u32,
            data_dir: dir.join(format!("r{i}")),
            replicas: replicas.clone(),
            ..ServerConfig::default()
        })
        .collect())
}

/// Replica processes; every one still running is killed on drop.
pub struct ProcCluster {
    exe: PathBuf,
    dir: PathBuf,
    configs: Vec<ServerConfig>,
    children: Vec<Option<Child>>,
}

impl ProcCluster {
    /// Writes `r<i>.toml` for each config into `dir` and starts them all.
    pub fn launch(
        exe: &Path,
        dir: &Path,
        configs: Vec<ServerConfig>,
    ) -> anyhow::Result<ProcCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut cluster = ProcCluster {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            children: configs.iter().map(|_| None).collect(),
            configs,
        };
        for i in 0..cluster.configs.len() {
            std::fs::write(cluster.config_path(i), cluster.configs[i].to_toml())
                .with_context(|| format!("cannot write {}", cluster.config_path(i).display()))?;
            cluster.start(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.configs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    pub fn configs(&self) -> &[ServerConfig] {
        &self.configs
    }

    pub fn config_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("r{i}.toml"))
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("r{i}.log"))
    }

    /// The output of replica `i` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// `http://addr` of every replica's Kv API.
    pub fn endpoints(&self) -> Vec<String> {
        self.configs[0]
            .replicas
            .iter()
            .map(|r| format!("http://{}", r.client_addr))
            .collect()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Starts replica `i` (again), appending to its log.
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        if self.children[i].is_some() {
            bail!("replica {i} is already running");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let child = Command::new(&self.exe)
            .arg("run")
            .arg("--config")
            .arg(self.config_path(i))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// SIGKILL to replica `i`, and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            // SAFETY: kill(2) on the pid of our own child, which has not
            // been reaped yet (so the pid cannot have been reused).
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// Waits (bounded by `timeout`) until replica `i` answers Ping; fails
    /// early with its log if the process exited.
    pub async fn wait_ready(&mut self, i: usize, timeout: Duration) -> anyhow::Result<()> {
        let endpoint = self.endpoints()[i].clone();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.children[i].as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.children[i] = None;
                bail!(
                    "replica {i} exited ({status}) at start-up:\n{}",
                    self.log(i)
                );
            }
            if ping(&endpoint).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("replica {i} at {endpoint} did not answer Ping within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every replica answers Ping.
    pub async fn wait_all_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        for i in 0..self.len() {
            self.wait_ready(i, timeout).await?;
        }
        Ok(())
    }
}

/// One Ping, bounded to half a second.
async fn ping(endpoint: &str) -> bool {
    let attempt = async {
        let mut kv = KvClient::connect(endpoint.to_string()).await.ok()?;
        kv.ping(PingRequest {}).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(_))
    )
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        // A failing test shows what the replicas said.
        if std::thread::panicking() {
            for i in 0..self.children.len() {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- replica {i} log (last 40 lines) ---");
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}
