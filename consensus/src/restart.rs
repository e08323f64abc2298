//! Restart (PROTOCOL.md 5): the machine is rebuilt from its persisted
//! records alone — instance records (the latest per instance wins) and
//! execution records (`last_rmw`, the register, the dedup entry) — and
//! then rejoins: every instance it knows but has not seen committed gets
//! the bounded wait that leads to recovery (which also fetches commits
//! it missed), its own commits not yet executed are broadcast again, and
//! committed instances not yet executed are executed.
//! In-memory leadership and pending client replies are lost; clients
//! retry, and retries are deduplicated at execution.

use crate::config::{ConfigError, EpaxosConfig};
use crate::instance::{InstanceId, Status};
use crate::machine::Epaxos;
use crate::messages::{EpaxosEffect, EpaxosMsg, EpaxosPersist};
use registers::{RegisterStore, Time};

impl Epaxos {
    /// Rebuilds a replica from `records` (in the order they were
    /// persisted), re-applying executed RMWs to `store`, and pushes the
    /// timers and executions that let it rejoin.
    pub fn recover(
        cfg: EpaxosConfig,
        now: Time,
        records: impl IntoIterator<Item = EpaxosPersist>,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) -> Result<Epaxos, ConfigError> {
        let mut m = Epaxos::new(cfg)?;
        for rec in records {
            m.replay_record(rec, store);
        }
        let unfinished: Vec<InstanceId> = m
            .instances
            .values()
            .filter(|i| !i.is_committed())
            .map(|i| i.id)
            .collect();
        for id in unfinished {
            m.arm_recovery(now, id, out);
        }
        // Our own commits may have died with us before their broadcast:
        // send them again before executing them (PROTOCOL.md 7).
        let own: Vec<InstanceId> = m
            .exec
            .committed_pending
            .iter()
            .filter(|id| id.replica == m.cfg.replica)
            .copied()
            .collect();
        for id in own {
            if let Some(attrs) = m.committed(id).cloned() {
                m.broadcast(&EpaxosMsg::Commit { inst: id, attrs }, out);
            }
        }
        m.try_execute(now, store, out);
        Ok(m)
    }

    fn replay_record(&mut self, rec: EpaxosPersist, store: &mut RegisterStore) {
        match rec {
            EpaxosPersist::Instance(r) => {
                let valid = self.cfg.contains(r.inst.replica)
                    && r.attrs
                        .as_ref()
                        .is_none_or(|a| a.deps.replicas_below(self.cfg.replicas));
                if !valid {
                    self.stats.bad_input += 1;
                    return;
                }
                let inst = self.instance_mut(r.inst);
                if inst.is_committed() {
                    return;
                }
                inst.promised = r.promised;
                inst.accepted = r.accepted;
                inst.status = r.status;
                inst.unchanged = r.unchanged;
                inst.saw(r.promised);
                let executed = inst.executed;
                if let Some(a) = r.attrs {
                    self.install_attrs(r.inst, a);
                }
                if r.status == Status::Committed && !executed {
                    self.exec.committed_pending.insert(r.inst);
                }
            }
            EpaxosPersist::Executed(e) => {
                if !self.cfg.contains(e.inst.replica) {
                    self.stats.bad_input += 1;
                    return;
                }
                let inst = self.instance_mut(e.inst);
                if inst.executed {
                    return;
                }
                inst.executed = true;
                let key = inst.key().cloned();
                self.exec.committed_pending.remove(&e.inst);
                if let Some(k) = key {
                    self.exec.forget(e.inst, &k);
                }
                self.rmw.replay(&e.result, store);
            }
        }
    }
}
