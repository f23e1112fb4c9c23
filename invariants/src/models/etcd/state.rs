//! The etcd model's state (`EtcdState`, one `KeyState` per live key) and what it steps on
//! (`EtcdInput`).

use std::rc::Rc;

use faultline_api::{KeyValue, LeaseId, Request, Revision};

use super::key_table::{KeyState, KeyTable};

/// The store. The key and lease tables are shared between states until a step changes them
/// (`Rc::make_mut`; the key table one chunk at a time): a read's successor, and every state the search keeps on its stack for
/// backtracking, then costs no copy of them. Sharing changes neither equality, order nor
/// hash (those of `Rc<T>` are `T`'s), so memo fingerprints are the same as without it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtcdState {
    pub revision: Revision,
    pub compact_revision: Revision,
    /// Indexed like `EtcdModel::keys`; `None` = absent. Shared per chunk (`KeyTable`).
    pub keys: KeyTable,
    /// Sorted.
    pub leases: Rc<Vec<LeaseId>>,
    /// Tags (`EtcdInput::lease_op_tag`) of the unknown-outcome lease grants and revokes
    /// applied so far, sorted. Bookkeeping for `LeaseFacts` (which of them are still
    /// available). It follows from which operations were decided and whether each was applied
    /// or dropped, most of which the search's memo key (the set of decided operations) already
    /// tells, so it seldom splits a memo entry.
    pub unknown_lease_ops_applied: Rc<Vec<u32>>,
}

/// An operation as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdInput {
    pub request: Request,
    /// For known outcomes: whether the response shows a new revision (`None`: cannot tell,
    /// LeaseRevoke).
    pub mutating: Option<bool>,
    /// For unknown outcomes: the revision this write must produce, when a response observed
    /// one of its (unique) values.
    pub pin: Option<Revision>,
    /// A serializable read: compared with the state at its header revision.
    pub serializable: bool,
    /// When the operation was invoked: unknown writes that are candidates for the same
    /// revision are tried newest first (the write that filled a revision was most likely
    /// invoked shortly before it).
    pub invoke_ns: u64,
    /// For unknown, unpinned writes: a class of writes no response can tell apart (same
    /// request up to a value nobody observes; see `Model::interchangeable_class`).
    pub class: Option<u64>,
    /// For unknown lease grants (with an id) and revokes taking part in the search: a tag
    /// unique to the operation, recorded in `EtcdState::unknown_lease_ops_applied` when it
    /// is applied (see `LeaseFacts`).
    pub lease_op_tag: Option<u32>,
    /// A lease expiry the server carries out (`etcd::expiry`), not a client's request:
    /// `request` is a `LeaseRevoke` of the lease, with an unknown outcome. `Some(true)`: it
    /// must take effect by the operation's `ret` (its deadline), and may then find the lease
    /// already revoked (a no-op); `Some(false)`: it may take effect after its `call`, or never,
    /// like an unknown revoke.
    pub expiry: Option<bool>,
}

impl EtcdInput {
    /// A server expiry that must take effect by its deadline.
    pub fn is_required_expiry(&self) -> bool {
        self.expiry == Some(true)
    }
}

/// Whether a range was served from the current state or a historical revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    Current,
    Historical,
}

/// A key's state as the API shows it.
pub(crate) fn kv_of(key: &[u8], ks: &KeyState) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: ks.create_revision,
        mod_revision: ks.mod_revision,
        version: ks.version,
        value: ks.value.to_vec(),
        lease: ks.lease,
    }
}
