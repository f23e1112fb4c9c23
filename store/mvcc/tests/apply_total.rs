//! `KvStore::apply` is total (issue 16): arbitrary requests of the whole grammar (every field,
//! single keys, from-key `"\0"` and prefix ranges, ignore flags, leases, nested txns over
//! overlapping keys, compares of every target and result, compaction, lease grant and revoke)
//! never panic, and after every step:
//! * the store's invariants hold (`check_invariants`), the revision never goes back and moves
//!   by at most one per request;
//! * a request `check_request` rejects gets the same error from `apply` (the check before
//!   proposal and apply agree);
//! * an error changes nothing and emits no event;
//! * a second member applying the same requests gives the same answers and the same state.
//!
//! Only the proposer's contract is kept: writes go to `apply`, reads to `read`, and a
//! LeaseGrant carries a non-zero id (the proposer picks one). LeaseKeepAlive is served by the
//! leader's `LeaseClock`, not by `KvStore`, so it is not generated.

use faultline_api::*;
use faultline_mvcc::*;
use proptest::prelude::*;
use proptest::sample::select;

/// Overlapping keys: prefixes of each other, neighbours, a 0xff byte (prefix ends), key "\0".
const KEYS: &[&[u8]] = &[b"a", b"a/1", b"a/2", b"ab", b"b", b"b\xff", b"c", b"\0"];
const VALUES: &[&[u8]] = &[b"", b"v", b"w", b"\xff"];
/// Txn op budget (etcd's --max-txn-ops): small enough for nested txns to exceed it.
const MAX_TXN_OPS: usize = 8;
/// Lease ids: 0 (none), ids the steps grant, an id never granted.
const LEASES: &[i64] = &[0, 1, 2, 3, 77];

fn key() -> impl Strategy<Value = Vec<u8>> {
    select(KEYS).prop_map(|k| k.to_vec())
}

/// Now and then the same op with an empty key (ErrEmptyKey): rare, since one such key
/// anywhere fails a whole txn.
fn or_empty_key<T: std::fmt::Debug, S: Strategy<Value = T> + 'static>(
    op: fn() -> S,
    clear_key: fn(&mut T),
    rare: u32,
) -> impl Strategy<Value = T> {
    prop_oneof![
        rare => op(),
        1 => op().prop_map(move |mut t| {
            clear_key(&mut t);
            t
        }),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    select(VALUES).prop_map(|v| v.to_vec())
}

fn lease() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0), 2 => select(LEASES)]
}

/// (key, range_end): one key, from the key on (`"\0"`), the key as a prefix, up to another
/// key (possibly before the start: an empty range), or the whole key space.
fn key_range() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    prop_oneof![
        4 => key().prop_map(|k| (k, Vec::new())),
        2 => key().prop_map(|k| (k, vec![0])),
        2 => key().prop_map(|k| {
            let end = prefix_range_end(&k);
            (k, end)
        }),
        2 => (key(), key()),
        1 => Just((vec![0], vec![0])),
    ]
}

fn revision() -> impl Strategy<Value = Revision> {
    prop_oneof![3 => Just(0), 4 => -2i64..14]
}

fn range_req() -> impl Strategy<Value = RangeRequest> {
    let sort = (
        select(&[SortOrder::None, SortOrder::Ascend, SortOrder::Descend][..]),
        select(
            &[
                SortTarget::Key,
                SortTarget::Version,
                SortTarget::Create,
                SortTarget::Mod,
                SortTarget::Value,
            ][..],
        ),
    );
    let filters = (0i64..8, 0i64..8, 0i64..8, 0i64..8);
    let flags = (any::<bool>(), any::<bool>(), any::<bool>());
    (key_range(), -1i64..4, revision(), sort, flags, filters).prop_map(
        |((key, range_end), limit, revision, (order, target), flags, filters)| RangeRequest {
            key,
            range_end,
            limit,
            revision,
            sort_order: order,
            sort_target: target,
            serializable: flags.0,
            keys_only: flags.1,
            count_only: flags.2,
            min_mod_revision: filters.0,
            max_mod_revision: filters.1,
            min_create_revision: filters.2,
            max_create_revision: filters.3,
        },
    )
}

/// Ignore flags often come without a value or lease (the valid form), sometimes with one
/// (ErrValueProvided, ErrLeaseProvided).
fn put_req() -> impl Strategy<Value = PutRequest> {
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
    );
    (key(), value(), lease(), flags, 0u8..4).prop_map(
        |(key, value, lease, (prev_kv, ignore_value, ignore_lease), keep)| PutRequest {
            key,
            value: if ignore_value && keep != 0 {
                Vec::new()
            } else {
                value
            },
            lease: if ignore_lease && keep != 0 { 0 } else { lease },
            prev_kv,
            ignore_value,
            ignore_lease,
        },
    )
}

