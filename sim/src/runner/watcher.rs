//! The watchers: watch sessions over the members' long-poll streams. A session reads the
//! current revision, opens a watch, polls it, reassembles fragmented responses, and reopens
//! the watch where it left off when the stream is lost or compaction cancels it, as an etcd
//! client does. Every opened watch becomes one `WatchReport` of the history.

use std::time::Duration;

use faultline_api::{RangeRequest, Request, Revision, WatchResponse};
use faultline_invariants::history::{Outcome, WatchReceived, WatchReport};
use faultline_node::{WatchBatch, WatchCall, WatchStreamError};
use madsim::runtime::Handle;
use madsim::task::JoinHandle;

use super::client::{list_pages, ClientContext, Session};
use super::cluster::WATCH_POLL_TIMEOUT_MS;
use crate::plan::{PlannedWatch, WatchStart, WatcherPlan};

/// A watcher gives a stream up (and reopens it elsewhere) after its polls fail this long.
const WATCH_STREAM_GIVE_UP_MS: u64 = 1_000;
/// How long a watcher waits for one call on a stream (a poll is held open up to
/// `WATCH_POLL_TIMEOUT_MS` by the member).
const WATCH_CALL_TIMEOUT_MS: u64 = WATCH_POLL_TIMEOUT_MS + 300;

/// Start every planned watcher on its own node.
pub(super) fn spawn_watchers(watchers: &[WatcherPlan], ctx: &ClientContext) -> Vec<JoinHandle<()>> {
    let handle = Handle::current();
    watchers
        .iter()
        .map(|watcher| {
            let node = handle
                .create_node()
                .name(format!("watcher-{}", watcher.id))
                .ip(watcher.ip)
                .build();
            let ctx = ctx.clone();
            let watcher = watcher.clone();
            node.spawn(async move { run_watcher(watcher, ctx).await })
        })
        .collect()
}

/// A watcher: for each planned session, read the current revision (or list the range),
/// then watch.
async fn run_watcher(plan: WatcherPlan, ctx: ClientContext) {
    let mut session = Session::new(plan.id, 1, ctx).await;
    for watch in plan.sessions {
        madsim::time::sleep(Duration::from_millis(watch.think_time_ms)).await;
        session.target = watch.member;
        if let WatchStart::List { page_limit } = watch.start {
            list_watch(&mut session, &watch, page_limit).await;
            continue;
        }
        let read = Request::Range(RangeRequest {
            key: watch.request.key.clone(),
            range_end: watch.request.range_end.clone(),
            count_only: true,
            ..RangeRequest::default()
        });
        let start_revision = match (watch.start, session.execute(read).await) {
            (WatchStart::Now, _) => 0,
            (WatchStart::First, _) => 1,
            (WatchStart::RevisionsBack(n), Outcome::Ok(response)) => {
                (response.header().revision - Revision::from(n)).max(1)
            }
            // The read failed: start where the client's knowledge ends.
            (WatchStart::RevisionsBack(_), _) => session.observed.revision.max(1),
            (WatchStart::List { .. }, _) => unreachable!("handled above"),
        };
        let end = madsim::time::Instant::now() + Duration::from_millis(watch.duration_ms);
        watch_session(&mut session, &watch, start_revision, end, false).await;
    }
}

