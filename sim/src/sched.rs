//! The scheduler: a queue of future events in virtual time.
//!
//! Events due at the same instant fire in the order they were scheduled. That order is part of the
//! determinism contract: the same inputs always pop the same events in the same order.

use std::collections::BTreeMap;

use crate::time::SimInstant;

/// A handle that cancels a scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    at: SimInstant,
    seq: u64,
}

impl TimerId {
    pub fn due(self) -> SimInstant {
        self.at
    }
}

/// Future events ordered by (instant, scheduling order).
#[derive(Debug)]
pub struct Scheduler<E> {
    queue: BTreeMap<TimerId, E>,
    next_seq: u64,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Scheduler { queue: BTreeMap::new(), next_seq: 0 }
    }
}

impl<E> Scheduler<E> {
    pub fn schedule(&mut self, at: SimInstant, event: E) -> TimerId {
        let id = TimerId { at, seq: self.next_seq };
        self.next_seq += 1;
        self.queue.insert(id, event);
        id
    }

    /// Removes a pending event; returns it if it had not fired yet.
    pub fn cancel(&mut self, id: TimerId) -> Option<E> {
        self.queue.remove(&id)
    }

    /// When the next event is due.
    pub fn next_due(&self) -> Option<SimInstant> {
        self.queue.keys().next().map(|id| id.at)
    }

    /// The earliest event if it is due at or before `now`.
    pub fn pop_due(&mut self, now: SimInstant) -> Option<(SimInstant, E)> {
        let first = *self.queue.keys().next()?;
        if first.at > now {
            return None;
        }
        self.queue.remove(&first).map(|e| (first.at, e))
    }

    /// A pending event.
    pub fn get(&self, id: TimerId) -> Option<&E> {
        self.queue.get(&id)
    }

    /// Drops every pending event `keep` refuses.
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.queue.retain(|_, e| keep(e));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SimDuration;

    #[test]
    fn events_at_the_same_instant_fire_in_scheduling_order() {
        let mut s = Scheduler::default();
        let t = SimInstant::ZERO + SimDuration::from_secs(1);
        s.schedule(t, "b");
        s.schedule(SimInstant::ZERO, "a");
        s.schedule(t, "c");
        let popped: Vec<_> = std::iter::from_fn(|| s.pop_due(t)).map(|(_, e)| e).collect();
        assert_eq!(popped, ["a", "b", "c"]);
    }

    #[test]
    fn cancelled_events_never_fire_and_future_ones_wait() {
        let mut s = Scheduler::default();
        let id = s.schedule(SimInstant::ZERO, 1);
        s.schedule(SimInstant::ZERO + SimDuration::from_secs(5), 2);
        assert_eq!(s.cancel(id), Some(1));
        assert_eq!(s.pop_due(SimInstant::ZERO), None);
        assert_eq!(s.next_due(), Some(SimInstant::ZERO + SimDuration::from_secs(5)));
    }
}
