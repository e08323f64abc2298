//! One replica (Gryff, NSDI 2020, section 4; PROTOCOL.md 4, "Raft path"
//! and "Baselines"): in Gryff mode, gets and puts through the register
//! protocol and RMWs through EPaxos or raft, all over one register store;
//! in the baselines, every operation through one engine. A deterministic
//! state machine: `(now, input) -> effects`.

use crate::config::{ConfigError, ReplicaConfig};
use crate::mode::Mode;
use crate::vocabulary::{PeerMsg, Record, ReplicaEffect, ReplicaTimer};
use consensus::raft::{RaftEffect, RaftEngine};
use consensus::{Command, Epaxos, EpaxosEffect};
use registers::{
    ClientReply, ClientRequest, Effect, Key, OpId, RecoveredRegisterState, Register,
    RegisterEffect, RegisterMachine, RegisterStore, ReplicaId, Time,
};

/// Counters of input the replica refused (never a panic).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// EPaxos messages rejected as malformed (bad replica ids and the like).
    pub bad_epaxos_messages: u64,
    /// raft messages rejected as malformed or misaddressed.
    pub bad_raft_messages: u64,
    /// Messages, timers and records of a protocol this mode does not run
    /// (a peer configured with another mode, or records from before a
    /// mode change): ignored.
    pub other_mode_input: u64,
}

/// A whole replica: register store, register protocol, and the engine
/// its mode orders operations with.
pub struct Replica {
    mode: Mode,
    store: RegisterStore,
    registers: RegisterMachine,
    epaxos: Option<Epaxos>,
    raft: Option<RaftEngine>,
    stats: ReplicaStats,
}

impl Replica {
    /// A replica booting with nothing on disk. Its startup effects are
    /// dropped: a raft replica then re-arms its clock on its first input,
    /// and a preferred raft leader campaigns only after an election
    /// timeout. Drivers should prefer [`Replica::start`].
    pub fn new(config: ReplicaConfig) -> Result<Replica, ConfigError> {
        Replica::start(config, Time(0), &mut Vec::new())
    }

    /// A replica booting at `now` with nothing on disk; `out` gets its
    /// first timers and messages (raft's clock, a preferred leader's
    /// campaign).
    pub fn start(
        config: ReplicaConfig,
        now: Time,
        out: &mut Vec<ReplicaEffect>,
    ) -> Result<Replica, ConfigError> {
        Replica::recover(config, now, &[], out)
    }

    /// A replica restarting at `now` from the records it had made durable
    /// (in the order it persisted them). Register records fold by
    /// apply-if-greater, and the ordering engine replays its records into
    /// the same store; `out` gets the timers and executions that let the
    /// replica rejoin.
    pub fn recover(
        config: ReplicaConfig,
        now: Time,
        records: &[Record],
        out: &mut Vec<ReplicaEffect>,
    ) -> Result<Replica, ConfigError> {
        config.validate()?;
        let config = config.effective();
        let mode = config.mode;
        let mut store = RegisterStore::new();
        let mut recovered = RecoveredRegisterState::default();
        let mut epaxos_records = Vec::new();
        let mut raft_records = Vec::new();
        let mut stats = ReplicaStats::default();
        for rec in records {
            match rec {
                Record::Register(r) => recovered.observe(r, &mut store),
                Record::Epaxos(e) if mode.uses_epaxos() => epaxos_records.push(e.clone()),
                Record::Raft(r) if mode.uses_raft() => raft_records.push(r.clone()),
                Record::Epaxos(_) | Record::Raft(_) => stats.other_mode_input += 1,
            }
        }
        let registers = RegisterMachine::recover(config.registers, recovered)?;
        let epaxos = if mode.uses_epaxos() {
            let mut sub = Vec::new();
            let e = Epaxos::recover(config.epaxos, now, epaxos_records, &mut store, &mut sub)?;
            lift_epaxos(sub, out);
            Some(e)
        } else {
            None
        };
        let raft = if mode.uses_raft() {
            let mut sub = Vec::new();
            let r = RaftEngine::recover(config.raft, now, raft_records, &mut store, &mut sub)?;
            lift_raft(sub, out);
            Some(r)
        } else {
            None
        };
        Ok(Replica {
            mode,
            store,
            registers,
            epaxos,
            raft,
            stats,
        })
    }

