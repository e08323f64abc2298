//! What the simulator needs from a replica implementation: the deterministic
//! state machine interface of ARCHITECTURE.md, plus a snapshot of the
//! replicated state for the convergence checks.

use registers::{
    Carstamp, ClientReply, ClientRequest, Effect, Key, OpId, Register, ReplicaId, Time,
};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// The effects of a simulated replica.
pub type SimEffect<P> = Effect<
    <P as SimProtocol>::Msg,
    <P as SimProtocol>::Record,
    ClientReply,
    <P as SimProtocol>::Timer,
>;

/// Where a replica sits in the cluster and how it is configured.
#[derive(Clone, Debug)]
pub struct NodeSetup<C> {
    pub id: ReplicaId,
    /// Number of replicas.
    pub n: usize,
    /// The other replicas, nearest first (for thrifty phases).
    pub peers_by_distance: Vec<ReplicaId>,
    /// Protocol-specific settings.
    pub config: C,
}

/// The replicated state of one replica, compared across replicas after a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    pub registers: BTreeMap<Key, Register>,
    /// Per key, the RMWs (and, in the every-operation baselines, the puts)
    /// this replica executed, in execution order, with the carstamp each
    /// produced. Replicas must agree on a common prefix.
    pub rmw_executions: BTreeMap<Key, Vec<(OpId, Carstamp)>>,
}

/// A replica protocol the simulator can drive: `(now, input) -> effects`,
/// with no I/O of its own. `restart` rebuilds it from the records it had
/// made durable (everything else was lost in the crash).
pub trait SimProtocol: Sized {
    type Msg: Clone + Debug;
    type Record: Clone + Debug;
    type Timer: Clone + Debug;
    type Config: Clone + Debug;

    fn start(setup: &NodeSetup<Self::Config>, now: Time, out: &mut Vec<SimEffect<Self>>) -> Self;
    fn restart(
        setup: &NodeSetup<Self::Config>,
        now: Time,
        records: &[Self::Record],
        out: &mut Vec<SimEffect<Self>>,
    ) -> Self;
    fn on_client(
        &mut self,
        now: Time,
        op: OpId,
        req: ClientRequest,
        out: &mut Vec<SimEffect<Self>>,
    );
    fn on_message(
        &mut self,
        now: Time,
        from: ReplicaId,
        msg: Self::Msg,
        out: &mut Vec<SimEffect<Self>>,
    );
    fn on_timer(&mut self, now: Time, timer: Self::Timer, out: &mut Vec<SimEffect<Self>>);
    fn snapshot(&self) -> ReplicaSnapshot;
    /// Whether this replica currently leads (for protocols with a leader;
    /// lets the fault injector target it, see [`super::Faults::leader_crashes`]).
    fn is_leader(&self) -> bool {
        false
    }
}
