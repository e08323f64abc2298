//! The `netem` WAN, as the Gryff paper built it: on loopback of the
//! benchmark's namespace, an htb root with one class per ordered region
//! pair, a netem qdisc with the pair's one-way delay under each, and u32
//! filters by source and destination address. netem orphans each packet
//! it holds, so TCP Small Queues do not throttle the sender.
//!
//! These machines' kernels have no netem (`CONFIG_NET_SCH_NETEM` unset):
//! [`probe`] asks `tc` in a throwaway namespace and answers
//! [`WanError::NetemAbsent`], whose message names `--wan nfqueue`.

use super::{Namespace, WanError, region_addr};
use crate::RegionMatrix;

/// htb rate of every class: far above what loopback carries here, so only
/// netem's delay shapes traffic.
const CLASS_RATE: &str = "40gbit";
/// Packets each netem qdisc holds at most (its default, 1000, is small for
/// 100 ms of a busy pair).
const NETEM_LIMIT: u32 = 100_000;

/// Whether `tc` can make a netem qdisc; tried inside a namespace made and
/// removed for it, so the host's qdiscs are never touched.
pub fn probe() -> Result<(), WanError> {
    let ns = Namespace::create()?;
    let out = ns.exec_status(
        "tc",
        &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "0ms"],
        None,
        Some("iproute2"),
    )?;
    ns.remove()?;
    if out.success {
        Ok(())
    } else {
        Err(WanError::NetemAbsent {
            tc_said: out.stderr.trim().to_string(),
        })
    }
}

/// The `tc -batch` input for the matrix (handles and class ids are hex).
pub fn tc_batch(matrix: &RegionMatrix) -> String {
    let mut s = String::new();
    s.push_str("qdisc add dev lo root handle 1: htb default 1\n");
    s.push_str(&format!(
        "class add dev lo parent 1: classid 1:1 htb rate {CLASS_RATE}\n"
    ));
    let mut class = 1u32;
    for a in 0..matrix.len() {
        for b in 0..matrix.len() {
            let delay_us = matrix.one_way_us(a, b);
            if a == b || delay_us == 0 {
                continue;
            }
            class += 1;
            s.push_str(&format!(
                "class add dev lo parent 1: classid 1:{class:x} htb rate {CLASS_RATE}\n\
                 qdisc add dev lo parent 1:{class:x} handle {class:x}: netem delay {delay_us}us limit {NETEM_LIMIT}\n\
                 filter add dev lo parent 1: protocol ip prio 1 u32 match ip src {}/32 match ip dst {}/32 flowid 1:{class:x}\n",
                region_addr(a),
                region_addr(b)
            ));
        }
    }
    s
}

/// Shapes the namespace's loopback ([`probe`] first: without netem, `tc`
/// fails half-way).
pub fn install(ns: &Namespace, matrix: &RegionMatrix) -> Result<(), WanError> {
    ns.exec(
        "tc",
        &["-batch", "-"],
        Some(&tc_batch(matrix)),
        Some("iproute2"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_class_netem_and_filter_per_ordered_pair() {
        let m = RegionMatrix::paper(5).unwrap();
        let batch = tc_batch(&m);
        assert_eq!(batch.lines().filter(|l| l.contains(" netem ")).count(), 20);
        assert_eq!(
            batch.lines().filter(|l| l.starts_with("filter")).count(),
            20
        );
        // JP -> OR is the 20th pair: class 21 = 0x15, 60.5 ms one way.
        assert!(batch.contains("classid 1:15 htb"));
        assert!(batch.contains("parent 1:15 handle 15: netem delay 60500us"));
        assert!(batch.contains("match ip src 127.0.5.1/32 match ip dst 127.0.4.1/32 flowid 1:15"));
    }
}
