//! Aimed crashes (`Fault::AimedCrash`, issue 13): crashes that land at a moment of a member's
//! own work instead of a random instant, so that a bug living in the few milliseconds between
//! a decision and its fsync is reached. The members' observer ([`AimedObserver`]) hears of
//! each [`Moment`] inside the member's task, halts the member there (`MomentAction::Halt`),
//! and a task on a node of the simulator's own crashes it (a power loss) 2 ms later, when
//! whatever the halted Ready sent has left, then restarts it.
//!
//! Imports run one way: `cluster` → `aimed` → `cuts`; the cluster is reached through the
//! [`Crasher`] trait.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use faultline_node::{Moment, MomentAction, NodeEvent, Observer};
use madsim::runtime::NodeHandle;
use rand::seq::SliceRandom;

use super::cuts::PeerCuts;
use crate::plan::{CrashMoment, Fault};
use crate::trace::{Recorder, TraceEvent};

/// How long after the halt the member is crashed: madsim's datagrams wait 1 ms (plus a few
/// microseconds) in the sender's task before the network takes them, so a crash sooner could
/// still stop what the halted Ready sent. The member does nothing in between (halted).
const CRASH_DELAY_MS: u64 = 2;

/// What the aimed crashes need of the cluster (implemented by `Cluster`).
pub(super) trait Crasher: Send {
    /// Kill the member's process; its disk loses what was not synced.
    fn crash(&mut self, member: u64);
    /// Undo one `crash` of the member, unless the final heal restarted it already.
    fn restart_if_down(&mut self, member: u64);
    /// The members a fault may hit now.
    fn live_members(&self) -> Vec<u64>;
}

/// How far the open window got.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for its moment.
    Armed,
    /// `AfterVote`: a candidate's vote requests reach only `electors`.
    Campaign {
        candidate: u64,
        term: u64,
        electors: Vec<u64>,
    },
    /// The window's crash happened (once per window).
    Fired,
}

/// The open aimed-crash window (windows never overlap) and what it holds down.
pub(super) struct AimedCrashes {
    window: Option<(CrashMoment, u64)>,
    stage: Stage,
    /// `AfterVote`: the leader crashed at the window's start, until the voter restarts (or
    /// the window ends).
    leader_down: Option<u64>,
    /// Directed links this window cut (restored at its end).
    cut: Vec<(u64, u64)>,
    /// Set by the final heal: nothing is aimed at any more.
    healed: bool,
    /// Moments seen and crashes fired, per kind (for tests).
    pub(super) fired: Vec<(u64, Moment)>,
    rng: rand_chacha::ChaCha8Rng,
    peer_cuts: Arc<Mutex<PeerCuts>>,
    recorder: Arc<Recorder>,
    /// Set once the cluster is shared (`runner::simulate_in_runtime`).
    pub(super) cluster: Option<Weak<Mutex<dyn Crasher>>>,
    /// A node of the simulator's own runs the crashes (a member's node dies with it).
    pub(super) timer: NodeHandle,
}

impl AimedCrashes {
    pub(super) fn new(
        rng: rand_chacha::ChaCha8Rng,
        peer_cuts: Arc<Mutex<PeerCuts>>,
        recorder: Arc<Recorder>,
        timer: NodeHandle,
    ) -> AimedCrashes {
        AimedCrashes {
            window: None,
            stage: Stage::Armed,
            leader_down: None,
            cut: Vec::new(),
            healed: false,
            fired: Vec::new(),
            rng,
            peer_cuts,
            recorder,
            cluster: None,
            timer,
        }
    }

    /// A window opens; `leader` is crashed first for `AfterVote` (an election must follow).
    pub(super) fn open(
        &mut self,
        moment: CrashMoment,
        restart_after_ms: u64,
        leader: Option<u64>,
        crasher: &mut dyn Crasher,
    ) {
        assert!(self.window.is_none(), "aimed-crash windows never overlap");
        self.window = Some((moment, restart_after_ms));
        self.stage = Stage::Armed;
        if moment == CrashMoment::AfterVote {
            if let Some(leader) = leader {
                crasher.crash(leader);
                self.leader_down = Some(leader);
            }
        }
    }

    /// The window closes: the candidate's links are restored, a leader still down restarts.
    pub(super) fn close(&mut self, crasher: &mut dyn Crasher) {
        self.window = None;
        self.stage = Stage::Armed;
        if let Some(leader) = self.leader_down.take() {
            crasher.restart_if_down(leader);
        }
        self.restore_cuts();
    }

    fn restore_cuts(&mut self) {
        let mut peer_cuts = self.peer_cuts.lock().expect("peer cuts");
        for (from, to) in std::mem::take(&mut self.cut) {
            peer_cuts.restore_link(from, to);
        }
    }

    /// The final heal: the peer cuts were healed wholesale; nothing more is aimed at.
    pub(super) fn heal(&mut self) {
        self.window = None;
        self.healed = true;
        self.cut.clear();
        self.leader_down = None;
    }

    fn cut_both_ways(&mut self, a: u64, b: u64) {
        let mut peer_cuts = self.peer_cuts.lock().expect("peer cuts");
        for link in [(a, b), (b, a)] {
            peer_cuts.cut_link(link.0, link.1);
            self.cut.push(link);
        }
    }

