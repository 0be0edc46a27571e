//! The `(sender, clientId)` pairs of the stored messages, as a Bloom filter: it answers
//! "surely not stored" for a new clientId without a thread hop or a read. Every send asks
//! the store whether its clientId was stored before (a retry is answered with the stored
//! message); on one core that lookup and its two thread switches were 4-15% of a DM
//! send's CPU, as thread switches cost more or less on this shared machine
//! (bench/README.md, 2026-12-07). A "maybe" still goes to the database.
//!
//! The filter is right only while every message of the file is written through this
//! process's lane, which is the native host's premise for a SQLite file (the core owns each
//! chat's sequence in one process). The lane adds each message's pair before its
//! transaction begins, so a send acked as committed is in the filter; a scan adds the
//! pairs already in the file, and only after it is the filter trusted. A message insert
//! that breaks a unique key (someone else writes the file) distrusts it for good, as does
//! outgrowing [`MAX_KEYS`]: from then on every lookup reads the database, as before.

use chat_core::ids::{ClientId, UserId};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

/// The first layer's capacity in pairs; each later layer holds twice its predecessor's.
const FIRST_LAYER_KEYS: usize = 1 << 18;
/// Past this many pairs the filter gives up (about 80 MiB of bits; lookups read the database).
const MAX_KEYS: usize = 1 << 26;
/// Bits per pair, before rounding up to a power of two, and probes per pair: under 1%
/// false "maybe" per layer.
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;

const LOADING: u8 = 0;
const TRUSTED: u8 = 1;
const DISTRUSTED: u8 = 2;

pub(crate) struct ClientIdFilter {
    state: AtomicU8,
    /// Full layers, then the one being filled (the last).
    layers: RwLock<Vec<Layer>>,
}

struct Layer {
    bits: Box<[AtomicU64]>,
    /// `bits.len() * 64 - 1` (a power of two less one).
    mask: u64,
    capacity: usize,
    count: AtomicUsize,
}

impl Layer {
    fn new(capacity: usize) -> Layer {
        let words = (capacity * BITS_PER_KEY).div_ceil(64).next_power_of_two();
        Layer { bits: (0..words).map(|_| AtomicU64::new(0)).collect(), mask: (words as u64 * 64) - 1, capacity, count: AtomicUsize::new(0) }
    }

