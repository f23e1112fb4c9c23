//! The search's view of time: a doubly-linked list of call and return entries sorted by time,
//! from which operations are lifted as they are linearized (and put back on backtracking).

use super::model::Op;

/// Linked list of call/return entries. Entry `2k` is the call of op k, `2k+1` its return;
/// `head` is a sentinel.
pub(super) struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

/// No entry (the end of the list).
pub(super) const NIL: u32 = u32::MAX;

impl EntryList {
    /// The entries of `ops` sorted by time; a call before a return at the same time; ties by
    /// op index. An operation returns no earlier than it is called.
    pub(super) fn of_ops<I, O>(ops: &[&Op<I, O>]) -> Self {
        let n = ops.len();
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
        EntryList::new(&order, 2 * n)
    }

    fn new(order: &[u32], n_entries: usize) -> Self {
        let head = n_entries as u32;
        let mut next = vec![NIL; n_entries + 1];
        let mut prev = vec![NIL; n_entries + 1];
        let mut last = head;
        for &e in order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        EntryList { next, prev, head }
    }

    /// The first entry still in the list (`NIL` when empty).
    #[inline]
    pub(super) fn first(&self) -> u32 {
        self.next[self.head as usize]
    }

    /// The entry after `e` (`NIL` at the end).
    #[inline]
    pub(super) fn after(&self, e: u32) -> u32 {
        self.next[e as usize]
    }

    /// The op of the first return entry still in the list.
    pub(super) fn first_return(&self) -> Option<u32> {
        let mut e = self.first();
        while e != NIL && e & 1 == 0 {
            e = self.after(e);
        }
        (e != NIL).then_some(e / 2)
    }

    fn remove(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Undo `remove(e)`; valid in LIFO order.
    fn restore(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Remove an op: its return first, then its call (restored in reverse).
    pub(super) fn lift(&mut self, op: u32) {
        self.remove(2 * op + 1);
        self.remove(2 * op);
    }

    pub(super) fn unlift(&mut self, op: u32) {
        self.restore(2 * op);
        self.restore(2 * op + 1);
    }
}
