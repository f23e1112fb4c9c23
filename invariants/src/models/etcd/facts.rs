//! What the history shows about each key (`KeyFacts`) and each lease (`LeaseFacts`), and the
//! rules that reject a state no completion can reconcile with them. Built by the etcd
//! checker's passes (`crate::etcd`); used by the model's pruning (`prune.rs`).

use std::collections::BTreeMap;

use faultline_api::{LeaseId, RangeRequest, RangeResponse, Revision};

use super::key_table::KeyState;

/// Per-lease facts established by known responses, indexed like `EtcdModel::lease_universe`.
///
/// Why: a lease grant does not change the revision, so revisions say nothing about when an
/// unknown-outcome grant happened. When the search guesses wrong (say it grants a lease to
/// let an unknown put with that lease fill a free revision), the lease exists for the rest of
/// the branch, and the mistake shows only at the next known grant of that id, thousands of
/// levels later, after the search has backtracked over every guess in between.
/// `EtcdModel::leases_feasible` instead rejects the state as soon as the lease set changes:
///
/// * A lease present in a state at revision r must be revoked before every known operation
///   that needs it absent (a successful grant of it) at a state revision above r. Only
///   revokes remove leases (a server expiry takes part as one), so the first revoke after now is
///   either a known revoke of it whose header lies in [r, a + 1] (a: the lowest such
///   grant's revision) or an unknown revoke of it that has not been applied yet and was
///   invoked before every one of those grants completed.
/// * Symmetrically, a lease absent at revision r must be granted before every known
///   operation that needs it present (a put with it, a revoke of it, a current read showing a
///   key attached to it: in the model a key's lease always exists) above r: a known grant
///   with header in [r, a + 1], an unknown grant not applied yet invoked before all those
///   operations completed, or an unknown grant whose id the server picks.
///
/// Each requirement is recorded at the lowest state revision at which its operation can be
/// applied, so a requirement above the current revision is certainly still ahead (revisions
/// never decrease). Every rule is a necessary condition for any completion of the state, so
/// pruning never turns a linearizable history into a failure.
#[derive(Clone, Debug, Default)]
pub struct LeaseFacts {
    pub leases: Vec<LeaseTimeline>,
    /// Some unknown grant leaves the id to the server, so any absent lease may be granted.
    pub unknown_grant_of_any_id: bool,
}

/// The facts of one lease (see `LeaseFacts`).
#[derive(Clone, Debug, Default)]
pub struct LeaseTimeline {
    /// Known operations that need the lease present: (lowest state revision at which they
    /// apply, completion time ns, the smallest completion time of this entry and every later
    /// one), sorted.
    pub present_needed: Vec<(Revision, u64, u64)>,
    /// Known grants, which need the lease absent, in the same form.
    pub absent_needed: Vec<(Revision, u64, u64)>,
    /// Header revisions of known grants and of known revokes, sorted.
    pub known_grants: Vec<Revision>,
    pub known_revokes: Vec<Revision>,
    /// Unknown grants and revokes taking part in the search: (invocation ns, tag), sorted.
    pub unknown_grants: Vec<(u64, u32)>,
    pub unknown_revokes: Vec<(u64, u32)>,
}

impl LeaseTimeline {
    /// Sort the needs and fill in their suffix minima of completion time.
    pub fn finish(&mut self) {
        for needs in [&mut self.present_needed, &mut self.absent_needed] {
            needs.sort_unstable();
            let mut min_ret = u64::MAX;
            for e in needs.iter_mut().rev() {
                min_ret = min_ret.min(e.1);
                e.2 = min_ret;
            }
        }
        for v in [&mut self.known_grants, &mut self.known_revokes] {
            v.sort_unstable();
        }
        for v in [&mut self.unknown_grants, &mut self.unknown_revokes] {
            v.sort_unstable();
        }
    }

