//! The simulator's answer to a member that refuses to start (its synced bytes rotted and its
//! checksums found it): replace it with an empty member through the Cluster service, as an
//! operator replaces a member whose data is lost (etcd's runbook: `member remove`, wipe the
//! data directory, `member add`, start the member with `--initial-cluster-state existing`).
//! It reuses the operator's remove and add steps; the cluster is back to full size when done.

use std::time::Duration;

use madsim::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

use super::operator::{Operator, STEP_TIMEOUT};
use crate::plan::MembershipAction;
use crate::trace::{OperatorStep, TraceEvent};

/// How often the replacer looks whether a restarted member started or refused.
const RESTART_POLL: Duration = Duration::from_millis(50);
/// A member restarted after rot that neither started nor refused by then (it stayed down under
/// another fault, or was retired) is left alone.
const RESTART_WAIT: Duration = Duration::from_secs(10);
/// Replacement steps the replacer tries (each up to `STEP_TIMEOUT`) before it gives up.
const REPLACE_ATTEMPTS: u32 = 5;

impl Operator {
    /// For each member the nemesis restarted after its bytes rotted, in order: wait for its
    /// start; if it refused, replace it. Ends when the nemesis is done and all are handled.
    pub(super) async fn replace_refusing(mut self, mut restarted: UnboundedReceiver<(u64, u64)>) {
        while let Some((member, since_ns)) = restarted.recv().await {
            let action = MembershipAction::Replace { member };
            match self.refused_to_start(member, since_ns).await {
                Some(true) => self.replace_refused(member).await,
                outcome => {
                    let reason = match outcome {
                        Some(_) => "the member started despite the rot".to_owned(),
                        None => "the member neither recovered nor refused to start".to_owned(),
                    };
                    let step = OperatorStep::Skipped { reason };
                    self.ctx
                        .recorder
                        .record(TraceEvent::Operator { action, step });
                }
            }
            self.cluster.lock().expect("cluster").rot_resolved(member);
        }
    }

    fn zone_of(&self, member: u64) -> Option<u32> {
        let cluster = self.cluster.lock().expect("cluster");
        cluster.zones.get(&member).copied()
    }

    async fn refused_to_start(&self, member: u64, since_ns: u64) -> Option<bool> {
        let deadline = Instant::now() + RESTART_WAIT;
        loop {
            let outcome = self.ctx.recorder.refused_to_start_since(member, since_ns);
            if outcome.is_some() || Instant::now() >= deadline {
                return outcome;
            }
            madsim::time::sleep(RESTART_POLL).await;
        }
    }

    /// Remove the member, then add an empty one in its zone and promote it, retrying what
    /// faults keep from committing; each step done is recorded as the operator's.
    async fn replace_refused(&mut self, member: u64) {
        let action = MembershipAction::Replace { member };
        let zone = self.zone_of(member);
        let (mut removed, mut added) = (false, None);
        for _ in 0..REPLACE_ATTEMPTS {
            let deadline = Instant::now() + STEP_TIMEOUT;
            let mut done = Vec::new();
            let result = async {
                if !removed {
                    self.remove_member(member, deadline, &mut done).await?;
                    removed = true;
                }
                match added {
                    Some(id) => self.promote(id, deadline).await.map(|()| {
                        done.push(OperatorStep::Promoted { member: id });
                    }),
                    None => self.add_member(zone, deadline, &mut done).await,
                }
            }
            .await;
            // An add whose promotion failed is retried as a promotion only.
            for step in &done {
                if let OperatorStep::Added { member } = step {
                    added = Some(*member);
                }
            }
            let finished = result.is_ok();
            done.extend(result.err());
            for step in done {
                self.ctx
                    .recorder
                    .record(TraceEvent::Operator { action, step });
            }
            if finished {
                return;
            }
        }
    }
}
