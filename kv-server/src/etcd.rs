//! The yardstick of `kv-bench`: a local 3-member etcd cluster (Debian's
//! `etcd-server` package) on loopback with its default durability (the
//! raft WAL is fsynced before a write is acknowledged), and a load
//! [`Target`] that speaks etcd's v3 gRPC API: a get is a linearizable
//! `Range` of one key, a put is a `Put`. etcd has no fetch-and-add, so the
//! mix's RMW share is sent as a `Put` (noted in the report).

use crate::load::Target;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Code generated from `proto/etcd_kv.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("etcdserverpb");
}

use proto::kv_client::KvClient;

/// The `etcd` executable on PATH, if installed.
pub fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// etcd's version line (`etcd Version: 3.4.23`).
pub fn etcd_version(exe: &Path) -> String {
    Command::new(exe)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "etcd (unknown version)".into())
}

/// A local etcd cluster; its members are killed on drop.
pub struct EtcdCluster {
    members: Vec<Child>,
    pub client_urls: Vec<String>,
}

impl EtcdCluster {
    /// Starts `n` members with data under `dir` (default fsync settings).
    pub fn start(exe: &Path, dir: &Path, n: usize) -> anyhow::Result<EtcdCluster> {
        let mut client_urls = Vec::new();
        let mut peer_urls = Vec::new();
        // Held until every port is chosen, so that none is chosen twice.
        let mut held = Vec::new();
        for _ in 0..n {
            for urls in [&mut client_urls, &mut peer_urls] {
                let l = crate::procs::free_listener()?;
                urls.push(format!("http://127.0.0.1:{}", l.local_addr()?.port()));
                held.push(l);
            }
        }
        drop(held);
        let initial: Vec<String> = peer_urls
            .iter()
            .enumerate()
            .map(|(i, u)| format!("e{i}={u}"))
            .collect();
        let mut members = Vec::new();
        for i in 0..n {
            let data = dir.join(format!("etcd{i}"));
            let log = std::fs::File::create(dir.join(format!("etcd{i}.log")))?;
            let child = Command::new(exe)
                .arg("--name")
                .arg(format!("e{i}"))
                .arg("--data-dir")
                .arg(&data)
                .arg("--listen-client-urls")
                .arg(&client_urls[i])
                .arg("--advertise-client-urls")
                .arg(&client_urls[i])
                .arg("--listen-peer-urls")
                .arg(&peer_urls[i])
                .arg("--initial-advertise-peer-urls")
                .arg(&peer_urls[i])
                .arg("--initial-cluster")
                .arg(initial.join(","))
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg("kv-bench")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            members.push(child);
        }
        Ok(EtcdCluster {
            members,
            client_urls,
        })
    }

    /// Process ids of the members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(Child::id).collect()
    }

    /// Waits (bounded) until every member serves a linearizable read.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for url in &self.client_urls {
            loop {
                if let Ok(kv) = EtcdKv::connect(url).await
                    && kv.get("ready-probe".into()).await.is_ok()
                {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("etcd member {url} not ready within {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

/// One etcd client connection.
#[derive(Clone)]
pub struct EtcdKv {
    kv: KvClient<Channel>,
}

impl EtcdKv {
    pub async fn connect(url: &str) -> anyhow::Result<EtcdKv> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await?;
        Ok(EtcdKv {
            kv: KvClient::new(channel),
        })
    }
}

impl Target for EtcdKv {
    async fn get(&self, key: String) -> Result<(), String> {
        let req = proto::RangeRequest {
            key: key.into_bytes(),
            ..Default::default()
        };
        self.kv
            .clone()
            .range(req)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn put(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        let req = proto::PutRequest {
            key: key.into_bytes(),
            value,
            ..Default::default()
        };
        self.kv
            .clone()
            .put(req)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// etcd has no fetch-and-add: a put of the delta stands in for it.
    async fn rmw(&self, key: String, delta: i64) -> Result<(), String> {
        self.put(key, delta.to_le_bytes().to_vec()).await
    }
}

/// User plus system CPU time of process `pid` so far, from /proc.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parens.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as u64 } else { 100 };
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_of_this_process_is_readable_and_grows() {
        let before = cpu_time(std::process::id()).unwrap();
        let mut x = 0u64;
        let start = Instant::now();
        // Spin until the kernel has counted a tick or two more of CPU (on a
        // busy machine that takes longer than the tick), bounded in time.
        let mut after = before;
        while after <= before && start.elapsed() < Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(31).wrapping_add(1);
            }
            after = cpu_time(std::process::id()).unwrap();
        }
        std::hint::black_box(x);
        assert!(after > before, "{before:?} -> {after:?}");
        assert_eq!(cpu_time(u32::MAX), None);
    }
}