    /// Whether the lease, `present` or not in a state at revision `r` whose applied unknown
    /// lease operations are `applied`, can still meet every later known requirement.
    pub(super) fn feasible(
        &self,
        present: bool,
        r: Revision,
        applied: &[u32],
        any_id_grant: bool,
    ) -> bool {
        let (needs, known_flips, unknown_flips) = if present {
            (
                &self.absent_needed,
                &self.known_revokes,
                &self.unknown_revokes,
            )
        } else {
            if any_id_grant {
                return true;
            }
            (
                &self.present_needed,
                &self.known_grants,
                &self.unknown_grants,
            )
        };
        let i = needs.partition_point(|e| e.0 <= r);
        let Some(&(a, _, deadline_ns)) = needs.get(i) else {
            return true;
        };
        // A known operation that flips the lease may lie between now and the first need.
        let lo = known_flips.partition_point(|&h| h < r);
        if known_flips.get(lo).is_some_and(|&h| h <= a + 1) {
            return true;
        }
        // Otherwise an unknown one not applied yet, invoked before every need completed.
        unknown_flips
            .iter()
            .take_while(|(call, _)| *call < deadline_ns)
            .any(|(_, tag)| applied.binary_search(tag).is_err())
    }
}

/// The state of one key at one revision, as a response showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyObs {
    Absent,
    Present {
        create_revision: Revision,
        mod_revision: Revision,
        version: i64,
        lease: LeaseId,
        /// `None` when the response omitted values (keys_only).
        value: Option<Vec<u8>>,
    },
}

/// Per-key facts established by known responses, indexed like `EtcdModel::keys`.
///
/// Why: in an etcd history almost every revision is claimed by a known write, so the search
/// is only ever unsure which unknown write filled a revision nobody claims. A wrong choice
/// shows only at the next observation of the key, often thousands of steps later, and the
/// memo cannot merge the branches (their sets of decided operations differ). Counting lets
/// `EtcdModel::feasible` reject the wrong choice at once: between now (revision r) and the
/// next observation of a key in the same generation, the key's version must grow by exactly
/// the number of puts in (r, mod_revision], which is at least the known puts there and at
/// most what the revisions there can hold. Every rule is a necessary condition for any
/// complete linearization, so pruning never turns a linearizable history into a failure.
#[derive(Clone, Debug, Default)]
pub struct KeyFacts {
    /// Observations per key, sorted by revision.
    pub obs: Vec<Vec<(Revision, KeyObs)>>,
    /// Per key: claimed revisions whose writer certainly puts the key (sorted).
    pub definite_puts: Vec<Vec<Revision>>,
    /// Per key: claimed revisions whose writer may put the key, once per possible put.
    pub may_put: Vec<Vec<Revision>>,
    /// Per key: claimed revisions whose writer may delete the key.
    pub may_delete: Vec<Vec<Revision>>,
    /// Revisions no known write claims (sorted): any unclaimed writer may produce them.
    pub unclaimed: Vec<Revision>,
    /// Per key: the most puts of the key one unclaimed writer can make.
    pub unclaimed_max_puts: Vec<i64>,
    /// Per key: whether some unclaimed writer may delete the key.
    pub unclaimed_may_delete: Vec<bool>,
}

/// Entries of a sorted list in (a, b].
fn count_in(sorted: &[Revision], a: Revision, b: Revision) -> i64 {
    if b <= a {
        return 0;
    }
    (sorted.partition_point(|&x| x <= b) - sorted.partition_point(|&x| x <= a)) as i64
}

impl KeyFacts {
    fn most_puts_in(&self, k: usize, a: Revision, b: Revision) -> i64 {
        count_in(&self.may_put[k], a, b)
            + count_in(&self.unclaimed, a, b) * self.unclaimed_max_puts[k]
    }

    fn may_delete_in(&self, k: usize, a: Revision, b: Revision) -> bool {
        count_in(&self.may_delete[k], a, b) > 0
            || (self.unclaimed_may_delete[k] && count_in(&self.unclaimed, a, b) > 0)
    }

