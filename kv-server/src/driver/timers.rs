//! The replica's timers: deadlines in a BTreeMap ordered by (time, arrival),
//! so timers due at the same time fire in the order they were set, as in
//! the simulator. The driver sleeps until the first deadline.

use registers::Time;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Timers<T> {
    due: BTreeMap<(Time, u64), T>,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            due: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T> Timers<T> {
    pub fn set(&mut self, at: Time, timer: T) {
        self.seq += 1;
        self.due.insert((at, self.seq), timer);
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Time> {
        self.due.keys().next().map(|(t, _)| *t)
    }

    /// Removes and returns every timer due at or before `now`, in order.
    pub fn pop_due(&mut self, now: Time) -> Vec<T> {
        let later = self.due.split_off(&(Time(now.0.saturating_add(1)), 0));
        let due = std::mem::replace(&mut self.due, later);
        due.into_values().collect()
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_fire_in_deadline_then_arrival_order() {
        let mut t = Timers::default();
        t.set(Time(30), "c");
        t.set(Time(10), "a");
        t.set(Time(10), "b");
        t.set(Time(31), "d");
        assert_eq!(t.next_deadline(), Some(Time(10)));
        assert_eq!(t.pop_due(Time(9)), Vec::<&str>::new());
        assert_eq!(t.pop_due(Time(30)), vec!["a", "b", "c"]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(Time(31)));
    }
}
