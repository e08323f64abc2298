//! Crash safety of the RocksDB engine: a child process appends in a loop
//! and is killed with SIGKILL at random moments; after reopening, every
//! acknowledged append is present exactly once, in order, intact, and
//! nothing is half-present.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use log_backend::{AppendId, ClientId, Log, LogConfig, Position, RocksLog, StreamId};
use rand::Rng;

/// Must match `payload` in `src/bin/log-crash-child.rs`.
fn payload(client: u64, seq: u64) -> Vec<u8> {
    let unit = format!("c{client}s{seq};");
    let len = 16 + (seq * 37 % 2000) as usize;
    unit.bytes().cycle().take(len).collect()
}

struct Ack {
    client: u64,
    seq: u64,
    position: u64,
    dup: bool,
}

fn parse(line: &str) -> Option<Ack> {
    let mut it = line.split_whitespace();
    let kind = it.next()?;
    let mut n = || it.next()?.parse::<u64>().ok();
    let (client, seq, position) = (n()?, n()?, n()?);
    Some(Ack {
        client,
        seq,
        position,
        dup: kind == "dup",
    })
}

/// Runs the child until killed; returns what it acknowledged.
fn run_round(dir: &std::path::Path, clients: u64, kill_after: Duration) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-crash-child"))
        .arg("--dir")
        .arg(dir)
        .arg("--clients")
        .arg(clients.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| parse(&l))
            .collect::<Vec<_>>()
    });
    std::thread::sleep(kill_after);
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill failed");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child must die by the signal");
    reader.join().unwrap()
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let clients = 4;
    let started = Instant::now();
    let mut rng = rand::rng();
    let mut acked: HashMap<(u64, u64), u64> = HashMap::new();
    let mut dups = 0;
    let mut rounds = 0;
    // Bounded in count and in time.
    while rounds < 6 && started.elapsed() < Duration::from_secs(60) {
        let kill_after = Duration::from_millis(rng.random_range(150..600));
        for a in run_round(dir.path(), clients, kill_after) {
            if a.dup {
                dups += 1;
                // A retry after restart must return the first position.
                let first = acked.get(&(a.client, a.seq));
                assert!(first.is_none_or(|p| *p == a.position), "retry moved");
            }
            let prev = acked.insert((a.client, a.seq), a.position);
            assert!(
                prev.is_none_or(|p| p == a.position),
                "one append, two positions"
            );
        }
        rounds += 1;
    }
    assert!(
        acked.len() > 50,
        "the child acknowledged too little: {}",
        acked.len()
    );
    assert!(dups > 0, "no retry after restart was exercised");

    let log = RocksLog::open(dir.path(), LogConfig::default()).unwrap();
    let tail = log.check_tail(&[]).unwrap().tail;
    // Every entry below the tail is intact (checksum) and whole.
    let mut by_client: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for p in 0..tail.0 {
        let e = log
            .read(Position(p))
            .expect("every entry below the tail reads back");
        let (c, s) = (e.id.client.0, e.id.seq);
        assert_eq!(
            e.payload,
            payload(c, s),
            "entry {p} holds a torn or foreign payload"
        );
        assert_eq!(e.streams, vec![StreamId(c)]);
        by_client.entry(c).or_default().push((s, p));
    }
    // Per client: sequence numbers 1..=n, each once, in log order (a
    // client appends the next only after the previous was acknowledged).
    for (c, seqs) in &by_client {
        let got: Vec<u64> = seqs.iter().map(|(s, _)| *s).collect();
        let want: Vec<u64> = (1..=got.len() as u64).collect();
        assert_eq!(got, want, "client {c}: duplicates, gaps or reordering");
        // The stream index agrees with the entries.
        let indexed: Vec<u64> = log
            .read_next(StreamId(*c), Position(0), usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.position.0)
            .collect();
        let positions: Vec<u64> = seqs.iter().map(|(_, p)| *p).collect();
        assert_eq!(indexed, positions[..indexed.len()].to_vec());
        assert_eq!(log.last_seq(ClientId(*c)).unwrap(), Some(got.len() as u64));
    }
    // Every acknowledged append is present at its acknowledged position.
    for ((c, s), p) in &acked {
        let e = log.read(Position(*p)).unwrap();
        assert_eq!(
            e.id,
            AppendId::new(ClientId(*c), *s),
            "ack for {c}/{s} at {p} lost"
        );
    }
    // And a retry of any of them is still deduplicated after the crashes.
    let ((c, s), p) = acked.iter().max_by_key(|(_, p)| **p).unwrap();
    let again = log
        .append(
            &[StreamId(*c)],
            &payload(*c, *s),
            AppendId::new(ClientId(*c), *s),
        )
        .unwrap();
    assert_eq!(again, Position(*p));
}