    /// Whether key `k` in state `ks` at revision `r` can still become what its next
    /// observations show: every observation of the first revision at or after `r` that has
    /// one. (Several responses may show one revision, one of them with less: a keys-only read
    /// has no value where a watch event has one. Judging only the first let an unknown put
    /// fill a revision a watch had shown holding another value: default seed 763.)
    pub(super) fn key_feasible(&self, k: usize, ks: Option<&KeyState>, r: Revision) -> bool {
        let obs = &self.obs[k];
        let i = obs.partition_point(|(at, _)| *at < r);
        let Some(&(first_at, _)) = obs.get(i) else {
            return true;
        };
        debug_assert!(first_at >= r);
        obs[i..]
            .iter()
            .take_while(|(at, _)| *at == first_at)
            .all(|(at, o)| self.obs_reachable(k, ks, r, *at, o))
    }

    /// Whether key `k` in state `ks` at revision `r` can become `o` at revision `at` (>= r).
    fn obs_reachable(
        &self,
        k: usize,
        ks: Option<&KeyState>,
        r: Revision,
        at: Revision,
        o: &KeyObs,
    ) -> bool {
        match (o, ks) {
            (KeyObs::Absent, None) => true,
            // Present now, absent at `at`: a delete must fit in (r, at].
            (KeyObs::Absent, Some(_)) => self.may_delete_in(k, r, at),
            (
                KeyObs::Present {
                    create_revision,
                    mod_revision,
                    version,
                    lease,
                    value,
                },
                ks,
            ) => {
                if *mod_revision <= r {
                    // Unchanged from mod_revision to `at`, and r lies in between.
                    ks.is_some_and(|s| {
                        s.create_revision == *create_revision
                            && s.mod_revision == *mod_revision
                            && s.version == *version
                            && s.lease == *lease
                            && value.as_ref().is_none_or(|v| *s.value == **v)
                    })
                } else if *create_revision <= r {
                    // Same generation, modified in (r, mod_revision] by exactly
                    // `version - s.version` puts and no delete.
                    let Some(s) = ks else { return false };
                    if s.create_revision != *create_revision {
                        return false;
                    }
                    let need = *version - s.version;
                    need >= 1
                        && need >= count_in(&self.definite_puts[k], r, *mod_revision)
                        && need <= self.most_puts_in(k, r, *mod_revision)
                } else {
                    // A new generation starts at create_revision: a live key must be deleted
                    // before it.
                    ks.is_none() || self.may_delete_in(k, r, *create_revision - 1)
                }
            }
        }
    }
}

/// The historical reads of a history (ranges with `revision > 0` and a known response), by
/// the revision they read; `EtcdModel::reads_at_feasible` (`prune.rs`) judges them.
///
/// Enforced inside the search: a range at revision R must show the store at R, exactly.
///
/// Why here: a historical read is placed in the linearization at its header revision, long
/// after R, when the state at R is gone; `apply` can only check its header there. But the key
/// table at revision R is fixed the moment a step reaches R: every later change of a key makes
/// a new revision (lease grants, revokes of leases without keys and compactions change no
/// key). So the step that produces revision R is where every read at R is judged: the range
/// evaluated on that step's new state must give the response's KVs, `more` and `count`. The
/// rule depends on the step and the state it leads to only, so the memo stays sound; it is a
/// necessary condition of every linearization, and with the header check (which makes the
/// store reach R before the read is placed) also sufficient, so the linearization found
/// agrees with every historical read and no post-check can disagree with it.
///
/// (The key facts, `KeyFacts`, prune the same reads earlier by counting, but cannot say what
/// a limited or count-only range shows about the keys it does not list.)
#[derive(Clone, Debug, Default)]
pub struct ReadsAt {
    pub(super) by_revision: BTreeMap<Revision, Vec<(RangeRequest, RangeResponse)>>,
}

impl ReadsAt {
    /// Add a read at `req.revision` (> 0) and what it returned.
    pub fn add(&mut self, req: &RangeRequest, resp: &RangeResponse) {
        debug_assert!(req.revision > 0);
        self.by_revision
            .entry(req.revision)
            .or_default()
            .push((req.clone(), resp.clone()));
    }

    pub fn is_empty(&self) -> bool {
        self.by_revision.is_empty()
    }

    /// How many reads.
    pub fn len(&self) -> usize {
        self.by_revision.values().map(Vec::len).sum()
    }
}
