//! Pruning the choices of a level: the symmetry reduction (`Model::interchangeable_class`)
//! and the progress limits (`Model::latest_progress`).

use super::model::Op;

/// The unplaced operations with a `Model::latest_progress`, by that limit: `min_excluding`
/// finds the smallest limit among them in amortised O(1) (a cursor over the sorted list that
/// moves back only when an operation is put back).
pub(super) struct ProgressLimits {
    /// (limit, op), sorted.
    sorted: Vec<(i64, u32)>,
    /// Position of each op in `sorted` (`u32::MAX`: no limit).
    pos: Vec<u32>,
    lifted: Vec<bool>,
    /// Every entry before it is lifted.
    cursor: usize,
}

impl ProgressLimits {
    pub(super) fn new(mut sorted: Vec<(i64, u32)>, n: usize) -> Self {
        sorted.sort_unstable();
        let mut pos = vec![u32::MAX; n];
        for (p, &(_, o)) in sorted.iter().enumerate() {
            pos[o as usize] = p as u32;
        }
        ProgressLimits {
            sorted,
            pos,
            lifted: vec![false; n],
            cursor: 0,
        }
    }

    pub(super) fn lift(&mut self, o: u32) {
        debug_assert!(!self.lifted[o as usize]);
        self.lifted[o as usize] = true;
    }

    pub(super) fn unlift(&mut self, o: u32) {
        debug_assert!(self.lifted[o as usize]);
        self.lifted[o as usize] = false;
        let p = self.pos[o as usize];
        if p != u32::MAX {
            self.cursor = self.cursor.min(p as usize);
        }
    }

    /// The smallest limit of an unplaced operation other than `o`.
    pub(super) fn min_excluding(&mut self, o: u32) -> Option<i64> {
        while self.cursor < self.sorted.len() && self.lifted[self.sorted[self.cursor].1 as usize] {
            self.cursor += 1;
        }
        self.sorted[self.cursor..]
            .iter()
            .find(|&&(_, x)| x != o && !self.lifted[x as usize])
            .map(|&(l, _)| l)
    }
}

/// The symmetry reduction (`Model::interchangeable_class`) of one level's choices: among the
/// candidates of one class only the member with the earliest return (ties: lowest index) is
/// tried, where the class's most promising member would be. Linear in the candidates: a slot
/// per class, stamped with the level it was last filled at, so nothing is cleared, sorted or
/// allocated per level.
pub(super) struct Symmetry {
    /// Per op: its class, numbered densely (`NO_CLASS`: none).
    class: Vec<u32>,
    /// Per op: its return (no earlier than its call), what the representative is chosen by.
    ret: Vec<u64>,
    slots: Vec<ClassSlot>,
    /// The level being reduced (slots with another stamp are empty).
    stamp: u32,
    /// The classes offered at this level.
    seen: Vec<u32>,
}

/// No symmetry class.
pub(super) const NO_CLASS: u32 = u32::MAX;

/// The members of one class among a level's candidates.
#[derive(Clone, Copy, Default)]
struct ClassSlot {
    stamp: u32,
    /// The representative: the member with the earliest return (ties: lowest index).
    ret: u64,
    op: u32,
    /// The lowest hint of the members.
    hint: i64,
}

impl Symmetry {
    /// `classes[o]`: the class of op o, if any.
    pub(super) fn new<I, O>(classes: &[Option<u64>], ops: &[&Op<I, O>]) -> Self {
        let mut ids = std::collections::BTreeMap::new();
        let class = classes
            .iter()
            .map(|c| match c {
                Some(c) => {
                    let next = ids.len() as u32;
                    *ids.entry(*c).or_insert(next)
                }
                None => NO_CLASS,
            })
            .collect();
        Symmetry {
            class,
            ret: ops.iter().map(|op| op.ret.max(op.call)).collect(),
            slots: vec![ClassSlot::default(); ids.len()],
            stamp: 0,
            seen: Vec::new(),
        }
    }

