//! raft's logical clock and leader placement. The driver's time is
//! mapped to raft ticks: one `Tick` timer is outstanding, and when it
//! fires raft ticks once per `tick_us` that passed (so a late or
//! duplicated timer neither loses nor adds ticks). With a preferred
//! leader (raft-all places its leader in one region), that replica
//! campaigns when it starts (see `machine`), has the shortest election
//! timeout, and any other leader transfers leadership back to it once it
//! is caught up and active, at most once per election timeout.

use crate::raft::config::raft_id;
use crate::raft::machine::RaftEngine;
use crate::raft::messages::{RaftEffect, RaftTimer};
use registers::{Effect, Time};

/// Ticks caught up in one go after a long gap (a stalled driver); the
/// rest are skipped rather than replayed in a burst.
const MAX_TICKS_AT_ONCE: usize = 1_000;

impl RaftEngine {
    pub(crate) fn handle_tick(&mut self, now: Time) {
        if self.tick_set_for.is_some_and(|at| at <= now) {
            self.tick_set_for = None;
        }
        let mut ticks = 0;
        while self.next_tick <= now && ticks < MAX_TICKS_AT_ONCE {
            self.raw.tick();
            self.next_tick = self.next_tick.plus_micros(self.cfg.tick_us);
            self.ticks_since_transfer = self.ticks_since_transfer.saturating_add(1);
            ticks += 1;
        }
        if self.next_tick <= now {
            self.next_tick = now.plus_micros(self.cfg.tick_us);
        }
        self.maybe_transfer_to_preferred();
    }

    /// Keeps one Tick timer outstanding. A timer set long ago that never
    /// came back (a driver that dropped it) is replaced; a duplicate is
    /// harmless since ticks follow the time.
    pub(crate) fn ensure_ticking(&mut self, now: Time, out: &mut Vec<RaftEffect>) {
        let lost = self
            .tick_set_for
            .is_some_and(|at| now > at.plus_micros(self.cfg.tick_us));
        if self.tick_set_for.is_none() || lost {
            let at = self.next_tick.max(now);
            self.tick_set_for = Some(at);
            out.push(Effect::SetTimer {
                at,
                timer: RaftTimer::Tick,
            });
        }
    }

    /// A leader that is not the preferred one hands over to it once the
    /// preferred replica has the whole log and is active.
    fn maybe_transfer_to_preferred(&mut self) {
        let Some(preferred) = self.cfg.preferred_leader else {
            return;
        };
        if preferred == self.cfg.replica
            || !self.is_leader()
            || self.ticks_since_transfer < self.cfg.election_ticks
        {
            return;
        }
        let id = raft_id(preferred);
        let last = self.raw.raft.raft_log.last_index();
        let caught_up = self
            .raw
            .raft
            .prs()
            .get(id)
            .is_some_and(|p| p.matched == last && p.recent_active);
        if caught_up {
            self.ticks_since_transfer = 0;
            self.stats.leader_transfers += 1;
            self.raw.transfer_leader(id);
        }
    }
}
