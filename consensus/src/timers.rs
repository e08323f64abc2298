//! Timeouts (PROTOCOL.md 6-7): a leader's phase retransmits to silent
//! peers a bounded number of times (and PreAccept falls back to the slow
//! path once a majority replied); an instance that stays uncommitted, or
//! a dependency the executor is missing, gets explicit-prepare recovery
//! after a bounded wait. Nothing ever spins.

use crate::instance::InstanceId;
use crate::machine::{Epaxos, Phase};
use crate::messages::{EpaxosEffect, EpaxosMsg};
use registers::{RegisterStore, ReplicaId, Time};
use std::collections::BTreeSet;

impl Epaxos {
    pub(crate) fn handle_phase_timeout(
        &mut self,
        now: Time,
        id: InstanceId,
        ballot: crate::instance::Ballot,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        let majority = self.cfg.majority();
        let max_retransmits = self.cfg.max_retransmits;
        let Some(lead) = self.leading.get_mut(&id).filter(|l| l.ballot == ballot) else {
            return;
        };
        if let Phase::PreAccept { replied, .. } = &lead.phase
            && replied.len() + 1 >= majority
        {
            self.check_pre_accept_quorum(now, id, true, store, out);
            return;
        }
        if lead.retransmits >= max_retransmits {
            self.leading.remove(&id);
            self.arm_recovery(now, id, out);
            return;
        }
        lead.retransmits += 1;
        let (msg, answered): (EpaxosMsg, BTreeSet<ReplicaId>) = match &lead.phase {
            Phase::PreAccept {
                proposed, replied, ..
            } => (
                EpaxosMsg::PreAccept {
                    inst: id,
                    ballot,
                    attrs: proposed.clone(),
                },
                replied.clone(),
            ),
            Phase::Accept { attrs, acked } => (
                EpaxosMsg::Accept {
                    inst: id,
                    ballot,
                    attrs: attrs.clone(),
                },
                acked.clone(),
            ),
            Phase::Prepare { replies } => (
                EpaxosMsg::Prepare { inst: id, ballot },
                replies.keys().copied().collect(),
            ),
        };
        self.stats.retransmits += 1;
        for to in self.cfg.peers().filter(|p| !answered.contains(p)) {
            self.send(to, msg.clone(), out);
        }
        self.set_phase_timer(now, id, ballot, out);
    }

    pub(crate) fn handle_recover_timeout(
        &mut self,
        now: Time,
        id: InstanceId,
        store: &mut RegisterStore,
        out: &mut Vec<EpaxosEffect>,
    ) {
        self.recovery_armed.remove(&id);
        if self.instances.get(&id).is_some_and(|i| i.is_committed()) {
            return;
        }
        if self.leading.contains_key(&id) {
            // We are driving it already; check again later.
            self.arm_recovery(now, id, out);
            return;
        }
        self.start_recovery(now, id, store, out);
    }
}
