//! The etcd model's key table: one `Option<KeyState>` per key of the universe, stored as
//! chunks shared between states and copied on write one chunk at a time.
//!
//! The linearizability search keeps the model state of every level of its stack (as deep as
//! the history is long). With the table as one shared vector, each write copied all of it, so
//! a history whose writes create ever-new keys (the events profile: ~1,500 keys, ~2,000 ops)
//! held O(ops x keys) bytes: 84 MB at one search's peak. A write now copies the chunk list
//! (one pointer per `CHUNK` keys) and the one chunk it changes; a table of at most `CHUNK`
//! keys costs what the flat vector did (one chunk of its own length).
//!
//! Equality, order, hash and `Debug` are those of the flat `Vec<Option<KeyState>>` (hash:
//! the length, then every slot), so memo fingerprints and reports are as before.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Index;
use std::rc::Rc;

use faultline_api::{LeaseId, Revision};

/// One live key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyState {
    pub value: Rc<[u8]>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub version: i64,
    pub lease: LeaseId,
}

/// Slots per chunk: a write copies `CHUNK` slots plus `len / CHUNK` pointers.
const CHUNK: usize = 32;

/// `CHUNK` slots (the last chunk: the rest), one allocation each.
type Chunk = Rc<[Option<KeyState>]>;

/// The key table (`None` = absent).
#[derive(Clone)]
pub struct KeyTable {
    len: usize,
    chunks: Rc<[Chunk]>,
}

/// `rc`'s contents, to change: copied first if another `Rc` shares them (`Rc::make_mut`,
/// which takes slices only from Rust 1.81 on).
fn unshared<T: Clone>(rc: &mut Rc<[T]>) -> &mut [T] {
    if Rc::get_mut(rc).is_none() {
        *rc = Rc::from(&rc[..]);
    }
    Rc::get_mut(rc).expect("just copied")
}

impl KeyTable {
    /// `len` absent keys (all full chunks share one empty chunk).
    pub fn new(len: usize) -> Self {
        let full: Chunk = vec![None; CHUNK].into();
        let mut chunks = vec![full; len / CHUNK];
        if !len.is_multiple_of(CHUNK) {
            chunks.push(vec![None; len % CHUNK].into());
        }
        KeyTable {
            len,
            chunks: chunks.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every slot, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Option<KeyState>> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// The slot of key `id`, to change (its chunk copied first if another table shares it).
    pub fn slot_mut(&mut self, id: usize) -> &mut Option<KeyState> {
        assert!(id < self.len, "key {id} out of a table of {}", self.len);
        let chunk = &mut unshared(&mut self.chunks)[id / CHUNK];
        &mut unshared(chunk)[id % CHUNK]
    }

    /// Empty every slot `remove` selects (copying only the chunks that hold one); whether any.
    pub fn remove_where(&mut self, remove: impl Fn(&KeyState) -> bool) -> bool {
        let hit = |c: &[Option<KeyState>]| c.iter().flatten().any(&remove);
        if !self.chunks.iter().any(|c| hit(c)) {
            return false;
        }
        for chunk in unshared(&mut self.chunks).iter_mut() {
            if hit(chunk) {
                for slot in unshared(chunk).iter_mut() {
                    if slot.as_ref().is_some_and(&remove) {
                        *slot = None;
                    }
                }
            }
        }
        true
    }

    /// Whether the two tables are one (a step that changed no key shares its table).
    pub fn same_table(&self, other: &KeyTable) -> bool {
        Rc::ptr_eq(&self.chunks, &other.chunks)
    }

    /// The slots where `self` and `other` (of the same universe) differ, in key order:
    /// `(id, self's slot, other's slot)`. Chunks the two share are skipped unread.
    pub fn changes<'a>(
        &'a self,
        other: &'a KeyTable,
    ) -> impl Iterator<Item = (usize, &'a Option<KeyState>, &'a Option<KeyState>)> + 'a {
        assert_eq!(self.len, other.len, "tables of different universes");
        let same = self.same_table(other);
        self.chunks
            .iter()
            .zip(other.chunks.iter())
            .enumerate()
            .filter(move |(_, (a, b))| !same && !Rc::ptr_eq(a, b))
            .flat_map(|(c, (a, b))| {
                a.iter()
                    .zip(b.iter())
                    .enumerate()
                    .map(move |(i, (x, y))| (c * CHUNK + i, x, y))
            })
            .filter(|(_, x, y)| x != y)
    }
}

impl FromIterator<Option<KeyState>> for KeyTable {
    /// A table of the given slots, in key order.
    fn from_iter<I: IntoIterator<Item = Option<KeyState>>>(slots: I) -> Self {
        let slots: Vec<Option<KeyState>> = slots.into_iter().collect();
        KeyTable {
            len: slots.len(),
            chunks: slots.chunks(CHUNK).map(Chunk::from).collect(),
        }
    }
}

