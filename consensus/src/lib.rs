//! EPaxos with the RMW base (Moraru, Andersen, Kaminsky, "There Is More
//! Consensus in Egalitarian Parliaments", SOSP'13; Gryff, NSDI 2020;
//! PROTOCOL.md 4-7), as a deterministic, I/O-free state machine; and the
//! same RMW semantics ordered by raft instead ([`raft`]: tikv raft-rs
//! driven I/O-free, PROTOCOL.md 4 "Raft path"). Both engines also run the
//! benchmark baselines that order every operation ("EPaxos-all" with
//! [`EpaxosConfig::every_op`], "raft-all" with
//! [`raft::RaftConfig::every_op`]; PROTOCOL.md "Baselines"), and both
//! execute through one shared rule (`execute`).
//!
//! An instance `(replica, slot)` agrees on `(cmd, seq, deps, base)`, where
//! `cmd` is a client RMW `(OpId, Key, RmwOp)` and `base` the register the
//! RMW builds on. Commands conflict iff they touch the same key. The
//! machine does not own the register store: every entry point borrows it
//! from the combined replica, which shares it with the register protocol.
//!
//! # Files
//! `instance` (ids, ballots, attributes), `messages` (wire, persist,
//! reply, timer enums), `index` (per-key conflicts), `preaccept`,
//! `accept`, `commit`, `catch_up` (learning missed commits from peers), `recovery`, `timers`, `executor` (graph, blockers), `plan` (Tarjan),
//! `execute` (RMW rule, dedup, the baselines' gets and puts; shared with
//! raft), `reply` (answer after a majority executed; EPaxos-all: after
//! the leader's execution, puts at commit), `restart` (rebuild from
//! records), `machine` (entry points), `raft` (the raft engine, its own
//! files inside).
//!
//! # Fast quorum and recovery: the simplified variant, argued
//!
//! The fast quorum is `2f` replicas, the leader included (SOSP'13's
//! simplified EPaxos; for `n = 3` it is the same size as the optimized
//! `f + floor((f+1)/2)`, for `n = 5` it is 4 instead of 3). In exchange,
//! recovery needs no TryPreAccept. The leader commits on the fast path iff
//! `2f - 1` peers returned its proposal `(seq, deps, base)` unchanged and
//! it still has not promised any higher ballot; it persists the commit
//! before acting on it. Otherwise, once a majority replied (and some reply
//! differed, or the phase timed out) it runs Accept with the merge (max
//! seq, union of deps, max base). Recovery at ballot `b` takes a majority
//! `Q` of promises and applies [`recovery::choose`]:
//!
//! 1. a committed value; 2. else the value of the highest *accepted*
//!    ballot (kept apart from the promised ballot: Sutra, "On the
//!    correctness of Egalitarian Paxos", 2019); 3. else, only if the
//!    original leader `L` is not in `Q`, and all but at most one member
//!    of `Q` pre-accepted `L`'s proposal unchanged at `L`'s initial
//!    ballot: Accept that proposal; 4. else PreAccept the command again at
//!    `b` (slow path only); 5. else (nobody knows the command) Accept a
//!    no-op. Every recovered tuple carries `base`.
//!
//! Why it is safe. *One value:* if `L` is in `Q` it promised `b` first,
//! so it can no longer fast-commit, and a fast commit it made earlier is
//! durable and reported as committed. If `L` is not in `Q` and the fast
//! path succeeded, its `2f - 1` non-leader members miss at most one of the
//! `2f` non-leaders, so every member of `Q` but one shows the proposal
//! unchanged at ballot 0 (a member only loses that state by accepting,
//! which rule 2 sees, or by a rule-4 PreAccept, which only happens once a
//! fast commit was ruled out): rule 3 keeps it. Values chosen by a
//! majority of Accepts are kept by rules 1-2 as in Paxos. If rule 5
//! applies, no one in a majority holds the command, so neither a fast
//! quorum nor an Accept majority can have chosen it. *Dependencies:*
//! every committed tuple covers the local deps that a majority computed
//! when pre-accepting (fast path: the fast quorum; slow path: the union;
//! rule 3: `L` plus `f` unchanged replicas; rule 4: a fresh majority).
//! Two conflicting commands' majorities share a replica that saw one
//! before the other, so the later one's deps cover the earlier: every pair
//! of conflicting committed commands is ordered by at least one edge, and
//! execution agrees everywhere.
//!
//! Deps are per-replica *watermarks* (see [`instance::Deps`]): `r -> s`
//! means every instance of `r` up to `s` on the same key. The usual
//! "exactly instance `(r, s)`" reading relies on `(r, s)` depending on
//! `r`'s earlier instances, which breaks when recovery turns `(r, s)` into
//! a no-op; the watermark reading does not. The cost: the executor waits
//! until every slot of `r` up to `s` is known here (unknown slots are
//! recovered after the bounded wait).
//!
//! # Client replies and retries
//! The original leader answers (observed old value, outcome, carstamp)
//! once a majority, itself included, durably executed the instance; peers
//! send `Executed` notices, and while the client waits the leader re-sends
//! the Commit to silent replicas (an executed replica answers with its
//! notice again). A retried `(client, request)` still in flight here is
//! absorbed; elsewhere it is proposed again and deduplicated at execution
//! (per key, see [`execute`]). If recovery turns the leader's own instance
//! into a no-op, the leader proposes the op again.
//!
//! # Limits
//! Instances are never garbage-collected (memory grows with the number of
//! RMWs; a checkpoint/trim protocol is future work); PreAccept and Accept
//! go to every peer (no thrifty variant); the dedup table keeps
//! `dedup_clients_per_key` clients per key.
//!
//! # Durability (PROTOCOL.md 5)
//! PreAcceptOk, AcceptOk and PrepareOk follow a `Persist` of the instance
//! (attributes, status, accepted and promised ballots); an Executed notice
//! and the client reply follow the one `Persist` of the execution record.
//! Effects are ordered and `Persist` is a barrier; a driver must also keep
//! that order across calls (a FIFO effect pipeline), since a duplicate
//! request is answered from state persisted by an earlier call.

pub mod accept;
pub mod catch_up;
pub mod commit;
pub mod config;
pub mod execute;
pub mod executor;
pub mod index;
pub mod instance;
pub mod machine;
pub mod messages;
pub mod plan;
pub mod preaccept;
pub mod raft;
pub mod recovery;
pub mod reply;
pub mod restart;
pub mod timers;

pub use config::{ConfigError, EpaxosConfig};
pub use instance::{Attrs, Ballot, Command, Deps, InstanceId, Status};
pub use machine::{BadInput, Epaxos, EpaxosStats};
pub use messages::{
    DedupEntry, EpaxosEffect, EpaxosMsg, EpaxosPersist, EpaxosReply, EpaxosTimer, ExecResult,
    ExecutionRecord, InstanceRecord, RecoveredState,
};
pub use recovery::{Decision, choose};
