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
//! Every sender also has a pace ([`EventPace`]): a burst of events, then a steady rate,
//! far above what a person's client sends. Events past it are refused in turn, and a
//! sender past its refusal budget too is flooding: its connection is cut off, as answering
//! a flood costs the server nearly as much as serving it. The pace outlives the
//! connection, so reconnecting does not earn a new burst.
//!
//! The host owns the queue (it holds the events and their callbacks) and tells it when an
//! event is answered; an answer that never comes (the process that had the work died) is
//! given up on after [`IntakeLimits::answer_wait_ms`].

use crate::config::Limits;
use crate::error::ChatError;
use crate::ids::{AckId, Millis};
use crate::pace::TokenBucket;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How fast one sender's events may come (`EVENT_BURST`, `EVENT_RATE_PER_SEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPace {
    /// Events at once.
    pub burst: u64,
    /// Events per second after the burst.
    pub per_second: u64,
    /// Events refused for pace before the sender counts as flooding (earned back at the same rate).
    pub refusal_burst: u64,
}

impl EventPace {
    /// No pace at all (only the queue bounds hold).
    pub const UNLIMITED: EventPace = EventPace { burst: u64::MAX, per_second: u64::MAX, refusal_burst: u64::MAX };

    /// The configured pace; a third of the burst may be refused before it counts as a flood.
    pub fn of(limits: &Limits) -> Self {
        Self { burst: limits.event_burst, per_second: limits.event_rate_per_sec, refusal_burst: limits.event_burst / 3 }
    }
}

/// What becomes of one more event of a sender, by its pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Serve,
    /// Answer it `RATE_LIMITED` ([`overload_error`]).
    Refuse,
    /// Past the refusal budget too: cut the connection off.
    Flood,
}

/// The error a refused event is answered with.
pub fn overload_error() -> ChatError {
    ChatError::RateLimited("too many events: wait for answers, and slow down, before sending more".into())
}

/// One sender's pace. Hosts without an [`Intake`] (the edge keeps one per connection) use
/// it directly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderPace {
    events: TokenBucket,
    refusals: TokenBucket,
}

impl SenderPace {
    /// What becomes of one more event; `can_wait` and `can_refuse` say whether the
    /// host's queues have room for it either way.
    pub fn judge(&mut self, now: Millis, can_wait: bool, can_refuse: bool) -> Verdict {
        if can_wait && self.events.take(now) {
            Verdict::Serve
        } else if can_refuse && self.refusals.take(now) {
            Verdict::Refuse
        } else {
            Verdict::Flood
        }
    }

    pub fn new(pace: EventPace, now: Millis) -> Self {
        Self {
            events: TokenBucket::full(pace.burst, pace.per_second, now),
            refusals: TokenBucket::full(pace.refusal_burst, pace.per_second, now),
        }
    }

    fn is_full(&mut self, now: Millis) -> bool {
        self.events.is_full(now) && self.refusals.is_full(now)
    }
}

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
    pub pace: EventPace,
}

impl IntakeLimits {
    /// The defaults, with the pace the host was configured with.
    pub fn from_limits(limits: &Limits) -> Self {
        Self { pace: EventPace::of(limits), ..Self::default() }
    }
}

impl Default for IntakeLimits {
    fn default() -> Self {
        // A client opening a screen asks for a few chats' history at once: 8 in flight
        // serves that without queueing; 256 waiting holds a reconnect's burst of syncs.
        let pace = EventPace::of(&Limits::default());
        Self { max_in_flight: 8, max_waiting: 256, max_refusals: 1024, answer_wait_ms: 10_000, pace }
    }
}

/// What became of a pushed event.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued<T> {
    /// It waits its turn to be served.
    Waiting,
    /// It waits its turn to be refused.
    ToRefuse,
    /// The sender is flooding (past its pace and its refusal budget, or with too many
    /// refusals unanswered): the event is handed back, and the connection should go.
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
    paces: BTreeMap<K, SenderPace>,
}

impl<K: Ord + Clone, T> Intake<K, T> {
    pub fn new(limits: IntakeLimits) -> Self {
        Self { limits, senders: BTreeMap::new(), turns: VecDeque::new(), in_flight: BTreeMap::new(), paces: BTreeMap::new() }
    }

    /// Queues an event of `sender`: to be served, or, when the sender is past its pace or
    /// already has [`IntakeLimits::max_waiting`] events waiting, to be refused.
    pub fn push(&mut self, sender: K, event: T, now: Millis) -> Queued<T> {
        let pace = self.paces.entry(sender.clone()).or_insert_with(|| SenderPace::new(self.limits.pace, now));
        let entry = self.senders.entry(sender.clone()).or_insert_with(Sender::new);
        let can_wait = entry.waiting.len() < self.limits.max_waiting;
        let queued = match pace.judge(now, can_wait, entry.refusals.len() < self.limits.max_refusals) {
            Verdict::Serve => {
                entry.waiting.push_back(event);
                Queued::Waiting
            }
            Verdict::Refuse => {
                entry.refusals.push_back(event);
                Queued::ToRefuse
            }
            Verdict::Flood => {
                self.forget_if_idle(&sender);
                return Queued::Overflow(event);
            }
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
    pub fn next_turn(&mut self) -> Option<(K, Turn<T>)> {
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

    /// The event just taken from [`Intake::next_turn`] is being worked on until `ack` is answered.
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

    /// Gives up on answers older than [`IntakeLimits::answer_wait_ms`], and forgets the
    /// pace of senders back to a full budget.
    pub fn expire(&mut self, now: Millis) {
        self.paces.retain(|_, pace| !pace.is_full(now));
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

    /// Senders anything is remembered of (queued events, answers awaited, a pace not yet
    /// back to full): what the intake costs in memory.
    pub fn senders_remembered(&self) -> usize {
        self.paces.keys().chain(self.senders.keys()).collect::<std::collections::BTreeSet<_>>().len()
    }

    fn forget_if_idle(&mut self, sender: &K) {
        if self.senders.get(sender).is_some_and(Sender::is_idle) {
            self.senders.remove(sender);
        }
    }
}
