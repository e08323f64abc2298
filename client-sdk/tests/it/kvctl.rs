//! The kvctl binary: argument errors exit 1 with a message, and each
//! command works end to end against a fake replica.

use crate::fake::{Backend, Fake, serve};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

const KVCTL: &str = env!("CARGO_BIN_EXE_kvctl");

/// Runs kvctl off the runtime thread (the fake must keep serving), bounded.
async fn kvctl(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let run = tokio::task::spawn_blocking(move || Command::new(KVCTL).args(&args).output());
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("kvctl did not finish within 20 s")
        .unwrap()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[tokio::test]
async fn argument_errors_exit_1_with_a_message() {
    let cases: [(&[&str], &str); 6] = [
        (&["get", "k"], "--endpoints is required"),
        (&["-e", "127.0.0.1:1"], "Usage"),
        (&["-e", "127.0.0.1:1", "add", "k", "x"], "invalid value 'x'"),
        (
            &["-e", "127.0.0.1:1", "cas", "k", "a"],
            "cas needs 2 value(s)",
        ),
        (
            &["-e", "127.0.0.1:1", "frobnicate"],
            "unrecognized subcommand",
        ),
        (&["-e", "bad host:1", "get", "k"], "invalid argument"),
    ];
    for (args, message) in cases {
        let out = kvctl(args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let help = kvctl(&["--help"]).await;
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("cas"));
}

#[tokio::test]
async fn an_unreachable_cluster_exits_1() {
    let out = kvctl(&["-e", "127.0.0.1:1", "--timeout-ms", "300", "get", "k"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("kvctl: no replica available"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn commands_work_end_to_end() {
    let backend = Arc::new(Backend::default());
    let srv = serve(Fake::new(7, &backend)).await;
    let e = srv.endpoint.as_str();
    let steps: [(&[&str], &str); 12] = [
        (&["get", "k"], "(absent)"),
        (&["put", "k", "v1"], "OK"),
        (&["get", "k"], "v1"),
        (&["cas", "k", "v1", "v2"], "applied: v1 -> v2"),
        (&["cas", "k", "zz", "v3"], "not applied: current v2"),
        (&["cas", "--delete", "k", "v2"], "applied: v2 -> (absent)"),
        (&["cas", "--absent", "k", "v4"], "applied: (absent) -> v4"),
        (&["pia", "k", "v5"], "not applied: current v4"),
        (&["del", "k"], "OK"),
        (&["add", "n", "-3"], "0 -> -3"),
        (&["add", "n", "10"], "-3 -> 7"),
        (&["get", "--int", "n"], "7"),
    ];
    for (args, expected) in steps {
        let mut full = vec!["--endpoints", e];
        full.extend_from_slice(args);
        let out = kvctl(&full).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected, "{args:?}");
    }
    let out = kvctl(&["ping", "-e", e]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("replica=7 region=region-7 rtt="),
        "{}",
        stdout(&out)
    );
    let out = kvctl(&["-e", e, "put", "bad", "x"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid argument"),
        "{}",
        stderr(&out)
    );
}
