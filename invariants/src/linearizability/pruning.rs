//! Pruning the choices of a level: the symmetry reduction (`Model::interchangeable_class`)
//! and the progress limits (`Model::latest_progress`).

use super::choice::Choice;
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

/// Keep, among the `Linearize` choices of one symmetry class, only the member with the
/// earliest return (ties: lowest index). Choices without a class are kept as they are.
///
/// On return `scratch` holds one entry `(class, best hint of the class, representative)` per
/// class present (sorted by representative), so the caller can order classes by their most
/// promising member.
pub(super) fn reduce_symmetric<I, O>(
    choices: &mut Vec<Choice>,
    class: &[Option<u64>],
    ops: &[&Op<I, O>],
    hints: &[i64],
    scratch: &mut Vec<(u64, u64, u32)>,
) {
    let mut members: Vec<(u64, u64, u32)> = Vec::new();
    scratch.clear();
    for c in choices.iter() {
        if let Choice::Linearize(o) = *c {
            if let Some(k) = class[o as usize] {
                let op = ops[o as usize];
                members.push((k, op.ret.max(op.call), o));
            }
        }
    }
    if members.len() < 2 {
        return;
    }
    members.sort_unstable();
    // The representative of each class is its first entry after sorting; the hint is the
    // lowest of the class (stored as u64 bits of the i64).
    for &(k, _, o) in members.iter() {
        let h = hints[o as usize];
        match scratch.last_mut() {
            Some(last) if last.0 == k => {
                if h < last.1 as i64 {
                    last.1 = h as u64;
                }
            }
            _ => scratch.push((k, h as u64, o)),
        }
    }
    if scratch.len() == members.len() {
        scratch.clear();
        return;
    }
    let mut keep: Vec<u32> = scratch.iter().map(|e| e.2).collect();
    keep.sort_unstable();
    choices.retain(|c| match *c {
        Choice::Linearize(o) => class[o as usize].is_none() || keep.binary_search(&o).is_ok(),
        Choice::Drop(_) => true,
    });
    debug_assert!(!choices.is_empty());
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
        let class = [Some(7), Some(7), Some(7), Some(8), None];
        let hints = [-5, 3, 4, 9, 0];
        let mut choices: Vec<Choice> = (0..5).map(Choice::Linearize).collect();
        choices.push(Choice::Drop(4));
        let mut scratch = Vec::new();
        reduce_symmetric(&mut choices, &class, &refs, &hints, &mut scratch);
        // Op 1: earliest return of class 7 (tie with op 2 broken by index).
        assert_eq!(
            choices,
            vec![
                Choice::Linearize(1),
                Choice::Linearize(3),
                Choice::Linearize(4),
                Choice::Drop(4)
            ]
        );
        // Class 7 is tried where its best hint (op 0's) would be.
        let e = scratch.iter().find(|e| e.0 == 7).expect("class 7");
        assert_eq!((e.1 as i64, e.2), (-5, 1));
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
