//! Shared-log benchmark (LOGSTACK.md §1: "measure fsync on the host before
//! quoting a number"). Measures fsync on this disk, then synced appends/s
//! and latency of the RocksDB engine for several numbers of concurrent
//! appenders and entry sizes, then raw RocksDB synced WriteBatches of the
//! same shape (the records per batch our group commit achieved), and
//! prints the ratios and the targets.
//!
//! Appenders are closed loops (the next append starts when the previous
//! one is acknowledged), run two ways: one OS thread each with the
//! blocking `append` (`threads`), and futures from `append_async` driven by
//! a single thread (`async`), the way an async server uses the log.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use log_backend::{AppendFuture, AppendId, ClientId, Log, LogConfig, RocksLog, StreamId};
use rocksdb::{DB, Options, WriteBatch, WriteOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// One OS thread per appender, blocking `append`.
    Threads,
    /// All appenders as futures on one driver thread.
    Async,
}

#[derive(Parser, Debug)]
#[command(about = "fsync, group-commit throughput and latency of the RocksDB log vs raw RocksDB")]
struct Args {
    /// Directory for the benchmark's databases, on the disk to measure
    /// (a temporary directory inside it is removed afterwards).
    #[arg(long, default_value = "target/log-bench")]
    dir: PathBuf,
    /// Appender kinds to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "threads,async")]
    modes: Vec<Mode>,
    /// Numbers of concurrent appenders, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    appenders: Vec<usize>,
    /// Entry payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,4096")]
    sizes: Vec<usize>,
    /// Seconds measured per (mode, appenders, size) configuration.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seconds of warm-up before each slice.
    #[arg(long, default_value_t = 0.3)]
    warmup_seconds: f64,
    /// Seconds of each raw RocksDB variant per configuration.
    #[arg(long, default_value_t = 1.5)]
    raw_seconds: f64,
    /// Slices per configuration: ours and raw RocksDB alternate in this
    /// many short slices, so that load from elsewhere hits both alike.
    #[arg(long, default_value_t = 3)]
    slices: usize,
    /// Seconds of the fsync probe (half before the runs, half after).
    #[arg(long, default_value_t = 2.0)]
    fsync_seconds: f64,
    /// Group commit: most records per batch.
    #[arg(long, default_value_t = LogConfig::default().group_commit.max_records)]
    max_records: usize,
    /// Group commit: most payload bytes per batch.
    #[arg(long, default_value_t = LogConfig::default().group_commit.max_bytes)]
    max_bytes: usize,
    /// Group commit: longest wait for company, in microseconds.
    #[arg(long, default_value_t = LogConfig::default().group_commit.max_delay_us)]
    max_delay_us: u64,
    /// Group commit: idle gap that closes the window early, in microseconds.
    #[arg(long, default_value_t = LogConfig::default().group_commit.linger_gap_us)]
    linger_gap_us: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 60_000_000) as u64
}

struct Fsync {
    p50_us: u64,
    p99_us: u64,
    mean_us: f64,
    count: u64,
}

/// Appends 4 KiB to a file and fdatasyncs it, as a WAL does, in a loop.
fn measure_fsync(dir: &Path, seconds: f64, h: &mut Histogram<u64>) -> anyhow::Result<Fsync> {
    let path = dir.join("fsync-probe");
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    let block = vec![0xA5u8; 4096];
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        h.record(micros(t.elapsed()))?;
    }
    std::fs::remove_file(&path)?;
    Ok(Fsync {
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        mean_us: h.mean(),
        count: h.len(),
    })
}

/// Totals of one (mode, appenders, size) configuration, over its slices.
struct Run {
    mode: Mode,
    appenders: usize,
    size: usize,
    hist: Histogram<u64>,
    seconds: f64,
    records: u64,
    batches: u64,
    write_micros: u64,
    raw_same: Rate,
    raw_min: Rate,
}

/// Records over seconds, summed over slices.
#[derive(Default)]
struct Rate {
    records: f64,
    seconds: f64,
}

