//! The `nfqueue` WAN (EVALUATION.md, "Emulating the WAN"): iptables sends
//! each packet between two region addresses, on the receive side of
//! loopback (mangle PREROUTING `-i lo`, where the sending socket no longer
//! owns it, so TCP Small Queues cannot throttle the flow as they would in
//! OUTPUT), to an NFQUEUE; the [`Delayer`] holds it for the pair's one-way
//! delay and then accepts it. Releases go in order of release time (a
//! heap), which keeps each pair's packets in their order, since a pair's
//! delay is constant.
//!
//! The delayer is a thread of the benchmark process that entered the
//! namespace, at real-time priority when allowed (a delayer that waits
//! for a CPU adds its wait to every packet).

use super::netlink::{NfQueue, QueuedPacket, Verdict};
use super::{Namespace, WanError, region_addr, region_of};
use crate::RegionMatrix;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One-way delays between region addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct DelayTable {
    regions: usize,
    one_way_us: Vec<u64>,
}

impl DelayTable {
    pub fn from_matrix(matrix: &RegionMatrix) -> DelayTable {
        let n = matrix.len();
        let mut one_way_us = vec![0; n * n];
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    one_way_us[a * n + b] = matrix.one_way_us(a, b);
                }
            }
        }
        DelayTable {
            regions: n,
            one_way_us,
        }
    }

    /// The delay of a packet from `src` to `dst`; None unless both are
    /// region addresses of different regions.
    pub fn delay(&self, packet: &QueuedPacket) -> Option<Duration> {
        let a = region_of(packet.src?, self.regions)?;
        let b = region_of(packet.dst?, self.regions)?;
        (a != b).then(|| Duration::from_micros(self.one_way_us[a * self.regions + b]))
    }
}

/// The `iptables-restore` input queueing every inter-region pair with a
/// delay on PREROUTING of loopback.
pub fn iptables_rules(matrix: &RegionMatrix, queue_num: u16) -> String {
    let mut s = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n");
    for a in 0..matrix.len() {
        for b in 0..matrix.len() {
            if a != b && matrix.one_way_us(a, b) > 0 {
                s.push_str(&format!(
                    "-A PREROUTING -i lo -s {}/32 -d {}/32 -j NFQUEUE --queue-num {queue_num}\n",
                    region_addr(a),
                    region_addr(b)
                ));
            }
        }
    }
    s.push_str("COMMIT\n");
    s
}

/// Installs [`iptables_rules`] in the namespace (never on the host).
pub fn install_rules(
    ns: &Namespace,
    matrix: &RegionMatrix,
    queue_num: u16,
) -> Result<(), WanError> {
    ns.exec(
        "iptables-restore",
        &[],
        Some(&iptables_rules(matrix, queue_num)),
        Some("iptables"),
    )?;
    Ok(())
}

/// Settings of the delayer.
#[derive(Clone, Debug)]
pub struct DelayerConfig {
    pub queue_num: u16,
    /// Packets held at once, at most; more are dropped and counted (also
    /// the kernel queue's bound).
    pub max_held: usize,
    /// The delayer stops after this long (every loop is bounded); traffic
    /// between regions then stops too, loudly.
    pub max_runtime: Duration,
    /// SCHED_FIFO priority of the delayer thread (0: leave it normal).
    pub realtime_priority: i32,
}

impl Default for DelayerConfig {
    fn default() -> DelayerConfig {
        DelayerConfig {
            queue_num: 0,
            max_held: 65_536,
            max_runtime: Duration::from_secs(3600),
            realtime_priority: 50,
        }
    }
}

/// Counters of a delayer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DelayerStats {
    /// Packets held and released after their delay.
    pub released: u64,
    /// Packets dropped because `max_held` were already held.
    pub dropped_full: u64,
    /// Queued packets that were not between two regions (accepted at once).
    pub unmatched: u64,
    /// Error messages and lost notifications from the kernel.
    pub netlink_errors: u64,
    /// How late releases were: the largest and the sum, in microseconds.
    pub late_max_us: u64,
    pub late_sum_us: u64,
    /// Releases more than 1 ms late.
    pub late_over_1ms: u64,
    /// The kernel's own drop counters of the queue (queue full; failed
    /// delivery to us), read when the delayer stops.
    pub kernel_dropped: u64,
    pub kernel_user_dropped: u64,
    /// Whether the thread got real-time priority.
    pub realtime: bool,
}

impl DelayerStats {
    pub fn late_mean_us(&self) -> f64 {
        self.late_sum_us as f64 / self.released.max(1) as f64
    }
}

