//! The driver (ARCHITECTURE.md, "the one idea"): one tokio task owns the
//! replica machine and is the only code that touches it. Inputs arrive on
//! two bounded inboxes (peer messages, client operations), timers live in
//! a deadline map driven by `sleep_until`, and effects are carried out in
//! order under the persist barrier (`barrier`): each group of `Persist`
//! records is submitted to the log at once (group commit batches the
//! submissions of many steps into one fsync) and every later `Send` or
//! `Reply` waits until everything submitted before it is durable.
//!
//! The task never blocks on the network: sends go into per-peer bounded
//! queues and are dropped (and counted) when a queue is full; the protocol
//! re-sends after its phase timeouts.

mod barrier;
mod timers;

pub use barrier::Barrier;
pub use timers::Timers;

use crate::durability::{Durability, DurabilityError, DurableFuture};
use crate::metrics::Metrics;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use registers::{ClientReply, ClientRequest, Effect, OpId, ReplicaId, Time};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What the driver drives: the replica (see `adapter`), or a scripted
/// machine in tests.
pub trait Machine: Send + 'static {
    type Msg: Send + 'static;
    type Record: Send + 'static;
    type Timer: Send + 'static;

    fn handle_client(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<MachineEffect<Self>>,
    );
    fn handle_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: Self::Msg,
        out: &mut Vec<MachineEffect<Self>>,
    );
    fn handle_timer(&mut self, now: Time, timer: Self::Timer, out: &mut Vec<MachineEffect<Self>>);

    /// Peer messages the machine refused as invalid so far.
    fn bad_messages(&self) -> u64 {
        0
    }
}

/// The effects of machine `M`.
pub type MachineEffect<M> =
    Effect<<M as Machine>::Msg, <M as Machine>::Record, ClientReply, <M as Machine>::Timer>;

/// Where sends go: the per-peer queues (`peer::PeerSenders`), or a test's
/// capture. Must not block; returns false if the message was dropped.
pub trait Outbound<Msg>: Send + 'static {
    fn send(&self, to: ReplicaId, msg: Msg) -> bool;
}

/// A client operation for the replica; the reply goes to `reply`.
pub struct ClientInput {
    pub op: OpId,
    pub req: ClientRequest,
    pub reply: oneshot::Sender<ClientReply>,
}

