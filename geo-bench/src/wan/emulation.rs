//! [`Emulation`]: one emulated WAN, set up from a mode and a region matrix
//! and torn down on drop, and what a benchmark driver needs from it: each
//! region's address, commands and threads that run inside the emulated
//! network, and the delay table of `inproc` servers.
//!
//! Processes that cannot bind their source address (a server's outgoing
//! peer connections) are placed in a region by uid, as EVALUATION.md
//! describes: in the namespace, uid `region_uid_base + r` routes by a
//! policy rule through a table whose loopback route has source
//! 127.0.(r+1).1, so every connection it opens leaves from its region.

use super::inproc::InprocDelays;
use super::nfqueue::{self, DelayTable, Delayer, DelayerConfig, DelayerStats};
use super::{MAX_REGIONS, Namespace, WanError, WanMode, is_root, netem, region_addr};
use crate::RegionMatrix;
use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::process::Command;
use std::thread::JoinHandle;

/// Settings of an emulation.
#[derive(Clone, Debug)]
pub struct WanOptions {
    /// The `nfqueue` delayer's settings (queue, bounds, run time).
    pub delayer: DelayerConfig,
    /// Region `r`'s processes placed by uid run as `region_uid_base + r`.
    pub region_uid_base: u32,
}

impl Default for WanOptions {
    fn default() -> WanOptions {
        WanOptions {
            delayer: DelayerConfig::default(),
            region_uid_base: 61_000,
        }
    }
}

/// Routing tables of the per-region uids are `ROUTE_TABLE_BASE + r`.
const ROUTE_TABLE_BASE: u32 = 100;

/// A running WAN emulation. Dropping it stops the delayer and removes the
/// namespace with every process still in it.
pub struct Emulation {
    mode: WanMode,
    matrix: RegionMatrix,
    region_uid_base: u32,
    // Field order is drop order: the delayer's thread sits in the
    // namespace and must stop before the namespace is removed.
    delayer: Option<Delayer>,
    ns: Option<Namespace>,
}

impl Emulation {
    /// Sets up `mode` for `matrix`. `netem` and `nfqueue` need root and
    /// make a fresh namespace; `inproc` only records the delay table;
    /// `sim` has no network and is refused.
    pub fn start(
        mode: WanMode,
        matrix: &RegionMatrix,
        options: &WanOptions,
    ) -> Result<Emulation, WanError> {
        if matrix.len() > MAX_REGIONS {
            return Err(WanError::TooManyRegions {
                regions: matrix.len(),
            });
        }
        let mut emulation = Emulation {
            mode,
            matrix: matrix.clone(),
            region_uid_base: options.region_uid_base,
            delayer: None,
            ns: None,
        };
        match mode {
            WanMode::Sim => return Err(WanError::SimHasNoNetwork),
            WanMode::Inproc => return Ok(emulation),
            WanMode::Netem | WanMode::Nfqueue if !is_root() => {
                return Err(WanError::NotRoot { mode });
            }
            WanMode::Netem => netem::probe()?,
            WanMode::Nfqueue => {}
        }
        let ns = emulation.ns.insert(Namespace::create()?);
        place_regions_by_uid(ns, matrix.len(), options.region_uid_base)?;
        if mode == WanMode::Netem {
            netem::install(ns, matrix)?;
        } else {
            let table = DelayTable::from_matrix(matrix);
            emulation.delayer = Some(Delayer::start(ns, table, options.delayer.clone())?);
            nfqueue::install_rules(ns, matrix, options.delayer.queue_num)?;
        }
        Ok(emulation)
    }

    pub fn mode(&self) -> WanMode {
        self.mode
    }

    pub fn matrix(&self) -> &RegionMatrix {
        &self.matrix
    }

    /// Where region `region`'s servers listen and its clients bind.
    pub fn region_addr(&self, region: usize) -> Ipv4Addr {
        assert!(
            region < self.matrix.len(),
            "region {region} is not in the matrix"
        );
        region_addr(region)
    }

    /// The namespace of `netem` and `nfqueue`; None for `inproc`.
    pub fn namespace(&self) -> Option<&Namespace> {
        self.ns.as_ref()
    }

    /// The uid that places a process in `region` (None for `inproc`).
    /// Give it the files it needs (data directories) before starting it.
    pub fn region_uid(&self, region: usize) -> Option<u32> {
        assert!(
            region < self.matrix.len(),
            "region {region} is not in the matrix"
        );
        self.ns
            .as_ref()
            .map(|_| self.region_uid_base + region as u32)
    }

