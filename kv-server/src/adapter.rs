//! The one place that knows the replica crate's concrete types: how the
//! server's config becomes a `ReplicaConfig`, and how `Replica` plays the
//! driver's [`Machine`] role. New `Record` or `PeerMsg` variants (protocol
//! modes) need changes here and in the durability mapping only.

use crate::config::{ProtocolConfig, ServerConfig};
use crate::driver::{Machine, MachineEffect};
use registers::{ClientRequest, OpId, ReplicaId, Time};
use replica::{Mode, PeerMsg, Record, Replica, ReplicaConfig, ReplicaTimer, RmwEngine};

/// The names `protocol.mode` accepts.
pub const MODES: [&str; 4] = ["gryff-epaxos", "gryff-raft", "epaxos-all", "raft-all"];

/// The replica mode a protocol config names, if it is one.
pub fn mode(p: &ProtocolConfig) -> Option<Mode> {
    Some(match p.mode.as_str() {
        "gryff-epaxos" => Mode::Gryff {
            rmw: RmwEngine::Epaxos,
        },
        "gryff-raft" => Mode::Gryff {
            rmw: RmwEngine::Raft,
        },
        "epaxos-all" => Mode::EpaxosAll,
        "raft-all" => Mode::RaftAll {
            leader: ReplicaId(p.raft_leader),
        },
        _ => return None,
    })
}

/// The replica machine's configuration for this server.
pub fn replica_config(cfg: &ServerConfig) -> ReplicaConfig {
    let peers = cfg
        .peers_nearest_first()
        .into_iter()
        .map(ReplicaId)
        .collect();
    ReplicaConfig::new(ReplicaId(cfg.replica_id), cfg.replicas.len() as u32, peers)
}

/// Rebuilds the replica from its durable records at `now`; `out` gets the
/// effects that let it rejoin (timers, re-broadcast commits, executions).
pub fn recover_replica(
    cfg: &ServerConfig,
    now: Time,
    records: &[Record],
    out: &mut Vec<MachineEffect<Replica>>,
) -> Result<Replica, replica::ConfigError> {
    Replica::recover(replica_config(cfg), now, records, out)
}

impl Machine for Replica {
    type Msg = PeerMsg;
    type Record = Record;
    type Timer = ReplicaTimer;

    fn handle_client(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<MachineEffect<Self>>,
    ) {
        Replica::handle_client(self, now, op, req, out)
    }

    fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: PeerMsg,
        out: &mut Vec<MachineEffect<Self>>,
    ) {
        Replica::handle_message(self, now, from, msg, out)
    }

    fn handle_timer(&mut self, now: Time, timer: ReplicaTimer, out: &mut Vec<MachineEffect<Self>>) {
        Replica::handle_timer(self, now, timer, out)
    }

    fn bad_messages(&self) -> u64 {
        let r = self.registers().stats();
        let s = self.stats();
        s.bad_epaxos_messages
            + s.bad_raft_messages
            + s.other_mode_input
            + r.ignored_unknown_sender
            + r.ignored_malformed
    }
}
