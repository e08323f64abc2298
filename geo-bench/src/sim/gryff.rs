//! The replica (`replica::Replica`) as a simulated node, in any of its
//! modes (Gryff with EPaxos or raft for RMWs, EPaxos-all, raft-all). The
//! wrapper also notes, from the records the replica persists, the order in
//! which it executed RMWs (and the baselines' puts) per key, for the
//! convergence check; a restarted node rebuilds that list from its durable
//! records, as the replica does.

use super::protocol::{NodeSetup, ReplicaSnapshot, SimEffect, SimProtocol};
use consensus::raft::RaftPersist;
use consensus::{EpaxosPersist, ExecResult};
use registers::{Carstamp, ClientRequest, Effect, Key, OpId, ReplicaId, Time};
use replica::{Mode, PeerMsg, Record, Replica, ReplicaConfig, ReplicaTimer};
use std::collections::BTreeMap;

/// Mode and protocol timeouts of the simulated replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GryffSimConfig {
    pub mode: Mode,
    pub thrifty: bool,
    pub phase_timeout_us: u64,
    pub recovery_timeout_us: u64,
    /// raft's tick; heartbeats every 2 ticks, elections after 20 (plus a
    /// stagger of 4 per rank), as in `RaftConfig`'s defaults.
    pub raft_tick_us: u64,
    /// Gryff with raft: where to place the raft leader (raft-all names
    /// its leader in the mode). `None`: replica 0 is first to campaign.
    pub raft_leader: Option<ReplicaId>,
}

impl Default for GryffSimConfig {
    fn default() -> GryffSimConfig {
        GryffSimConfig {
            mode: Mode::default(),
            thrifty: true,
            phase_timeout_us: 400_000,
            recovery_timeout_us: 800_000,
            raft_tick_us: 50_000,
            raft_leader: None,
        }
    }
}

/// A simulated Gryff replica.
pub struct GryffNode {
    replica: Replica,
    executions: BTreeMap<Key, Vec<(OpId, Carstamp)>>,
}

impl GryffNode {
    fn config(setup: &NodeSetup<GryffSimConfig>) -> ReplicaConfig {
        let mut cfg = ReplicaConfig::new(setup.id, setup.n as u32, setup.peers_by_distance.clone());
        cfg.registers.thrifty = setup.config.thrifty;
        cfg.registers.phase_timeout_us = setup.config.phase_timeout_us;
        cfg.epaxos.phase_timeout_us = setup.config.phase_timeout_us;
        cfg.epaxos.recovery_timeout_us = setup.config.recovery_timeout_us;
        cfg.raft.tick_us = setup.config.raft_tick_us;
        // A raft proposal waits for a forward to the leader and a commit
        // round from there: give it two phase timeouts before retrying.
        cfg.raft.retry_timeout_us = 2 * setup.config.phase_timeout_us;
        cfg.raft.preferred_leader = setup.config.raft_leader;
        cfg.with_mode(setup.config.mode)
    }

    /// Notes every RMW execution among the records in `out`.
    fn note_executions<'a>(&mut self, records: impl Iterator<Item = &'a Record>) {
        for rec in records {
            let result = match rec {
                Record::Epaxos(EpaxosPersist::Executed(x)) => &x.result,
                Record::Raft(RaftPersist::Executed { result, .. }) => result,
                _ => continue,
            };
            let (key, op, cs) = match result {
                ExecResult::Applied {
                    key,
                    last_rmw,
                    entry,
                    ..
                } => (key, entry.op, last_rmw.cs),
                ExecResult::Written {
                    key,
                    register,
                    entry,
                } => (key, entry.op, register.cs),
                _ => continue,
            };
            self.executions
                .entry(key.clone())
                .or_default()
                .push((op, cs));
        }
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }
}

impl SimProtocol for GryffNode {
    type Msg = PeerMsg;
    type Record = Record;
    type Timer = ReplicaTimer;
    type Config = GryffSimConfig;

    fn start(setup: &NodeSetup<GryffSimConfig>, now: Time, out: &mut Vec<SimEffect<Self>>) -> Self {
        let replica = Replica::start(Self::config(setup), now, out)
            .expect("simulated replica config is valid");
        GryffNode {
            replica,
            executions: BTreeMap::new(),
        }
    }

    fn restart(
        setup: &NodeSetup<GryffSimConfig>,
        now: Time,
        records: &[Record],
        out: &mut Vec<SimEffect<Self>>,
    ) -> Self {
        let start = out.len();
        let replica = Replica::recover(Self::config(setup), now, records, out)
            .expect("simulated replica config is valid");
        let mut node = GryffNode {
            replica,
            executions: BTreeMap::new(),
        };
        node.note_executions(records.iter());
        node.noted_from(out, start);
        node
    }

    fn on_client(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<SimEffect<Self>>,
    ) {
        let start = out.len();
        self.replica.handle_client(now, op, req, out);
        self.noted_from(out, start);
    }

    fn on_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: PeerMsg,
        out: &mut Vec<SimEffect<Self>>,
    ) {
        let start = out.len();
        self.replica.handle_message(now, from, msg, out);
        self.noted_from(out, start);
    }

    fn on_timer(&mut self, now: Time, timer: ReplicaTimer, out: &mut Vec<SimEffect<Self>>) {
        let start = out.len();
        self.replica.handle_timer(now, timer, out);
        self.noted_from(out, start);
    }

    fn is_leader(&self) -> bool {
        self.replica.is_leader()
    }

    fn snapshot(&self) -> ReplicaSnapshot {
        ReplicaSnapshot {
            registers: self
                .replica
                .store()
                .iter()
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect(),
            rmw_executions: self.executions.clone(),
        }
    }
}

impl GryffNode {
    /// Notes the executions among the effects the replica just emitted.
    fn noted_from(&mut self, out: &[SimEffect<Self>], start: usize) {
        self.note_executions(out[start..].iter().filter_map(|e| match e {
            Effect::Persist(r) => Some(r),
            _ => None,
        }));
    }
}
