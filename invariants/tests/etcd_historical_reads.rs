//! Historical reads (ranges at an older revision) judged inside the search: a read at revision
//! R must show the store at R, in the same linearization as everything else. Limited and
//! count-only reads say things the key facts cannot express (which keys a limit left out, how
//! many keys a range holds), so before the search enforced them the first linearization could
//! disagree with such a read and the verdict was unknown (lossy-leader-churn seed 46). Each
//! history here has an unknown write the search tries first that the read rules out.

mod common;

use common::{hdr, kv, put, put_ok};
use faultline_api::*;
use faultline_invariants::check_etcd_history;
use faultline_invariants::history::{History, Operation, Outcome};
use faultline_invariants::linearizability::Verdict;

const BUDGET: u64 = 1_000_000;
const MS: u64 = 1_000_000;

fn unknown() -> Outcome {
    Outcome::Unknown("timeout".to_string())
}

/// (client, invoke ms, complete ms, request, outcome)
fn history(ops: Vec<(u64, u64, u64, Request, Outcome)>) -> History {
    History {
        ops: ops
            .into_iter()
            .enumerate()
            .map(|(i, (client, a, b, request, outcome))| Operation {
                id: i as u64,
                client,
                member: Some(1),
                invoke_ns: a * MS,
                complete_ns: b * MS,
                request,
                outcome,
            })
            .collect(),
        watches: Vec::new(),
    }
}

/// A range over [a, d) at revision 3 with `limit` and `count_only`.
fn read_at_3(limit: i64, count_only: bool) -> Request {
    Request::Range(RangeRequest {
        key: b"a".to_vec(),
        range_end: b"d".to_vec(),
        revision: 3,
        limit,
        count_only,
        ..RangeRequest::default()
    })
}

fn range_ok(header: i64, kvs: Vec<KeyValue>, more: bool, count: i64) -> Outcome {
    Outcome::Ok(Response::Range(RangeResponse {
        header: hdr(header),
        kvs,
        more,
        count,
    }))
}

/// Put b at revision 2; unknown puts of c (called first) and of a (called later, so the
/// search tries it first), one of which may fill revision 3; a put of x (outside [a, d)) at
/// revision 4; then `read` at revision 3 answered `answer`.
fn one_of_two_unknown_puts_then(read: Request, answer: Outcome) -> History {
    history(vec![
        (0, 0, 1, put("b", "1"), put_ok(2)),
        (1, 2, 3, put("c", "1"), unknown()),
        (2, 4, 5, put("a", "1"), unknown()),
        (0, 10, 11, put("x", "1"), put_ok(4)),
        (3, 12, 13, read, answer),
    ])
}

fn assert_not_linearizable_naming(h: &History, op: u64) {
    let v = check_etcd_history(h, BUDGET);
    let Verdict::NotLinearizable(report) = &v else {
        panic!("expected NotLinearizable, got {v:?}");
    };
    assert!(
        report.mismatches.iter().any(|m| m.op.id == op)
            || report.unplaceable.iter().any(|o| o.id == op),
        "the report does not name op {op}:\n{report}"
    );
}

/// Limit 1 showed b with two keys in the range: a was absent at 3 (a limit lists the
/// smallest keys first), so the unknown put of c filled revision 3, not the put of a.
#[test]
fn a_limited_read_decides_which_unknown_write_filled_its_revision() {
    let h = one_of_two_unknown_puts_then(
        read_at_3(1, false),
        range_ok(4, vec![kv("b", "1", 2, 2, 1)], true, 2),
    );
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
}

/// Limit 1 showed b with three keys in the range: revision 3 holds at most two (b and one
/// unknown put). No linearization satisfies the read: not linearizable, the read named.
#[test]
fn a_limited_read_no_linearization_satisfies_is_a_failure() {
    let h = one_of_two_unknown_puts_then(
        read_at_3(1, false),
        range_ok(4, vec![kv("b", "1", 2, 2, 1)], true, 3),
    );
    assert_not_linearizable_naming(&h, 4);
}