    /// Start the candidates of a new level.
    pub(super) fn begin_level(&mut self) {
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Wrapped: forget every old stamp.
            self.slots.fill(ClassSlot::default());
            self.stamp = 1;
        }
        self.seen.clear();
    }

    /// Offer candidate `o`: false when it belongs to a class (it then takes part in the
    /// choice of the class's representative), true when it is a choice of its own.
    #[inline]
    pub(super) fn offer(&mut self, o: u32, hints: &[i64]) -> bool {
        let k = self.class[o as usize];
        if k == NO_CLASS {
            return true;
        }
        self.offer_members(k, o, hints[o as usize]);
        false
    }

    /// Offer members of class `k` at once: `o`, the one with the earliest return (ties:
    /// lowest index), and `hint`, their lowest hint.
    #[inline]
    pub(super) fn offer_members(&mut self, k: u32, o: u32, hint: i64) {
        let ret = self.ret[o as usize];
        let slot = &mut self.slots[k as usize];
        if slot.stamp != self.stamp {
            *slot = ClassSlot {
                stamp: self.stamp,
                ret,
                op: o,
                hint,
            };
            self.seen.push(k);
        } else {
            if (ret, o) < (slot.ret, slot.op) {
                (slot.ret, slot.op) = (ret, o);
            }
            slot.hint = slot.hint.min(hint);
        }
    }

    /// The class of op `o` (`NO_CLASS`: none).
    #[inline]
    pub(super) fn class_of(&self, o: u32) -> u32 {
        self.class[o as usize]
    }

    /// The return op `o` is ranked by.
    #[inline]
    pub(super) fn ret_of(&self, o: u32) -> u64 {
        self.ret[o as usize]
    }

    /// The representative of each class offered at this level.
    pub(super) fn representatives(&self) -> impl Iterator<Item = u32> + '_ {
        self.seen.iter().map(|&k| self.slots[k as usize].op)
    }

    /// The hint a choice is tried by: its own, or for a representative its class's lowest.
    #[inline]
    pub(super) fn hint(&self, o: u32, hints: &[i64]) -> i64 {
        match self.class[o as usize] {
            NO_CLASS => hints[o as usize],
            k => self.slots[k as usize].hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, call: u64, ret: u64) -> Op<(), ()> {
        Op {
            id,
            client: id,
            call,
            ret,
            input: (),
            output: None,
        }
    }

    /// Offer candidates to the reduction; the choices it leaves, sorted.
    fn reduce(symmetry: &mut Symmetry, offered: &[u32], hints: &[i64]) -> Vec<u32> {
        symmetry.begin_level();
        let mut kept: Vec<u32> = offered
            .iter()
            .copied()
            .filter(|&o| symmetry.offer(o, hints))
            .collect();
        kept.extend(symmetry.representatives());
        kept.sort_unstable();
        kept
    }

    #[test]
    fn symmetric_choices_keep_the_earliest_return_of_each_class() {
        let ops = [
            op(0, 0, 30),
            op(1, 0, 10),
            op(2, 0, 10),
            op(3, 0, 5),
            op(4, 0, 1),
        ];
        let refs: Vec<&Op<(), ()>> = ops.iter().collect();
        // Ops 0-2 form class 7, op 3 class 8 (alone), op 4 has none.
        let mut symmetry = Symmetry::new(&[Some(7), Some(7), Some(7), Some(8), None], &refs);
        let hints = [-5, 3, 4, 9, 0];
        // Op 1: earliest return of class 7 (tie with op 2 broken by index).
        assert_eq!(
            reduce(&mut symmetry, &[2, 0, 1, 3, 4], &hints),
            vec![1, 3, 4]
        );
        // Class 7 is tried where its best hint (op 0's) would be; others by their own.
        assert_eq!(symmetry.hint(1, &hints), -5);
        assert_eq!(symmetry.hint(3, &hints), 9);
        assert_eq!(symmetry.hint(4, &hints), 0);
        // The next level starts afresh: op 2 alone represents class 7.
        assert_eq!(reduce(&mut symmetry, &[2, 4], &hints), vec![2, 4]);
        assert_eq!(symmetry.hint(2, &hints), 4);
    }

    #[test]
    fn progress_limits_track_the_smallest_unplaced_limit() {
        let mut l = ProgressLimits::new(vec![(5, 0), (3, 1), (9, 2)], 4);
        assert_eq!(l.min_excluding(3), Some(3));
        assert_eq!(l.min_excluding(1), Some(5));
        l.lift(1);
        assert_eq!(l.min_excluding(3), Some(5));
        l.lift(0);
        assert_eq!(l.min_excluding(2), None);
        l.unlift(0);
        l.unlift(1);
        assert_eq!(l.min_excluding(3), Some(3));
    }
}
