//! A tiny script language over the cluster harness, for interaction tests whose output is a
//! golden snapshot (insta). One command a line; `#` starts a comment line, echoed into the
//! output so the snapshot reads as a story. The first command must be `cluster`.
//!
//! ```text
//! cluster voters=3 [pre-vote] [check-quorum] [max-append=N] [max-inflight=N]
//!         [promote-lag=N] [election=N] [heartbeat=N] [canary=NAME] [seed=N]
//! elect ID                 tick ID until it campaigns, then stabilize
//! campaign ID              tick ID until it campaigns (messages stay in flight)
//! tick ID [N]              N ticks (default 1) of one node; `tick all N` ticks everyone
//! run N                    N rounds of: every live node ticks once, then stabilize
//!                          (delivered messages are counted, not listed)
//! stabilize                deliver everything, and what it causes, until the network is empty
//! deliver FILTER           deliver the matching in-flight messages (once, not what they cause)
//! drop FILTER              drop the matching in-flight messages
//! hold FILTER / copy FILTER / release
//!                          set matching messages aside (copy: a duplicate), and put every
//!                          held message back in flight
//! in-flight                list the messages in flight
//! propose ID DATA          propose on ID
//! compact ID INDEX         ID's application snapshots its state at INDEX; the log is compacted
//! add-node ID              start a new, empty node (it learns the configuration from the leader)
//! conf ID OP NODE          propose a configuration change on ID: add-voter, add-learner,
//!                          promote, remove
//! members ID               the configuration in force on ID
//! transfer ID TO           ask leader ID to hand leadership to TO
//! isolate ID / reconnect ID / heal / partition A,B,..
//! crash ID / restart ID
//! status [ID..] / log ID / progress ID / applied ID
//! ```
//! FILTER is any of `from=ID`, `to=ID`, `kind=KIND` (see `describe::kind`). Delivered
//! messages are printed as they are delivered. A safety violation or a panic (a Raft
//! assertion) is printed and ends the script.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use faultline_raft::{Canary, ConfChange, ConfChangeType, LogIndex, Message, NodeId};

use super::{describe, Cluster, ClusterOptions, Violation};

/// Runs a script and returns its transcript.
pub fn run(script: &str) -> String {
    let mut runner = Runner {
        cluster: None,
        held: Vec::new(),
        out: Vec::new(),
    };
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            runner.out.push(line.to_string());
            continue;
        }
        runner.out.push(format!("> {line}"));
        let outcome = catch_unwind(AssertUnwindSafe(|| runner.command(line)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(violation)) => {
                runner.flush_events();
                runner.out.push(format!("VIOLATION {violation}"));
                runner.out.push("(script stopped)".to_string());
                break;
            }
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".to_string());
                runner.out.push(format!("PANIC {message}"));
                runner.out.push("(script stopped)".to_string());
                break;
            }
        }
        runner.flush_events();
    }
    runner.out.join("\n") + "\n"
}

struct Runner {
    cluster: Option<Cluster>,
    held: Vec<Message>,
    out: Vec<String>,
}

fn id(word: &str) -> NodeId {
    NodeId(
        word.parse()
            .unwrap_or_else(|_| panic!("bad node id {word:?}")),
    )
}

fn number(word: &str) -> u64 {
    word.parse()
        .unwrap_or_else(|_| panic!("bad number {word:?}"))
}

/// A message filter: `from=ID to=ID kind=KIND`, all optional.
fn filter(args: &[&str]) -> impl Fn(&Message) -> bool {
    let mut from = None;
    let mut to = None;
    let mut kind = None;
    for arg in args {
        match arg.split_once('=') {
            Some(("from", value)) => from = Some(id(value)),
            Some(("to", value)) => to = Some(id(value)),
            Some(("kind", value)) => kind = Some(value.to_string()),
            _ => panic!("bad filter {arg:?}"),
        }
    }
    move |msg: &Message| {
        from.is_none_or(|from| msg.from == from)
            && to.is_none_or(|to| msg.to == to)
            && kind
                .as_deref()
                .is_none_or(|kind| describe::kind(msg) == kind)
    }
}

