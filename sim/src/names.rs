//! How a run's participants are named in its log (`dst run --trace`, `dst replay --trace`) and
//! in its HTML report, one way everywhere: members by their member id (`member-2`; never by
//! madsim's node ids, which differ from member ids as soon as the simulator creates a node of
//! its own first), clients and watchers by their planned id, the final phase's client as
//! `final`, and a client's incarnations (after an unknown outcome it continues under a new id)
//! as `client 3 #2` in the report.

use std::collections::BTreeMap;
use std::fmt;

use faultline_invariants::html::LaneOwner;

use crate::plan::Plan;

/// The client id of the final phase's session (the write, the read of everything and the
/// hashes after the heal): above every planned client and every later incarnation.
pub const FINAL_CLIENT_ID: u64 = u64::MAX;

/// A history's client id as the log shows it: the number, or `final` for the final phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == FINAL_CLIENT_ID {
            write!(f, "final")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Members as the log shows them: `member 2`, `members 1, 3`.
pub fn members_text(members: &[u64]) -> String {
    match members {
        [] => "no member".to_string(),
        [one] => format!("member {one}"),
        many => format!(
            "members {}",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Whose incarnation each client id of a run is, for the report's lanes: the planned clients
/// (`client 3`, election clients too) and watchers (`watcher 5`), the final phase's client (`final`), and every id
/// opened after an unknown outcome (`continued`: new id → the id it continues), numbered after
/// the one it continues.
pub fn lane_owners(plan: &Plan, continued: &BTreeMap<u64, u64>) -> BTreeMap<u64, LaneOwner> {
    let first = |name: String, id: u64| LaneOwner {
        name,
        order: id,
        incarnation: 1,
    };
    let mut owners = BTreeMap::new();
    for client in &plan.clients {
        owners.insert(client.id, first(format!("client {}", client.id), client.id));
    }
    for election in &plan.elections {
        owners.insert(
            election.id,
            first(format!("client {}", election.id), election.id),
        );
    }
    for watcher in &plan.watchers {
        owners.insert(
            watcher.id,
            first(format!("watcher {}", watcher.id), watcher.id),
        );
    }
    owners.insert(FINAL_CLIENT_ID, first("final".to_string(), FINAL_CLIENT_ID));
    // Ids are handed out in order, so an id continues a planned one, the final one, or one
    // handed out before it (smaller): in id order, every predecessor is named first.
    for (&id, &previous) in continued {
        let before = owners
            .get(&previous)
            .cloned()
            .unwrap_or_else(|| panic!("client id {id} continues {previous}, never opened"));
        let incarnation = before.incarnation + 1;
        owners.insert(
            id,
            LaneOwner {
                incarnation,
                ..before
            },
        );
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scenario;

    #[test]
    fn incarnations_are_numbered_after_the_client_they_continue() {
        let plan = Plan::generate(0, &Scenario::default_scenario());
        let (client, watcher) = (plan.clients[1].id, plan.watchers[0].id);
        let next = plan.first_free_client_id();
        // The client continues twice, the watcher's session once, the final client once.
        let continued: BTreeMap<u64, u64> = [
            (next, client),
            (next + 1, watcher),
            (next + 2, next),
            (next + 3, FINAL_CLIENT_ID),
        ]
        .into_iter()
        .collect();
        let owners = lane_owners(&plan, &continued);
        let named = |id: u64| {
            let o = &owners[&id];
            (o.name.clone(), o.order, o.incarnation)
        };
        let client_name = format!("client {client}");
        assert_eq!(named(client), (client_name.clone(), client, 1));
        assert_eq!(named(next), (client_name.clone(), client, 2));
        assert_eq!(named(next + 2), (client_name, client, 3));
        assert_eq!(named(next + 1), (format!("watcher {watcher}"), watcher, 2));
        assert_eq!(named(next + 3), ("final".to_string(), FINAL_CLIENT_ID, 2));
    }

    /// In a real run, every unknown outcome opens exactly one continuation, and every client id
    /// of the history gets a lane owned by a planned client, a watcher or the final client.
    #[cfg(madsim)]
    #[test]
    fn a_runs_incarnations_all_belong_to_planned_clients() {
        use faultline_invariants::history::Outcome;
        let plan = Plan::generate(7, &Scenario::default_scenario());
        let (_, output) = crate::run_plan(&plan, &crate::runner::RunOptions::default());
        let output = output.expect("seed 7 does not panic");
        let history = &output.history;
        let continued = &output.continued_sessions;
        let mut unknown_sessions: Vec<u64> = history
            .ops
            .iter()
            .filter(|op| matches!(op.outcome, Outcome::Unknown(_)))
            .map(|op| op.client)
            .collect();
        unknown_sessions.sort_unstable();
        let mut continued_sessions: Vec<u64> = continued.values().copied().collect();
        continued_sessions.sort_unstable();
        assert!(!unknown_sessions.is_empty(), "seed 7 has unknown outcomes");
        assert_eq!(unknown_sessions, continued_sessions);
        let owners = lane_owners(&plan, continued);
        let planned = plan.clients.len() + plan.watchers.len() + 1;
        let mut names = std::collections::BTreeSet::new();
        for op in &history.ops {
            let owner = owners
                .get(&op.client)
                .expect("every client id has an owner");
            names.insert(owner.name.clone());
        }
        assert!(names.len() <= planned, "{names:?}");
        assert!(owners.values().any(|o| o.incarnation > 1));
    }

    // The leader-election scenario's clients are election clients (`Plan::elections`): their
    // continued sessions get lanes too (a fuzz campaign's reports panicked without this).
    #[test]
    fn election_clients_own_their_lanes() {
        let plan = Plan::generate(0, &Scenario::embedded("leader-election").expect("embedded"));
        let election = plan.elections[2].id;
        let next = plan.first_free_client_id();
        let continued: BTreeMap<u64, u64> = [(next, election)].into_iter().collect();
        let owners = lane_owners(&plan, &continued);
        assert_eq!(owners[&next].name, format!("client {election}"));
        assert_eq!(owners[&next].incarnation, 2);
    }

    #[test]
    fn the_final_client_and_members_have_readable_names() {
        assert_eq!(ClientId(FINAL_CLIENT_ID).to_string(), "final");
        assert_eq!(ClientId(57).to_string(), "57");
        assert_eq!(members_text(&[2]), "member 2");
        assert_eq!(members_text(&[1, 3]), "members 1, 3");
        assert_eq!(members_text(&[]), "no member");
    }
}