/// Kubernetes' reflector: list the watched range in pages of `page_limit`, watch from the
/// list's revision + 1 until the session's time is up; when compaction cancels the watch
/// (or a page fails), list again.
async fn list_watch(session: &mut Session, watch: &PlannedWatch, page_limit: i64) {
    let end = madsim::time::Instant::now() + Duration::from_millis(watch.duration_ms);
    let first = RangeRequest {
        key: watch.request.key.clone(),
        range_end: watch.request.range_end.clone(),
        limit: page_limit,
        ..RangeRequest::default()
    };
    // Bounded: a session lists at most this often.
    for _ in 0..100 {
        if madsim::time::Instant::now() >= end {
            return;
        }
        let Some(revision) = list_pages(session, first.clone()).await else {
            madsim::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if watch_session(session, watch, revision + 1, end, true).await != WatchEnd::Compacted {
            return;
        }
    }
}

/// How a watch session ended.
#[derive(Debug, PartialEq, Eq)]
enum WatchEnd {
    /// Its time is up, the member canceled it, or it reopened too often.
    Done,
    /// Compaction canceled it and the caller asked to be told (to list again).
    Compacted,
}

/// One stream of a watch session and what it received.
struct OpenStream {
    member: u64,
    stream: u64,
    /// Highest sequence number received (acknowledged by the next poll).
    last_seq: u64,
    /// Fragments received so far of a response not yet complete.
    fragments: Option<WatchResponse>,
    report: WatchReport,
}

enum StreamEnd {
    /// The session's time is up (the client canceled the watch).
    Done,
    /// Compaction canceled the watch: reopen from this revision.
    Compacted(Revision),
    /// The stream is lost (member restarted, or unreachable for too long).
    Lost,
    /// The member canceled the watch for another reason: stop.
    Canceled,
}

/// Watch until `end`, reopening the watch like an etcd client does: after a lost stream
/// from the revision after the last one received (events or progress), after a compaction
/// cancel from the compact revision (or, with `relist_on_compaction`, return to the caller).
/// Every opened watch is one `WatchReport`.
async fn watch_session(
    session: &mut Session,
    watch: &PlannedWatch,
    start_revision: Revision,
    end: madsim::time::Instant,
    relist_on_compaction: bool,
) -> WatchEnd {
    let mut request = watch.request.clone();
    // 0 ("now") until the first created response tells which revision "now" was.
    let mut resume_from = start_revision;
    let mut member = watch.member;
    // Bounded: a session reopens at most this often.
    for _ in 0..100 {
        if madsim::time::Instant::now() >= end {
            return WatchEnd::Done;
        }
        request.start_revision = resume_from;
        let Some(mut open) = open_stream(session, member, &request).await else {
            member = session.ctx.members.next_after(member);
            madsim::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let outcome = follow_stream(session, &mut open, watch, end, &mut resume_from).await;
        session
            .ctx
            .watches
            .lock()
            .expect("watches lock")
            .push(open.report);
        match outcome {
            StreamEnd::Done | StreamEnd::Canceled => return WatchEnd::Done,
            StreamEnd::Compacted(_) if relist_on_compaction => return WatchEnd::Compacted,
            StreamEnd::Compacted(revision) => resume_from = revision,
            StreamEnd::Lost => member = session.ctx.members.next_after(member),
        }
    }
    WatchEnd::Done
}

enum WatchCallError {
    /// The member does not hold the stream (restarted, or closed it).
    UnknownStream,
    /// Timeout, unreachable member, member stopping: try again or elsewhere.
    Transient,
}

async fn watch_call(
    session: &Session,
    member: u64,
    call: WatchCall,
    timeout: Duration,
) -> Result<WatchBatch, WatchCallError> {
    let Some(addr) = session.ctx.members.addr(member) else {
        return Err(WatchCallError::Transient); // removed from the cluster
    };
    let answer = super::peer_net::call(addr, timeout, move |member| async move {
        member.watch(call).await
    });
    match answer.await {
        Ok(Ok(batch)) => Ok(batch),
        Ok(Err(WatchStreamError::UnknownStream { .. })) => Err(WatchCallError::UnknownStream),
        Ok(Err(WatchStreamError::Stopped)) | Err(_) => Err(WatchCallError::Transient),
    }
}

async fn open_stream(
    session: &Session,
    member: u64,
    request: &faultline_api::WatchCreateRequest,
) -> Option<OpenStream> {
    let created_ns = session.ctx.recorder.now_ns();
    let call = WatchCall::Open {
        request: request.clone(),
    };
    let batch = watch_call(session, member, call, Duration::from_millis(500))
        .await
        .ok()?;
    let mut open = OpenStream {
        member,
        stream: batch.stream,
        last_seq: 0,
        fragments: None,
        report: WatchReport {
            client: session.client,
            member: Some(member),
            request: request.clone(),
            created_ns,
            responses: Vec::new(),
        },
    };
    receive(session, &mut open, batch);
    Some(open)
}

/// Record the new responses of a batch (a retried poll repeats nothing: seq filters).
fn receive(session: &Session, open: &mut OpenStream, batch: WatchBatch) {
    assert_eq!(
        batch.stream, open.stream,
        "a member answered for another stream"
    );
    let at_ns = session.ctx.recorder.now_ns();
    for sequenced in batch.responses {
        if sequenced.seq <= open.last_seq {
            continue;
        }
        assert_eq!(
            sequenced.seq,
            open.last_seq + 1,
            "a stream's responses arrive without gaps"
        );
        open.last_seq = sequenced.seq;
        if open
            .report
            .responses
            .last()
            .is_some_and(|r| r.response.canceled)
        {
            // The stream's only watch ended; what follows (say, the answer to a progress
            // request sent before the cancel arrived) no longer speaks for it.
            continue;
        }
        if let Some(response) = reassemble(&mut open.fragments, sequenced.response) {
            open.report
                .responses
                .push(WatchReceived { at_ns, response });
        }
    }
}

/// Join the fragments of a `fragment` watch (all but the last say `fragment: true`) into one
/// response before it is recorded, as etcd's clientv3 does before the application sees it, so
/// the history keeps etcd's atomic view: one recorded response never splits a revision.
/// Returns the response to record, or `None` while fragments are still arriving.
pub(super) fn reassemble(
    pending: &mut Option<WatchResponse>,
    response: WatchResponse,
) -> Option<WatchResponse> {
    let mut whole = match pending.take() {
        Some(mut joined) => {
            assert_eq!(
                joined.watch_id, response.watch_id,
                "fragments of one response come in a row"
            );
            joined.events.extend(response.events);
            joined.header = response.header;
            joined.fragment = response.fragment;
            joined
        }
        None => response,
    };
    if whole.fragment {
        *pending = Some(whole);
        return None;
    }
    whole.fragment = false;
    Some(whole)
}

/// Where a reopened watch resumes after `response` (etcd clientv3: after the last event's
/// revision; a progress notification at R says every event <= R was delivered).
fn resume_after(response: &WatchResponse, resume_from: &mut Revision) {
    if let Some(last) = response.events.last() {
        *resume_from = (*resume_from).max(last.kv.mod_revision + 1);
    } else if response.created {
        if *resume_from == 0 {
            // A watch from "now" continues after the revision it was created at.
            *resume_from = response.header.revision + 1;
        }
    } else if !response.canceled {
        *resume_from = (*resume_from).max(response.header.revision + 1);
    }
}

/// Poll the stream until the session's time is up (then cancel the watch and close the
/// stream), the stream is lost, or the member cancels the watch.
async fn follow_stream(
    session: &Session,
    open: &mut OpenStream,
    watch: &PlannedWatch,
    end: madsim::time::Instant,
    resume_from: &mut Revision,
) -> StreamEnd {
    let mut seen = Seen::default();
    let mut failing_since: Option<madsim::time::Instant> = None;
    let mut next_progress_request = madsim::time::Instant::now();
    let call_timeout = Duration::from_millis(WATCH_CALL_TIMEOUT_MS);
    let give_up = Duration::from_millis(WATCH_STREAM_GIVE_UP_MS);
    loop {
        // Look at what arrived since the last look.
        if let Some(stream_end) = seen.look(open, resume_from) {
            return stream_end;
        }
        let now = madsim::time::Instant::now();
        if now >= end {
            break;
        }
        if failing_since.is_some_and(|since| now - since >= give_up) {
            return StreamEnd::Lost;
        }
        if watch.progress_request_interval_ms > 0 && now >= next_progress_request {
            next_progress_request = now + Duration::from_millis(watch.progress_request_interval_ms);
            let call = WatchCall::RequestProgress {
                stream: open.stream,
            };
            let result = watch_call(session, open.member, call, call_timeout).await;
            if let Err(WatchCallError::UnknownStream) = result {
                return StreamEnd::Lost;
            }
        }
        let call = WatchCall::Poll {
            stream: open.stream,
            after_seq: open.last_seq,
        };
        match watch_call(session, open.member, call, call_timeout).await {
            Ok(batch) => {
                failing_since = None;
                receive(session, open, batch);
            }
            Err(WatchCallError::UnknownStream) => return StreamEnd::Lost,
            Err(WatchCallError::Transient) => {
                failing_since.get_or_insert(now);
                madsim::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    cancel_and_close(session, open, seen.watch_id).await;
    StreamEnd::Done
}

/// How far `follow_stream` has looked at a stream's recorded responses.
#[derive(Default)]
struct Seen {
    /// Responses looked at so far.
    processed: usize,
    /// The watch's id, once its created response arrived.
    watch_id: Option<i64>,
}

impl Seen {
    /// Look at the responses recorded since the last look: note the watch id, move the
    /// resume point, and tell whether the member canceled the watch.
    fn look(&mut self, open: &OpenStream, resume_from: &mut Revision) -> Option<StreamEnd> {
        for received in &open.report.responses[self.processed..] {
            let response = &received.response;
            if response.created {
                self.watch_id = Some(response.watch_id);
            }
            if response.canceled {
                if response.compact_revision > 0 {
                    return Some(StreamEnd::Compacted(response.compact_revision));
                }
                return Some(StreamEnd::Canceled);
            }
            resume_after(response, resume_from);
        }
        self.processed = open.report.responses.len();
        None
    }
}

/// Time is up: cancel, collect the canceled response, close. Best effort: the member may be
/// unreachable, and then the report simply ends here.
async fn cancel_and_close(session: &Session, open: &mut OpenStream, watch_id: Option<i64>) {
    let call_timeout = Duration::from_millis(WATCH_CALL_TIMEOUT_MS);
    if let Some(watch_id) = watch_id {
        let call = WatchCall::Cancel {
            stream: open.stream,
            watch_id,
        };
        if watch_call(session, open.member, call, call_timeout)
            .await
            .is_ok()
        {
            let call = WatchCall::Poll {
                stream: open.stream,
                after_seq: open.last_seq,
            };
            if let Ok(batch) = watch_call(session, open.member, call, call_timeout).await {
                receive(session, open, batch);
            }
        }
    }
    let call = WatchCall::Close {
        stream: open.stream,
    };
    let _ = watch_call(session, open.member, call, call_timeout).await;
}
