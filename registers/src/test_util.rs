//! Helpers for the handler tests: small clusters, registers, and effect
//! builders so each test can state the exact effects it expects.

use crate::carstamp::{Carstamp, Register};
use crate::config::RegisterConfig;
use crate::effect::{Effect, Time};
use crate::ids::{ClientId, Key, OpId, ReplicaId, RequestId, Value, WriterId};
use crate::machine::RegisterMachine;
use crate::msg::{OpRef, Phase, RegisterEffect, RegisterMsg, RegisterPersist, RegisterTimer};

pub const TIMEOUT_US: u64 = 1_000;

pub fn r(i: u32) -> ReplicaId {
    ReplicaId(i)
}

pub fn config(me: u32, n: u32, thrifty: bool) -> RegisterConfig {
    let mut c = RegisterConfig::new(r(me), (0..n).map(r).collect());
    c.thrifty = thrifty;
    c.phase_timeout_us = TIMEOUT_US;
    c.op_seq_block = 100;
    c
}

pub fn machine(me: u32, n: u32, thrifty: bool) -> RegisterMachine {
    RegisterMachine::new(config(me, n, thrifty)).unwrap()
}

pub fn op(i: u64) -> OpId {
    OpId {
        client: ClientId(7),
        request: RequestId(i),
    }
}

pub fn k() -> Key {
    Key::from("k")
}

pub fn cs(ts: u64, writer: u64) -> Carstamp {
    Carstamp {
        ts,
        writer: WriterId(writer),
        rmwc: 0,
    }
}

pub fn reg(v: &str, ts: u64, writer: u64) -> Register {
    Register::new(Some(Value::from(v)), cs(ts, writer))
}

pub fn opref(seq: u64, phase: Phase) -> OpRef {
    OpRef { seq, phase }
}

pub fn send(to: u32, msg: RegisterMsg) -> RegisterEffect {
    Effect::Send { to: r(to), msg }
}

pub fn persist(reg: &Register) -> RegisterEffect {
    Effect::Persist(RegisterPersist::Applied {
        key: k(),
        reg: reg.clone(),
    })
}

pub fn reserved(up_to: u64) -> RegisterEffect {
    Effect::Persist(RegisterPersist::OpSeqReserved { up_to })
}

pub fn timer(at_us: u64, op_ref: OpRef) -> RegisterEffect {
    Effect::SetTimer {
        at: Time(at_us),
        timer: RegisterTimer::PhaseTimeout { op_ref },
    }
}

/// The effects of one call, taken out of `out`.
pub fn take(out: &mut Vec<RegisterEffect>) -> Vec<RegisterEffect> {
    std::mem::take(out)
}
