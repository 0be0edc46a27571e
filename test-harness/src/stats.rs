//! Counts of what a run exercised, so a passing run can show it was not vacuous.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub runs: u64,
    pub steps: u64,
    pub sends: u64,
    pub retries: u64,
    pub malformed: u64,
    pub connects: u64,
    pub crashes: u64,
    /// Writes applied whose result never reached the engine.
    pub lost_commits: u64,
    /// Results delivered as `Failed`.
    pub failed_ops: u64,
    /// Results held back and delivered by a later step.
    pub deferred: u64,
    /// Of those, delivered ahead of an older one.
    pub out_of_order: u64,
    /// Events that reached a socket.
    pub deliveries: u64,
    /// Answers (acks, HTTP, connect errors) by code, `ok` for success.
    pub codes: BTreeMap<&'static str, u64>,
    /// Emits by event name.
    pub events: BTreeMap<&'static str, u64>,
}

impl Stats {
    pub fn merge(&mut self, other: &Stats) {
        self.runs += other.runs;
        self.steps += other.steps;
        self.sends += other.sends;
        self.retries += other.retries;
        self.malformed += other.malformed;
        self.connects += other.connects;
        self.crashes += other.crashes;
        self.lost_commits += other.lost_commits;
        self.failed_ops += other.failed_ops;
        self.deferred += other.deferred;
        self.out_of_order += other.out_of_order;
        self.deliveries += other.deliveries;
        for (code, n) in &other.codes {
            *self.codes.entry(code).or_insert(0) += n;
        }
        for (event, n) in &other.events {
            *self.events.entry(event).or_insert(0) += n;
        }
    }

    pub fn code(&self, code: &str) -> u64 {
        self.codes.get(code).copied().unwrap_or(0)
    }

    pub fn event(&self, event: &str) -> u64 {
        self.events.get(event).copied().unwrap_or(0)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "runs {} steps {} sends {} retries {} malformed {} connects {} crashes {} lost-commits {} failed-ops {} deferred {} out-of-order {} deliveries {}\n  answers {:?}\n  events {:?}",
            self.runs,
            self.steps,
            self.sends,
            self.retries,
            self.malformed,
            self.connects,
            self.crashes,
            self.lost_commits,
            self.failed_ops,
            self.deferred,
            self.out_of_order,
            self.deliveries,
            self.codes,
            self.events
        )
    }
}
