//! The `wan-check` binary: clear errors and exit codes for bad flags, a
//! matrix with a missing pair and a kernel without netem, and the
//! namespace removed when the run is interrupted with Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn wan_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wan-check"))
        .args(args)
        .output()
        .expect("run wan-check")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_flags_are_usage_errors() {
    let o = wan_check(&["--wan", "tc"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nfqueue") && stderr(&o).contains("inproc"),
        "{}",
        stderr(&o)
    );
    let o = wan_check(&["--wan", "inproc", "--regions", "4"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("3 or 5 regions"), "{}", stderr(&o));
    let o = wan_check(&["--regions", "3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--wan"), "{}", stderr(&o));
    let o = wan_check(&["--wan", "inproc", "--seconds", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = wan_check(&["--wan", "sim"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("sim-figures"), "{}", stderr(&o));
}

#[test]
fn a_matrix_with_a_missing_pair_names_it() {
    let dir = std::env::temp_dir().join(format!("wan-check-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("missing.toml");
    std::fs::write(
        &path,
        "regions = [\"A\", \"B\", \"C\"]\n[rtt_ms]\nA = { B = 10, C = 20 }\nB = { A = 10 }\n",
    )
    .unwrap();
    let o = wan_check(&["--wan", "inproc", "--matrix", path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no entry for the pair B -> C"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inproc_needs_no_root_and_calibrates() {
    let o = wan_check(&["--wan", "inproc", "--seconds", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("every pair within 2 ms"), "{out}");
}

#[test]
fn netem_without_the_qdisc_exits_4_naming_nfqueue() {
    if !super::wan::can_run("wan-check netem", false) {
        return;
    }
    if geo_bench::wan::netem::probe().is_ok() {
        eprintln!("NOTICE: this kernel has netem; the refusal path was not exercised");
        return;
    }
    let o = wan_check(&["--wan", "netem"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("--wan nfqueue"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_removes_the_namespace() {
    if !super::wan::can_run("wan-check Ctrl-C", true) {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_wan-check"))
        .args(["--wan", "nfqueue", "--seconds", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first line names the namespace once it is set up.
    let first = lines.next().expect("a first line").unwrap();
    let name = first
        .split_whitespace()
        .find(|w| w.starts_with("gb-"))
        .unwrap_or_else(|| panic!("no namespace in {first:?}"))
        .to_string();
    assert!(geo_bench::wan::namespace::exists(&name));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("wan-check did not exit on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130));
    assert!(
        !geo_bench::wan::namespace::exists(&name),
        "{name} survived Ctrl-C"
    );
}