    /// A command that runs inside the emulated network as root; it must
    /// bind its region address itself. A plain command for `inproc`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match &self.ns {
            Some(ns) => ns.command(program, None),
            None => Command::new(program),
        }
    }

    /// A command that runs inside the emulated network in `region`: as the
    /// region's uid, so connections it opens without binding leave from the
    /// region's address. A plain command for `inproc`.
    pub fn region_command(&self, region: usize, program: impl AsRef<OsStr>) -> Command {
        match (&self.ns, self.region_uid(region)) {
            (Some(ns), uid) => ns.command(program, uid),
            (None, _) => Command::new(program),
        }
    }

    /// Runs `f` on a thread inside the emulated network: sockets it makes
    /// live there, and may be used from any thread afterwards.
    pub fn spawn<T: Send + 'static>(
        &self,
        thread_name: &str,
        f: impl FnOnce() -> Result<T, WanError> + Send + 'static,
    ) -> Result<JoinHandle<Result<T, WanError>>, WanError> {
        match &self.ns {
            Some(ns) => ns.spawn(thread_name, f),
            None => std::thread::Builder::new()
                .name(thread_name.to_string())
                .spawn(f)
                .map_err(|e| WanError::io("cannot spawn a thread", e)),
        }
    }

    /// The delays `inproc` servers apply to their peer messages (None in
    /// the other modes, where the network delays them).
    pub fn inproc_delays(&self) -> Option<InprocDelays> {
        (self.mode == WanMode::Inproc).then(|| InprocDelays::from_matrix(&self.matrix))
    }

    /// The `nfqueue` delayer's counters so far.
    pub fn delayer_stats(&self) -> Option<DelayerStats> {
        self.delayer.as_ref().map(Delayer::stats)
    }

    /// Tears down, reporting errors (dropping does the same silently but
    /// for a warning): stops the delayer, then removes the namespace.
    pub fn stop(mut self) -> Result<Option<DelayerStats>, WanError> {
        let stats = self.delayer.take().map(Delayer::stop).transpose();
        let removed = self.ns.take().map(Namespace::remove).transpose();
        let stats = stats?;
        removed?;
        Ok(stats)
    }
}

/// The `ip -batch` input that places uid `uid_base + r` in region `r`. The
/// local table moves from preference 0 to 100 so the uid rules (10) come
/// first; input routing (uid 0) still finds every 127.x address local.
pub fn uid_placement_batch(regions: usize, uid_base: u32) -> String {
    let mut s = String::from("rule add pref 100 table local\nrule del pref 0 table local\n");
    for r in 0..regions {
        let (uid, table) = (uid_base + r as u32, ROUTE_TABLE_BASE + r as u32);
        s.push_str(&format!(
            "route add local 127.0.0.0/8 dev lo src {} table {table}\n\
             rule add pref 10 uidrange {uid}-{uid} table {table}\n",
            region_addr(r)
        ));
    }
    s
}

fn place_regions_by_uid(ns: &Namespace, regions: usize, uid_base: u32) -> Result<(), WanError> {
    super::shell::run_ok(
        "ip",
        &["-n", ns.name(), "-batch", "-"],
        Some(&uid_placement_batch(regions, uid_base)),
        Some("iproute2"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules_precede_the_local_table() {
        let b = uid_placement_batch(2, 61_000);
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines[0], "rule add pref 100 table local");
        assert_eq!(lines[1], "rule del pref 0 table local");
        assert!(lines.contains(&"route add local 127.0.0.0/8 dev lo src 127.0.2.1 table 101"));
        assert!(lines.contains(&"rule add pref 10 uidrange 61001-61001 table 101"));
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn sim_and_inproc_need_no_namespace() {
        let m = RegionMatrix::paper(3).unwrap();
        let err = Emulation::start(WanMode::Sim, &m, &WanOptions::default())
            .err()
            .unwrap();
        assert!(
            matches!(err, WanError::SimHasNoNetwork) && err.to_string().contains("sim-figures")
        );
        let e = Emulation::start(WanMode::Inproc, &m, &WanOptions::default()).unwrap();
        assert!(e.namespace().is_none() && e.region_uid(1).is_none());
        assert_eq!(e.region_addr(2), Ipv4Addr::new(127, 0, 3, 1));
        let d = e.inproc_delays().unwrap();
        assert_eq!(
            d.delay_us(registers::ReplicaId(0), registers::ReplicaId(2)),
            75_500
        );
        assert!(e.stop().unwrap().is_none());
    }
}
