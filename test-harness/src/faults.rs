//! Storage as the simulated host sees it: the reference [`MemoryStore`] behind a queue
//! of operations in flight, each applied only at the moment its result is delivered, and
//! a choice of fault for each delivery.

use crate::action::Fault;
use crate::config::FaultRates;
use crate::rng::Rng;
use chat_core::ids::{Millis, OpId};
use chat_core::memory::MemoryStore;
use chat_core::storage::{StorageOp, StorageResult};

/// A storage operation the engine asked for whose result has not been delivered.
#[derive(Clone, Debug)]
pub struct PendingOp {
    pub op: OpId,
    pub request: StorageOp,
    /// The world's effect counter when the engine asked (orders it against room joins).
    pub issued_mark: u64,
    pub issued_at: Millis,
}

/// What delivering one operation came to.
pub struct Delivery {
    pub result: StorageResult,
    /// The operation changed storage.
    pub applied: bool,
    /// The host crashed before the result reached the engine.
    pub crash: bool,
}

pub struct FaultyStore {
    pub store: MemoryStore,
    /// Operations in flight, oldest first.
    pub pending: Vec<PendingOp>,
}

/// Operations that change storage.
pub fn is_write(request: &StorageOp) -> bool {
    matches!(request, StorageOp::Commit { .. } | StorageOp::CreateChat { .. })
}

impl FaultyStore {
    pub fn new(store: MemoryStore) -> Self {
        Self { store, pending: Vec::new() }
    }

    /// The fault for a result delivered as soon as it was asked for.
    pub fn choose_fault(rng: &mut Rng, rates: &FaultRates, request: &StorageOp) -> Fault {
        if is_write(request) {
            if rng.chance(rates.lost_commit) {
                return Fault::LostCommit;
            }
            if rng.chance(rates.write_fail) {
                return Fault::Fail;
            }
        } else if rng.chance(rates.read_fail) {
            return Fault::Fail;
        }
        Fault::None
    }

    /// Carries `request` out under `fault`, now.
    pub fn deliver(&mut self, request: &StorageOp, fault: Fault) -> Delivery {
        match fault {
            Fault::None => {
                let result = self.store.apply(request);
                let applied = is_write(request) && !matches!(result, StorageResult::Failed(_));
                Delivery { result, applied, crash: false }
            }
            Fault::Fail => Delivery { result: StorageResult::Failed("injected fault".into()), applied: false, crash: false },
            Fault::LostCommit => {
                // A read lost this way is only the crash.
                let (result, applied) = if is_write(request) {
                    let result = self.store.apply(request);
                    let applied = !matches!(result, StorageResult::Failed(_));
                    (result, applied)
                } else {
                    (StorageResult::Failed("host crashed".into()), false)
                };
                Delivery { result, applied, crash: true }
            }
        }
    }

    pub fn take(&mut self, index: usize) -> PendingOp {
        self.pending.remove(index)
    }
}