#[derive(Default)]
struct Counters {
    released: AtomicU64,
    dropped_full: AtomicU64,
    unmatched: AtomicU64,
    netlink_errors: AtomicU64,
    late_max_us: AtomicU64,
    late_sum_us: AtomicU64,
    late_over_1ms: AtomicU64,
    kernel_dropped: AtomicU64,
    kernel_user_dropped: AtomicU64,
    realtime: AtomicBool,
}

impl Counters {
    fn snapshot(&self) -> DelayerStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DelayerStats {
            released: g(&self.released),
            dropped_full: g(&self.dropped_full),
            unmatched: g(&self.unmatched),
            netlink_errors: g(&self.netlink_errors),
            late_max_us: g(&self.late_max_us),
            late_sum_us: g(&self.late_sum_us),
            late_over_1ms: g(&self.late_over_1ms),
            kernel_dropped: g(&self.kernel_dropped),
            kernel_user_dropped: g(&self.kernel_user_dropped),
            realtime: self.realtime.load(Ordering::Relaxed),
        }
    }
}

/// The running delayer thread; stopped and joined on drop.
pub struct Delayer {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    handle: Option<JoinHandle<Result<(), WanError>>>,
}

/// How long the delayer sleeps at most with nothing to release, so that
/// it sees a stop request quickly.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// Packets read per round before releasing what is due.
const RECV_PER_ROUND: usize = 1024;

impl Delayer {
    /// Starts the delayer inside `ns` and returns once its queue is bound
    /// (so rules installed afterwards never queue to nobody).
    pub fn start(
        ns: &Namespace,
        table: DelayTable,
        config: DelayerConfig,
    ) -> Result<Delayer, WanError> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (bound_tx, bound_rx) = mpsc::channel();
        let handle = {
            let (stop, counters) = (stop.clone(), counters.clone());
            ns.spawn("wan-delayer", move || {
                let queue = match NfQueue::open(config.queue_num, config.max_held as u32) {
                    Ok(q) => q,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                counters
                    .realtime
                    .store(set_realtime(config.realtime_priority), Ordering::Relaxed);
                let _ = bound_tx.send(Ok(()));
                run(queue, &table, &config, &stop, &counters)
            })?
        };
        let mut delayer = Delayer {
            stop,
            counters,
            handle: Some(handle),
        };
        match bound_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => Ok(delayer),
            Ok(Err(message)) => {
                let _ = delayer.join();
                Err(WanError::Netlink(message))
            }
            Err(_) => {
                let _ = delayer.join();
                Err(WanError::Netlink(
                    "the delayer did not bind its queue within 10 s".into(),
                ))
            }
        }
    }

    pub fn stats(&self) -> DelayerStats {
        self.counters.snapshot()
    }

    /// Stops the delayer (held packets are accepted) and returns its counters.
    pub fn stop(mut self) -> Result<DelayerStats, WanError> {
        self.join()?;
        Ok(self.counters.snapshot())
    }

    fn join(&mut self) -> Result<(), WanError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(WanError::Netlink("the delayer thread panicked".into()))),
            None => Ok(()),
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            eprintln!("warning: WAN delayer: {e}");
        }
    }
}

fn run(
    mut queue: NfQueue,
    table: &DelayTable,
    config: &DelayerConfig,
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<(), WanError> {
    let deadline = Instant::now() + config.max_runtime;
    let mut held: BinaryHeap<Reverse<(Instant, u64, u32)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut batch = Vec::with_capacity(RECV_PER_ROUND);
    let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
    // Bounded in time by `deadline`; each round waits at most IDLE_WAIT.
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let wait = held
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(Instant::now()))
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        if !wait.is_zero() {
            queue.wait(wait)?;
        }
        batch.clear();
        queue.recv_ready(&mut batch, RECV_PER_ROUND)?;
        let now = Instant::now();
        for p in &batch {
            match table.delay(p) {
                Some(d) if !d.is_zero() => {
                    if held.len() >= config.max_held {
                        queue.verdict(p.id, Verdict::Drop)?;
                        add(&counters.dropped_full, 1);
                    } else {
                        held.push(Reverse((now + d, seq, p.id)));
                        seq += 1;
                    }
                }
                _ => {
                    queue.verdict(p.id, Verdict::Accept)?;
                    add(&counters.unmatched, 1);
                }
            }
        }
        let now = Instant::now();
        while let Some(Reverse((at, _, id))) = held.peek().copied() {
            if at > now {
                break;
            }
            held.pop();
            queue.verdict(id, Verdict::Accept)?;
            let late_us = now.duration_since(at).as_micros() as u64;
            add(&counters.released, 1);
            add(&counters.late_sum_us, late_us);
            counters.late_max_us.fetch_max(late_us, Ordering::Relaxed);
            if late_us > 1000 {
                add(&counters.late_over_1ms, 1);
            }
        }
        queue.flush()?;
        counters
            .netlink_errors
            .store(queue.errors, Ordering::Relaxed);
    }
    // Stopping: let what is held go rather than strand connections.
    while let Some(Reverse((_, _, id))) = held.pop() {
        queue.verdict(id, Verdict::Accept)?;
    }
    queue.flush()?;
    if let Some((dropped, user_dropped)) = kernel_drops(config.queue_num) {
        counters.kernel_dropped.store(dropped, Ordering::Relaxed);
        counters
            .kernel_user_dropped
            .store(user_dropped, Ordering::Relaxed);
    }
    Ok(())
}