impl Rate {
    fn per_sec(&self) -> f64 {
        self.records / self.seconds.max(1e-9)
    }
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.hist.len() as f64 / self.seconds.max(1e-9)
    }
    fn records_per_batch(&self) -> f64 {
        self.records as f64 / self.batches.max(1) as f64
    }
    fn batches_per_sec(&self) -> f64 {
        self.batches as f64 / self.seconds.max(1e-9)
    }
    /// Share of the time the writer spent inside RocksDB writes.
    fn writer_busy(&self) -> f64 {
        self.write_micros as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

type Appender = JoinHandle<anyhow::Result<Histogram<u64>>>;

/// One slice: closed-loop appenders on a fresh log for the warm-up, then
/// `seconds` measured, added to `run`. Returns the records per batch of
/// the slice.
fn measure_slice(
    dir: &Path,
    config: &LogConfig,
    run: &mut Run,
    seconds: f64,
    warmup: f64,
) -> anyhow::Result<f64> {
    let (mode, n, size) = (run.mode, run.appenders, run.size);
    let log = RocksLog::open(dir, config.clone())?;
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<Appender> = match mode {
        Mode::Threads => (0..n)
            .map(|c| {
                let (log, m, s) = (log.clone(), measuring.clone(), stop.clone());
                std::thread::spawn(move || run_thread(&log, c, size, &m, &s))
            })
            .collect(),
        Mode::Async => {
            let (log, m, s) = (log.clone(), measuring.clone(), stop.clone());
            vec![std::thread::spawn(move || {
                drive_async(&log, n, size, &m, &s)
            })]
        }
    };
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let before = log.stats();
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    measuring.store(false, Ordering::Relaxed);
    run.seconds += start.elapsed().as_secs_f64();
    let after = log.stats();
    stop.store(true, Ordering::Relaxed);
    for a in appenders {
        run.hist.add(
            &a.join()
                .map_err(|_| anyhow::anyhow!("appender panicked"))??,
        )?;
    }
    let (records, batches) = (
        after.records - before.records,
        after.batches - before.batches,
    );
    run.records += records;
    run.batches += batches;
    run.write_micros += after.write_micros - before.write_micros;
    Ok(records as f64 / batches.max(1) as f64)
}

fn run_thread(
    log: &RocksLog,
    c: usize,
    size: usize,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> anyhow::Result<Histogram<u64>> {
    let payload = vec![0x5Au8; size];
    let stream = [StreamId(c as u64)];
    let mut h = histogram();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let t = Instant::now();
        log.append(&stream, &payload, AppendId::new(ClientId(c as u64), seq))?;
        if measuring.load(Ordering::Relaxed) {
            h.record(micros(t.elapsed()))?;
        }
    }
    Ok(h)
}

/// Marks one appender's future as ready to poll and wakes the driver.
struct SlotWaker {
    ready: AtomicBool,
    driver: std::thread::Thread,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.driver.unpark();
    }
}

/// `n` concurrent appenders as `append_async` futures on this one thread.
fn drive_async(
    log: &RocksLog,
    n: usize,
    size: usize,
    measuring: &AtomicBool,
    stop: &AtomicBool,
) -> anyhow::Result<Histogram<u64>> {
    let payload = vec![0x5Au8; size];
    let mut h = histogram();
    let mut seqs = vec![0u64; n];
    let wakers: Vec<Arc<SlotWaker>> = (0..n)
        .map(|_| {
            let driver = std::thread::current();
            Arc::new(SlotWaker {
                ready: AtomicBool::new(true),
                driver,
            })
        })
        .collect();
    let mut slots: Vec<Option<(AppendFuture, Instant)>> = (0..n).map(|_| None).collect();
    while !stop.load(Ordering::Relaxed) {
        for i in 0..n {
            if !wakers[i].ready.swap(false, Ordering::AcqRel) {
                continue;
            }
            let waker = Waker::from(wakers[i].clone());
            let mut cx = Context::from_waker(&waker);
            // Poll the pending append; once done, record it and start the
            // next, polling it once so that it registers the waker.
            loop {
                if let Some((f, t)) = slots[i].as_mut() {
                    match Pin::new(f).poll(&mut cx) {
                        Poll::Pending => break,
                        Poll::Ready(r) => {
                            r?;
                            if measuring.load(Ordering::Relaxed) {
                                h.record(micros(t.elapsed()))?;
                            }
                        }
                    }
                }
                seqs[i] += 1;
                let id = AppendId::new(ClientId(i as u64), seqs[i]);
                slots[i] = Some((
                    log.append_async(&[StreamId(i as u64)], &payload, id),
                    Instant::now(),
                ));
            }
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
    Ok(h)
}

/// Raw RocksDB: one thread writing synced WriteBatches of `per_batch`
/// records. With `same_keys`, exactly what our engine writes: the same
/// four column families, per record a frame, a stream-index key and a
/// dedup key (as if from `clients` clients), plus the tail cell per batch;
/// otherwise one plain put per record in the default column family.
/// Adds to `rate`.
fn measure_raw(
    dir: &Path,
    per_batch: usize,
    size: usize,
    clients: usize,
    same_keys: bool,
    seconds: f64,
    rate: &mut Rate,
) -> anyhow::Result<()> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let cfs = if same_keys {
        vec!["entries", "streams", "dedup", "meta"]
    } else {
        vec![]
    };
    let db = DB::open_cf(&opts, dir, &cfs)?;
    let cf = |name: &str| db.cf_handle(name).context("column family");
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    // A frame is the payload plus 36 header bytes and 8 per stream.
    let value = vec![0x5Au8; size + if same_keys { 44 } else { 0 }];
    let pair = |a: u64, b: u64| [a.to_be_bytes(), b.to_be_bytes()].concat();
    let clients = clients.max(1) as u64;
    let mut next = 0u64;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let mut wb = WriteBatch::default();
        for _ in 0..per_batch {
            let (c, seq) = (next % clients, next / clients + 1);
            if same_keys {
                wb.put_cf(cf("entries")?, next.to_be_bytes(), &value);
                wb.put_cf(cf("streams")?, pair(c, next), []);
                wb.put_cf(cf("dedup")?, pair(c, seq), next.to_be_bytes());
            } else {
                wb.put(next.to_be_bytes(), &value);
            }
            next += 1;
        }
        if same_keys {
            wb.put_cf(cf("meta")?, b"tail", next.to_be_bytes());
        }
        db.write_opt(wb, &wo)?;
    }
    rate.records += next as f64;
    rate.seconds += start.elapsed().as_secs_f64();
    Ok(())
}

