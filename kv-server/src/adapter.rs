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
    let mut config =
        ReplicaConfig::new(ReplicaId(cfg.replica_id), cfg.replicas.len() as u32, peers);
    if let Some(m) = mode(&cfg.protocol) {
        config = config.with_mode(m);
    }
    if let Some(ms) = cfg.protocol.phase_timeout_ms {
        config.registers.phase_timeout_us = ms * 1000;
        config.epaxos.phase_timeout_us = ms * 1000;
    }
    if let Some(ms) = cfg.protocol.recovery_timeout_ms {
        config.epaxos.recovery_timeout_us = ms * 1000;
    }
    config
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicaEntry;

    fn config(mode: &str) -> ServerConfig {
        let entry = |id: u32| ReplicaEntry {
            id,
            region: format!("r{id}"),
            client_addr: format!("127.0.0.1:{}", 7100 + id).parse().unwrap(),
            peer_addr: format!("127.0.0.1:{}", 7200 + id).parse().unwrap(),
        };
        let mut c = ServerConfig {
            replica_id: 2,
            replicas: (0..3).map(entry).collect(),
            ..ServerConfig::default()
        };
        c.protocol.mode = mode.into();
        c.protocol.raft_leader = 1;
        c
    }

    #[test]
    fn the_configured_mode_and_timeouts_reach_the_replica() {
        let expected = [
            Mode::Gryff {
                rmw: RmwEngine::Epaxos,
            },
            Mode::Gryff {
                rmw: RmwEngine::Raft,
            },
            Mode::EpaxosAll,
            Mode::RaftAll {
                leader: ReplicaId(1),
            },
        ];
        for (name, mode) in MODES.iter().zip(expected) {
            let rc = replica_config(&config(name));
            assert_eq!(rc.mode, mode, "{name}");
            let replica = Replica::new(rc).unwrap();
            assert_eq!(replica.mode(), mode);
        }
        let mut c = config("gryff-epaxos");
        c.protocol.phase_timeout_ms = Some(300);
        c.protocol.recovery_timeout_ms = Some(500);
        let rc = replica_config(&c);
        assert_eq!(rc.registers.phase_timeout_us, 300_000);
        assert_eq!(rc.epaxos.phase_timeout_us, 300_000);
        assert_eq!(rc.epaxos.recovery_timeout_us, 500_000);
        assert_eq!(
            rc.registers.peers_nearest_first,
            vec![ReplicaId(0), ReplicaId(1)]
        );
    }
}