/// The kernel's drop counters of our queue, from the namespace of the
/// calling thread (`/proc/thread-self/net` is per thread).
fn kernel_drops(queue_num: u16) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue").ok()?;
    parse_kernel_drops(&text, queue_num)
}

/// Columns: queue, portid, queued, copy mode, copy range, queue_dropped,
/// user_dropped, id sequence, 1.
fn parse_kernel_drops(text: &str, queue_num: u16) -> Option<(u64, u64)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() >= 7 && f[0].parse::<u16>().ok()? == queue_num)
            .then(|| Some((f[5].parse().ok()?, f[6].parse().ok()?)))?
    })
}

/// Puts the calling thread at SCHED_FIFO `priority`; false (with a
/// warning) where that is not allowed.
fn set_realtime(priority: i32) -> bool {
    if priority <= 0 {
        return false;
    }
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer; 1 ns slack makes
    // ppoll wake as close to the release time as the kernel can.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread; param is valid.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        eprintln!(
            "warning: WAN delayer runs without real-time priority ({}); delays may grow under CPU load",
            std::io::Error::last_os_error()
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn packet(src: Ipv4Addr, dst: Ipv4Addr) -> QueuedPacket {
        QueuedPacket {
            id: 1,
            src: Some(src),
            dst: Some(dst),
        }
    }

    #[test]
    fn delays_come_from_the_matrix_by_address() {
        let m = RegionMatrix::paper(3).unwrap();
        let t = DelayTable::from_matrix(&m);
        let d = |a, b| t.delay(&packet(region_addr(a), region_addr(b)));
        assert_eq!(d(0, 1), Some(Duration::from_millis(36)));
        assert_eq!(d(1, 0), Some(Duration::from_millis(36)));
        assert_eq!(d(2, 0), Some(Duration::from_micros(75_500)));
        assert_eq!(d(1, 1), None);
        assert_eq!(t.delay(&packet(Ipv4Addr::LOCALHOST, region_addr(1))), None);
        assert_eq!(t.delay(&packet(region_addr(0), region_addr(3))), None);
        let no_addr = QueuedPacket {
            id: 1,
            src: None,
            dst: Some(region_addr(1)),
        };
        assert_eq!(t.delay(&no_addr), None);
    }

    #[test]
    fn rules_queue_every_ordered_pair_on_loopback_prerouting() {
        let m = RegionMatrix::paper(3).unwrap();
        let rules = iptables_rules(&m, 4);
        let adds: Vec<&str> = rules.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(adds.len(), 6);
        assert!(adds.contains(
            &"-A PREROUTING -i lo -s 127.0.3.1/32 -d 127.0.1.1/32 -j NFQUEUE --queue-num 4"
        ));
        assert!(rules.starts_with("*mangle\n") && rules.ends_with("COMMIT\n"));
        let zero = RegionMatrix::parse(
            "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = 0 }\nB = { A = 0 }\n",
            "z",
        )
        .unwrap();
        assert_eq!(
            iptables_rules(&zero, 0)
                .lines()
                .filter(|l| l.starts_with("-A"))
                .count(),
            0
        );
    }

    #[test]
    fn kernel_counters_are_read_for_our_queue() {
        let text = "    0  12345     3 2    20     7     2      999  1\n    1  1     0 2    20     9     9      1  1\n";
        assert_eq!(parse_kernel_drops(text, 0), Some((7, 2)));
        assert_eq!(parse_kernel_drops(text, 1), Some((9, 9)));
        assert_eq!(parse_kernel_drops(text, 2), None);
    }
}