    fn probes(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        // Double hashing (Kirsch–Mitzenmacher): probe i is h1 + i·h2.
        let step = splitmix(hash) | 1;
        (0..PROBES).map(move |i| {
            let bit = hash.wrapping_add(i.wrapping_mul(step)) & self.mask;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn insert(&self, hash: u64) {
        for (word, bit) in self.probes(hash) {
            self.bits[word].fetch_or(bit, Ordering::Relaxed);
        }
    }

    fn may_hold(&self, hash: u64) -> bool {
        self.probes(hash).all(|(word, bit)| self.bits[word].load(Ordering::Relaxed) & bit != 0)
    }
}

impl ClientIdFilter {
    /// Empty and not yet trusted: it records pairs but answers nothing until [`Self::loaded`].
    pub(crate) fn new() -> ClientIdFilter {
        ClientIdFilter { state: AtomicU8::new(LOADING), layers: RwLock::new(vec![Layer::new(FIRST_LAYER_KEYS)]) }
    }

    /// True when no message of `sender` with `client_id` is stored: the lookup is answered.
    /// False means "maybe": read the database.
    pub(crate) fn surely_absent(&self, sender: &UserId, client_id: &ClientId) -> bool {
        if self.state.load(Ordering::Acquire) != TRUSTED {
            return false;
        }
        let hash = hash_strs(sender.as_str(), client_id.as_str());
        let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
        !layers.iter().any(|layer| layer.may_hold(hash))
    }

    /// Records a pair about to be stored. Safe to call from several threads.
    pub(crate) fn insert(&self, sender: &UserId, client_id: &ClientId) {
        self.insert_str(sender.as_str(), client_id.as_str());
    }

    /// As [`Self::insert`], for the pair as the core's strings.
    pub(crate) fn insert_str(&self, sender: &str, client_id: &str) {
        if self.state.load(Ordering::Acquire) == DISTRUSTED {
            return;
        }
        let hash = hash_strs(sender, client_id);
        let full = {
            let layers = self.layers.read().unwrap_or_else(PoisonError::into_inner);
            let Some(last) = layers.last() else { return };
            last.insert(hash);
            last.count.fetch_add(1, Ordering::Relaxed) + 1 >= last.capacity
        };
        if full {
            self.grow();
        }
    }

    /// Adds an empty layer twice the size of the full last one, or gives up past [`MAX_KEYS`].
    fn grow(&self) {
        let mut layers = self.layers.write().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = layers.last() else { return };
        if last.count.load(Ordering::Relaxed) < last.capacity {
            return; // another thread grew it first
        }
        let held: usize = layers.iter().map(|layer| layer.capacity).sum();
        let next = last.capacity * 2;
        if held + next > MAX_KEYS {
            drop(layers);
            self.distrust();
            return;
        }
        layers.push(Layer::new(next));
    }

    /// Every pair stored before the lane started is in: from now on "absent" is an answer.
    pub(crate) fn loaded(&self) {
        let _ = self.state.compare_exchange(LOADING, TRUSTED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The filter may miss pairs: every lookup reads the database from now on.
    pub(crate) fn distrust(&self) {
        if self.state.swap(DISTRUSTED, Ordering::AcqRel) != DISTRUSTED {
            let mut layers = self.layers.write().unwrap_or_else(PoisonError::into_inner);
            layers.clear();
            layers.shrink_to_fit();
        }
    }

    #[cfg(test)]
    pub(crate) fn is_trusted(&self) -> bool {
        self.state.load(Ordering::Acquire) == TRUSTED
    }
}

/// std's SipHash with its fixed keys (`DefaultHasher::new`): the same pair hashes alike on
/// every thread. A client choosing clientIds to collide only sends its own lookups to the
/// database.
fn hash_strs(sender: &str, client_id: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sender.hash(&mut hasher);
    client_id.hash(&mut hasher);
    hasher.finish()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: usize) -> (UserId, ClientId) {
        (UserId::new(format!("user-{}", n % 97)), ClientId::new(format!("00000000-0000-4000-8000-{n:012x}")))
    }

    #[test]
    fn answers_nothing_until_loaded() {
        let filter = ClientIdFilter::new();
        let (sender, client) = pair(1);
        assert!(!filter.surely_absent(&sender, &client));
        filter.loaded();
        assert!(filter.surely_absent(&sender, &client));
    }

    #[test]
    fn an_inserted_pair_is_never_reported_absent() {
        let filter = ClientIdFilter::new();
        filter.loaded();
        // Past the first layer, so growth is covered too.
        let n = FIRST_LAYER_KEYS * 3 + 7;
        for i in 0..n {
            let (sender, client) = pair(i);
            filter.insert(&sender, &client);
        }
        assert!((0..n).all(|i| {
            let (sender, client) = pair(i);
            !filter.surely_absent(&sender, &client)
        }));
        assert!(filter.layers.read().unwrap().len() >= 3);
    }

    #[test]
    fn pairs_never_inserted_are_mostly_absent() {
        let filter = ClientIdFilter::new();
        filter.loaded();
        for i in 0..FIRST_LAYER_KEYS {
            let (sender, client) = pair(i);
            filter.insert(&sender, &client);
        }
        let probes = 100_000;
        let maybes = (FIRST_LAYER_KEYS..FIRST_LAYER_KEYS + probes)
            .filter(|&i| {
                let (sender, client) = pair(i);
                !filter.surely_absent(&sender, &client)
            })
            .count();
        assert!(maybes < probes / 50, "{maybes} false maybes in {probes}");
    }

    #[test]
    fn the_sender_is_part_of_the_pair() {
        let filter = ClientIdFilter::new();
        filter.loaded();
        let client = ClientId::new("00000000-0000-4000-8000-000000000001");
        filter.insert(&UserId::new("alice"), &client);
        assert!(filter.surely_absent(&UserId::new("bob"), &client));
    }

    #[test]
    fn a_distrusted_filter_answers_nothing_ever_again() {
        let filter = ClientIdFilter::new();
        filter.loaded();
        filter.distrust();
        filter.loaded();
        let (sender, client) = pair(3);
        assert!(!filter.surely_absent(&sender, &client));
        filter.insert(&sender, &client);
        assert!(!filter.is_trusted());
    }

    #[test]
    fn outgrowing_the_bound_distrusts() {
        let filter = ClientIdFilter::new();
        filter.loaded();
        // Pretend the layers already hold close to the bound.
        {
            let mut layers = filter.layers.write().unwrap();
            let last = &layers[0];
            last.count.store(last.capacity - 1, Ordering::Relaxed);
            layers.insert(0, Layer { bits: Box::new([]), mask: 0, capacity: MAX_KEYS - FIRST_LAYER_KEYS, count: AtomicUsize::new(0) });
        }
        let (sender, client) = pair(5);
        filter.insert(&sender, &client);
        assert!(!filter.is_trusted());
    }
}
