//! Sets and maps of a few entries, kept as one sorted `Vec`.
//!
//! Much of what a partition or a host keeps per socket holds one or two entries (a user's
//! sockets, the sockets of a `user:` room). A `BTreeMap` or `BTreeSet` allocates a whole
//! node of eleven slots for the first entry, and keeps it when emptied; these allocate room
//! for what they hold and give it all back once empty. Lookups are binary searches;
//! inserting and removing move the entries after them, which stays cheap up to hundreds
//! (a socket's chats) but not for collections that grow with the process.

/// A set of a few entries, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecSet<T>(Vec<T>);

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Ord> VecSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `value` was not in the set.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// True when `value` was in the set.
    pub fn remove(&mut self, value: &T) -> bool {
        match self.0.binary_search(value) {
            Ok(at) => {
                self.0.remove(at);
                release_if_empty(&mut self.0);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, value: &T) -> bool {
        self.0.binary_search(value).is_ok()
    }
}

impl<T> VecSet<T> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// The entries, in order.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut values: Vec<T> = iter.into_iter().collect();
        values.sort();
        values.dedup();
        values.shrink_to_fit();
        Self(values)
    }
}

impl<T> IntoIterator for VecSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a VecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A map of a few entries, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> VecMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value `key` had, if it had one.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.find(key).ok()?;
        let (_, value) = self.0.remove(at);
        release_if_empty(&mut self.0);
        Some(value)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|at| &self.0[at].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|at| &mut self.0[at].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    pub fn retain(&mut self, keep: impl FnMut(&(K, V)) -> bool) {
        self.0.retain(keep);
        release_if_empty(&mut self.0);
    }
}

impl<K, V> VecMap<K, V> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }
}

/// An emptied `Vec` keeps its capacity; these hold few entries and are often emptied for
/// good (a user's last socket left), so the allocation goes back.
fn release_if_empty<T>(values: &mut Vec<T>) {
    if values.is_empty() {
        *values = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_stays_sorted_and_unique() {
        let mut set: VecSet<u32> = [3, 1, 3, 2].into_iter().collect();
        assert_eq!(set.as_slice(), [1, 2, 3]);
        assert!(!set.insert(2));
        assert!(set.insert(0));
        assert!(set.remove(&3));
        assert!(!set.remove(&3));
        assert!(set.contains(&1) && !set.contains(&3));
        assert_eq!(set.as_slice(), [0, 1, 2]);
    }

    #[test]
    fn an_emptied_set_gives_its_allocation_back() {
        let mut set = VecSet::new();
        set.insert("a");
        set.remove(&"a");
        assert_eq!(set.0.capacity(), 0);
    }

    #[test]
    fn a_map_keeps_one_value_per_key_in_key_order() {
        let mut map = VecMap::new();
        assert_eq!(map.insert("b", 2), None);
        assert_eq!(map.insert("a", 1), None);
        assert_eq!(map.insert("b", 3), Some(2));
        assert_eq!(map.iter().collect::<Vec<_>>(), [(&"a", &1), (&"b", &3)]);
        if let Some(value) = map.get_mut(&"a") {
            *value += 10;
        }
        assert_eq!(map.get(&"a"), Some(&11));
        assert_eq!(map.remove(&"a"), Some(11));
        assert_eq!(map.remove(&"a"), None);
        assert!(map.contains_key(&"b") && !map.contains_key(&"a"));
        map.retain(|(_, value)| *value != 3);
        assert!(map.is_empty());
        assert_eq!(map.0.capacity(), 0);
    }
}
