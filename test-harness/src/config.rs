//! The shape of one simulated world, all of it drawn from the seed: how many users and
//! devices, the contract's limits, how hostile storage is.

use crate::rng::{derive, Rng};
use chat_core::config::Limits;
use chat_core::mutants::Mutant;

/// How often storage misbehaves, in per mille.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRates {
    /// A write answers `Failed` and is not applied.
    pub write_fail: u32,
    /// A write is applied, then the host crashes before its result is delivered.
    pub lost_commit: u32,
    /// A read answers `Failed`.
    pub read_fail: u32,
    /// A storage result is held back, to arrive later and out of order.
    pub defer: u32,
    /// A step is a crash-restart of the host.
    pub crash: u32,
}

impl FaultRates {
    pub const NONE: FaultRates = FaultRates { write_fail: 0, lost_commit: 0, read_fail: 0, defer: 0, crash: 0 };
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub seed: u64,
    /// Generated steps (a quiescence phase follows them).
    pub steps: usize,
    pub users: usize,
    /// Devices per user.
    pub devices: usize,
    /// Group chats in storage before the host starts.
    pub initial_groups: usize,
    pub limits: Limits,
    pub faults: FaultRates,
    /// The deliberate bug switched on for this run, if any.
    pub mutant: Option<Mutant>,
}

/// The fault profiles seeds cycle through: calm, light, heavy, slow storage.
const PROFILES: [FaultRates; 4] = [
    FaultRates::NONE,
    FaultRates { write_fail: 20, lost_commit: 5, read_fail: 20, defer: 200, crash: 2 },
    FaultRates { write_fail: 80, lost_commit: 20, read_fail: 60, defer: 400, crash: 5 },
    FaultRates { write_fail: 10, lost_commit: 5, read_fail: 10, defer: 800, crash: 1 },
];

impl SimConfig {
    pub fn from_seed(seed: u64, steps: usize) -> Self {
        let mut rng = Rng::new(derive(seed, 0xC0F1));
        let limits = Limits {
            max_sockets_per_user: rng.pick(&[2, 3, 5]),
            rate_limit_messages: rng.pick(&[2, 3, 5, 10]),
            rate_limit_window_ms: rng.pick(&[500, 1_000, 3_000, 10_000]),
            typing_timeout_ms: rng.pick(&[300, 1_000, 5_000]),
            presence_throttle_ms: rng.pick(&[100, 500, 2_000]),
            max_commit_batch: rng.pick(&[1, 2, 4, 256]),
            ..Limits::default()
        };
        Self {
            seed,
            steps,
            users: rng.range(3, 7) as usize,
            devices: rng.range(1, 3) as usize,
            initial_groups: rng.range(1, 3) as usize,
            limits,
            faults: PROFILES[(seed % PROFILES.len() as u64) as usize].clone(),
            mutant: None,
        }
    }

    pub fn with_mutant(mut self, mutant: Option<Mutant>) -> Self {
        self.mutant = mutant;
        self
    }
}
