//! The workload profiles' names and the key spaces they write (below every other file of
//! the workload, so that the scenario, the profiles and the runner can all name them).

use serde::{Deserialize, Serialize};

/// Keys of the mixed and etcd profiles: `k/<n>`.
pub const KEY_PREFIX: &[u8] = b"k/";
/// Every key of the Kubernetes profiles is under this prefix (watched, read at the end).
pub const PODS_PREFIX: &[u8] = b"/registry/pods/";
/// Keys of the event profile.
pub const EVENTS_PREFIX: &[u8] = b"/events/";
/// Keys of the leader-election profile.
pub const ELECTION_PREFIX: &[u8] = b"/election/";

/// What a scenario's clients send (the scenario knob `workload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadProfile {
    /// The original mixed workload over the whole etcd API (`k/<n>` keys).
    #[default]
    Mixed,
    /// etcd robustness EtcdPutDeleteLease (`ETCD_PUT_DELETE_LEASE_WEIGHTS`).
    EtcdPutDeleteLease,
    /// etcd robustness EtcdPut.
    EtcdPut,
    /// etcd robustness EtcdDelete (a regression profile: puts and deletes only).
    EtcdDelete,
    /// etcd robustness Kubernetes: pods under `/registry/pods/default/`, optimistic
    /// updates; the watchers are list-watch clients.
    Kubernetes,
    /// Kubernetes with creates and deletes instead of updates.
    KubernetesCreateDelete,
    /// Event clients: creates of ever-new keys attached to short leases.
    Events,
    /// Leader-election clients campaigning for one key (`plan::ElectionPlan`).
    LeaderElection,
}

impl WorkloadProfile {
    pub fn is_mixed(&self) -> bool {
        *self == WorkloadProfile::Mixed
    }

    /// The prefix every key of the profile lives under: watchers watch it and the final
    /// phase reads it.
    pub fn key_prefix(&self) -> &'static [u8] {
        match self {
            WorkloadProfile::Mixed
            | WorkloadProfile::EtcdPutDeleteLease
            | WorkloadProfile::EtcdPut
            | WorkloadProfile::EtcdDelete => KEY_PREFIX,
            WorkloadProfile::Kubernetes | WorkloadProfile::KubernetesCreateDelete => PODS_PREFIX,
            WorkloadProfile::Events => EVENTS_PREFIX,
            WorkloadProfile::LeaderElection => ELECTION_PREFIX,
        }
    }
}
