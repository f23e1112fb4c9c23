//! The search's view of time: a doubly-linked list of call and return entries sorted by time,
//! from which operations are lifted as they are linearized (and put back on backtracking).
//!
//! The calls of gated operations (`Model::quick_reject_gate`) are not in the main list but in
//! one list per gate, so a level whose gate is closed costs nothing per gated call: with
//! thousands of open unknown writes of one gate, walking past each of them at every level
//! made the search quadratic in the history's length. Each entry keeps its position in the
//! time order (`rank`), so calls in a gate list compare with the main list's first return.

use super::model::Op;

/// Linked lists of call/return entries. Entry `2k` is the call of op k, `2k+1` its return;
/// `head` is the main list's sentinel.
pub(super) struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
    /// Position of each entry in time order.
    rank: Vec<u32>,
    /// Per op: the gate whose list holds its call (`NIL`: the call is in the main list).
    gate: Vec<u32>,
    /// The gate lists: nodes `0..n` are ops (their calls), node `n + g` is gate g's sentinel.
    gate_next: Vec<u32>,
    gate_prev: Vec<u32>,
}

/// No entry (the end of a list), or no gate.
pub(super) const NIL: u32 = u32::MAX;

impl EntryList {
    /// The entries of `ops` sorted by time; a call before a return at the same time; ties by
    /// op index. An operation returns no earlier than it is called. `gates[k]`: the gate of
    /// op k (dense, below `n_gates`), or `NIL`.
    pub(super) fn of_ops<I, O>(ops: &[&Op<I, O>], gates: &[u32], n_gates: usize) -> Self {
        let n = ops.len();
        debug_assert_eq!(gates.len(), n);
        let mut order: Vec<u32> = (0..2 * n as u32).collect();
        let time = |e: u32| -> (u64, u32) {
            let op = ops[(e / 2) as usize];
            if e & 1 == 0 {
                (op.call, 0)
            } else {
                (op.ret.max(op.call), 1)
            }
        };
        order.sort_by_key(|&e| (time(e), e / 2));
        let mut rank = vec![0u32; 2 * n];
        for (r, &e) in order.iter().enumerate() {
            rank[e as usize] = r as u32;
        }
        let main: Vec<u32> = order
            .iter()
            .copied()
            .filter(|&e| e & 1 == 1 || gates[(e / 2) as usize] == NIL)
            .collect();
        let (next, prev) = linked(&main, 2 * n);
        let mut gate_next = vec![NIL; n + n_gates];
        let mut gate_prev = vec![NIL; n + n_gates];
        let mut last: Vec<u32> = (n..n + n_gates).map(|s| s as u32).collect();
        for &e in order.iter().filter(|&&e| e & 1 == 0) {
            let o = e / 2;
            let g = gates[o as usize];
            if g != NIL {
                let l = &mut last[g as usize];
                gate_next[*l as usize] = o;
                gate_prev[o as usize] = *l;
                *l = o;
            }
        }
        EntryList {
            next,
            prev,
            head: 2 * n as u32,
            rank,
            gate: gates.to_vec(),
            gate_next,
            gate_prev,
        }
    }

    /// The first entry still in the main list (`NIL` when empty).
    #[inline]
    pub(super) fn first(&self) -> u32 {
        self.next[self.head as usize]
    }

    /// The entry after `e` in the main list (`NIL` at the end).
    #[inline]
    pub(super) fn after(&self, e: u32) -> u32 {
        self.next[e as usize]
    }

    /// The position of entry `e` in time order.
    #[inline]
    pub(super) fn rank(&self, e: u32) -> u32 {
        self.rank[e as usize]
    }

    /// The op of the earliest call still in gate `g`'s list (`NIL` when none).
    #[inline]
    pub(super) fn gate_first(&self, g: usize) -> u32 {
        self.gate_next[self.gate.len() + g]
    }

    /// The op whose call follows op `o`'s in its gate list (`NIL` at the end).
    #[inline]
    pub(super) fn gate_after(&self, o: u32) -> u32 {
        self.gate_next[o as usize]
    }