/// Messages from one peer, in the order it sent them.
pub struct PeerInput<Msg> {
    pub from: ReplicaId,
    pub msgs: Vec<Msg>,
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Durability(#[from] DurabilityError),
}

/// A send or reply held back by the barrier.
enum Action<Msg> {
    Send { to: ReplicaId, msg: Msg },
    Reply { op: OpId, reply: ClientReply },
}

/// Most inputs of one kind handled per wake-up before the others get a turn.
const DRAIN_BATCH: usize = 128;
/// How often waiters whose caller went away are forgotten.
const WAITER_SWEEP: Duration = Duration::from_secs(1);

/// Microseconds since the driver started: the machine's `Time`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Time {
        Time(self.start.elapsed().as_micros() as u64)
    }

    fn instant(&self, t: Time) -> tokio::time::Instant {
        (self.start + Duration::from_micros(t.0)).into()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The input side of a driver, held by the services.
#[derive(Clone)]
pub struct DriverHandle<Msg> {
    pub clients: mpsc::Sender<ClientInput>,
    pub peers: mpsc::Sender<PeerInput<Msg>>,
}

/// The task state: the machine and everything around it.
pub struct Driver<M: Machine, D, O> {
    machine: M,
    durability: D,
    outbound: O,
    clock: Clock,
    metrics: Arc<Metrics>,
    timers: Timers<M::Timer>,
    barrier: Barrier<Action<M::Msg>>,
    pending: FuturesOrdered<DurableFuture>,
    waiters: HashMap<OpId, Vec<oneshot::Sender<ClientReply>>>,
    clients_rx: mpsc::Receiver<ClientInput>,
    peers_rx: mpsc::Receiver<PeerInput<M::Msg>>,
}

impl<M, D, O> Driver<M, D, O>
where
    M: Machine,
    D: Durability<M::Record>,
    O: Outbound<M::Msg>,
{
    /// A driver and the handle to feed it. `clock` must be the one the
    /// machine was created or recovered with.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        machine: M,
        durability: D,
        outbound: O,
        clock: Clock,
        metrics: Arc<Metrics>,
        client_inbox: usize,
        peer_inbox: usize,
    ) -> (Driver<M, D, O>, DriverHandle<M::Msg>) {
        let (ctx, crx) = mpsc::channel(client_inbox.max(1));
        let (ptx, prx) = mpsc::channel(peer_inbox.max(1));
        let driver = Driver {
            machine,
            durability,
            outbound,
            clock,
            metrics,
            timers: Timers::default(),
            barrier: Barrier::default(),
            pending: FuturesOrdered::new(),
            waiters: HashMap::new(),
            clients_rx: crx,
            peers_rx: prx,
        };
        let handle = DriverHandle {
            clients: ctx,
            peers: ptx,
        };
        (driver, handle)
    }

    /// Runs until both inboxes are closed (every handle dropped) and all
    /// persists are durable, or until the log fails. `initial` are the
    /// effects of creating or recovering the machine.
    pub async fn run(mut self, initial: Vec<MachineEffect<M>>) -> Result<(), DriverError> {
        self.apply(initial);
        let mut sweep = tokio::time::interval(WAITER_SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut peers_open, mut clients_open) = (true, true);
        loop {
            // Due timers fire here, from the clock, not only when the sleep
            // below wins the select: under a constant stream of peer input
            // the other branches are always ready, and tokio's timer wheel
            // (which advances when a worker parks) may never get to it.
            if self
                .timers
                .next_deadline()
                .is_some_and(|t| t <= self.clock.now())
            {
                self.fire_timers();
            }
            let deadline = self.timers.next_deadline().map(|t| self.clock.instant(t));
            tokio::select! {
                biased;
                Some(done) = self.pending.next(), if !self.pending.is_empty() => {
                    done?;
                    self.on_durable();
                }
                _ = sleep_until(deadline), if deadline.is_some() => self.fire_timers(),
                got = self.peers_rx.recv(), if peers_open => match got {
                    Some(input) => {
                        self.on_peer(input);
                        for _ in 0..DRAIN_BATCH {
                            let Ok(input) = self.peers_rx.try_recv() else { break };
                            self.on_peer(input);
                        }
                    }
                    None => peers_open = false,
                },
                got = self.clients_rx.recv(), if clients_open => match got {
                    Some(input) => {
                        self.on_client(input);
                        for _ in 0..DRAIN_BATCH {
                            let Ok(input) = self.clients_rx.try_recv() else { break };
                            self.on_client(input);
                        }
                    }
                    None => clients_open = false,
                },
                _ = sweep.tick() => self.sweep_waiters(),
            }
            if !peers_open && !clients_open && self.pending.is_empty() {
                return Ok(());
            }
        }
    }

    fn on_client(&mut self, input: ClientInput) {
        self.waiters.entry(input.op).or_default().push(input.reply);
        let mut out = Vec::new();
        let now = self.clock.now();
        self.machine
            .handle_client(now, input.op, input.req, &mut out);
        self.apply(out);
    }

    fn on_peer(&mut self, input: PeerInput<M::Msg>) {
        Metrics::add(&self.metrics.peer_messages_in, input.msgs.len() as u64);
        for msg in input.msgs {
            let mut out = Vec::new();
            let now = self.clock.now();
            self.machine.handle_message(now, input.from, msg, &mut out);
            self.apply(out);
        }
        self.metrics.machine_bad_messages.store(
            self.machine.bad_messages(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn fire_timers(&mut self) {
        let now = self.clock.now();
        for timer in self.timers.pop_due(now) {
            Metrics::inc(&self.metrics.timers_fired);
            let mut out = Vec::new();
            self.machine.handle_timer(now, timer, &mut out);
            self.apply(out);
        }
    }

    /// Carries out effects in order; consecutive persists form one
    /// submission, and a send or reply closes the group before it.
    fn apply(&mut self, effects: Vec<MachineEffect<M>>) {
        let mut group = Vec::new();
        for effect in effects {
            match effect {
                Effect::Persist(record) => group.push(record),
                Effect::SetTimer { at, timer } => self.timers.set(at, timer),
                Effect::Send { to, msg } => {
                    self.submit(&mut group);
                    self.gate(Action::Send { to, msg });
                }
                Effect::Reply { op, reply } => {
                    self.submit(&mut group);
                    self.gate(Action::Reply { op, reply });
                }
            }
        }
        self.submit(&mut group);
    }

    fn submit(&mut self, group: &mut Vec<M::Record>) {
        if group.is_empty() {
            return;
        }
        let records = std::mem::take(group);
        Metrics::add(&self.metrics.persists, records.len() as u64);
        Metrics::inc(&self.metrics.persist_batches);
        self.pending.push_back(self.durability.submit(records));
        self.barrier.issue();
    }

    fn gate(&mut self, action: Action<M::Msg>) {
        match self.barrier.gate(action) {
            Some(action) => self.perform(action),
            None => Metrics::inc(&self.metrics.barrier_waits),
        }
    }

    fn on_durable(&mut self) {
        for action in self.barrier.advance() {
            self.perform(action);
        }
    }

    fn perform(&mut self, action: Action<M::Msg>) {
        match action {
            Action::Send { to, msg } => {
                if !self.outbound.send(to, msg) {
                    Metrics::inc(&self.metrics.peer_dropped);
                }
            }
            Action::Reply { op, reply } => {
                for waiter in self.waiters.remove(&op).unwrap_or_default() {
                    if waiter.send(reply.clone()).is_ok() {
                        Metrics::inc(&self.metrics.replies);
                    }
                }
            }
        }
    }

    /// Forgets waiters whose call ended (deadline, cancelled): some
    /// operations never answer (an RMW superseded by its client's newer
    /// one), and their entries must not pile up.
    fn sweep_waiters(&mut self) {
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
