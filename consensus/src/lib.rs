//! EPaxos with the RMW base (in progress).