    /// The op of the first return entry still in the list.
    pub(super) fn first_return(&self) -> Option<u32> {
        let mut e = self.first();
        while e != NIL && e & 1 == 0 {
            e = self.after(e);
        }
        (e != NIL).then_some(e / 2)
    }

    /// Remove an op: its return first, then its call (restored in reverse).
    pub(super) fn lift(&mut self, op: u32) {
        remove(&mut self.next, &mut self.prev, 2 * op + 1);
        if self.gate[op as usize] == NIL {
            remove(&mut self.next, &mut self.prev, 2 * op);
        } else {
            remove(&mut self.gate_next, &mut self.gate_prev, op);
        }
    }

    /// Undo `lift(op)`; valid in LIFO order.
    pub(super) fn unlift(&mut self, op: u32) {
        if self.gate[op as usize] == NIL {
            restore(&mut self.next, &mut self.prev, 2 * op);
        } else {
            restore(&mut self.gate_next, &mut self.gate_prev, op);
        }
        restore(&mut self.next, &mut self.prev, 2 * op + 1);
    }
}

/// A doubly-linked list of `order` over nodes `0..n_nodes`, its sentinel at `n_nodes`.
fn linked(order: &[u32], n_nodes: usize) -> (Vec<u32>, Vec<u32>) {
    let head = n_nodes as u32;
    let mut next = vec![NIL; n_nodes + 1];
    let mut prev = vec![NIL; n_nodes + 1];
    let mut last = head;
    for &e in order {
        next[last as usize] = e;
        prev[e as usize] = last;
        last = e;
    }
    (next, prev)
}

fn remove(next: &mut [u32], prev: &mut [u32], e: u32) {
    let (p, n) = (prev[e as usize], next[e as usize]);
    next[p as usize] = n;
    if n != NIL {
        prev[n as usize] = p;
    }
}

/// Undo `remove(e)`; valid in LIFO order.
fn restore(next: &mut [u32], prev: &mut [u32], e: u32) {
    let (p, n) = (prev[e as usize], next[e as usize]);
    next[p as usize] = e;
    if n != NIL {
        prev[n as usize] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn main_entries(l: &EntryList) -> Vec<u32> {
        let mut out = vec![];
        let mut e = l.first();
        while e != NIL {
            out.push(e);
            e = l.after(e);
        }
        out
    }

    fn gate_ops(l: &EntryList, g: usize) -> Vec<u32> {
        let mut out = vec![];
        let mut o = l.gate_first(g);
        while o != NIL {
            out.push(o);
            o = l.gate_after(o);
        }
        out
    }

    /// Gated calls live in their gate's list, in time order, and keep their rank; lifting
    /// and putting back in LIFO order restores every list.
    #[test]
    fn gated_calls_leave_the_main_list_and_come_back() {
        let ops = [op(0, 10), op(1, 20), op(2, 5), op(3, 30)];
        let refs: Vec<&Op<(), ()>> = ops.iter().collect();
        let l0 = EntryList::of_ops(&refs, &[NIL, 0, NIL, 0], 1);
        let mut l = EntryList::of_ops(&refs, &[NIL, 0, NIL, 0], 1);
        // Time order: c0 c1 c2 c3 r2 r0 r1 r3; calls 1 and 3 are gated.
        assert_eq!(main_entries(&l), vec![0, 4, 5, 1, 3, 7]);
        assert_eq!(gate_ops(&l, 0), vec![1, 3]);
        assert_eq!((l.rank(2), l.rank(6), l.rank(5)), (1, 3, 4));
        assert_eq!(l.first_return(), Some(2));
        l.lift(1);
        l.lift(2);
        assert_eq!(main_entries(&l), vec![0, 1, 7]);
        assert_eq!(gate_ops(&l, 0), vec![3]);
        l.unlift(2);
        l.unlift(1);
        assert_eq!(main_entries(&l), main_entries(&l0));
        assert_eq!(gate_ops(&l, 0), gate_ops(&l0, 0));
    }
}