/// Limit 1 showed a: a can only be at revision 3 by the unknown put of a; that linearization
/// exists (the other unknown put never happened, or happened after revision 4 could not
/// matter), and the count of two keys agrees with it.
#[test]
fn a_limited_read_accepts_the_write_the_search_tries_first() {
    let h = one_of_two_unknown_puts_then(
        read_at_3(1, false),
        range_ok(4, vec![kv("a", "1", 3, 3, 1)], true, 2),
    );
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
}

/// A count-only read at revision 3 counted one key in [a, d): only b, so revision 3 was
/// filled by neither unknown put in the range. Nothing else can fill it: not linearizable.
/// With x's put unknown instead (and revision 4 made by another known write), x fills 3.
#[test]
fn a_count_only_read_is_enforced_both_ways() {
    let count_one = range_ok(4, vec![], false, 1);
    let h = one_of_two_unknown_puts_then(read_at_3(0, true), count_one.clone());
    assert_not_linearizable_naming(&h, 4);
    let h = history(vec![
        (0, 0, 1, put("b", "1"), put_ok(2)),
        (1, 2, 3, put("x", "1"), unknown()),
        (2, 4, 5, put("a", "1"), unknown()),
        (0, 10, 11, put("y", "1"), put_ok(4)),
        (3, 12, 13, read_at_3(0, true), count_one),
    ]);
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
    // Counting two keys: a (or c) filled 3; both are possible.
    let h = one_of_two_unknown_puts_then(read_at_3(0, true), range_ok(4, vec![], false, 2));
    assert_eq!(check_etcd_history(&h, BUDGET), Verdict::Linearizable);
}

/// A read at revision 1 sees the empty store, whatever the linearization (an unknown write
/// is present, so a mismatch after the search would not have been taken as proof).
#[test]
fn a_read_at_revision_one_sees_the_empty_store() {
    let at_1 = Request::Range(RangeRequest {
        key: b"b".to_vec(),
        revision: 1,
        ..RangeRequest::default()
    });
    let bad = history(vec![
        (0, 0, 1, put("b", "1"), put_ok(2)),
        (
            1,
            5,
            6,
            at_1.clone(),
            range_ok(2, vec![kv("b", "1", 2, 2, 1)], false, 1),
        ),
        (2, 7, 8, put("q", "1"), unknown()),
    ]);
    assert_not_linearizable_naming(&bad, 1);
    let good = history(vec![
        (0, 0, 1, put("b", "1"), put_ok(2)),
        (1, 5, 6, at_1, range_ok(2, vec![], false, 0)),
        (2, 7, 8, put("q", "1"), unknown()),
    ]);
    assert_eq!(check_etcd_history(&good, BUDGET), Verdict::Linearizable);
}

/// Many unknown puts compete for the unclaimed revisions, and limited reads at each of them
/// say which key each revision changed: the search must find the one assignment they allow,
/// though at every revision it tries another put first.
#[test]
fn limited_reads_at_many_revisions_pick_the_one_assignment_they_allow() {
    // Revisions 2..=9 are made by unknown puts of k7, k6, ..., k0 in that order; the put of k0
    // is called last, so the search tries it first at every revision. Revision 10 is a known
    // put. A read at each revision r with limit 1 over the whole range shows the smallest key
    // present, with the count of keys present.
    let n: i64 = 8;
    let written_at = |i: i64| 2 + (n - 1 - i);
    let mut ops = Vec::new();
    for i in 0..n {
        let call = (n - 1 - i) as u64;
        ops.push((
            1 + i as u64,
            call,
            call + 1,
            put(&format!("k{i}"), "v"),
            unknown(),
        ));
    }
    ops.push((0, 20, 21, put("z", "v"), put_ok(2 + n)));
    for r in 2..2 + n {
        let smallest = n - 1 - (r - 2);
        let read = Request::Range(RangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            revision: r,
            limit: 1,
            ..RangeRequest::default()
        });
        let w = written_at(smallest);
        let shown = kv(&format!("k{smallest}"), "v", w, w, 1);
        let count = r - 1;
        let answer = range_ok(2 + n, vec![shown], count > 1, count);
        ops.push((100 + r as u64, 30, 31, read, answer));
    }
    assert_eq!(
        check_etcd_history(&history(ops), BUDGET),
        Verdict::Linearizable
    );
}
