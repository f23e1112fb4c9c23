//! The search's memo (Lowe's cache): configurations already explored, as 128-bit fingerprints.
//!
//! A configuration is the set of decided operations and the model states. The set is a Zobrist
//! hash (XOR of a random 128-bit word per operation, so adding or removing an operation is one
//! XOR) and the states a 128-bit SipHash. A fingerprint collision could only prune a branch
//! wrongly (a false "not linearizable"); it can never produce a false pass, and at 2^-128 per
//! pair it does not happen in practice. Memory stays proportional to the number of steps.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Configurations already explored.
pub(super) struct Memo {
    /// A random 128-bit word per operation (the Zobrist keys).
    op_keys: Vec<u128>,
    seen: HashSet<(u128, u128), FoldFingerprints>,
    /// The bytes of the configuration being fingerprinted (reused).
    scratch: Vec<u8>,
}

impl Memo {
    /// A memo for `n` operations.
    pub(super) fn new(n: usize) -> Self {
        Memo {
            op_keys: (0..n as u64)
                .map(|i| ((splitmix64(2 * i + 1) as u128) << 64) | splitmix64(2 * i + 2) as u128)
                .collect(),
            seen: HashSet::default(),
            scratch: Vec::new(),
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
        let fingerprint = fingerprint(states_and_pending, &mut self.scratch);
        self.seen.insert((decided, fingerprint))
    }
}

/// Two SipHashes of `value`, one of them salted. SipHash is a stream over the bytes a value
/// writes, so the bytes are collected first and hashed in one call each: the same fingerprint
/// as hashing the value field by field, without a call into the hasher per field.
fn fingerprint<T: Hash>(value: &T, scratch: &mut Vec<u8>) -> u128 {
    scratch.clear();
    value.hash(&mut ByteStream(scratch));
    let mut a = DefaultHasher::new();
    a.write(scratch);
    let mut b = DefaultHasher::new();
    b.write(&0x5bd1_e995_u64.to_ne_bytes());
    b.write(scratch);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// A `Hasher` that only collects the bytes written to it.
struct ByteStream<'a>(&'a mut Vec<u8>);

impl Hasher for ByteStream<'_> {
    fn finish(&self) -> u64 {
        unreachable!("a byte stream is hashed by the caller, never finished")
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The memo's hasher. Its keys are a Zobrist hash and a SipHash fingerprint, both uniformly
/// distributed already, so folding them is a good table hash and much cheaper than hashing
/// them again with SipHash (the memo insert dominated short searches). The set still compares
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

    /// The fingerprint of a value hashed field by field (how the memo hashed before the bytes
    /// were collected first).
    fn field_by_field<T: Hash>(value: &T) -> u128 {
        let mut a = DefaultHasher::new();
        value.hash(&mut a);
        let mut b = DefaultHasher::new();
        0x5bd1_e995_u64.hash(&mut b);
        value.hash(&mut b);
        ((a.finish() as u128) << 64) | b.finish() as u128
    }

    #[test]
    fn collected_bytes_fingerprint_like_field_by_field_hashing() {
        let mut scratch = vec![9, 9, 9];
        let states: Vec<Option<i64>> = vec![None, Some(-3), Some(1 << 40)];
        let pending: Vec<u64> = vec![4, 7];
        let strings = (
            vec!["k".to_string(), String::new()],
            std::rc::Rc::<[u8]>::from(&b"v"[..]),
        );
        for _ in 0..2 {
            assert_eq!(
                fingerprint(&(&states, &pending), &mut scratch),
                field_by_field(&(&states, &pending))
            );
            assert_eq!(
                fingerprint(&strings, &mut scratch),
                field_by_field(&strings)
            );
            assert_ne!(
                fingerprint(&(&states, &pending), &mut scratch),
                fingerprint(&(&pending, &states), &mut scratch)
            );
        }
    }
}
