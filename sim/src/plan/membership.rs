//! The operator's schedule: membership changes and leader transfers during the workload,
//! drawn from the scenario's `[membership]` table on the seed's own "operator" stream (so
//! adding them does not move the faults or the workload).
//!
//! The operator does what the etcd operator and a person at a console do: grow a cluster one
//! member at a time (add a learner, let it catch up, promote it), shrink it back, replace a
//! member whose disk is gone (remove it, start an empty member in its zone as a learner,
//! promote it once caught up), and move leadership before maintenance.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::scenario::Scenario;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipAction {
    /// Add one member (learner, caught up, promoted) in the zone with the fewest members.
    AddMember,
    /// Remove the member added most recently that is still a voter (or, with none, the
    /// highest-numbered voter that does not lead).
    RemoveMember,
    /// Remove `member` (an initial member), wipe its disk, and add an empty member in its zone.
    Replace { member: u64 },
    /// Move leadership to the `pick`-th other voter (modulo their number, in ID order).
    TransferLeader { pick: u32 },
}

/// One operator step; it starts no earlier than `at_ms` and after the step before it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipOp {
    pub at_ms: u64,
    pub action: MembershipAction,
}

pub(super) fn generate_membership(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<MembershipOp> {
    let mix = &scenario.membership;
    let mut actions = Vec::new();
    for _ in 0..mix.scale_cycles {
        actions.extend([
            MembershipAction::AddMember,
            MembershipAction::AddMember,
            MembershipAction::RemoveMember,
            MembershipAction::RemoveMember,
        ]);
    }
    for _ in 0..mix.replacements {
        let member = rng.random_range(1..=u64::from(scenario.members));
        // Replacing in the middle of a scale cycle is fine: the steps run one after another.
        let at = rng.random_range(0..=actions.len());
        actions.insert(at, MembershipAction::Replace { member });
    }
    for _ in 0..mix.leader_transfers {
        let pick = rng.random_range(0..8);
        let at = rng.random_range(0..=actions.len());
        actions.insert(at, MembershipAction::TransferLeader { pick });
    }
    // Spread the steps over the first 80% of the workload, leaving time to finish.
    let span_ms = scenario.workload_duration_ms * 8 / 10;
    let mut times: Vec<u64> = actions
        .iter()
        .map(|_| rng.random_range(span_ms / 10..=span_ms.max(1)))
        .collect();
    times.sort_unstable();
    times
        .into_iter()
        .zip(actions)
        .map(|(at_ms, action)| MembershipOp { at_ms, action })
        .collect()
}
