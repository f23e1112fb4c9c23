//! The rules of lazy steps (`Model::lazy_resource`): which resources a run of lazy steps
//! leaves pending, and which operations may come next.

/// The lazy resources pending after an operation using `uses` was applied with `pending`
/// before it (`lazy`: the resource it changed lazily), or `None` when the step is not allowed
/// here. `multi`: the resource sets of the operations using several.
#[inline(always)]
pub(super) fn pending_after(
    pending: &[u64],
    uses: &[u64],
    multi: &[&[u64]],
    lazy: Option<u64>,
) -> Option<Vec<u64>> {
    match lazy {
        None => pending
            .iter()
            .all(|r| uses.binary_search(r).is_ok())
            .then(Vec::new),
        // Two lazy steps on one resource within a run (nothing used it in between, and the
        // lazy steps between them touch other resources only, so they commute) compose to no
        // change at all (for etcd: a grant and a revoke of a lease with no keys), or cannot
        // both succeed. A linearization holding such a pair stays valid without both (they
        // are optional), so skipping it is exact; without this the search burns every subset
        // of such pairs.
        Some(x) if pending.binary_search(&x).is_ok() => None,
        Some(x) => {
            debug_assert!(uses.binary_search(&x).is_ok(), "lazy resource not used");
            let run = run_after(pending, uses, x);
            covered(multi, &run).then_some(run)
        }
    }
}

/// Whether an operation using `uses` (`lazy_capable`: `Model::may_be_lazy`) may follow a run
/// of lazy steps that left `pending`: it uses every pending resource, or it may itself be a
/// lazy step that `pending_after` allows. Whether it is lazy at all is known only after it is
/// applied, so this keeps every operation that could succeed and drops those that would fail
/// anyway (each a wasted model step).
#[inline]
pub(super) fn may_follow(
    pending: &[u64],
    uses: &[u64],
    lazy_capable: bool,
    multi: &[&[u64]],
) -> bool {
    pending.iter().all(|r| uses.binary_search(r).is_ok())
        // Such a run holds two resources or more: only an operation using several can end
        // it (and usually none does: no vector is built then).
        || lazy_capable
            && !multi.is_empty()
            && uses.iter().any(|&x| {
                pending.binary_search(&x).is_err() && covered(multi, &run_after(pending, uses, x))
            })
}

/// The resources pending after a lazy step on `x` by an operation using `uses`: those it did
/// not use, and `x` (sorted).
fn run_after(pending: &[u64], uses: &[u64], x: u64) -> Vec<u64> {
    let mut run: Vec<u64> = pending
        .iter()
        .copied()
        .filter(|r| uses.binary_search(r).is_err())
        .collect();
    if let Err(pos) = run.binary_search(&x) {
        run.insert(pos, x);
    }
    run
}

/// Whether some operation uses every resource of `set` (`multi`: the resource sets of the
/// operations using several); a run of lazy steps no operation can end is not worth building.
fn covered(multi: &[&[u64]], set: &[u64]) -> bool {
    set.len() <= 1
        || multi
            .iter()
            .any(|m| set.iter().all(|r| m.binary_search(r).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_runs_need_an_operation_to_end_them() {
        // Lease 1 pending; an op using 1 and 2 exists.
        let multi: Vec<&[u64]> = vec![&[1, 2]];
        assert_eq!(pending_after(&[1], &[1], &multi, None), Some(vec![]));
        assert_eq!(pending_after(&[1], &[2], &multi, None), None);
        assert_eq!(pending_after(&[1], &[1], &multi, Some(1)), None);
        assert_eq!(pending_after(&[1], &[2], &multi, Some(2)), Some(vec![1, 2]));
        assert_eq!(pending_after(&[1], &[3], &multi, Some(3)), None);
        assert!(may_follow(&[1], &[1, 2], false, &multi));
        assert!(may_follow(&[1], &[2], true, &multi));
        assert!(!may_follow(&[1], &[2], false, &multi));
        assert!(!may_follow(&[1], &[3], true, &multi));
        assert!(!may_follow(&[1], &[2], true, &[]));
    }
}
