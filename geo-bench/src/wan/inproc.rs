//! The `inproc` WAN: with no root and no namespace, each server delays its
//! own outgoing peer messages by the one-way delay of the region matrix
//! (EVALUATION.md, "Emulating the WAN", mode 3). Replica `i` lives in
//! region `i` of the matrix.
//!
//! A server holds a message to replica `to` until
//! [`InprocDelays::release_at`] and then writes it; since a pair's delay
//! is constant, a FIFO per peer keeps the release order. Client traffic is
//! not delayed: clients sit next to their replica. What this cannot show,
//! unlike `nfqueue`, is the kernel's and TCP's share of a WAN round trip
//! (ACK clocking, windows): a sender sees its own bytes leave at once.

use crate::RegionMatrix;
use registers::{ReplicaId, Time};
use std::time::Duration;

/// One-way delays between replicas, from the region matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InprocDelays {
    replicas: usize,
    one_way_us: Vec<u64>,
}

impl InprocDelays {
    pub fn from_matrix(matrix: &RegionMatrix) -> InprocDelays {
        let n = matrix.len();
        let one_way_us = (0..n * n)
            .map(|k| {
                let (a, b) = (k / n, k % n);
                if a == b { 0 } else { matrix.one_way_us(a, b) }
            })
            .collect();
        InprocDelays {
            replicas: n,
            one_way_us,
        }
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// How long a message from `from` to `to` is held; zero to itself and
    /// for a replica outside the matrix (a misconfiguration the server
    /// reports at start-up, not per message).
    pub fn delay(&self, from: ReplicaId, to: ReplicaId) -> Duration {
        Duration::from_micros(self.delay_us(from, to))
    }

    pub fn delay_us(&self, from: ReplicaId, to: ReplicaId) -> u64 {
        let (a, b) = (from.0 as usize, to.0 as usize);
        if a >= self.replicas || b >= self.replicas {
            return 0;
        }
        self.one_way_us[a * self.replicas + b]
    }

    /// When a message sent at `now` from `from` to `to` may be written.
    pub fn release_at(&self, now: Time, from: ReplicaId, to: ReplicaId) -> Time {
        now.plus_micros(self.delay_us(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_half_the_round_trip_and_zero_to_self() {
        let d = InprocDelays::from_matrix(&RegionMatrix::paper(5).unwrap());
        let r = ReplicaId;
        assert_eq!(d.replicas(), 5);
        assert_eq!(d.delay(r(0), r(1)), Duration::from_millis(36));
        assert_eq!(d.delay_us(r(2), r(4)), 110_000);
        assert_eq!(d.delay_us(r(4), r(2)), 110_000);
        assert_eq!(d.delay_us(r(3), r(3)), 0);
        assert_eq!(d.delay_us(r(0), r(9)), 0);
        assert_eq!(d.release_at(Time(1_000), r(1), r(0)), Time(37_000));
    }
}