fn conf_change_type(word: &str) -> ConfChangeType {
    match word {
        "add-voter" => ConfChangeType::AddVoter,
        "add-learner" => ConfChangeType::AddLearner,
        "promote" => ConfChangeType::PromoteLearner,
        "remove" => ConfChangeType::RemoveNode,
        _ => panic!("unknown configuration change {word:?}"),
    }
}

fn canary(name: &str) -> Canary {
    match name {
        "vote-without-log-check" => Canary::VoteWithoutLogCheck,
        "commit-old-term" => Canary::CommitOldTerm,
        "conf-change-on-append-no-guard" => Canary::ConfChangeOnAppendNoGuard,
        "install-stale-snapshot" => Canary::InstallStaleSnapshot,
        "promote-unready-learner" => Canary::PromoteUnreadyLearner,
        _ => panic!("unknown canary {name:?}"),
    }
}

fn cluster_options(args: &[&str]) -> (ClusterOptions, u64) {
    let mut options = ClusterOptions::new(3);
    let mut seed = 1;
    for arg in args {
        match arg.split_once('=') {
            Some(("voters", value)) => options.node_count = number(value),
            Some(("max-append", value)) => options.max_entries_per_append = number(value) as usize,
            Some(("max-inflight", value)) => {
                options.limits.max_inflight_appends = number(value) as usize
            }
            Some(("promote-lag", value)) => options.limits.promote_max_lag_entries = number(value),
            Some(("election", value)) => options.election_timeout_ticks = number(value),
            Some(("heartbeat", value)) => options.heartbeat_interval_ticks = number(value),
            Some(("canary", value)) => options.canary = Some(canary(value)),
            Some(("seed", value)) => seed = number(value),
            None if *arg == "pre-vote" => options.pre_vote = true,
            None if *arg == "check-quorum" => options.check_quorum = true,
            _ => panic!("bad cluster option {arg:?}"),
        }
    }
    (options, seed)
}

impl Runner {
    fn cluster(&mut self) -> &mut Cluster {
        self.cluster
            .as_mut()
            .expect("the script must start with `cluster`")
    }

    fn flush_events(&mut self) {
        if let Some(cluster) = &mut self.cluster {
            if let Some(events) = &mut cluster.events {
                self.out.extend(events.drain(..).map(|e| format!("  {e}")));
            }
        }
    }

    fn say(&mut self, line: String) {
        self.out.push(format!("  {line}"));
    }

