//! One-line descriptions of messages and node states, for scripted tests' golden output.

use faultline_raft::{AppendResult, ConfState, Entry, EntryKind, Message, MessageBody, Raft};

/// `index/term`, and the data as text when it is printable (`-` for the no-op), or the
/// configuration change.
pub fn entry(entry: &Entry) -> String {
    if let EntryKind::ConfChange { change, .. } = &entry.kind {
        return format!("{}/{} conf:{change}", entry.index, entry.term);
    }
    let data = if entry.data.is_empty() {
        "-".to_string()
    } else if entry.data.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(&entry.data).into_owned()
    } else {
        format!("{} bytes", entry.data.len())
    };
    format!("{}/{} {data}", entry.index, entry.term)
}

fn entries(entries: &[Entry]) -> String {
    let described: Vec<String> = entries.iter().map(entry).collect();
    format!("[{}]", described.join(", "))
}

/// `from->to term=T Kind fields`.
pub fn message(msg: &Message) -> String {
    let body = match &msg.body {
        MessageBody::PreVote {
            last_log_index,
            last_log_term,
        } => format!("PreVote last={last_log_index}/{last_log_term}"),
        MessageBody::PreVoteResponse { granted } => format!("PreVoteResponse granted={granted}"),
        MessageBody::RequestVote {
            last_log_index,
            last_log_term,
            leader_transfer,
        } => format!(
            "RequestVote last={last_log_index}/{last_log_term}{}",
            if *leader_transfer {
                " leader-transfer"
            } else {
                ""
            }
        ),
        MessageBody::RequestVoteResponse { granted } => {
            format!("RequestVoteResponse granted={granted}")
        }
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: sent,
            leader_commit,
        } => format!(
            "Append prev={prev_log_index}/{prev_log_term} commit={leader_commit} {}",
            entries(sent)
        ),
        MessageBody::AppendEntriesResponse { result } => match result {
            AppendResult::Accepted { match_index } => format!("AppendResponse match={match_index}"),
            AppendResult::Rejected {
                rejected_prev_index,
                hint_index,
                hint_term,
            } => format!(
                "AppendResponse rejected prev={rejected_prev_index} hint={hint_index}/{hint_term}"
            ),
        },
        MessageBody::Heartbeat {
            leader_commit,
            read_ctx,
        } => format!(
            "Heartbeat commit={leader_commit}{}",
            read_ctx_suffix(*read_ctx)
        ),
        MessageBody::HeartbeatResponse { read_ctx } => {
            format!("HeartbeatResponse{}", read_ctx_suffix(*read_ctx))
        }
        MessageBody::InstallSnapshot { snapshot } => format!(
            "InstallSnapshot index={}/{} {} data={} bytes",
            snapshot.metadata.index,
            snapshot.metadata.term,
            conf_state(&snapshot.metadata.conf_state),
            snapshot.data.len()
        ),
        MessageBody::TimeoutNow => "TimeoutNow".to_string(),
    };
    format!("{}->{} term={} {body}", msg.from, msg.to, msg.term)
}

fn read_ctx_suffix(read_ctx: Option<u64>) -> String {
    read_ctx.map_or_else(String::new, |ctx| format!(" read_ctx={ctx}"))
}

fn ids<'a>(ids: impl Iterator<Item = &'a faultline_raft::NodeId>) -> Vec<u64> {
    ids.map(|id| id.0).collect()
}

/// `node role (membership) term=T leader=L commit=C applied=A last=I/T snapshot=S`.
pub fn status(raft: &Raft) -> String {
    let s = raft.status();
    let leader = s.leader.map_or_else(|| "-".to_string(), |l| l.to_string());
    format!(
        "{} {} ({}) term={} leader={leader} commit={} applied={} last={}/{} snapshot={}",
        s.id,
        s.role,
        s.membership,
        s.term,
        s.commit,
        s.applied,
        s.last_index,
        s.last_term,
        s.snapshot_index
    )
}

/// `voters=[..] learners=[..]`.
pub fn conf_state(conf: &ConfState) -> String {
    format!(
        "voters={:?} learners={:?}",
        ids(conf.voters.iter()),
        ids(conf.learners.iter())
    )
}

/// The in-memory log after the snapshot.
pub fn log(raft: &Raft) -> String {
    entries(raft.log_entries())
}

/// A short name of the message kind, for script filters.
pub fn kind(msg: &Message) -> &'static str {
    match msg.body {
        MessageBody::PreVote { .. } => "prevote",
        MessageBody::PreVoteResponse { .. } => "prevote-resp",
        MessageBody::RequestVote { .. } => "vote",
        MessageBody::RequestVoteResponse { .. } => "vote-resp",
        MessageBody::AppendEntries { .. } => "app",
        MessageBody::AppendEntriesResponse { .. } => "app-resp",
        MessageBody::Heartbeat { .. } => "hb",
        MessageBody::HeartbeatResponse { .. } => "hb-resp",
        MessageBody::InstallSnapshot { .. } => "snap",
        MessageBody::TimeoutNow => "timeout-now",
    }
}

/// The leader's view of each follower: `id state match=M next=N inflight=K`.
pub fn progress(raft: &Raft) -> Vec<String> {
    raft.progress()
        .iter()
        .map(|p| {
            format!(
                "{} {} match={} next={} inflight={}",
                p.id, p.state, p.match_index, p.next_index, p.inflight_appends
            )
        })
        .collect()
}
