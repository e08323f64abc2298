//! WAN emulation for the multi-region benchmark (EVALUATION.md, "Emulating
//! the WAN on these machines"): the per-pair one-way delays of a
//! [`RegionMatrix`] applied to real TCP traffic between region addresses.
//!
//! Modes, in order of fidelity:
//! - `netem`: `tc` htb classes with a netem delay per destination pair, as
//!   the Gryff paper did; refused with [`WanError::NetemAbsent`] where the
//!   kernel has no `sch_netem` (these machines).
//! - `nfqueue`: a fresh network namespace, iptables sending inter-region
//!   packets on the receive side of loopback to an NFQUEUE, and a
//!   userspace delayer ([`nfqueue`]) holding each for its one-way delay.
//! - `inproc`: the servers delay their own outgoing peer messages
//!   ([`inproc::InprocDelays`]); no root needed.
//! - `sim`: the deterministic simulator ([`crate::sim`]); no network.
//!
//! Region `i` lives at [`region_addr`]`(i)` = 127.0.(i+1).1. In `netem` and
//! `nfqueue` modes these addresses live in the namespace the [`Emulation`]
//! created; it is removed when the emulation is dropped, also on panic and
//! on Ctrl-C ([`namespace`]).
//!
//! A benchmark driver uses it like this (root, iptables installed):
//!
//! ```no_run
//! use geo_bench::RegionMatrix;
//! use geo_bench::wan::{calibrate, CalibrationConfig, Emulation, WanError, WanMode, WanOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let matrix = RegionMatrix::paper(3).unwrap();
//! let mut options = WanOptions::default();
//! options.delayer.max_runtime = std::time::Duration::from_secs(600); // the run's bound
//! let wan = Emulation::start(WanMode::Nfqueue, &matrix, &options)?;
//! calibrate::calibrate(&wan, &CalibrationConfig::default())?; // prints; Err if a pair is off
//! // Replica r listens on wan.region_addr(r); run as the region's uid so
//! // that its outgoing peer connections leave from that address too.
//! let server = wan
//!     .region_command(1, "kv-server")
//!     .arg(format!("--listen={}:7000", wan.region_addr(1)))
//!     .spawn()?;
//! // Clients: sockets made on a thread inside the namespace, bound to
//! // their region's address (no delay to their own replica).
//! let ca = wan.region_addr(0);
//! let client = wan.spawn("client", move || {
//!     let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
//!         .map_err(|e| WanError::io("socket", e))?;
//!     s.bind(&std::net::SocketAddrV4::new(ca, 0).into())
//!         .map_err(|e| WanError::io("bind", e))?;
//!     Ok(s)
//! })?.join().unwrap()?;
//! # drop((server, client));
//! let stats = wan.stop()?; // kills what still runs inside, removes the namespace
//! # Ok(()) }
//! ```

pub mod calibrate;
pub mod emulation;
pub mod inproc;
pub mod namespace;
pub mod netem;
pub mod netlink;
pub mod nfqueue;
pub mod shell;

pub use calibrate::{Calibration, CalibrationConfig, PairRtt};
pub use emulation::{Emulation, WanOptions};
pub use namespace::Namespace;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The largest number of regions: region addresses use one octet.
pub const MAX_REGIONS: usize = 254;

/// The address of region `region` (0-based): 127.0.(region+1).1. All of
/// 127.0.0.0/8 is local on loopback, so a process binds it without adding it.
pub fn region_addr(region: usize) -> Ipv4Addr {
    assert!(region < MAX_REGIONS, "region index {region} out of range");
    Ipv4Addr::new(127, 0, region as u8 + 1, 1)
}

/// The region whose address is `addr`, if it is one of the first `regions`.
pub fn region_of(addr: Ipv4Addr, regions: usize) -> Option<usize> {
    let [a, b, c, d] = addr.octets();
    let r = (c as usize).checked_sub(1)?;
    (a == 127 && b == 0 && d == 1 && r < regions).then_some(r)
}

