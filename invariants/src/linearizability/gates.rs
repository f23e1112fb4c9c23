//! Offering a gate's candidates (`Model::quick_reject_gate`) at a level. A gate whose
//! operations all belong to one symmetry class (for etcd: the unknown grants, or revokes, of
//! one lease id) contributes only its class's best member and lowest hint, and those change
//! only when one of its operations is lifted or put back, or when the level's horizon (the
//! first return) passes one of its calls. So they are cached between levels instead of
//! offering each of, say, a hundred open unknown revokes at every level.

use super::entries::{EntryList, NIL};
use super::pruning::{Symmetry, NO_CLASS};

/// The gates of one search and what is cached about the single-class ones.
pub(super) struct Gates {
    /// Per gate: the symmetry class of every one of its operations (`NO_CLASS`: not all in
    /// one class).
    class: Vec<u32>,
    cache: Vec<Aggregate>,
}

/// A single-class gate's members called before a horizon: the one with the earliest return
/// (ties: lowest index) and their lowest hint. Valid for every horizon in `(lo, hi]`: `lo`
/// the rank of the last call included, `hi` of the first call left out (`u32::MAX`: none).
#[derive(Clone, Copy)]
struct Aggregate {
    valid: bool,
    lo: u32,
    hi: u32,
    best: u32,
    hint: i64,
}

const INVALID: Aggregate = Aggregate {
    valid: false,
    lo: 0,
    hi: 0,
    best: NIL,
    hint: 0,
};

impl Gates {
    /// `gates[o]`: the gate of op o (`NIL`: none), dense below `n_gates`.
    pub(super) fn new(gates: &[u32], n_gates: usize, symmetry: &Symmetry) -> Self {
        let mut class: Vec<Option<u32>> = vec![None; n_gates];
        for (o, &g) in gates.iter().enumerate() {
            if g == NIL {
                continue;
            }
            let k = symmetry.class_of(o as u32);
            let c = &mut class[g as usize];
            *c = Some(match *c {
                None => k,
                Some(prev) if prev == k => k,
                Some(_) => NO_CLASS,
            });
        }
        Gates {
            class: class.into_iter().map(|c| c.unwrap_or(NO_CLASS)).collect(),
            cache: vec![INVALID; n_gates],
        }
    }

    /// Op `o` of gate `g` was lifted or put back.
    #[inline]
    pub(super) fn changed(&mut self, g: u32) {
        if g != NIL {
            self.cache[g as usize].valid = false;
        }
    }

    /// Offer the members of gate `g` called before `horizon` (a rank), the gate being open:
    /// each to `offer`, or for a single-class gate, the class's best member at once.
    pub(super) fn offer(
        &mut self,
        g: usize,
        horizon: u32,
        list: &EntryList,
        symmetry: &mut Symmetry,
        hints: &[i64],
        mut offer: impl FnMut(&mut Symmetry, u32),
    ) {
        let k = self.class[g];
        if k == NO_CLASS {
            let mut o = list.gate_first(g);
            while o != NIL && list.rank(2 * o) < horizon {
                offer(symmetry, o);
                o = list.gate_after(o);
            }
            return;
        }
        let a = &mut self.cache[g];
        if !(a.valid && a.lo < horizon && horizon <= a.hi) {
            *a = aggregate(g, horizon, list, symmetry, hints);
        }
        debug_assert!(
            a.best != NIL,
            "an open gate has a member before the horizon"
        );
        symmetry.offer_members(k, a.best, a.hint);
    }
}

/// The aggregate of gate `g`'s members called before `horizon`.
fn aggregate(
    g: usize,
    horizon: u32,
    list: &EntryList,
    symmetry: &Symmetry,
    hints: &[i64],
) -> Aggregate {
    let mut a = Aggregate {
        valid: true,
        lo: 0,
        hi: u32::MAX,
        best: NIL,
        hint: i64::MAX,
    };
    let mut o = list.gate_first(g);
    while o != NIL {
        let rank = list.rank(2 * o);
        if rank >= horizon {
            a.hi = rank;
            break;
        }
        a.lo = rank;
        let better = a.best == NIL || (symmetry.ret_of(o), o) < (symmetry.ret_of(a.best), a.best);
        if better {
            a.best = o;
        }
        a.hint = a.hint.min(hints[o as usize]);
        o = list.gate_after(o);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::model::Op;

    fn op(call: u64, ret: u64) -> Op<(), ()> {
        Op {
            id: 0,
            client: 0,
            call,
            ret,
            input: (),
            output: None,
        }
    }

    /// The class representative a single-class gate offers at `horizon`, and its hint.
    fn offered(
        gates: &mut Gates,
        list: &EntryList,
        sym: &mut Symmetry,
        horizon: u32,
    ) -> (u32, i64) {
        let hints = [0, -4, -7, 0];
        sym.begin_level();
        gates.offer(0, horizon, list, sym, &hints, |_, _| panic!("one class"));
        let best = sym.representatives().collect::<Vec<_>>();
        assert_eq!(best.len(), 1);
        (best[0], sym.hint(best[0], &hints))
    }

    /// A single-class gate offers the member with the earliest return among those called
    /// before the horizon, recomputed when the horizon passes a call or a member is lifted.
    #[test]
    fn a_single_class_gate_offers_its_best_member() {
        // Ops 1-3 are gate 0 and class 5; op 0 is neither.
        let ops = [op(0, 100), op(1, 50), op(2, 40), op(3, 60)];
        let refs: Vec<&Op<(), ()>> = ops.iter().collect();
        let mut list = EntryList::of_ops(&refs, &[NIL, 0, 0, 0], 1);
        let mut sym = Symmetry::new(&[None, Some(5), Some(5), Some(5)], &refs);
        let mut gates = Gates::new(&[NIL, 0, 0, 0], 1, &sym);
        // Calls have ranks 0-3. Before op 2's call only op 1 counts.
        assert_eq!(offered(&mut gates, &list, &mut sym, 2), (1, -4));
        assert_eq!(offered(&mut gates, &list, &mut sym, 8), (2, -7));
        list.lift(2);
        gates.changed(0);
        assert_eq!(offered(&mut gates, &list, &mut sym, 8), (1, -4));
        list.unlift(2);
        gates.changed(0);
        assert_eq!(offered(&mut gates, &list, &mut sym, 8), (2, -7));
    }
}
