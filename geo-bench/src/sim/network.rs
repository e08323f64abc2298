//! The simulated WAN: one-way delays from the region matrix plus jitter,
//! and the message faults (loss, duplication, reordering, partitions).

use super::config::Faults;
use crate::matrix::RegionMatrix;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Delays and faults between replicas. Clients sit next to their replica
/// and are never partitioned from it.
pub struct Network {
    matrix: RegionMatrix,
    jitter_us: u64,
    faults: Faults,
    /// While false (liveness phase), no message is lost, duplicated or delayed extra.
    faults_active: bool,
    isolated: Vec<bool>,
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

impl Network {
    pub fn new(matrix: RegionMatrix, jitter_ms: f64, faults: Faults) -> Network {
        let n = matrix.len();
        Network {
            matrix,
            jitter_us: (jitter_ms * 1000.0).max(0.0) as u64,
            faults,
            faults_active: true,
            isolated: vec![false; n],
            sent: 0,
            dropped: 0,
            duplicated: 0,
        }
    }

    pub fn matrix(&self) -> &RegionMatrix {
        &self.matrix
    }

    /// Heals every partition and stops message faults for good.
    pub fn heal(&mut self) {
        self.faults_active = false;
        self.isolated.iter_mut().for_each(|i| *i = false);
    }

    pub fn set_isolated(&mut self, node: usize, isolated: bool) {
        self.isolated[node] = isolated;
    }

    pub fn is_isolated(&self, node: usize) -> bool {
        self.isolated[node]
    }

    /// Delivery delays (µs) of one replica-to-replica message: empty if it
    /// is lost, two entries if it is duplicated.
    pub fn transmit(&mut self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> Vec<u64> {
        self.sent += 1;
        if self.isolated[from] || self.isolated[to] {
            self.dropped += 1;
            return Vec::new();
        }
        let active = self.faults_active;
        if active && chance(rng, self.faults.loss_pct) {
            self.dropped += 1;
            return Vec::new();
        }
        let mut delays = vec![self.delay(rng, from, to)];
        if active && chance(rng, self.faults.dup_pct) {
            self.duplicated += 1;
            delays.push(self.delay(rng, from, to));
        }
        delays
    }

    /// Delay (µs) between a client in region `from` and a replica in `to`
    /// (or back): the matrix and jitter, never a fault.
    pub fn client_delay(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> u64 {
        if from == to {
            return 0;
        }
        self.matrix.one_way_us(from, to) + self.jitter(rng)
    }

    fn delay(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> u64 {
        let mut d = self.matrix.one_way_us(from, to) + self.jitter(rng);
        if self.faults_active && chance(rng, self.faults.reorder_pct) {
            d += (rng.random::<f64>() * self.faults.reorder_ms * 1000.0) as u64;
        }
        d
    }

    fn jitter(&self, rng: &mut ChaCha8Rng) -> u64 {
        if self.jitter_us == 0 {
            0
        } else {
            rng.random_range(0..self.jitter_us)
        }
    }
}

fn chance(rng: &mut ChaCha8Rng, pct: f64) -> bool {
    pct > 0.0 && rng.random::<f64>() * 100.0 < pct
}