/// How the WAN is emulated; chosen by `--wan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WanMode {
    Netem,
    Nfqueue,
    Inproc,
    Sim,
}

impl WanMode {
    pub const NAMES: &[&str] = &["netem", "nfqueue", "inproc", "sim"];

    pub fn name(self) -> &'static str {
        match self {
            WanMode::Netem => "netem",
            WanMode::Nfqueue => "nfqueue",
            WanMode::Inproc => "inproc",
            WanMode::Sim => "sim",
        }
    }

    /// Whether the mode needs root (a network namespace of its own).
    pub fn needs_root(self) -> bool {
        matches!(self, WanMode::Netem | WanMode::Nfqueue)
    }
}

impl fmt::Display for WanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WanMode {
    type Err = WanError;
    fn from_str(s: &str) -> Result<WanMode, WanError> {
        match s {
            "netem" => Ok(WanMode::Netem),
            "nfqueue" => Ok(WanMode::Nfqueue),
            "inproc" => Ok(WanMode::Inproc),
            "sim" => Ok(WanMode::Sim),
            _ => Err(WanError::UnknownMode(s.to_string())),
        }
    }
}

/// Why an emulation could not be set up, measured, or torn down. The first
/// group is for the user to fix (flags, environment); the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum WanError {
    #[error("unknown WAN mode {0:?}; expected one of netem, nfqueue, inproc, sim")]
    UnknownMode(String),
    #[error(
        "--wan {mode} needs root (it creates a network namespace); run as root, or use --wan inproc"
    )]
    NotRoot { mode: WanMode },
    #[error(
        "--wan netem: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set; tc said: {tc_said}); \
         use --wan nfqueue (same per-pair delays by a userspace delayer, root) or --wan inproc (no root)"
    )]
    NetemAbsent { tc_said: String },
    #[error("`{tool}` not found; install it with `apt-get install -y {package}`")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },
    #[error(
        "--wan sim is the deterministic simulator and has no network to emulate; run `sim-figures`"
    )]
    SimHasNoNetwork,
    #[error("{regions} regions; the emulation supports 1 to {MAX_REGIONS}")]
    TooManyRegions { regions: usize },
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NFQUEUE: {0}")]
    Netlink(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("calibration: {count} region pair(s) off by more than {tolerance_ms} ms: {pairs}")]
    CalibrationOff {
        count: usize,
        tolerance_ms: f64,
        pairs: String,
    },
}

impl WanError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> WanError {
        WanError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the user can fix this by a flag or by setting up the machine
    /// (as opposed to a fault of the emulation itself).
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            WanError::UnknownMode(_)
                | WanError::NotRoot { .. }
                | WanError::NetemAbsent { .. }
                | WanError::ToolMissing { .. }
                | WanError::SimHasNoNetwork
                | WanError::TooManyRegions { .. }
        )
    }
}

/// Whether this process runs as root (needed by `netem` and `nfqueue`).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_addresses_round_trip() {
        assert_eq!(region_addr(0), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(region_addr(4), Ipv4Addr::new(127, 0, 5, 1));
        for r in 0..5 {
            assert_eq!(region_of(region_addr(r), 5), Some(r));
        }
        assert_eq!(region_of(region_addr(5), 5), None);
        assert_eq!(region_of(Ipv4Addr::new(127, 0, 0, 1), 5), None);
        assert_eq!(region_of(Ipv4Addr::new(127, 0, 2, 2), 5), None);
        assert_eq!(region_of(Ipv4Addr::new(10, 0, 2, 1), 5), None);
    }

    #[test]
    fn modes_parse_and_bad_ones_are_named() {
        for name in WanMode::NAMES {
            assert_eq!(name.parse::<WanMode>().unwrap().name(), *name);
        }
        let err = "tc".parse::<WanMode>().unwrap_err();
        assert!(err.to_string().contains("\"tc\"") && err.to_string().contains("nfqueue"));
    }
}