fn print_targets(rows: &[Run], fsync_p50_us: u64) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for mode in [Mode::Threads, Mode::Async] {
        let find = |n: usize| {
            rows.iter()
                .find(|r| r.mode == mode && r.size == 128 && r.appenders == n)
        };
        let (Some(one), Some(many)) = (find(1), find(64)) else {
            continue;
        };
        let scale = many.per_sec() / one.per_sec();
        let ratio = many.per_sec() / many.raw_same.per_sec();
        let p99 = many.hist.value_at_quantile(0.99) as f64;
        let fsyncs = p99 / fsync_p50_us as f64;
        let m = format!("{mode:?}").to_lowercase();
        println!(
            "[{m}] 64 vs 1 appender: {scale:.1}x the throughput (target >= 20x): {}",
            verdict(scale >= 20.0)
        );
        println!(
            "[{m}] 64 appenders vs raw RocksDB, same WriteBatch content and batch size: {:.0} % (target >= 80 %): {}; vs one plain put per record: {:.0} %",
            ratio * 100.0,
            verdict(ratio >= 0.8),
            many.per_sec() / many.raw_min.per_sec() * 100.0
        );
        println!(
            "[{m}] p99 at 64 appenders: {p99:.0} us = {fsyncs:.2} x fsync p50 (target < 3): {}",
            verdict(fsyncs < 3.0)
        );
        // What raw RocksDB alone needs: a closed-loop append waits for the
        // batch in progress and then its own, so about two batch times.
        let raw_batch_us = many.records_per_batch() / many.raw_same.per_sec() * 1e6;
        println!(
            "[{m}]   for scale: raw RocksDB writes a batch of {:.0} such records in {raw_batch_us:.0} us = {:.2} x fsync p50; two batches = {:.2} x",
            many.records_per_batch(),
            raw_batch_us / fsync_p50_us as f64,
            2.0 * raw_batch_us / fsync_p50_us as f64
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.slices > 0, "--slices must be > 0");
    let mut config = LogConfig::default();
    config.group_commit.max_records = args.max_records;
    config.group_commit.max_bytes = args.max_bytes;
    config.group_commit.max_delay_us = args.max_delay_us;
    config.group_commit.linger_gap_us = args.linger_gap_us;
    config.group_commit.sync = true;
    config.validate()?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let root = tempfile::tempdir_in(&args.dir)?;

    println!("== log-bench: effective config");
    println!("dir           {}", root.path().display());
    println!("group_commit  {:?}", config.group_commit);
    println!(
        "entries       max_entry_bytes {}, dedup {:?}",
        config.max_entry_bytes, config.dedup
    );
    println!(
        "runs          modes {:?}, appenders {:?}, sizes {:?} B; per configuration {} slices alternating ours ({} s after {} s warm-up) and raw RocksDB ({} s each variant); fsync probe {} s before and after",
        args.modes,
        args.appenders,
        args.sizes,
        args.slices,
        args.seconds / args.slices as f64,
        args.warmup_seconds,
        args.raw_seconds / args.slices as f64,
        args.fsync_seconds / 2.0
    );
    println!(
        "build         dev profile; log-backend, crc32fast and RocksDB at opt-level 3 (see Cargo.toml)"
    );

    let mut fsync_hist = histogram();
    let fs = measure_fsync(root.path(), args.fsync_seconds / 2.0, &mut fsync_hist)?;
    println!("\n== fsync on this disk (append 4 KiB + fdatasync), before the runs");
    println!(
        "{} syncs: mean {:.0} us, p50 {} us, p99 {} us (one synced append at a time: at most ~{:.0}/s)",
        fs.count,
        fs.mean_us,
        fs.p50_us,
        fs.p99_us,
        1e6 / fs.mean_us
    );

    println!(
        "\n== synced appends: RocksLog vs raw RocksDB synced WriteBatches of the same records per batch"
    );
    println!(
        "{:>7} {:>5} {:>4} | {:>9} {:>6} {:>6} {:>7} {:>9} {:>7} {:>5} | {:>10} {:>5} | {:>9} {:>5}",
        "mode",
        "size",
        "apps",
        "appends/s",
        "p50us",
        "p99us",
        "p999us",
        "rec/batch",
        "batch/s",
        "busy",
        "raw-same/s",
        "ratio",
        "raw-min/s",
        "ratio"
    );
    let slice_seconds = args.seconds / args.slices as f64;
    let raw_seconds = args.raw_seconds / args.slices as f64;
    let mut rows = Vec::new();
    for &mode in &args.modes {
        for &size in &args.sizes {
            for &n in &args.appenders {
                let mut run = Run {
                    mode,
                    appenders: n,
                    size,
                    hist: histogram(),
                    seconds: 0.0,
                    records: 0,
                    batches: 0,
                    write_micros: 0,
                    raw_same: Rate::default(),
                    raw_min: Rate::default(),
                };
                // Alternate short slices of ours and raw, so that load from
                // elsewhere on the machine hits both alike.
                for slice in 0..args.slices {
                    let tag = format!("{mode:?}-{size}-{n}-{slice}");
                    let d = root.path().join(format!("log-{tag}"));
                    let per_batch =
                        measure_slice(&d, &config, &mut run, slice_seconds, args.warmup_seconds)?;
                    std::fs::remove_dir_all(&d).ok();
                    let per_batch = per_batch.round().max(1.0) as usize;
                    for (same, rate) in [(true, &mut run.raw_same), (false, &mut run.raw_min)] {
                        let d = root.path().join(format!("raw-{same}-{tag}"));
                        measure_raw(&d, per_batch, size, n, same, raw_seconds, rate)?;
                        std::fs::remove_dir_all(&d).ok();
                    }
                }
                println!(
                    "{:>7} {:>5} {:>4} | {:>9.0} {:>6} {:>6} {:>7} {:>9.1} {:>7.0} {:>4.0}% | {:>10.0} {:>5.2} | {:>9.0} {:>5.2}",
                    format!("{mode:?}").to_lowercase(),
                    size,
                    n,
                    run.per_sec(),
                    run.hist.value_at_quantile(0.5),
                    run.hist.value_at_quantile(0.99),
                    run.hist.value_at_quantile(0.999),
                    run.records_per_batch(),
                    run.batches_per_sec(),
                    run.writer_busy() * 100.0,
                    run.raw_same.per_sec(),
                    run.per_sec() / run.raw_same.per_sec(),
                    run.raw_min.per_sec(),
                    run.per_sec() / run.raw_min.per_sec(),
                );
                rows.push(run);
            }
        }
    }
    let fs = measure_fsync(root.path(), args.fsync_seconds / 2.0, &mut fsync_hist)?;
    println!("\n== fsync again after the runs; both probes together:");
    println!(
        "{} syncs: mean {:.0} us, p50 {} us, p99 {} us",
        fs.count, fs.mean_us, fs.p50_us, fs.p99_us
    );
    println!(
        "\n== targets (128 B entries; fsync p50 {} us from both probes)",
        fs.p50_us
    );
    print_targets(&rows, fs.p50_us);
    Ok(())
}
