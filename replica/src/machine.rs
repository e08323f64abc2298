//! One Gryff replica (NSDI 2020, section 4): gets and puts through the
//! register protocol, RMWs through EPaxos with the base, both over one
//! register store. A deterministic state machine: `(now, input) -> effects`.

use crate::config::{ConfigError, ReplicaConfig};
use crate::vocabulary::{PeerMsg, Record, ReplicaEffect, ReplicaTimer};
use consensus::{Epaxos, EpaxosEffect};
use registers::{
    ClientReply, ClientRequest, Effect, OpId, RecoveredRegisterState, RegisterEffect,
    RegisterMachine, RegisterStore, ReplicaId, Time,
};

/// Counters of input the replica refused (never a panic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// EPaxos messages rejected as malformed (bad replica ids and the like).
    pub bad_epaxos_messages: u64,
}

/// A whole replica: register store, register protocol, EPaxos.
pub struct Replica {
    store: RegisterStore,
    registers: RegisterMachine,
    epaxos: Epaxos,
    stats: ReplicaStats,
}

impl Replica {
    /// A replica booting with nothing on disk.
    pub fn new(config: ReplicaConfig) -> Result<Replica, ConfigError> {
        Replica::recover(config, Time(0), &[], &mut Vec::new())
    }

    /// A replica restarting at `now` from the records it had made durable
    /// (in the order it persisted them). Register records fold by
    /// apply-if-greater and EPaxos replays its instance and execution
    /// records into the same store; `out` gets the timers and executions
    /// that let the replica rejoin.
    pub fn recover(
        config: ReplicaConfig,
        now: Time,
        records: &[Record],
        out: &mut Vec<ReplicaEffect>,
    ) -> Result<Replica, ConfigError> {
        config.validate()?;
        let mut store = RegisterStore::new();
        let mut recovered = RecoveredRegisterState::default();
        let mut epaxos_records = Vec::new();
        for rec in records {
            match rec {
                Record::Register(r) => recovered.observe(r, &mut store),
                Record::Epaxos(e) => epaxos_records.push(e.clone()),
            }
        }
        let registers = RegisterMachine::recover(config.registers, recovered)?;
        let mut sub = Vec::new();
        let epaxos = Epaxos::recover(config.epaxos, now, epaxos_records, &mut store, &mut sub)?;
        lift_epaxos(sub, out);
        Ok(Replica {
            store,
            registers,
            epaxos,
            stats: ReplicaStats::default(),
        })
    }

    pub fn id(&self) -> ReplicaId {
        self.registers.me()
    }

    /// The register store (for inspection, checkpoints and tests).
    pub fn store(&self) -> &RegisterStore {
        &self.store
    }

    pub fn registers(&self) -> &RegisterMachine {
        &self.registers
    }

    pub fn epaxos(&self) -> &Epaxos {
        &self.epaxos
    }

    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// A client operation arrives at this replica, which coordinates it.
    pub fn handle_client(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<ReplicaEffect>,
    ) {
        match req {
            ClientRequest::Get { key } => {
                let mut sub = Vec::new();
                self.registers
                    .start_get(now, op, key, &mut self.store, &mut sub);
                lift_registers(sub, out);
            }
            ClientRequest::Put { key, value } => {
                let mut sub = Vec::new();
                self.registers
                    .start_put(now, op, key, value, &mut self.store, &mut sub);
                lift_registers(sub, out);
            }
            ClientRequest::Rmw { key, op: rmw } => {
                let mut sub = Vec::new();
                self.epaxos
                    .propose(now, op, key, rmw, &mut self.store, &mut sub);
                lift_epaxos(sub, out);
            }
        }
    }

    /// A message from peer `from`.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: PeerMsg,
        out: &mut Vec<ReplicaEffect>,
    ) {
        match msg {
            PeerMsg::Register(m) => {
                let mut sub = Vec::new();
                self.registers
                    .handle_message(now, from, m, &mut self.store, &mut sub);
                lift_registers(sub, out);
            }
            PeerMsg::Epaxos(m) => {
                let mut sub = Vec::new();
                if self
                    .epaxos
                    .handle_message(now, from, m, &mut self.store, &mut sub)
                    .is_err()
                {
                    self.stats.bad_epaxos_messages += 1;
                }
                lift_epaxos(sub, out);
            }
        }
    }

    /// A timer this replica set fired.
    pub fn handle_timer(&mut self, now: Time, timer: ReplicaTimer, out: &mut Vec<ReplicaEffect>) {
        match timer {
            ReplicaTimer::Register(t) => {
                let mut sub = Vec::new();
                self.registers
                    .handle_timer(now, t, &mut self.store, &mut sub);
                lift_registers(sub, out);
            }
            ReplicaTimer::Epaxos(t) => {
                let mut sub = Vec::new();
                self.epaxos.handle_timer(now, t, &mut self.store, &mut sub);
                lift_epaxos(sub, out);
            }
        }
    }
}

fn lift_registers(sub: Vec<RegisterEffect>, out: &mut Vec<ReplicaEffect>) {
    out.extend(sub.into_iter().map(|e| {
        e.map(
            PeerMsg::Register,
            Record::Register,
            ClientReply::from,
            ReplicaTimer::Register,
        )
    }));
}

/// EPaxos replies that carry no outcome (the client already moved on to a
/// newer request) are dropped: nobody waits for them.
fn lift_epaxos(sub: Vec<EpaxosEffect>, out: &mut Vec<ReplicaEffect>) {
    for e in sub {
        let lifted = match e {
            Effect::Reply { op, reply } => match reply.into_client_reply() {
                Some(reply) => Effect::Reply { op, reply },
                None => continue,
            },
            Effect::Send { to, msg } => Effect::Send {
                to,
                msg: PeerMsg::Epaxos(msg),
            },
            Effect::Persist(p) => Effect::Persist(Record::Epaxos(p)),
            Effect::SetTimer { at, timer } => Effect::SetTimer {
                at,
                timer: ReplicaTimer::Epaxos(timer),
            },
        };
        out.push(lifted);
    }
}