impl Index<usize> for KeyTable {
    type Output = Option<KeyState>;
    fn index(&self, id: usize) -> &Option<KeyState> {
        assert!(id < self.len, "key {id} out of a table of {}", self.len);
        &self.chunks[id / CHUNK][id % CHUNK]
    }
}

impl PartialEq for KeyTable {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && (self.same_table(other)
                || self
                    .chunks
                    .iter()
                    .zip(other.chunks.iter())
                    .all(|(a, b)| Rc::ptr_eq(a, b) || a == b))
    }
}

impl Eq for KeyTable {}

impl Ord for KeyTable {
    /// Lexicographic over the slots, as `Vec`'s.
    fn cmp(&self, other: &Self) -> Ordering {
        if self.same_table(other) {
            return Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for KeyTable {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for KeyTable {
    /// As a slice's: the length, then each slot.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len);
        for slot in self.iter() {
            slot.hash(state);
        }
    }
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;

    fn ks(v: i64) -> KeyState {
        KeyState {
            value: Rc::from(format!("v{v}").as_bytes()),
            create_revision: v,
            mod_revision: v,
            version: 1,
            lease: v % 3,
        }
    }

    fn hash_of<T: Hash>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    fn flat(t: &KeyTable) -> Vec<Option<KeyState>> {
        t.iter().cloned().collect()
    }

    /// A write copies one chunk and the chunk list, not the table: a stack of states, one
    /// write apart each, over a large universe shares all but one chunk per state.
    #[test]
    fn a_write_copies_one_chunk() {
        let n = 10 * CHUNK + 5;
        let mut states = vec![KeyTable::new(n)];
        for id in 0..n {
            let mut next = states.last().expect("a state").clone();
            *next.slot_mut(id) = Some(ks(id as i64));
            states.push(next);
        }
        let last = states.last().expect("a state");
        assert_eq!(last.iter().flatten().count(), n);
        // Distinct chunks over all states: one new chunk per write (plus the shared empty
        // full one and the empty tail), where flat tables would hold n + 1 copies of n slots.
        let mut chunks: Vec<*const [Option<KeyState>]> = states
            .iter()
            .flat_map(|t| t.chunks.iter().map(Rc::as_ptr))
            .collect();
        chunks.sort();
        chunks.dedup();
        assert_eq!(chunks.len(), n + 2);
        // The first state is still all absent.
        assert!(states[0].iter().all(Option::is_none));
        assert_eq!(states[0].iter().count(), n);
    }

    /// Equality, order, hash and Debug are those of the flat vector, however the tables
    /// were built (shared or not).
    #[test]
    fn behaves_like_the_flat_vector() {
        let n = 3 * CHUNK + 7;
        let mut a = KeyTable::new(n);
        let mut b = KeyTable::new(n);
        for id in (0..n).step_by(5) {
            *a.slot_mut(id) = Some(ks(id as i64));
        }
        for id in (0..n).step_by(5).rev() {
            *b.slot_mut(id) = Some(ks(id as i64));
        }
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
        assert_eq!(hash_of(&a), hash_of(&flat(&a)));
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_eq!(format!("{a:?}"), format!("{:?}", flat(&a)));
        let mut c = a.clone();
        *c.slot_mut(n - 1) = Some(ks(1));
        assert_ne!(a, c);
        assert_eq!(a.cmp(&c), flat(&a).cmp(&flat(&c)));
        assert_eq!(c.cmp(&a), flat(&c).cmp(&flat(&a)));
        assert_ne!(hash_of(&a), hash_of(&c));
        let changes: Vec<usize> = a.changes(&c).map(|(id, _, _)| id).collect();
        assert_eq!(changes, vec![n - 1]);
        assert_eq!(a.changes(&b).count(), 0);
        assert_eq!(c[n - 1], Some(ks(1)));
        assert_eq!(KeyTable::new(0).iter().count(), 0);
        let rebuilt: KeyTable = flat(&c).into_iter().collect();
        assert_eq!(rebuilt, c);
        assert_eq!(rebuilt.len(), n);
        assert_eq!(hash_of(&rebuilt), hash_of(&c));
    }

    /// `remove_where` empties exactly the selected slots and leaves untouched chunks shared.
    #[test]
    fn remove_where_copies_only_hit_chunks() {
        let n = 4 * CHUNK;
        let mut a = KeyTable::new(n);
        for id in 0..CHUNK {
            *a.slot_mut(id) = Some(ks(id as i64));
        }
        let mut b = a.clone();
        assert!(b.remove_where(|k| k.lease == 1));
        assert!(!b.remove_where(|k| k.lease == 1));
        let expect: Vec<Option<KeyState>> = flat(&a)
            .into_iter()
            .map(|k| k.filter(|k| k.lease != 1))
            .collect();
        assert_eq!(flat(&b), expect);
        assert!(Rc::ptr_eq(&a.chunks[1], &b.chunks[1]));
        assert!(!Rc::ptr_eq(&a.chunks[0], &b.chunks[0]));
    }
}
