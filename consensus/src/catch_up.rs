//! Catch-up: a replica whose executor is missing instances (a gap in
//! some replica's slots, typically after it was down or cut off) asks a
//! peer for the commits it holds from that slot on, instead of waiting
//! out the bounded wait and recovering each missing instance with its own
//! explicit prepare. A committed value is final, so learning it from any
//! peer is safe; instances no peer has committed still get recovery when
//! their bounded wait expires (PROTOCOL.md 6-7).

use crate::instance::InstanceId;
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg};
use registers::{ReplicaId, Time};

/// Commits one CatchUp answer carries at most: enough to cross a long
/// outage in a few round trips, small enough to keep one answer cheap.
pub const CATCH_UP_BATCH: u64 = 256;

/// The last catch-up this replica asked for about one replica's slots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CatchUpAsked {
    /// Slots `[from, from + CATCH_UP_BATCH)` were asked for.
    pub from: u64,
    pub at: Time,
}

impl Epaxos {
    /// Asks peers for the commits this replica misses: for every
    /// replica with a gap below a known dependency, one request from the
    /// gap on, sent again only once half of the last answer was consumed
    /// or a phase timeout passed without it.
    pub(crate) fn ask_catch_up(&mut self, now: Time, out: &mut Vec<EpaxosEffect>) {
        let timeout = self.cfg.phase_timeout_us;
        for gap in self.exec.gap_starts() {
            // `resend`: the same window was asked for a phase timeout ago
            // and is still missing.
            let (ask, resend) = match self.catch_up.get(&gap.replica) {
                None => (true, false),
                Some(a)
                    if gap.slot < a.from
                        || gap.slot >= a.from.saturating_add(CATCH_UP_BATCH / 2) =>
                {
                    (true, false)
                }
                Some(a) => {
                    let late = now >= a.at.plus_micros(timeout);
                    (late, late)
                }
            };
            if !ask {
                continue;
            }
            self.catch_up.insert(
                gap.replica,
                CatchUpAsked {
                    from: gap.slot,
                    at: now,
                },
            );
            self.stats.catch_ups_asked += 1;
            let msg = EpaxosMsg::CatchUp { from: gap };
            // The slots' own leader surely holds its commits; when that
            // is us, or it did not answer in time, ask every peer.
            if gap.replica != self.cfg.replica && !resend {
                self.send(gap.replica, msg, out);
            } else {
                self.broadcast(&msg, out);
            }
        }
    }

    /// A peer asks for the commits we hold of `from.replica`'s slots from
    /// `from.slot` on: it gets up to [`CATCH_UP_BATCH`] of them, each as
    /// an ordinary Commit.
    pub(crate) fn handle_catch_up(
        &mut self,
        peer: ReplicaId,
        from: InstanceId,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let end = InstanceId::new(from.replica, from.slot.saturating_add(CATCH_UP_BATCH - 1));
        let commits: Vec<EpaxosMsg> = self
            .instances
            .range(from..=end)
            .filter(|(_, i)| i.is_committed())
            .filter_map(|(id, i)| {
                i.attrs
                    .clone()
                    .map(|attrs| EpaxosMsg::Commit { inst: *id, attrs })
            })
            .collect();
        self.stats.catch_up_commits_sent += commits.len() as u64;
        for msg in commits {
            self.send(peer, msg, out);
        }
    }
}
