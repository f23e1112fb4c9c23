//! The search's memo (Lowe's cache): configurations already explored, as 128-bit fingerprints.
//!
//! A configuration is the set of decided operations and the model states. The set is a Zobrist
//! hash (XOR of a random 128-bit word per operation, so adding or removing an operation is one
//! XOR) and the states a 128-bit hash (`Fingerprinter`); the memo keeps their XOR, 16 bytes
//! per entry. Two configurations with the same decided set share a key only if their state
//! fingerprints are equal; with different sets, only if the XOR of the Zobrist words of the
//! sets' difference (random, independent of the states) equals that of their fingerprints:
//! 2^-128. A collision could only prune a branch wrongly (a false "not linearizable"); it can
//! never produce a false pass. Memory stays proportional to the number of steps.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// Configurations already explored.
pub(super) struct Memo {
    /// A random 128-bit word per operation (the Zobrist keys).
    op_keys: Vec<u128>,
    seen: HashSet<u128, FoldFingerprints>,
}

impl Memo {
    /// A memo for `n` operations.
    pub(super) fn new(n: usize) -> Self {
        Memo {
            op_keys: (0..n as u64)
                .map(|i| ((splitmix64(2 * i + 1) as u128) << 64) | splitmix64(2 * i + 2) as u128)
                .collect(),
            seen: HashSet::default(),
        }
    }

    /// The decided set `decided` with operation `o` added (or removed: XOR).
    #[inline]
    pub(super) fn with_op(&self, decided: u128, o: u32) -> u128 {
        decided ^ self.op_keys[o as usize]
    }

    /// Record a configuration (the decided set, and the states with the pending lazy
    /// resources); false when it was explored already.
    #[inline]
    pub(super) fn insert<T: Hash>(&mut self, decided: u128, states_and_pending: &T) -> bool {
        self.seen.insert(decided ^ fingerprint(states_and_pending))
    }
}

/// The 128-bit fingerprint of `value`.
fn fingerprint<T: Hash>(value: &T) -> u128 {
    let mut f = Fingerprinter::default();
    value.hash(&mut f);
    f.finish128()
}

/// A 128-bit hash for fingerprints: two 64-bit lanes, each absorbing every word written
/// through its own bijection of the lane (xor the word, multiply by an odd constant, rotate:
/// inputs that differ in one word always leave different lanes), with different constants,
/// and a final full-avalanche mix (the splitmix64 finaliser) of each lane with the word
/// count. It hashes what `Hash` writes (slices and strings write their length first, so
/// values are unambiguous) word by word, without collecting bytes first: the memo's keys are
/// mostly a few words, for which two SipHashes cost several times the search step itself,
/// and kv values are long strings hashed at every step.
#[derive(Default)]
struct Fingerprinter {
    a: u64,
    b: u64,
    words: u64,
}

const LANE_A: u64 = 0x243F_6A88_85A3_08D3;
const LANE_B: u64 = 0x1319_8A2E_0370_7344;

impl Fingerprinter {
    #[inline]
    fn word(&mut self, w: u64) {
        self.a = ((self.a ^ w).wrapping_mul(LANE_A | 1)).rotate_left(29);
        self.b = ((self.b ^ w.rotate_left(32)).wrapping_mul(LANE_B | 1)).rotate_left(31);
        self.words += 1;
    }

    fn finish128(&self) -> u128 {
        let a = splitmix64(self.a ^ self.words ^ LANE_B);
        let b = splitmix64(self.b ^ self.words.rotate_left(17) ^ LANE_A);
        ((a as u128) << 64) | b as u128
    }
}

impl Hasher for Fingerprinter {
    fn finish(&self) -> u64 {
        let f = self.finish128();
        (f >> 64) as u64 ^ f as u64
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        // The tail with its length in the top byte, so that no two tails give one word.
        let mut tail = (rest.len() as u64) << 56;
        for (i, &b) in rest.iter().enumerate() {
            tail |= (b as u64) << (8 * i);
        }
        self.word(tail);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.word(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.word(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.word(i as u64);
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The memo's hasher. Its keys are uniformly distributed already (a Zobrist hash XOR a
/// fingerprint), so folding them is a good table hash and much cheaper than hashing them
/// again with SipHash (the memo insert dominated short searches). The set still compares
/// whole keys, so this only affects speed.
#[derive(Clone, Copy, Default)]
struct FoldFingerprints;

impl std::hash::BuildHasher for FoldFingerprints {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `(u128, u128)`; kept correct for any key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = self.0.rotate_left(23) ^ (i as u64) ^ ((i >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that differ, in content, length or field order, get different fingerprints;
    /// equal values, built differently, the same.
    #[test]
    fn fingerprints_tell_values_apart() {
        let states: Vec<Option<i64>> = vec![None, Some(-3), Some(1 << 40)];
        let pending: Vec<u64> = vec![4, 7];
        let a = fingerprint(&(&states, &pending));
        assert_eq!(a, fingerprint(&(states.clone(), pending.clone())));
        assert_ne!(a, fingerprint(&(&pending, &states)));
        assert_ne!(a, fingerprint(&(&states[..2], &pending)));
        assert_ne!(
            fingerprint(&"ab".to_string()),
            fingerprint(&"ab\0".to_string())
        );
        assert_ne!(fingerprint(&vec![0u8; 7]), fingerprint(&vec![0u8; 8]));
        let shared = std::rc::Rc::new(vec![Some(1i64), None]);
        assert_eq!(fingerprint(&shared), fingerprint(&vec![Some(1i64), None]));
        // No collision among many small, similar values.
        let mut seen = std::collections::BTreeSet::new();
        for x in 0..200i64 {
            for p in 0..50u64 {
                assert!(seen.insert(fingerprint(&(vec![Some(x)], vec![p]))));
            }
        }
    }
}
