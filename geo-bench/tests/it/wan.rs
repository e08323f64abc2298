//! The WAN emulation against the real kernel: the nfqueue emulation
//! calibrates within 2 ms per pair and leaves no namespace behind, netem
//! is refused where the kernel lacks it, a namespace goes away on panic and
//! with the processes inside it, and stale ones are cleaned up.
//!
//! These need root and iptables. Without them a test prints a SKIPPED
//! notice (it has not passed); under CI (`CI` set) it fails instead,
//! since CI runs as root and installs iptables.

use geo_bench::RegionMatrix;
use geo_bench::wan::namespace::{self, Namespace};
use geo_bench::wan::{
    CalibrationConfig, Emulation, WanError, WanMode, WanOptions, calibrate, netem,
};
use std::io::Read;
use std::net::{SocketAddrV4, TcpListener};
use std::time::{Duration, Instant};

/// Whether the machine can run namespace tests; prints why not.
pub fn can_run(test: &str, needs_iptables: bool) -> bool {
    let mut missing = Vec::new();
    if !geo_bench::wan::is_root() {
        missing.push("root");
    }
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
    };
    if !on_path("ip") {
        missing.push("iproute2 (`ip`)");
    }
    if needs_iptables && !on_path("iptables-restore") {
        missing.push("iptables (`apt-get install -y iptables`)");
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{test}: needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI must provide it");
    }
    eprintln!("SKIPPED (not passed): {why}");
    false
}

fn quick_options() -> WanOptions {
    let mut o = WanOptions::default();
    o.delayer.max_runtime = Duration::from_secs(120);
    o
}

#[test]
fn nfqueue_three_regions_calibrate_and_leave_no_namespace() {
    if !can_run("nfqueue calibration", true) {
        return;
    }
    let m = RegionMatrix::paper(3).unwrap();
    let e = Emulation::start(WanMode::Nfqueue, &m, &quick_options()).unwrap();
    let name = e.namespace().unwrap().name().to_string();
    assert!(namespace::exists(&name));
    let cfg = CalibrationConfig {
        duration: Duration::from_secs(2),
        ..Default::default()
    };
    let c = calibrate::measure(&e, &cfg).unwrap();
    print!("{}", c.table());
    assert_eq!(c.pairs.len(), 6);
    c.check().unwrap();
    for p in &c.pairs {
        // Bursts of 8 over 2 s: at least a dozen rounds even for 151 ms.
        assert!(p.samples >= 8 * 10, "{p:?}");
        // Nothing can come back faster than the emulated round trip.
        assert!(p.median_ms >= p.target_ms, "{p:?}");
    }
    let stats = e.stop().unwrap().unwrap();
    println!("{stats:?}");
    assert!(stats.released > 0 && stats.dropped_full == 0 && stats.unmatched == 0);
    assert!(!namespace::exists(&name), "{name} is still there");
}

#[test]
fn a_process_placed_by_uid_leaves_from_its_region_and_waits_a_round_trip() {
    if !can_run("uid placement", true) {
        return;
    }
    let m = RegionMatrix::paper(3).unwrap();
    let e = Emulation::start(WanMode::Nfqueue, &m, &quick_options()).unwrap();
    let (va, ca) = (e.region_addr(1), e.region_addr(0));
    let listener = e
        .spawn("listen", move || {
            Ok(TcpListener::bind(SocketAddrV4::new(va, 0)).expect("bind VA"))
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    // The child does not bind: only its uid places it in CA.
    let script = format!("exec 3<>/dev/tcp/{va}/{port}; printf hi >&3; sleep 1");
    let started = Instant::now();
    let mut child = e
        .region_command(0, "bash")
        .args(["-c", &script])
        .spawn()
        .expect("bash");
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut conn, peer) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("no connection from the placed process: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hi = [0u8; 2];
    conn.read_exact(&mut hi).unwrap();
    let waited = started.elapsed();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(ca),
        "the connection must leave from CA"
    );
    assert_eq!(&hi, b"hi");
    // SYN, SYN-ACK, then the first data: one and a half CA-VA round trips.
    assert!(waited >= Duration::from_millis(108), "{waited:?}");
    let name = e.namespace().unwrap().name().to_string();
    // Teardown kills what still runs inside (the child's `sleep 1`).
    e.stop().unwrap();
    let status = child.wait().unwrap();
    assert!(!namespace::exists(&name));
    assert!(status.code().is_none() || status.success(), "{status:?}");
}

#[test]
fn netem_is_refused_on_a_kernel_without_it_naming_nfqueue() {
    if !can_run("netem probe", false) {
        return;
    }
    match netem::probe() {
        Err(e @ WanError::NetemAbsent { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("no netem") && msg.contains("--wan nfqueue"),
                "{msg}"
            );
            assert!(msg.contains("--wan inproc"), "{msg}");
            let m = RegionMatrix::paper(3).unwrap();
            let err = Emulation::start(WanMode::Netem, &m, &quick_options())
                .err()
                .unwrap();
            assert!(matches!(err, WanError::NetemAbsent { .. }) && err.is_environment());
        }
        Ok(()) => eprintln!("NOTICE: this kernel has netem; the refusal path was not exercised"),
        Err(e) => panic!("probe failed otherwise: {e}"),
    }
}

#[test]
fn a_namespace_and_its_processes_go_away_on_panic() {
    if !can_run("namespace guard", false) {
        return;
    }
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Namespace::create().unwrap();
        let child = ns.command("sleep", None).arg("30").spawn().unwrap();
        seen = Some((ns.name().to_string(), child));
        assert!(ns.pids().contains(&(seen.as_ref().unwrap().1.id() as i32)));
        panic!("test panic while the namespace is up");
    }));
    assert!(result.is_err());
    let (name, mut child) = seen.unwrap();
    assert!(!namespace::exists(&name), "{name} survived the panic");
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the sleep inside must have been killed: {status:?}"
    );
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed_and_live_ones_kept() {
    if !can_run("stale cleanup", false) {
        return;
    }
    // A pid that just ended stands for a benchmark run that died.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let stale = format!("gb-{dead_pid}-0");
    let out = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = Namespace::create().unwrap();
    let removed = namespace::cleanup_stale().unwrap();
    assert!(removed.contains(&stale), "{removed:?}");
    assert!(!namespace::exists(&stale));
    assert!(
        namespace::exists(live.name()),
        "our own live namespace was removed"
    );
    let name = live.name().to_string();
    live.remove().unwrap();
    assert!(!namespace::exists(&name));
}
