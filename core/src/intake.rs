//! Fair service of client events, so that one user's flood does not delay everyone else.
//!
//! The contract limits only new messages; every other event is unlimited, and each may
//! cost storage work. Served first come, first served, a user who sends thousands of
//! events a second queues everyone's events (and commits) behind their own. Here events
//! wait per sender (a user, across their devices) and are served one sender at a time, in
//! turn; a sender with [`IntakeLimits::max_in_flight`] events still unanswered waits until
//! one is answered, so a flood holds a bounded share of storage. A sender with
//! [`IntakeLimits::max_waiting`] events waiting has further ones refused (`RATE_LIMITED`,
//! see [`crate::Input::Overloaded`]), so a flood holds bounded memory too.
//!
//! The host owns the queue (it holds the events and their callbacks) and tells it when an
//! event is answered; an answer that never comes (the process that had the work died) is
//! given up on after [`IntakeLimits::answer_wait_ms`].

use crate::ids::{AckId, Millis};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Events of one sender being worked on at once.
    pub max_in_flight: usize,
    /// Events of one sender waiting their turn.
    pub max_waiting: usize,
    /// How long an unanswered event holds its place in flight.
    pub answer_wait_ms: u64,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        // A client opening a screen asks for a few chats' history at once: 8 in flight
        // serves that without queueing; 256 waiting holds a reconnect's burst of syncs.
        Self { max_in_flight: 8, max_waiting: 256, answer_wait_ms: 10_000 }
    }
}

struct Sender<T> {
    waiting: VecDeque<T>,
    in_flight: usize,
    /// Whether the sender is in [`Intake::turns`].
    has_turn: bool,
}

impl<T> Sender<T> {
    fn new() -> Self {
        Self { waiting: VecDeque::new(), in_flight: 0, has_turn: false }
    }
}

/// Events waiting to be served, by sender `K`.
pub struct Intake<K, T> {
    limits: IntakeLimits,
    senders: BTreeMap<K, Sender<T>>,
    /// Senders with an event waiting, in the order they are served.
    turns: VecDeque<K>,
    in_flight: BTreeMap<AckId, (K, Millis)>,
}

impl<K: Ord + Clone, T> Intake<K, T> {
    pub fn new(limits: IntakeLimits) -> Self {
        Self { limits, senders: BTreeMap::new(), turns: VecDeque::new(), in_flight: BTreeMap::new() }
    }

    /// Queues an event of `sender`; gives it back when the sender already has
    /// [`IntakeLimits::max_waiting`] events waiting.
    pub fn push(&mut self, sender: K, event: T) -> Result<(), T> {
        let entry = self.senders.entry(sender.clone()).or_insert_with(Sender::new);
        if entry.waiting.len() >= self.limits.max_waiting {
            return Err(event);
        }
        entry.waiting.push_back(event);
        if !entry.has_turn && entry.in_flight < self.limits.max_in_flight {
            entry.has_turn = true;
            self.turns.push_back(sender);
        }
        Ok(())
    }

    /// The next event to serve: the oldest of the sender whose turn it is. Call
    /// [`Intake::started`] if an answer to it will come.
    pub fn next(&mut self) -> Option<(K, T)> {
        while let Some(sender) = self.turns.pop_front() {
            let Some(entry) = self.senders.get_mut(&sender) else { continue };
            entry.has_turn = false;
            let event = if entry.in_flight < self.limits.max_in_flight { entry.waiting.pop_front() } else { None };
            let Some(event) = event else {
                // Full in flight (its next answer gives it a turn back) or nothing left.
                self.forget_if_idle(&sender);
                continue;
            };
            if !entry.waiting.is_empty() {
                entry.has_turn = true;
                self.turns.push_back(sender.clone());
            }
            self.forget_if_idle(&sender);
            return Some((sender, event));
        }
        None
    }

    /// The event just taken from [`Intake::next`] is being worked on until `ack` is answered.
    pub fn started(&mut self, sender: K, ack: AckId, now: Millis) {
        self.senders.entry(sender.clone()).or_insert_with(Sender::new).in_flight += 1;
        self.in_flight.insert(ack, (sender, now));
    }

    /// `ack` was answered (or will never be: its socket is gone).
    pub fn answered(&mut self, ack: AckId) {
        let Some((sender, _)) = self.in_flight.remove(&ack) else { return };
        let Some(entry) = self.senders.get_mut(&sender) else { return };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if !entry.has_turn && !entry.waiting.is_empty() && entry.in_flight < self.limits.max_in_flight {
            entry.has_turn = true;
            self.turns.push_back(sender.clone());
        }
        self.forget_if_idle(&sender);
    }

    /// Gives up on answers older than [`IntakeLimits::answer_wait_ms`].
    pub fn expire(&mut self, now: Millis) {
        let stale: Vec<AckId> = self
            .in_flight
            .iter()
            .filter(|(_, (_, since))| since.plus(self.limits.answer_wait_ms) <= now)
            .map(|(ack, _)| *ack)
            .collect();
        for ack in stale {
            self.answered(ack);
        }
    }

    /// Takes every waiting event of `sender` that `pick` selects, oldest first (a socket
    /// that disconnects has its events served before its disconnect).
    pub fn take_where(&mut self, sender: &K, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let Some(entry) = self.senders.get_mut(sender) else { return Vec::new() };
        let (taken, kept): (Vec<T>, Vec<T>) = entry.waiting.drain(..).partition(|event| pick(event));
        entry.waiting = kept.into();
        self.forget_if_idle(sender);
        taken
    }

    /// Whether an event can be served now.
    pub fn has_turn(&self) -> bool {
        !self.turns.is_empty()
    }

    /// Whether nothing waits (events in flight do not count).
    pub fn is_empty(&self) -> bool {
        self.senders.values().all(|entry| entry.waiting.is_empty())
    }

    /// Events waiting, over all senders.
    pub fn waiting(&self) -> usize {
        self.senders.values().map(|entry| entry.waiting.len()).sum()
    }

    fn forget_if_idle(&mut self, sender: &K) {
        if self.senders.get(sender).is_some_and(|entry| entry.waiting.is_empty() && entry.in_flight == 0 && !entry.has_turn) {
            self.senders.remove(sender);
        }
    }
}
