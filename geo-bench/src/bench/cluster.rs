//! One `kv-server run` process per region inside the emulated network:
//! replica r listens on its region address (ports 7100 for clients, 7200
//! for peers), runs as the region's uid so its outgoing peer connections
//! leave from that address, keeps its data in a directory owned by that
//! uid, and writes its output to `r<i>.log` in the results directory.
//!
//! geo-bench writes the server's TOML config itself (the format of
//! kv-server/README.md) instead of linking the kv-server crate: that
//! would pull RocksDB into every build of the simulator.

use crate::RegionMatrix;
use crate::wan::Emulation;
use crate::wan::inproc::InprocDelays;
use anyhow::{Context, bail};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

pub const CLIENT_PORT: u16 = 7100;
pub const PEER_PORT: u16 = 7200;

/// How the replicas are configured.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub mode: String,
    pub durability: String,
    pub raft_leader: usize,
}

/// The TOML config of replica `id` (kv-server's format). With `delays`
/// (`--wan inproc`) the server holds each peer message for its pair's
/// one-way delay itself.
pub fn server_config(
    matrix: &RegionMatrix,
    addrs: &[std::net::Ipv4Addr],
    id: usize,
    data_dir: &Path,
    spec: &ClusterSpec,
    delays: Option<&InprocDelays>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "cluster_id = 1\nreplica_id = {id}");
    let _ = writeln!(s, "data_dir = {:?}", data_dir.display().to_string());
    for (r, addr) in addrs.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n[[replicas]]\nid = {r}\nregion = {:?}\nclient_addr = \"{addr}:{CLIENT_PORT}\"\npeer_addr = \"{addr}:{PEER_PORT}\"",
            matrix.regions()[r].to_lowercase()
        );
    }
    let _ = writeln!(
        s,
        "\n[durability]\nbackend = {:?}\n\n[protocol]\nmode = {:?}\nraft_leader = {}\npeers_nearest_first = {:?}",
        spec.durability,
        spec.mode,
        spec.raft_leader,
        matrix.peers_by_distance(id)
    );
    if let Some(d) = delays {
        let me = registers::ReplicaId(id as u32);
        let us: Vec<u64> = (0..addrs.len())
            .map(|r| d.delay_us(me, registers::ReplicaId(r as u32)))
            .collect();
        let _ = writeln!(s, "\n[peer]\nemulated_delay_us = {us:?}");
    }
    s
}

/// The replica processes of one run; killed on drop (the namespace's
/// removal would end them too).
pub struct Cluster {
    children: Vec<(usize, Child)>,
    logs: Vec<PathBuf>,
    endpoints: Vec<String>,
    _data: tempfile::TempDir,
}

impl Cluster {
    /// Starts one replica per region of the emulation's matrix.
    pub fn launch(
        wan: &Emulation,
        server_bin: &Path,
        out_dir: &Path,
        spec: &ClusterSpec,
    ) -> anyhow::Result<Cluster> {
        let matrix = wan.matrix();
        let n = matrix.len();
        let addrs: Vec<_> = (0..n).map(|r| wan.region_addr(r)).collect();
        let data = tempfile::Builder::new()
            .prefix("geo-bench-data-")
            .tempdir()
            .context("cannot create the servers' data directory")?;
        set_mode(data.path(), 0o755)?;
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("cannot create {}", out_dir.display()))?;
        let mut cluster = Cluster {
            children: Vec::new(),
            logs: Vec::new(),
            endpoints: addrs
                .iter()
                .map(|a| format!("http://{a}:{CLIENT_PORT}"))
                .collect(),
            _data: data,
        };
        let delays = wan.inproc_delays();
        for r in 0..n {
            let dir = cluster._data.path().join(format!("r{r}"));
            std::fs::create_dir_all(&dir)?;
            if let Some(uid) = wan.region_uid(r) {
                chown(&dir, uid)?;
            }
            let config = cluster._data.path().join(format!("r{r}.toml"));
            let text = server_config(matrix, &addrs, r, &dir, spec, delays.as_ref());
            std::fs::write(&config, &text)?;
            std::fs::write(out_dir.join(format!("r{r}.toml")), &text)?;
            let log_path = out_dir.join(format!("r{r}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            let child = wan
                .region_command(r, server_bin)
                .arg("run")
                .arg("--config")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", server_bin.display()))?;
            cluster.children.push((r, child));
            cluster.logs.push(log_path);
        }
        Ok(cluster)
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// CPU seconds (user + system) each replica has used so far, by
    /// `r<i>` (from /proc; a replica that has exited is left out).
    pub fn cpu_seconds(&self) -> Vec<(String, f64)> {
        self.children
            .iter()
            .filter_map(|(r, c)| {
                proc_cpu_seconds(&format!("/proc/{}/stat", c.id())).map(|s| (format!("r{r}"), s))
            })
            .collect()
    }

    /// Fails, with the replica's log, if any replica has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (r, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&self.logs[*r]).unwrap_or_default();
                bail!("replica {r} exited ({status}):\n{log}");
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// utime + stime of a `/proc/<pid>/stat` file, in seconds.
pub fn proc_cpu_seconds(stat_path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / tck.max(1.0))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn chown(path: &Path, uid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .with_context(|| format!("cannot chown {} to uid {uid}", path.display()))
}

/// The kv-server binary: `--server-bin`, else `$GEO_BENCH_KV_SERVER`, else
/// next to this executable (or its parent directory, for test binaries in
/// `target/debug/deps`).
pub fn find_server_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--server-bin {}: no such file", p.display());
    }
    if let Some(p) = std::env::var_os("GEO_BENCH_KV_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let p = dir.join("kv-server");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no kv-server binary next to {} (build it with `cargo build --workspace`, or pass --server-bin)",
        exe.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_replica_and_the_nearest_peers() {
        let m = RegionMatrix::paper(3).unwrap();
        let addrs: Vec<_> = (0..3).map(crate::wan::region_addr).collect();
        let spec = ClusterSpec {
            mode: "gryff-epaxos".into(),
            durability: "rocksdb".into(),
            raft_leader: 0,
        };
        let t = server_config(&m, &addrs, 2, Path::new("/tmp/x/r2"), &spec, None);
        assert!(t.contains("replica_id = 2"), "{t}");
        assert!(t.contains("client_addr = \"127.0.3.1:7100\""), "{t}");
        assert!(t.contains("region = \"ir\""), "{t}");
        // IR: VA (88) is nearer than CA (151).
        assert!(t.contains("peers_nearest_first = [1, 0]"), "{t}");
        let parsed: toml::Table = toml::from_str(&t).unwrap();
        assert_eq!(parsed["replicas"].as_array().unwrap().len(), 3);
        assert!(!t.contains("emulated_delay_us"), "{t}");
        // inproc: replica 2 (IR) holds messages to CA for 75.5 ms, VA 44.
        let d = InprocDelays::from_matrix(&m);
        let t = server_config(&m, &addrs, 2, Path::new("/tmp/x/r2"), &spec, Some(&d));
        let parsed: toml::Table = toml::from_str(&t).unwrap();
        let us: Vec<i64> = parsed["peer"]["emulated_delay_us"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_integer().unwrap())
            .collect();
        assert_eq!(
            us,
            vec![
                d.delay_us(registers::ReplicaId(2), registers::ReplicaId(0)) as i64,
                44_000,
                0
            ]
        );
    }
}
