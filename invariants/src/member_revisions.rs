//! A member never goes back in time: every response carries the member's store revision at the
//! moment it answered (etcd's `ResponseHeader.revision`), and a member's revision only grows,
//! across its restarts too. So if a response from member M completed before another response
//! from M was even requested, the later one's revision is at least the earlier one's.
//!
//! This catches what linearizability alone cannot: a member that restarts from a snapshot
//! older than what it served (etcd #17780: revision decreasing after a crash during
//! compaction) and answers serializable reads, which are allowed to be stale but never to be
//! older than what the same member already said.

use std::collections::BTreeMap;

use crate::history::{History, Outcome};

/// One member answering with a revision lower than one it answered with before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionDecrease {
    pub member: u64,
    /// The earlier operation (it completed before `later` was invoked) and its revision.
    pub earlier_op: u64,
    pub earlier_revision: i64,
    pub later_op: u64,
    pub later_revision: i64,
}

impl std::fmt::Display for RevisionDecrease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "member {} answered operation {} at revision {} after it had answered operation {} \
             at revision {} (a member's revision never decreases, restarts included)",
            self.member, self.later_op, self.later_revision, self.earlier_op, self.earlier_revision
        )
    }
}

/// The first decrease found per member, in member order (empty: none).
pub fn check_member_revisions(history: &History) -> Vec<RevisionDecrease> {
    // Per member: (invoke, complete, revision, op id) of every answered operation.
    let mut by_member: BTreeMap<u64, Vec<(u64, u64, i64, u64)>> = BTreeMap::new();
    for op in &history.ops {
        let Outcome::Ok(response) = &op.outcome else {
            continue;
        };
        let header = response.header();
        by_member.entry(header.member_id).or_default().push((
            op.invoke_ns,
            op.complete_ns,
            header.revision,
            op.id,
        ));
    }
    let mut found = Vec::new();
    for (member, mut answers) in by_member {
        if let Some(decrease) = first_decrease(member, &mut answers) {
            found.push(decrease);
        }
    }
    found
}

/// Sweep in invocation order, folding in every answer that completed before each invocation.
fn first_decrease(member: u64, answers: &mut [(u64, u64, i64, u64)]) -> Option<RevisionDecrease> {
    let mut by_complete: Vec<(u64, i64, u64)> = answers
        .iter()
        .map(|&(_, complete, revision, id)| (complete, revision, id))
        .collect();
    by_complete.sort_unstable();
    answers.sort_unstable();
    let mut next_completed = 0;
    // The highest revision among answers completed so far, and its operation.
    let mut highest: Option<(i64, u64)> = None;
    for &(invoke, _, revision, id) in answers.iter() {
        while next_completed < by_complete.len() && by_complete[next_completed].0 < invoke {
            let (_, r, op) = by_complete[next_completed];
            if highest.is_none_or(|(h, _)| r > h) {
                highest = Some((r, op));
            }
            next_completed += 1;
        }
        if let Some((earlier_revision, earlier_op)) = highest {
            if revision < earlier_revision {
                return Some(RevisionDecrease {
                    member,
                    earlier_op,
                    earlier_revision,
                    later_op: id,
                    later_revision: revision,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use faultline_api::{RangeRequest, RangeResponse, Request, Response, ResponseHeader};

    use super::*;
    use crate::history::Operation;

    fn read(id: u64, member: u64, invoke_ns: u64, complete_ns: u64, revision: i64) -> Operation {
        Operation {
            id,
            client: id,
            member: Some(member),
            invoke_ns,
            complete_ns,
            request: Request::Range(RangeRequest {
                serializable: true,
                ..RangeRequest::default()
            }),
            outcome: Outcome::Ok(Response::Range(RangeResponse {
                header: ResponseHeader {
                    revision,
                    member_id: member,
                    ..ResponseHeader::default()
                },
                ..RangeResponse::default()
            })),
        }
    }

    fn history(ops: Vec<Operation>) -> History {
        History {
            ops,
            watches: Vec::new(),
        }
    }

    #[test]
    fn a_member_answering_an_older_revision_later_is_caught() {
        let found = check_member_revisions(&history(vec![
            read(0, 1, 0, 10, 7),
            read(1, 2, 5, 12, 3), // another member may be behind
            read(2, 1, 20, 30, 5),
        ]));
        assert_eq!(
            found,
            vec![RevisionDecrease {
                member: 1,
                earlier_op: 0,
                earlier_revision: 7,
                later_op: 2,
                later_revision: 5,
            }]
        );
        assert!(found[0]
            .to_string()
            .contains("member 1 answered operation 2 at revision 5"));
    }

    #[test]
    fn overlapping_answers_and_growing_revisions_pass() {
        assert!(check_member_revisions(&history(vec![
            read(0, 1, 0, 10, 7),
            read(1, 1, 5, 12, 6), // overlaps operation 0: either order is possible
            read(2, 1, 20, 30, 7),
            read(3, 1, 31, 40, 9),
        ]))
        .is_empty());
    }
}