    /// `AfterVote`: the first candidate of the window. Its vote requests may reach only as
    /// many voters as it needs (the electors); the rest, with the crashed leader, will make a
    /// majority with the elector that is crashed.
    fn on_candidate(&mut self, candidate: u64, term: u64, members: Vec<u64>) {
        let mut others: Vec<u64> = members
            .into_iter()
            .filter(|&m| m != candidate && Some(m) != self.leader_down)
            .collect();
        others.shuffle(&mut self.rng);
        let voters = others.len() + 1 + usize::from(self.leader_down.is_some());
        let needed = voters / 2; // besides the candidate's own vote
        if others.len() < needed || needed == 0 {
            return;
        }
        let electors = others[..needed].to_vec();
        let shut_out: Vec<u64> = others[needed..]
            .iter()
            .copied()
            .chain(self.leader_down)
            .collect();
        for other in shut_out {
            self.cut_both_ways(candidate, other);
        }
        self.stage = Stage::Campaign {
            candidate,
            term,
            electors,
        };
    }

    /// Does this moment of `member` fire the window's crash?
    fn aims_at(&self, member: u64, moment: Moment) -> bool {
        let Some((wanted, _)) = self.window else {
            return false;
        };
        match (wanted, moment, &self.stage) {
            (CrashMoment::AfterAppendAck, Moment::AppendAcked { .. }, Stage::Armed)
            | (CrashMoment::BeforeSync, Moment::BeforeSync { .. }, Stage::Armed)
            | (CrashMoment::MidSnapshot, Moment::MidSnapshot { .. }, Stage::Armed) => true,
            (
                CrashMoment::AfterVote,
                Moment::VoteGranted { term, candidate },
                Stage::Campaign {
                    candidate: c,
                    term: t,
                    electors,
                },
            ) => candidate == *c && term == *t && electors.contains(&member),
            _ => false,
        }
    }

    /// The member is halted at its moment: crash it 2 ms later (what it sent has left), and
    /// restart it `restart_after_ms` after that. For `AfterVote`, the candidate is cut from
    /// its peers until the window ends, and the leader restarts with the voter.
    fn fire(this: &Arc<Mutex<AimedCrashes>>, member: u64, moment: Moment) {
        let mut aimed = this.lock().expect("aimed crashes");
        let (_, restart_after_ms) = aimed.window.expect("fires in a window");
        let candidate = match &aimed.stage {
            Stage::Campaign { candidate, .. } => Some(*candidate),
            _ => None,
        };
        let leader = aimed.leader_down.take();
        aimed.stage = Stage::Fired;
        aimed.fired.push((member, moment));
        let crasher = aimed.cluster.clone().expect("armed after start");
        let recorder = aimed.recorder.clone();
        let this = this.clone();
        aimed.timer.spawn(async move {
            madsim::time::sleep(Duration::from_millis(CRASH_DELAY_MS)).await;
            let Some(crasher) = crasher.upgrade() else {
                return;
            };
            // Only now: a cut made inside the voter's task would have stopped its grant.
            if let Some(candidate) = candidate {
                let mut aimed = this.lock().expect("aimed crashes");
                if !aimed.healed && aimed.window.is_some() {
                    aimed.cut_both_ways(candidate, member);
                }
            }
            let fault = Fault::Crash { member };
            let members = vec![member];
            recorder.record(TraceEvent::FaultStart {
                fault,
                members: members.clone(),
            });
            crasher.lock().expect("cluster").crash(member);
            madsim::time::sleep(Duration::from_millis(restart_after_ms)).await;
            let mut crasher = crasher.lock().expect("cluster");
            crasher.restart_if_down(member);
            if let Some(leader) = leader {
                crasher.restart_if_down(leader);
            }
            recorder.record(TraceEvent::FaultEnd { fault, members });
        });
    }
}

/// Members' observer when the plan has aimed crashes: passes events on, tells the aimed
/// crashes of candidates, and halts a member at the open window's moment.
pub(super) struct AimedObserver {
    pub(super) inner: Arc<dyn Observer>,
    pub(super) aimed: Arc<Mutex<AimedCrashes>>,
}

impl Observer for AimedObserver {
    fn on_event(&self, member: u64, event: NodeEvent) {
        let candidacy = match &event {
            NodeEvent::RoleChanged { role, term, .. } if role == "Candidate" => Some(*term),
            _ => None,
        };
        self.inner.on_event(member, event);
        let Some(term) = candidacy else {
            return;
        };
        let mut aimed = self.aimed.lock().expect("aimed crashes");
        // A campaign that ended without a grant (a split vote, say) gives way to the next.
        let waiting = match &aimed.stage {
            Stage::Armed => true,
            Stage::Campaign { term: t, .. } => *t < term,
            Stage::Fired => false,
        };
        if !waiting || aimed.healed || !matches!(aimed.window, Some((CrashMoment::AfterVote, _))) {
            return;
        }
        aimed.restore_cuts();
        let Some(crasher) = aimed.cluster.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        // The cluster is never locked across an await, and a member's task never holds it.
        let members = crasher.lock().expect("cluster").live_members();
        aimed.on_candidate(member, term, members);
    }

    fn on_moment(&self, member: u64, moment: Moment) -> MomentAction {
        let inner = self.inner.on_moment(member, moment);
        let aims = {
            let aimed = self.aimed.lock().expect("aimed crashes");
            !aimed.healed && aimed.aims_at(member, moment)
        };
        if !aims {
            return inner;
        }
        AimedCrashes::fire(&self.aimed, member, moment);
        MomentAction::Halt
    }
}
