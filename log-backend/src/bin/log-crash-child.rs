//! Crash-test child (LOGSTACK.md §1 durability): appends to a RocksDB log
//! in a loop from several client threads and prints every acknowledged
//! append as `ack <client> <seq> <position>` (flushed) before going on.
//! The parent test kills it with SIGKILL at a random moment, reopens the
//! log and checks every acknowledged append. On start, each client first
//! retries its last sequence number, which must be deduplicated (`dup`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use log_backend::{AppendId, ClientId, Log, LogConfig, RocksLog, StreamId};

#[derive(Parser)]
struct Args {
    /// Directory of the log.
    #[arg(long)]
    dir: PathBuf,
    /// Concurrent appending clients (one thread each).
    #[arg(long, default_value_t = 4)]
    clients: u64,
}

/// The payload of `(client, seq)`: recognisable, and of varying size so
/// that torn writes would show.
pub fn payload(client: u64, seq: u64) -> Vec<u8> {
    let unit = format!("c{client}s{seq};");
    let len = 16 + (seq * 37 % 2000) as usize;
    unit.bytes().cycle().take(len).collect()
}

fn run_client(log: &RocksLog, client: u64) -> anyhow::Result<()> {
    let c = ClientId(client);
    let stream = [StreamId(client)];
    let mut seq = log.last_seq(c)?.unwrap_or(0);
    if seq > 0 {
        let p = log.append(&stream, &payload(client, seq), AppendId::new(c, seq))?;
        let e = log.read(p)?;
        if e.id != AppendId::new(c, seq) {
            bail!(
                "retry of {client}/{seq} returned {p}, which holds {:?}",
                e.id
            );
        }
        say(&format!("dup {client} {seq} {}", p.0))?;
    }
    loop {
        seq += 1;
        let p = log.append(&stream, &payload(client, seq), AppendId::new(c, seq))?;
        say(&format!("ack {client} {seq} {}", p.0))?;
    }
}

fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log = Arc::new(RocksLog::open(&args.dir, LogConfig::default()).context("open")?);
    let threads: Vec<_> = (0..args.clients)
        .map(|c| {
            let log = log.clone();
            std::thread::spawn(move || run_client(&log, c))
        })
        .collect();
    for t in threads {
        match t.join() {
            Ok(r) => r?,
            Err(_) => bail!("client thread panicked"),
        }
    }
    Ok(())
}
