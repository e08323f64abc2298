//! Calibration before measuring (EVALUATION.md, "Emulating the WAN"): TCP
//! ping-pong through the emulation for every ordered region pair, a client
//! bound to region A's address and an echo listener on region B's, in
//! bursts of several messages back to back (single pings hide the
//! throttling a wrongly placed queue causes under load). The median round
//! trip of each pair is printed beside the matrix, and a pair more than
//! the tolerance (2 ms) off its target stops the run.
//!
//! All pairs run at once, which also loads the delayer as a benchmark would.

use super::{Emulation, WanError};
use crate::wan::inproc::InprocDelays;
use registers::ReplicaId;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a calibration runs.
#[derive(Clone, Debug)]
pub struct CalibrationConfig {
    /// How long each pair keeps doing rounds (at least one round each).
    pub duration: Duration,
    /// Messages sent back to back per round.
    pub burst: usize,
    /// Size of each message (at least 8: it carries its index).
    pub message_bytes: usize,
    /// A pair whose median is further than this from its target fails.
    pub tolerance_ms: f64,
    /// Rounds per pair at most, whatever the duration.
    pub max_rounds: usize,
}

impl Default for CalibrationConfig {
    fn default() -> CalibrationConfig {
        CalibrationConfig {
            duration: Duration::from_secs(3),
            burst: 8,
            message_bytes: 64,
            tolerance_ms: 2.0,
            max_rounds: 1000,
        }
    }
}

/// What one ordered pair measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRtt {
    /// The client's region.
    pub from: usize,
    /// The listener's region.
    pub to: usize,
    pub target_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    pub samples: usize,
}

impl PairRtt {
    pub fn error_ms(&self) -> f64 {
        self.median_ms - self.target_ms
    }
}

/// The calibration of every ordered pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub mode: String,
    pub regions: Vec<String>,
    pub burst: usize,
    pub tolerance_ms: f64,
    pub pairs: Vec<PairRtt>,
}

impl Calibration {
    /// Pairs whose median is more than the tolerance off their target.
    pub fn off_pairs(&self) -> Vec<&PairRtt> {
        self.pairs
            .iter()
            .filter(|p| p.error_ms().abs() > self.tolerance_ms)
            .collect()
    }