fn del_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key_range(), any::<bool>()).prop_map(|((key, range_end), prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..14).prop_map(CompareTarget::CreateRevision),
        (0i64..14).prop_map(CompareTarget::ModRevision),
        value().prop_map(CompareTarget::Value),
        lease().prop_map(CompareTarget::Lease),
    ];
    let result = select(
        &[
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ][..],
    );
    (key_range(), target, result).prop_map(|((key, range_end), target, result)| Compare {
        result,
        target,
        key,
        range_end,
    })
}

fn txn_of(op: impl Strategy<Value = RequestOp> + Clone) -> impl Strategy<Value = TxnRequest> {
    (
        prop::collection::vec(or_empty_key(compare, |c| c.key.clear(), 150), 0..3),
        prop::collection::vec(op.clone(), 0..4),
        prop::collection::vec(op, 0..3),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

/// An op of a txn branch, nested txns up to three levels deep.
fn request_op() -> BoxedStrategy<RequestOp> {
    let leaf = prop_oneof![
        2 => or_empty_key(range_req, |r| r.key.clear(), 150).prop_map(RequestOp::Range),
        3 => or_empty_key(put_req, |p| p.key.clear(), 150).prop_map(RequestOp::Put),
        2 => or_empty_key(del_req, |d| d.key.clear(), 150).prop_map(RequestOp::DeleteRange),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| txn_of(inner).prop_map(RequestOp::Txn))
        .boxed()
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        4 => or_empty_key(put_req, |p| p.key.clear(), 20).prop_map(Request::Put),
        2 => or_empty_key(del_req, |d| d.key.clear(), 20).prop_map(Request::DeleteRange),
        6 => txn_of(request_op()).prop_map(Request::Txn),
        1 => (-1i64..8, any::<bool>()).prop_map(|(revision, physical)| {
            Request::Compact(CompactionRequest { revision, physical })
        }),
        2 => (select(&[1i64, 2, 3][..]), prop_oneof![6 => -1i64..5, 1 => Just(MAX_LEASE_TTL_SECONDS + 1)])
            .prop_map(|(id, ttl_seconds)| Request::LeaseGrant(LeaseGrantRequest { ttl_seconds, id })),
        1 => lease().prop_map(|id| Request::LeaseRevoke(LeaseRevokeRequest { id })),
        2 => or_empty_key(range_req, |r| r.key.clear(), 20).prop_map(Request::Range),
        1 => (lease(), any::<bool>())
            .prop_map(|(id, keys)| Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id, keys })),
        1 => Just(Request::LeaseLeases),
        1 => revision().prop_map(|revision| Request::HashKv(HashKvRequest { revision })),
    ]
}

/// Two members of one cluster, fed the same committed requests.
struct Members {
    store: KvStore,
    replica: KvStore,
}

impl Members {
    fn apply(&mut self, request: &Request) -> Result<(), TestCaseError> {
        let before = self.store.clone();
        let checked = self.store.check_request(request);
        let got = self.store.apply(request);
        self.store.check_invariants();
        let events = self.store.take_events();
        prop_assert_eq!(&self.replica.apply(request), &got);
        prop_assert_eq!(&self.replica.take_events(), &events);
        prop_assert_eq!(&self.replica, &self.store);
        if let Err(rejected) = checked {
            prop_assert_eq!(&got, &Err(rejected), "check_request and apply disagree");
        }
        let (from, to) = (before.current_revision(), self.store.current_revision());
        match &got {
            Err(_) => {
                prop_assert_eq!(&self.store, &before, "an error changed the state");
                prop_assert!(events.is_empty());
            }
            Ok(response) => {
                prop_assert!(to == from || to == from + 1, "revision {} -> {}", from, to);
                prop_assert_eq!(events.len() as i64, to - from);
                prop_assert!(response.header().revision <= to);
            }
        }
        Ok(())
    }

    fn read(&self, request: &Request) -> Result<(), TestCaseError> {
        let checked = self.store.check_request(request);
        let got = self.store.read(request);
        prop_assert_eq!(&self.replica.read(request), &got);
        if let Err(rejected) = checked {
            prop_assert_eq!(&got, &Err(rejected), "check_request and read disagree");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn apply_is_total_and_keeps_the_invariants(
        requests in prop::collection::vec(request(), 1..30),
    ) {
        // A small op budget, so that nested txns also meet ErrTooManyOps.
        let options = StoreOptions { max_txn_ops: MAX_TXN_OPS, ..StoreOptions::etcd_defaults() };
        let mut members = Members {
            store: KvStore::with_options(options),
            replica: KvStore::with_options(options),
        };
        for request in &requests {
            if request.is_write() {
                members.apply(request)?;
            } else {
                members.read(request)?;
            }
        }
        let restored = KvStore::restore(members.store.snapshot());
        prop_assert_eq!(&restored, &members.store);
    }
}
