//! The exactly-once table (LOGSTACK.md §1, "a retry with the same
//! `(client, seq)` returns the first position"). Bounded two ways: a window
//! of recent sequence numbers per client, and a number of clients with the
//! least recently appending one forgotten first. Both engines use it; the
//! RocksDB engine mirrors every insert and eviction in its dedup column
//! family within the same WriteBatch, so the table survives restarts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::DedupConfig;
use crate::types::{AppendId, ClientId, Position};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Seen before, at this position.
    Hit(Position),
    /// Not seen: a new append.
    Miss,
    /// Below the client's window: cannot tell.
    TooOld { floor: u64 },
}

#[derive(Clone, Debug, Default)]
struct ClientWindow {
    seqs: BTreeMap<u64, Position>,
    /// Sequence numbers below it were evicted from the window.
    floor: u64,
    last_used: Position,
}

#[derive(Clone, Debug)]
pub(crate) struct DedupTable {
    config: DedupConfig,
    clients: HashMap<ClientId, ClientWindow>,
    /// (last position appended, client): the eviction order of clients.
    by_recency: BTreeSet<(Position, ClientId)>,
}

impl DedupTable {
    pub(crate) fn new(config: DedupConfig) -> DedupTable {
        DedupTable {
            config,
            clients: HashMap::new(),
            by_recency: BTreeSet::new(),
        }
    }

    pub(crate) fn lookup(&self, id: AppendId) -> Lookup {
        match self.clients.get(&id.client) {
            None => Lookup::Miss,
            Some(w) => match w.seqs.get(&id.seq) {
                Some(p) => Lookup::Hit(*p),
                None if id.seq < w.floor => Lookup::TooOld { floor: w.floor },
                None => Lookup::Miss,
            },
        }
    }

    pub(crate) fn last_seq(&self, client: ClientId) -> Option<u64> {
        self.clients
            .get(&client)
            .and_then(|w| w.seqs.last_key_value().map(|(s, _)| *s))
    }

    /// Records `id` at `position`; pushes the ids that fell out of the
    /// table to `evicted`, so a persistent engine can delete them too.
    pub(crate) fn insert(&mut self, id: AppendId, position: Position, evicted: &mut Vec<AppendId>) {
        if !self.clients.contains_key(&id.client) && self.clients.len() >= self.config.max_clients {
            self.evict_least_recent(evicted);
        }
        let w = self.clients.entry(id.client).or_default();
        self.by_recency.remove(&(w.last_used, id.client));
        w.last_used = w.last_used.max(position);
        self.by_recency.insert((w.last_used, id.client));
        w.seqs.insert(id.seq, position);
        while w.seqs.len() > self.config.window_per_client {
            if let Some((seq, _)) = w.seqs.pop_first() {
                w.floor = w.floor.max(seq.saturating_add(1));
                evicted.push(AppendId::new(id.client, seq));
            }
        }
    }

    /// Rebuilds one record on open. The floor is not stored: a full window
    /// means earlier numbers were evicted, so its smallest one is the floor.
    pub(crate) fn load(&mut self, id: AppendId, position: Position, evicted: &mut Vec<AppendId>) {
        self.insert(id, position, evicted);
    }

    /// Recomputes floors after `load`ing every record.
    pub(crate) fn finish_load(&mut self) {
        for w in self.clients.values_mut() {
            if w.seqs.len() >= self.config.window_per_client
                && let Some((s, _)) = w.seqs.first_key_value()
            {
                w.floor = w.floor.max(*s);
            }
        }
    }

    fn evict_least_recent(&mut self, evicted: &mut Vec<AppendId>) {
        if let Some((_, client)) = self.by_recency.pop_first()
            && let Some(w) = self.clients.remove(&client)
        {
            evicted.extend(w.seqs.keys().map(|s| AppendId::new(client, *s)));
        }
    }

    #[cfg(test)]
    fn clients(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: u64, s: u64) -> AppendId {
        AppendId::new(ClientId(c), s)
    }

    fn table(window: usize, clients: usize) -> DedupTable {
        DedupTable::new(DedupConfig {
            window_per_client: window,
            max_clients: clients,
        })
    }

    #[test]
    fn window_slides_and_floor_refuses_old() {
        let mut t = table(3, 10);
        let mut ev = vec![];
        for s in 1..=5 {
            t.insert(id(1, s), Position(s), &mut ev);
        }
        assert_eq!(ev, vec![id(1, 1), id(1, 2)]);
        assert_eq!(t.lookup(id(1, 5)), Lookup::Hit(Position(5)));
        assert_eq!(t.lookup(id(1, 2)), Lookup::TooOld { floor: 3 });
        assert_eq!(t.lookup(id(1, 6)), Lookup::Miss);
        assert_eq!(t.last_seq(ClientId(1)), Some(5));
    }

    #[test]
    fn least_recent_client_is_evicted() {
        let mut t = table(4, 2);
        let mut ev = vec![];
        t.insert(id(1, 1), Position(0), &mut ev);
        t.insert(id(2, 1), Position(1), &mut ev);
        t.insert(id(1, 2), Position(2), &mut ev);
        t.insert(id(3, 1), Position(3), &mut ev);
        assert_eq!(ev, vec![id(2, 1)]);
        assert_eq!(t.clients(), 2);
        assert_eq!(t.lookup(id(2, 1)), Lookup::Miss);
        assert_eq!(t.lookup(id(1, 1)), Lookup::Hit(Position(0)));
    }

    #[test]
    fn reload_restores_floor() {
        let mut t = table(2, 10);
        let mut ev = vec![];
        t.load(id(1, 7), Position(0), &mut ev);
        t.load(id(1, 8), Position(1), &mut ev);
        t.finish_load();
        assert_eq!(t.lookup(id(1, 6)), Lookup::TooOld { floor: 7 });
    }
}
