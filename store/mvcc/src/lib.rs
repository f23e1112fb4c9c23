//! etcd's revisioned key space as a pure, deterministic library (etcd-semantics.md §1-§9).
//!
//! Three independent parts:
//! * [`KvStore`]: the replicated state machine. Every member applies the committed Raft log
//!   with [`KvStore::apply`]; the same sequence of applies gives bit-identical state (and the
//!   same [`KvStore::hash_kv`]) everywhere. No time, no I/O, no hash-order dependence.
//!   [`KvStore::check_request`] is the check of a client's request before proposal (apply
//!   repeats it); apply never panics on a request a client could send ([`KvStore::apply`]).
//!   Local reads go through [`KvStore::read`] / [`KvStore::range`]. Watch events of applies are
//!   collected until [`KvStore::take_events`].
//! * [`WatchHub`]: watchers over a store's history and its new events (see [`watch`]).
//! * [`LeaseClock`]: the leader-only, non-replicated lease expiry (see [`lease_clock`]).
//!
//! # Choices worth knowing
//! * `compact_revision()` is -1 before any compaction (etcd's initial compactMainRev; HashKV
//!   reports it), so `Compact{revision: 0}` is accepted once on a fresh store.
//! * Compaction at R keeps every record written exactly at R, tombstones included (reads see
//!   the key as absent either way) so that a watch from R still gets that deletion (etcd
//!   #18089/#19179 fixes), also when one txn deleted and re-created the key at R.
//! * The minimum lease TTL is replicated configuration: [`StoreOptions`], default 2 s
//!   (etcd's ceil(1.5 x 1 s election timeout)); [`StoreOptions::for_election_timeout_ms`].
//! * Range revisions <= 0 mean "latest"; inside a txn a negative revision below the compact
//!   revision fails the txn with ErrCompacted first, as etcd's checkRange does (and so any
//!   negative revision once something was compacted).
//! * Sorting by a non-key target keeps key order among equal values (stable sort). With order
//!   NONE, a limit and no min/max filter, only the first limit + 1 keys (in key order) are
//!   sorted, as etcd does (it reads everything only for an explicit order or a filter).
//! * ErrDuplicateKey, like etcd's interval tree, reads a delete range end of `"\0"` as the
//!   empty interval: a put under such a delete in the same branch is accepted (and executes
//!   in op order), although the delete itself removes every key from its start on.
//!   Unlike etcd, a put with ignore_value/ignore_lease after a delete of the same branch that
//!   may remove its key is ErrKeyNotFound, whatever the state: etcd 3.4.23 accepts such a txn
//!   and crashes at apply (issue 16; [`KvStore::check_request`], DIFFERENCES.md).
//! * Nested txn response headers are zero; inner put/delete/range headers follow etcd
//!   (begin + 1 after a change) but are not meant to be interpreted.
//! * `KvStore::read` of LeaseTimeToLive returns the granted TTL as `ttl_seconds` (-1 if
//!   unknown); the node overrides it with the leader's `LeaseClock::remaining_ttl`.

pub mod lease_clock;
mod store;
pub mod watch;

pub use lease_clock::LeaseClock;
pub use store::{
    KvCanary, KvStore, LeaseCheckpoint, LeaseRecord, Record, Rev, Snapshot, StoreOptions,
    MAX_LEASE_TTL_SECONDS, MAX_TXN_OPS_DEFAULT, MIN_LEASE_TTL_SECONDS_DEFAULT,
};
pub use watch::{StreamId, WatchCanary, WatchHub, WatchHubOptions, WatchOutput};
