//! Fair service of client events, so that one user's flood does not delay everyone else.
//!
//! The contract limits only new messages; every other event is unlimited, and each may
//! cost storage work. Served first come, first served, a user who sends thousands of
//! events a second queues everyone's events (and commits) behind their own. Here events
//! wait per sender (a user, across their devices) and are served one sender at a time, in
//! turn; a sender with [`IntakeLimits::max_in_flight`] events still unanswered waits until
//! one is answered, so a flood holds a bounded share of storage. A sender with
//! [`IntakeLimits::max_waiting`] events waiting has further ones refused (`RATE_LIMITED`,
//! see [`crate::Input::Overloaded`]); the refusals too are answered in the sender's turns,
//! so a flood costs everyone else one answer per turn, however fast it comes, and a client
//! that waits for its answers is slowed to that pace. A sender with
//! [`IntakeLimits::max_refusals`] refusals still to answer is sending without waiting for
//! any answer: the host cuts that connection off ([`Queued::Overflow`]).
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
    /// Refusals of one sender waiting to be answered.
    pub max_refusals: usize,
    /// How long an unanswered event holds its place in flight.
    pub answer_wait_ms: u64,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        // A client opening a screen asks for a few chats' history at once: 8 in flight
        // serves that without queueing; 256 waiting holds a reconnect's burst of syncs.
        Self { max_in_flight: 8, max_waiting: 256, max_refusals: 1024, answer_wait_ms: 10_000 }
    }
}

/// What became of a pushed event.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued<T> {
    /// It waits its turn to be served.
    Waiting,
    /// It waits its turn to be refused.
    ToRefuse,
    /// The sender has too many refusals unanswered: the event is handed back.
    Overflow(T),
}

/// What to do with the next event, in its sender's turn.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn<T> {
    Serve(T),
    /// Answer it `RATE_LIMITED` ([`crate::Input::Overloaded`]).
    Refuse(T),
}

struct Sender<T> {
    waiting: VecDeque<T>,
    refusals: VecDeque<T>,
    in_flight: usize,
    /// Whether the sender is in [`Intake::turns`].
    has_turn: bool,
}

impl<T> Sender<T> {
    fn new() -> Self {
        Self { waiting: VecDeque::new(), refusals: VecDeque::new(), in_flight: 0, has_turn: false }
    }

    fn wants_turn(&self, max_in_flight: usize) -> bool {
        !self.refusals.is_empty() || (!self.waiting.is_empty() && self.in_flight < max_in_flight)
    }

    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.refusals.is_empty() && self.in_flight == 0 && !self.has_turn
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

    /// Queues an event of `sender`: to be served, or, when the sender already has
    /// [`IntakeLimits::max_waiting`] events waiting, to be refused.
    pub fn push(&mut self, sender: K, event: T) -> Queued<T> {
        let entry = self.senders.entry(sender.clone()).or_insert_with(Sender::new);
        let queued = if entry.waiting.len() < self.limits.max_waiting {
            entry.waiting.push_back(event);
            Queued::Waiting
        } else if entry.refusals.len() < self.limits.max_refusals {
            entry.refusals.push_back(event);
            Queued::ToRefuse
        } else {
            return Queued::Overflow(event);
        };
        if !entry.has_turn && entry.wants_turn(self.limits.max_in_flight) {
            entry.has_turn = true;
            self.turns.push_back(sender);
        }
        queued
    }

    /// The sender whose turn it is, and what to do with its next event: a refusal due, or
    /// else its oldest waiting event. Call [`Intake::started`] for a served event whose
    /// answer will come.
    pub fn next(&mut self) -> Option<(K, Turn<T>)> {
        while let Some(sender) = self.turns.pop_front() {
            let Some(entry) = self.senders.get_mut(&sender) else { continue };
            entry.has_turn = false;
            let turn = match entry.refusals.pop_front() {
                Some(event) => Some(Turn::Refuse(event)),
                None if entry.in_flight < self.limits.max_in_flight => entry.waiting.pop_front().map(Turn::Serve),
                None => None,
            };
            let Some(turn) = turn else {
                // Full in flight (its next answer gives it a turn back) or nothing left.
                self.forget_if_idle(&sender);
                continue;
            };
            // A sender full in flight by then skips its turn, and gets one back with an answer.
            if !entry.refusals.is_empty() || !entry.waiting.is_empty() {
                entry.has_turn = true;
                self.turns.push_back(sender.clone());
            }
            self.forget_if_idle(&sender);
            return Some((sender, turn));
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
        if !entry.has_turn && entry.wants_turn(self.limits.max_in_flight) {
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

    /// Takes the events of `sender` that `pick` selects (those of a socket that is
    /// leaving): the waiting ones, oldest first, to be served before the departure; the
    /// refusals are dropped, as nobody is left to hear them.
    pub fn take_where(&mut self, sender: &K, mut pick: impl FnMut(&T) -> bool) -> Vec<T> {
        let Some(entry) = self.senders.get_mut(sender) else { return Vec::new() };
        let (taken, kept): (Vec<T>, Vec<T>) = entry.waiting.drain(..).partition(|event| pick(event));
        entry.waiting = kept.into();
        entry.refusals.retain(|event| !pick(event));
        self.forget_if_idle(sender);
        taken
    }

    /// Whether an event can be served now.
    pub fn has_turn(&self) -> bool {
        !self.turns.is_empty()
    }

    /// Whether nothing waits (events in flight do not count).
    pub fn is_empty(&self) -> bool {
        self.senders.values().all(|entry| entry.waiting.is_empty() && entry.refusals.is_empty())
    }

    /// Events waiting to be served or refused, over all senders.
    pub fn waiting(&self) -> usize {
        self.senders.values().map(|entry| entry.waiting.len() + entry.refusals.len()).sum()
    }

    fn forget_if_idle(&mut self, sender: &K) {
        if self.senders.get(sender).is_some_and(Sender::is_idle) {
            self.senders.remove(sender);
        }
    }
}