    fn command(&mut self, line: &str) -> Result<(), Violation> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, args) = words.split_first().expect("non-empty line");
        match *name {
            "cluster" => {
                let (options, seed) = cluster_options(args);
                let mut cluster = Cluster::new(options, seed);
                cluster.events = Some(Vec::new());
                self.cluster = Some(cluster);
                Ok(())
            }
            "elect" => {
                let node = id(args[0]);
                self.cluster().tick_until_campaign(node)?;
                self.cluster().stabilize()
            }
            "campaign" => self.cluster().tick_until_campaign(id(args[0])),
            "tick" => self.tick(args),
            "stabilize" => self.cluster().stabilize(),
            "run" => self.run_rounds(number(args[0])),
            "deliver" => self.cluster().deliver_where(filter(args)).map(|_| ()),
            "drop" | "hold" | "copy" => self.set_aside(name, args),
            "release" => {
                let held = std::mem::take(&mut self.held);
                for msg in held {
                    self.cluster().enqueue(msg);
                }
                Ok(())
            }
            "in-flight" => {
                let lines: Vec<String> =
                    self.cluster().in_flight().map(describe::message).collect();
                for line in lines {
                    self.say(line);
                }
                Ok(())
            }
            _ => self.node_command(name, args),
        }
    }

    fn tick(&mut self, args: &[&str]) -> Result<(), Violation> {
        let count = args.get(1).map_or(1, |n| number(n));
        let nodes = if args[0] == "all" {
            self.cluster().live_ids()
        } else {
            vec![id(args[0])]
        };
        for _ in 0..count {
            for node in &nodes {
                self.cluster().tick(*node)?;
            }
        }
        Ok(())
    }

    fn run_rounds(&mut self, rounds: u64) -> Result<(), Violation> {
        let cluster = self.cluster();
        let events = cluster.events.take();
        let before = cluster.stats.messages_delivered;
        let outcome = (|| {
            for _ in 0..rounds {
                for node in cluster.live_ids() {
                    cluster.tick(node)?;
                }
                cluster.stabilize()?;
            }
            Ok(())
        })();
        cluster.events = events;
        let delivered = cluster.stats.messages_delivered - before;
        self.say(format!("{delivered} messages delivered"));
        outcome
    }

    fn set_aside(&mut self, name: &str, args: &[&str]) -> Result<(), Violation> {
        let select = filter(args);
        let chosen: Vec<Message> = self
            .cluster()
            .in_flight()
            .filter(|m| select(m))
            .cloned()
            .collect();
        if name != "copy" {
            self.cluster().drop_where(&select);
        }
        for msg in chosen {
            self.say(format!("{name} {}", describe::message(&msg)));
            if name != "drop" {
                self.held.push(msg);
            }
        }
        Ok(())
    }

    fn node_command(&mut self, name: &str, args: &[&str]) -> Result<(), Violation> {
        match name {
            "propose" => {
                let data = args[1].as_bytes().to_vec();
                let outcome = self
                    .cluster()
                    .with_node(id(args[0]), |raft| raft.propose(data))?;
                let line = match outcome {
                    Some(Ok((term, index))) => format!("proposed at {index}/{term}"),
                    Some(Err(refused)) => format!("refused: {refused}"),
                    None => "node is down".to_string(),
                };
                self.say(line);
                Ok(())
            }
            "compact" => {
                let node = id(args[0]);
                self.cluster().compact(node, LogIndex(number(args[1])))?;
                let line = describe::status(self.cluster().raft(node));
                self.say(line);
                Ok(())
            }
            "add-node" => {
                self.cluster().start_node(id(args[0]));
                Ok(())
            }
            "conf" => {
                let change = ConfChange {
                    change_type: conf_change_type(args[1]),
                    node: id(args[2]),
                };
                let outcome = self.cluster().propose_conf_change(id(args[0]), change)?;
                let line = match outcome {
                    Some(Ok((term, index))) => format!("proposed at {index}/{term}"),
                    Some(Err(refused)) => format!("refused: {refused}"),
                    None => "node is down".to_string(),
                };
                self.say(line);
                Ok(())
            }
            "transfer" => {
                let (leader, to) = (id(args[0]), id(args[1]));
                let outcome = self
                    .cluster()
                    .with_node(leader, |raft| raft.transfer_leader(to))?;
                let line = match outcome {
                    Some(Ok(())) => "transfer started".to_string(),
                    Some(Err(refused)) => format!("refused: {refused}"),
                    None => "node is down".to_string(),
                };
                self.say(line);
                Ok(())
            }
            "isolate" => {
                self.cluster().isolate(id(args[0]));
                Ok(())
            }
            "reconnect" => {
                self.cluster().reconnect(id(args[0]));
                Ok(())
            }
            "heal" => {
                self.cluster().heal();
                Ok(())
            }
            "partition" => {
                let side: BTreeSet<NodeId> = args[0].split(',').map(id).collect();
                self.cluster().partition(&side);
                Ok(())
            }
            "crash" => {
                self.cluster().crash(id(args[0]));
                Ok(())
            }
            "restart" => self.cluster().restart(id(args[0])),
            _ => self.report(name, args),
        }
    }

    fn report(&mut self, name: &str, args: &[&str]) -> Result<(), Violation> {
        let cluster = self.cluster.as_ref().expect("cluster first");
        let lines: Vec<String> = match name {
            "status" => {
                let nodes: Vec<NodeId> = if args.is_empty() {
                    cluster.live_ids()
                } else {
                    args.iter().map(|a| id(a)).collect()
                };
                nodes
                    .into_iter()
                    .map(|node| describe::status(cluster.raft(node)))
                    .collect()
            }
            "log" => vec![describe::log(cluster.raft(id(args[0])))],
            "members" => vec![describe::conf_state(cluster.raft(id(args[0])).conf_state())],
            "progress" => describe::progress(cluster.raft(id(args[0]))),
            "applied" => {
                let data: Vec<String> = cluster
                    .applied(id(args[0]))
                    .iter()
                    .map(describe::entry)
                    .collect();
                vec![format!("[{}]", data.join(", "))]
            }
            _ => panic!("unknown command {name:?}"),
        };
        for line in lines {
            self.say(line);
        }
        Ok(())
    }
}