    /// Err naming every pair off by more than the tolerance.
    pub fn check(&self) -> Result<(), WanError> {
        let off = self.off_pairs();
        if off.is_empty() {
            return Ok(());
        }
        let pairs = off
            .iter()
            .map(|p| {
                format!(
                    "{} -> {} measured {:.2} ms, target {:.2} ms",
                    self.regions[p.from], self.regions[p.to], p.median_ms, p.target_ms
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(WanError::CalibrationOff {
            count: off.len(),
            tolerance_ms: self.tolerance_ms,
            pairs,
        })
    }

    /// The matrix with each pair's median beside its target, then one line
    /// per pair with its spread.
    pub fn table(&self) -> String {
        let n = self.regions.len();
        let w = 17;
        let mut s = format!(
            "calibration ({}, {} regions, bursts of {}): median RTT ms, measured / target\n",
            self.mode, n, self.burst
        );
        s.push_str(&format!("{:<8}", "from\\to"));
        for r in &self.regions {
            s.push_str(&format!("{r:>w$}"));
        }
        s.push('\n');
        for a in 0..n {
            s.push_str(&format!("{:<8}", self.regions[a]));
            for b in 0..n {
                let cell = match self.pairs.iter().find(|p| p.from == a && p.to == b) {
                    Some(p) => format!("{:.2} / {:.0}", p.median_ms, p.target_ms),
                    None => "-".to_string(),
                };
                s.push_str(&format!("{cell:>w$}"));
            }
            s.push('\n');
        }
        s.push_str("pair        target   median      p90      max  samples   error\n");
        for p in &self.pairs {
            s.push_str(&format!(
                "{:<4}-> {:<4} {:>7.2} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>+7.2}{}\n",
                self.regions[p.from],
                self.regions[p.to],
                p.target_ms,
                p.median_ms,
                p.p90_ms,
                p.max_ms,
                p.samples,
                p.error_ms(),
                if p.error_ms().abs() > self.tolerance_ms {
                    "  OFF"
                } else {
                    ""
                }
            ));
        }
        let off = self.off_pairs().len();
        if off == 0 {
            s.push_str(&format!(
                "every pair within {} ms of its target\n",
                self.tolerance_ms
            ));
        } else {
            s.push_str(&format!(
                "{off} pair(s) off by more than {} ms\n",
                self.tolerance_ms
            ));
        }
        s
    }
}

/// Measures, prints the table, and fails if a pair is off.
pub fn calibrate(
    emulation: &Emulation,
    config: &CalibrationConfig,
) -> Result<Calibration, WanError> {
    let c = measure(emulation, config)?;
    print!("{}", c.table());
    c.check()?;
    Ok(c)
}

/// Measures the round trip of every ordered region pair.
pub fn measure(emulation: &Emulation, config: &CalibrationConfig) -> Result<Calibration, WanError> {
    if config.burst == 0 || config.burst > 1024 {
        return Err(WanError::Calibration(format!(
            "burst {} is not in 1..=1024",
            config.burst
        )));
    }
    if !(8..=65_536).contains(&config.message_bytes) {
        return Err(WanError::Calibration(format!(
            "message size {} is not in 8..=65536",
            config.message_bytes
        )));
    }
    let matrix = emulation.matrix().clone();
    let n = matrix.len();
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let addrs: Vec<_> = (0..n).map(|r| emulation.region_addr(r)).collect();
    // Sockets are made inside the emulated network (a namespace is per
    // thread) and used from plain threads afterwards.
    let sockets = {
        let (pairs, addrs) = (pairs.clone(), addrs.clone());
        emulation
            .spawn("wan-calibrate", move || {
                pairs
                    .iter()
                    .map(|&(a, b)| {
                        let listener = TcpListener::bind(SocketAddrV4::new(addrs[b], 0))
                            .map_err(|e| WanError::io(format!("bind {}", addrs[b]), e))?;
                        let client = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
                            .map_err(|e| WanError::io("socket", e))?;
                        client
                            .bind(&SockAddr::from(SocketAddrV4::new(addrs[a], 0)))
                            .map_err(|e| WanError::io(format!("bind {}", addrs[a]), e))?;
                        Ok((listener, client))
                    })
                    .collect::<Result<Vec<_>, WanError>>()
            })?
            .join()
            .map_err(|_| WanError::Calibration("the socket thread panicked".into()))??
    };
    let delays = emulation.inproc_delays();
    let longest_rtt = pairs
        .iter()
        .map(|&(a, b)| Duration::from_secs_f64(matrix.rtt_ms(a, b) / 1e3))
        .max()
        .unwrap_or_default();
    // Every wait below ends by this deadline: the rounds' time, a connect
    // and a last burst, with room for a slow machine.
    let deadline = Instant::now() + config.duration + 4 * longest_rtt + Duration::from_secs(10);
    let mut workers = Vec::new();
    for (&(a, b), (listener, client)) in pairs.iter().zip(sockets) {
        let echo_delay = delay_of(&delays, b, a);
        let send_delay = delay_of(&delays, a, b);
        let cfg = config.clone();
        let target = SocketAddr::V4(SocketAddrV4::new(
            addrs[b],
            listener
                .local_addr()
                .map_err(|e| WanError::io("local_addr", e))?
                .port(),
        ));
        let echo = std::thread::Builder::new()
            .name("wan-echo".into())
            .spawn(move || echo(listener, cfg.message_bytes, echo_delay, deadline))
            .map_err(|e| WanError::io("spawn", e))?;
        let cfg = config.clone();
        let ping = std::thread::Builder::new()
            .name("wan-ping".into())
            .spawn(move || ping(client, target, &cfg, send_delay, deadline))
            .map_err(|e| WanError::io("spawn", e))?;
        workers.push(((a, b), ping, echo));
    }
    let mut results = Vec::new();
    let mut first_error = None;
    for ((a, b), ping, echo) in workers {
        let name = format!("{} -> {}", matrix.regions()[a], matrix.regions()[b]);
        let pinged = ping.join().unwrap_or_else(|_| Err("panicked".into()));
        let echoed = echo.join().unwrap_or_else(|_| Err("panicked".into()));
        match (pinged, echoed) {
            (Ok(samples), _) if !samples.is_empty() => {
                results.push(summarise(a, b, matrix.rtt_ms(a, b), samples))
            }
            (Ok(_), _) => first_error = first_error.or(Some(format!("{name}: no samples"))),
            (Err(e), echoed) => {
                let echo_note = echoed
                    .err()
                    .map(|e| format!(" (echo side: {e})"))
                    .unwrap_or_default();
                first_error = first_error.or(Some(format!("{name}: {e}{echo_note}")));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(WanError::Calibration(e));
    }
    Ok(Calibration {
        mode: emulation.mode().to_string(),
        regions: matrix.regions().to_vec(),
        burst: config.burst,
        tolerance_ms: config.tolerance_ms,
        pairs: results,
    })
}

fn delay_of(delays: &Option<InprocDelays>, from: usize, to: usize) -> Duration {
    delays
        .as_ref()
        .map(|d| d.delay(ReplicaId(from as u32), ReplicaId(to as u32)))
        .unwrap_or_default()
}

fn summarise(from: usize, to: usize, target_ms: f64, mut samples_ms: Vec<f64>) -> PairRtt {
    samples_ms.sort_by(f64::total_cmp);
    let at = |q: f64| samples_ms[((samples_ms.len() - 1) as f64 * q).round() as usize];
    PairRtt {
        from,
        to,
        target_ms,
        median_ms: at(0.5),
        p90_ms: at(0.9),
        max_ms: at(1.0),
        samples: samples_ms.len(),
    }
}

fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("calibration deadline passed".into())
    } else {
        Ok(d)
    }
}

/// The client: rounds of `burst` messages written back to back, each
/// answered; a sample is the time from the round's start to an answer.
fn ping(
    client: Socket,
    target: SocketAddr,
    config: &CalibrationConfig,
    send_delay: Duration,
    deadline: Instant,
) -> Result<Vec<f64>, String> {
    client
        .connect_timeout(&target.into(), left(deadline)?.min(Duration::from_secs(10)))
        .map_err(|e| format!("connect to {target}: {e}"))?;
    let mut stream: TcpStream = client.into();
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let end = Instant::now() + config.duration;
    let mut msg = vec![0u8; config.message_bytes];
    let mut samples = Vec::new();
    for round in 0..config.max_rounds {
        if round > 0 && Instant::now() >= end {
            break;
        }
        let start = Instant::now();
        // inproc: the sender holds its messages for the one-way delay.
        std::thread::sleep(send_delay);
        let mut burst = Vec::with_capacity(msg.len() * config.burst);
        for i in 0..config.burst {
            msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
            burst.extend_from_slice(&msg);
        }
        // One message per write, as a server with Nagle off would send them.
        for m in burst.chunks(msg.len()) {
            stream.write_all(m).map_err(|e| format!("write: {e}"))?;
        }
        for _ in 0..config.burst {
            stream
                .set_read_timeout(Some(left(deadline)?))
                .map_err(|e| e.to_string())?;
            stream
                .read_exact(&mut msg)
                .map_err(|e| format!("read: {e}"))?;
            let i = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
            if i >= config.burst as u64 {
                return Err(format!(
                    "answer with index {i} in a burst of {}",
                    config.burst
                ));
            }
            samples.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(samples)
}

/// The listener's side: accept one connection and echo every message,
/// after `delay` (inproc) through a delay line that keeps their order.
fn echo(
    listener: TcpListener,
    message_bytes: usize,
    delay: Duration,
    deadline: Instant,
) -> Result<(), String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    // Bounded by the deadline; polls every millisecond.
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                left(deadline)?;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
    let mut writer = stream;
    if delay.is_zero() {
        // The network delays the answers: echo straight back, sparing a
        // thread hop that would add its wake-up to every sample.
        return echo_direct(&mut reader, &mut writer, message_bytes, deadline);
    }
    let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(4096);
    let line = std::thread::Builder::new()
        .name("wan-echo-line".into())
        .spawn(move || -> Result<(), String> {
            // Ends when the reader side drops the sender.
            for (release, msg) in rx {
                std::thread::sleep(release.saturating_duration_since(Instant::now()));
                writer
                    .write_all(&msg)
                    .map_err(|e| format!("echo write: {e}"))?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let mut msg = vec![0u8; message_bytes];
    let read_result = loop {
        let timeout = match left(deadline) {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        if let Err(e) = reader.set_read_timeout(Some(timeout)) {
            break Err(e.to_string());
        }
        match reader.read_exact(&mut msg) {
            Ok(()) => {
                if tx.send((Instant::now() + delay, msg.clone())).is_err() {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break Ok(()),
            Err(e) => break Err(format!("echo read: {e}")),
        }
    };
    drop(tx);
    let written = line
        .join()
        .unwrap_or_else(|_| Err("delay line panicked".into()));
    read_result?;
    // The client closing while we answered is its business, not an error.
    let _ = written;
    Ok(())
}

fn echo_direct(
    reader: &mut TcpStream,
    writer: &mut TcpStream,
    message_bytes: usize,
    deadline: Instant,
) -> Result<(), String> {
    let mut msg = vec![0u8; message_bytes];
    // Bounded by the deadline: every read waits at most until then.
    loop {
        reader
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match reader.read_exact(&mut msg) {
            Ok(()) => {
                // The client closing first is its business, not an error.
                if writer.write_all(&msg).is_err() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("echo read: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(from: usize, to: usize, target: f64, median: f64) -> PairRtt {
        PairRtt {
            from,
            to,
            target_ms: target,
            median_ms: median,
            p90_ms: median,
            max_ms: median,
            samples: 8,
        }
    }

    #[test]
    fn a_pair_off_by_more_than_the_tolerance_fails_the_check() {
        let mut c = Calibration {
            mode: "nfqueue".into(),
            regions: vec!["CA".into(), "VA".into()],
            burst: 8,
            tolerance_ms: 2.0,
            pairs: vec![pair(0, 1, 72.0, 73.9), pair(1, 0, 72.0, 70.1)],
        };
        c.check().unwrap();
        assert!(c.table().contains("73.90 / 72"), "{}", c.table());
        c.pairs[1].median_ms = 74.5;
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("VA -> CA measured 74.50 ms, target 72.00 ms"),
            "{err}"
        );
        assert!(c.table().contains("OFF"));
    }

    #[test]
    fn summaries_take_the_median_and_tail() {
        let p = summarise(0, 1, 10.0, vec![12.0, 10.0, 11.0, 30.0, 10.5]);
        assert_eq!(
            (p.median_ms, p.p90_ms, p.max_ms, p.samples),
            (11.0, 30.0, 30.0, 5)
        );
    }

    #[test]
    fn inproc_calibration_on_loopback_hits_the_targets() {
        // The inproc mode needs no root: its delays are applied here by the
        // ping and echo sides themselves, on host loopback addresses.
        let text = "regions = [\"A\", \"B\"]\n[rtt_ms]\nA = { B = 30 }\nB = { A = 30 }\n";
        let m = crate::RegionMatrix::parse(text, "two").unwrap();
        let e = Emulation::start(crate::wan::WanMode::Inproc, &m, &Default::default()).unwrap();
        let cfg = CalibrationConfig {
            duration: Duration::from_millis(300),
            ..Default::default()
        };
        let c = measure(&e, &cfg).unwrap();
        assert_eq!(c.pairs.len(), 2);
        for p in &c.pairs {
            assert!(p.samples >= 8, "{p:?}");
            assert!((p.median_ms - 30.0).abs() < 5.0, "{}", c.table());
        }
    }
}