    pub fn id(&self) -> ReplicaId {
        self.registers.me()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The register store (for inspection, checkpoints and tests).
    pub fn store(&self) -> &RegisterStore {
        &self.store
    }

    pub fn registers(&self) -> &RegisterMachine {
        &self.registers
    }

    /// The EPaxos engine, in the modes that run it.
    pub fn epaxos(&self) -> Option<&Epaxos> {
        self.epaxos.as_ref()
    }

    /// The raft engine, in the modes that run it.
    pub fn raft(&self) -> Option<&RaftEngine> {
        self.raft.as_ref()
    }

    /// Whether this replica is the raft leader (false without raft).
    pub fn is_leader(&self) -> bool {
        self.raft.as_ref().is_some_and(RaftEngine::is_leader)
    }

    /// `last_rmw[key]` of the engine that runs RMWs.
    pub fn last_rmw(&self, key: &Key) -> Register {
        match (&self.epaxos, &self.raft) {
            (Some(e), _) => e.last_rmw(key),
            (None, Some(r)) => r.last_rmw(key),
            (None, None) => Register::default(),
        }
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
        let rmw = matches!(req, ClientRequest::Rmw { .. });
        if self.mode.uses_registers() && !rmw {
            let mut sub = Vec::new();
            match req {
                ClientRequest::Get { key } => {
                    self.registers
                        .start_get(now, op, key, &mut self.store, &mut sub)
                }
                ClientRequest::Put { key, value } => {
                    self.registers
                        .start_put(now, op, key, value, &mut self.store, &mut sub)
                }
                ClientRequest::Rmw { .. } => {}
            }
            lift_registers(sub, out);
        } else if let Some(e) = self.epaxos.as_mut() {
            let mut sub = Vec::new();
            // Refused only for a get or put outside EPaxos-all, which the
            // branch above already took.
            let _ = e.propose_command(
                now,
                Command::from_request(op, req),
                &mut self.store,
                &mut sub,
            );
            lift_epaxos(sub, out);
        } else if let Some(r) = self.raft.as_mut() {
            let mut sub = Vec::new();
            let _ = r.propose(now, op, req, &mut self.store, &mut sub);
            lift_raft(sub, out);
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
            PeerMsg::Register(m) if self.mode.uses_registers() => {
                let mut sub = Vec::new();
                self.registers
                    .handle_message(now, from, m, &mut self.store, &mut sub);
                lift_registers(sub, out);
            }
            PeerMsg::Epaxos(m) if self.epaxos.is_some() => {
                let mut sub = Vec::new();
                if let Some(e) = self.epaxos.as_mut()
                    && e.handle_message(now, from, m, &mut self.store, &mut sub)
                        .is_err()
                {
                    self.stats.bad_epaxos_messages += 1;
                }
                lift_epaxos(sub, out);
            }
            PeerMsg::Raft(m) if self.raft.is_some() => {
                let mut sub = Vec::new();
                if let Some(r) = self.raft.as_mut()
                    && r.handle_message(now, from, m, &mut self.store, &mut sub)
                        .is_err()
                {
                    self.stats.bad_raft_messages += 1;
                }
                lift_raft(sub, out);
            }
            PeerMsg::Register(_) | PeerMsg::Epaxos(_) | PeerMsg::Raft(_) => {
                self.stats.other_mode_input += 1;
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
                if let Some(e) = self.epaxos.as_mut() {
                    let mut sub = Vec::new();
                    e.handle_timer(now, t, &mut self.store, &mut sub);
                    lift_epaxos(sub, out);
                }
            }
            ReplicaTimer::Raft(t) => {
                if let Some(r) = self.raft.as_mut() {
                    let mut sub = Vec::new();
                    r.handle_timer(now, t, &mut self.store, &mut sub);
                    lift_raft(sub, out);
                }
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

fn lift_raft(sub: Vec<RaftEffect>, out: &mut Vec<ReplicaEffect>) {
    out.extend(
        sub.into_iter()
            .map(|e| e.map(PeerMsg::Raft, Record::Raft, |r| r, ReplicaTimer::Raft)),
    );
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
