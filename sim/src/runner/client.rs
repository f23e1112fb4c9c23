//! The clients: sessions that issue the planned requests one at a time, fill their run-time
//! parts from what the session has seen, and record every outcome in the history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_api::{
    CompareTarget, KeyValue, RangeRequest, RangeResponse, Request, RequestOp, Response, ResponseOp,
    Revision,
};
use faultline_invariants::history::{History, Operation, Outcome, WatchReport};
use madsim::runtime::Handle;
use madsim::task::JoinHandle;

use crate::plan::{next_page, ClientPlan, Fill, Plan};
use crate::trace::Recorder;

/// How long clients avoid a member after a call to it got no answer at all, doubling with
/// each failure in a row up to the cap (a gRPC channel's reconnect back-off: base 1 s,
/// growing, capped), and reset by an answer.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(1000);
const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_millis(8000);
/// How long past its deadline a client still waits for a member's answer (a member's own
/// request timer fires on its tick, after the client's deadline).
const RPC_ANSWER_GRACE: Duration = Duration::from_millis(300);

/// The members clients know, by ID: the initial members, then whatever the operator adds or
/// removes (etcd clients sync their endpoints from MemberList the same way), and which of them
/// recently did not answer.
#[derive(Clone, Default)]
pub(super) struct Directory(Arc<Mutex<Members>>);

#[derive(Default)]
struct Members {
    addrs: BTreeMap<u64, SocketAddr>,
    /// Per member: avoided until, and the failures in a row that set it.
    unreachable_until: BTreeMap<u64, (madsim::time::Instant, u32)>,
}

impl Directory {
    pub(super) fn new(addrs: BTreeMap<u64, SocketAddr>) -> Directory {
        Directory(Arc::new(Mutex::new(Members {
            addrs,
            unreachable_until: BTreeMap::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.0.lock().expect("directory")
    }

    pub(super) fn ids(&self) -> Vec<u64> {
        self.lock().addrs.keys().copied().collect()
    }

    pub(super) fn addr(&self, member: u64) -> Option<SocketAddr> {
        self.lock().addrs.get(&member).copied()
    }

    pub(super) fn snapshot(&self) -> BTreeMap<u64, SocketAddr> {
        self.lock().addrs.clone()
    }

    pub(super) fn insert(&self, member: u64, addr: SocketAddr) {
        self.lock().addrs.insert(member, addr);
    }

    pub(super) fn remove(&self, member: u64) {
        self.lock().addrs.remove(&member);
    }

    /// A call to `member` got no answer: avoid it for a while.
    pub(super) fn mark_unreachable(&self, member: u64) {
        let mut members = self.lock();
        let failures = members
            .unreachable_until
            .get(&member)
            .map_or(0, |(_, failures)| *failures);
        let backoff =
            (UNREACHABLE_BACKOFF * 2u32.pow(failures.min(8))).min(UNREACHABLE_BACKOFF_MAX);
        let until = madsim::time::Instant::now() + backoff;
        members
            .unreachable_until
            .insert(member, (until, failures + 1));
    }

    /// `member` answered: it is reachable again.
    pub(super) fn mark_reachable(&self, member: u64) {
        self.lock().unreachable_until.remove(&member);
    }

    /// The member after `member` in ID order, wrapping (`member` need not be known).
    pub(super) fn next_after(&self, member: u64) -> u64 {
        let members = self.lock();
        members
            .addrs
            .range(member + 1..)
            .next()
            .or_else(|| members.addrs.iter().next())
            .map(|(&id, _)| id)
            .expect("at least one member")
    }

    /// `member` if it is known, else the next one.
    pub(super) fn known_or_next(&self, member: u64) -> u64 {
        if self.addr(member).is_some() {
            member
        } else {
            self.next_after(member)
        }
    }

    /// `member`, or, if it is unknown or recently unreachable, the next member that is
    /// neither (or `member`'s known successor when every member is unreachable).
    pub(super) fn reachable_from(&self, member: u64) -> u64 {
        let first = self.known_or_next(member);
        let now = madsim::time::Instant::now();
        let mut candidate = first;
        loop {
            let blocked = self
                .lock()
                .unreachable_until
                .get(&candidate)
                .is_some_and(|(until, _)| *until > now);
            if !blocked {
                return candidate;
            }
            candidate = self.next_after(candidate);
            if candidate == first {
                return first;
            }
        }
    }
}

/// What every client, watcher and the final phase share: the members' addresses, the history
/// sinks and the session counter.
#[derive(Clone)]
pub(super) struct ClientContext {
    pub(super) members: Directory,
    pub(super) recorder: Arc<Recorder>,
    ops: Arc<Mutex<Vec<Operation>>>,
    pub(super) watches: Arc<Mutex<Vec<WatchReport>>>,
    next_session: Arc<AtomicU64>,
    /// Each session opened after an unknown outcome → the session it continues (for the
    /// report's lanes; not part of the history).
    continued: Arc<Mutex<BTreeMap<u64, u64>>>,
    request_timeout: Duration,
    /// The prefix the workload's keys live under (the final phase reads it all).
    pub(super) key_prefix: Vec<u8>,
}

impl ClientContext {
    pub(super) fn new(
        plan: &Plan,
        addrs: BTreeMap<u64, SocketAddr>,
        recorder: &Arc<Recorder>,
    ) -> ClientContext {
        ClientContext {
            members: Directory::new(addrs),
            recorder: recorder.clone(),
            ops: Arc::new(Mutex::new(Vec::new())),
            watches: Arc::new(Mutex::new(Vec::new())),
            next_session: Arc::new(AtomicU64::new(plan.first_free_client_id())),
            continued: Arc::new(Mutex::new(BTreeMap::new())),
            request_timeout: Duration::from_millis(plan.scenario.client_request_timeout_ms),
            key_prefix: plan.scenario.workload.key_prefix().to_vec(),
        }
    }

    /// The history recorded so far: operations in invocation order (numbered in that order),
    /// watch reports in creation order.
    pub(super) fn take_history(&self) -> History {
        let mut ops = std::mem::take(&mut *self.ops.lock().expect("ops lock"));
        ops.sort_by_key(|op| (op.invoke_ns, op.client));
        for (id, op) in ops.iter_mut().enumerate() {
            op.id = id as u64;
        }
        let mut watches = std::mem::take(&mut *self.watches.lock().expect("watches lock"));
        watches.sort_by_key(|w| (w.created_ns, w.client));
        History { ops, watches }
    }

    /// Which session each later session continues: new client id → previous client id.
    pub(super) fn take_continued(&self) -> BTreeMap<u64, u64> {
        std::mem::take(&mut *self.continued.lock().expect("continued lock"))
    }
}

/// What a client has seen, to fill run-time parts of planned requests (`plan::Fill`).
#[derive(Default)]
pub(super) struct Observed {
    /// Highest header revision of any response.
    pub(super) revision: Revision,
    /// The last full KV read for each key (`None`: read as absent).
    kvs: BTreeMap<Vec<u8>, Option<KeyValue>>,
    /// The mod revision each key last had to this client's knowledge, from reads and from
    /// its own writes (0: absent), for `Fill::CompareLastKnown`.
    known: BTreeMap<Vec<u8>, Revision>,
}

/// The mod revisions a read of the latest full KVs tells (0 for a single key read absent).
fn read_revisions(range: &RangeRequest, result: &RangeResponse) -> Vec<(Vec<u8>, Revision)> {
    if range.keys_only || range.count_only || range.revision > 0 {
        return Vec::new();
    }
    if range.range_end.is_empty() {
        let revision = result.kvs.first().map_or(0, |kv| kv.mod_revision);
        return vec![(range.key.clone(), revision)];
    }
    let kvs = result.kvs.iter();
    kvs.map(|kv| (kv.key.clone(), kv.mod_revision)).collect()
}

impl Observed {
    /// Note what a successful request tells about the keys' mod revisions.
    fn remember(&mut self, request: &Request, response: &Response) {
        let revision = response.header().revision;
        match (request, response) {
            (Request::Range(range), Response::Range(result)) => {
                self.known.extend(read_revisions(range, result));
            }
            (Request::Put(put), Response::Put(_)) => {
                self.known.insert(put.key.clone(), revision);
            }
            (Request::Txn(txn), Response::Txn(result)) => {
                let ops = if result.succeeded {
                    &txn.success
                } else {
                    &txn.failure
                };
                for (op, answer) in ops.iter().zip(&result.responses) {
                    match (op, answer) {
                        (RequestOp::Put(put), _) => {
                            self.known.insert(put.key.clone(), revision);
                        }
                        (RequestOp::DeleteRange(delete), _) if delete.range_end.is_empty() => {
                            self.known.insert(delete.key.clone(), 0);
                        }
                        (RequestOp::Range(range), ResponseOp::Range(result)) => {
                            self.known.extend(read_revisions(range, result));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn observe(&mut self, request: &Request, response: &Response) {
        self.remember(request, response);
        self.revision = self.revision.max(response.header().revision);
        if let (Request::Range(range), Response::Range(result)) = (request, response) {
            if range.keys_only || range.count_only || range.revision > 0 {
                return; // not the latest full KVs
            }
            if range.range_end.is_empty() {
                self.kvs
                    .insert(range.key.clone(), result.kvs.first().cloned());
            } else {
                for kv in &result.kvs {
                    self.kvs.insert(kv.key.clone(), Some(kv.clone()));
                }
            }
        }
    }

    fn back(&self, n: u32) -> Revision {
        (self.revision - Revision::from(n)).max(1)
    }

    pub(super) fn fill(&self, mut request: Request, fill: Fill) -> Request {
        match (fill, &mut request) {
            (Fill::None, _) => {}
            (Fill::CompareLastSeen, Request::Txn(txn)) => {
                if let Some(compare) = txn.compare.first_mut() {
                    let seen = self.kvs.get(&compare.key).cloned().flatten();
                    match (&mut compare.target, seen) {
                        (CompareTarget::ModRevision(r), kv) => {
                            *r = kv.map_or(0, |kv| kv.mod_revision)
                        }
                        (CompareTarget::Version(v), kv) => *v = kv.map_or(0, |kv| kv.version),
                        (CompareTarget::CreateRevision(r), kv) => {
                            *r = kv.map_or(0, |kv| kv.create_revision)
                        }
                        (CompareTarget::Value(v), Some(kv)) => *v = kv.value,
                        (CompareTarget::Lease(l), kv) => *l = kv.map_or(0, |kv| kv.lease),
                        (CompareTarget::Value(_), None) => {}
                    }
                }
            }
            (Fill::CompareLastKnown, Request::Txn(txn)) => {
                if let Some(compare) = txn.compare.first_mut() {
                    let known = self.known.get(&compare.key).copied().unwrap_or(0);
                    match &mut compare.target {
                        CompareTarget::ModRevision(r) => *r = known,
                        other => panic!("plan error: CompareLastKnown on {other:?}"),
                    }
                }
            }
            (Fill::Paginate { revisions_back }, Request::Range(range)) => {
                if let Some(n) = revisions_back {
                    range.revision = self.back(n);
                }
            }
            (Fill::RevisionsBack(n), Request::Range(range)) => range.revision = self.back(n),
            (Fill::MinModRevisionBack(n), Request::Range(range)) => {
                range.min_mod_revision = self.back(n)
            }
            (Fill::CompactRevisionsBack(n), Request::Compact(compact)) => {
                compact.revision = self.back(n)
            }
            (fill, request) => panic!("plan error: fill {fill:?} does not apply to {request:?}"),
        }
        request
    }
}

/// A client session: issues requests one at a time, follows leader hints, and records each
/// outcome. After an unknown outcome it continues as a new session (a fresh client id), as
/// etcd's robustness tests do, so later operations are not ordered after the unknown one.
pub(super) struct Session {
    pub(super) ctx: ClientContext,
    pub(super) client: u64,
    pub(super) target: u64,
    pub(super) observed: Observed,
}

impl Session {
    /// A session of the current node's client (its calls go through `grpc_call`).
    pub(super) async fn new(client: u64, first_member: u64, ctx: ClientContext) -> Session {
        Session {
            ctx,
            client,
            target: first_member,
            observed: Observed::default(),
        }
    }

    fn next_member(&self) -> u64 {
        self.ctx.members.next_after(self.target)
    }

    /// Issue one request and record it. Retries only after definite failures (the request
    /// was not applied), within one overall deadline.
    pub(super) async fn execute(&mut self, request: Request) -> Outcome {
        let invoke_ns = self.ctx.recorder.now_ns();
        let deadline = madsim::time::Instant::now() + self.ctx.request_timeout;
        let mut member;
        // A leader hint is followed even to a member the client is backing off from.
        let mut hinted = false;
        let outcome = loop {
            member = if std::mem::take(&mut hinted) {
                self.target
            } else {
                self.ctx.members.reachable_from(self.target)
            };
            self.target = member;
            let addr = self.ctx.members.addr(member).expect("known_or_next");
            let now = madsim::time::Instant::now();
            if now >= deadline {
                break Outcome::Failed(faultline_api::EtcdError::NoLeader);
            }
            // A live member answers by its own request timeout (`Timeout`, an answer); the
            // grace lets that answer arrive, so only silence marks a member unreachable.
            let timeout = deadline - now + RPC_ANSWER_GRACE;
            let answer = grpc_call(addr, request.clone(), timeout).await;
            if answer.is_ok() {
                self.ctx.members.mark_reachable(member);
            }
            match answer {
                Ok(Ok(response)) => break Outcome::Ok(response),
                Ok(Err(faultline_api::EtcdError::NotLeader {
                    leader_hint: Some(hint),
                })) if hint != member && self.ctx.members.addr(hint).is_some() => {
                    self.target = hint;
                    hinted = true;
                }
                Ok(Err(
                    faultline_api::EtcdError::NotLeader { .. }
                    | faultline_api::EtcdError::NoLeader
                    | faultline_api::EtcdError::Removed,
                )) => {
                    self.target = self.next_member();
                    madsim::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(error)) if error.is_unknown_outcome() => {
                    break Outcome::Unknown(error.to_string())
                }
                Ok(Err(error)) => break Outcome::Failed(error),
                Err(error) => {
                    // Silent for longer than it takes a live member to answer `Timeout`.
                    if now.elapsed() >= self.ctx.request_timeout + RPC_ANSWER_GRACE {
                        self.ctx.members.mark_unreachable(member);
                    }
                    break Outcome::Unknown(format!("rpc: {error}"));
                }
            }
        };
        let complete_ns = self.ctx.recorder.now_ns();
        // For `--trace` (keys and values as text); free when no subscriber is installed.
        tracing::debug!(
            "client {} via member {member}: {} => {}",
            crate::names::ClientId(self.client),
            faultline_invariants::describe::describe_request(&request),
            faultline_invariants::describe::describe_outcome(&outcome)
        );
        let unknown = matches!(outcome, Outcome::Unknown(_));
        if let Outcome::Ok(response) = &outcome {
            self.observed.observe(&request, response);
        }
        self.ctx.ops.lock().expect("ops lock").push(Operation {
            id: 0,
            client: self.client,
            member: Some(member),
            invoke_ns,
            complete_ns,
            request,
            outcome: outcome.clone(),
        });
        if unknown {
            let previous = self.client;
            self.client = self.ctx.next_session.fetch_add(1, Ordering::Relaxed);
            self.ctx
                .continued
                .lock()
                .expect("continued lock")
                .insert(self.client, previous);
            self.target = self.next_member();
        }
        outcome
    }
}

/// Why a call got no answer from the store: silence, or a status that carries no error of
/// the store's (a transport failure).
#[derive(Debug)]
pub(super) enum CallError {
    Silent(std::io::Error),
    Status(faultline_grpc::wire::Status),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Silent(error) => write!(f, "{error}"),
            CallError::Status(status) => write!(f, "{}", status.message()),
        }
    }
}

/// One request to the member at `addr` through etcd's gRPC service layer: the request is
/// encoded as etcd's protobuf message, carried over the simulator's transport (`peer_net`,
/// where every network fault applies), decoded and answered by faultline-grpc's service impls
/// (the code `faultline-server` runs for real clients) on the member's handle, and its reply
/// decoded back (a status becomes the store's error). See `faultline_grpc::wire` for why
/// peer_net and not madsim-tonic's network carries the bytes.
pub(super) async fn grpc_call(
    addr: SocketAddr,
    request: Request,
    timeout: Duration,
) -> Result<Result<Response, faultline_api::EtcdError>, CallError> {
    let call = faultline_grpc::wire::encode(request);
    let method = call.method;
    let reply = super::peer_net::call(addr, timeout, move |member| {
        faultline_grpc::wire::serve(member, call)
    })
    .await
    .map_err(CallError::Silent)?;
    faultline_grpc::wire::decode(method, reply).map_err(CallError::Status)
}

/// One Cluster or Maintenance call through the service layer, as [`grpc_call`].
pub(super) async fn grpc_cluster_call(
    addr: SocketAddr,
    request: faultline_api::ClusterRequest,
    timeout: Duration,
) -> Result<Result<faultline_api::ClusterResponse, faultline_api::EtcdError>, CallError> {
    let call = faultline_grpc::wire::encode_cluster(request);
    let method = call.method;
    let reply = super::peer_net::call(addr, timeout, move |member| {
        faultline_grpc::wire::serve(member, call)
    })
    .await
    .map_err(CallError::Silent)?;
    faultline_grpc::wire::decode_cluster(method, reply).map_err(CallError::Status)
}

/// Start every planned client on its own node.
pub(super) fn spawn_clients(clients: &[ClientPlan], ctx: &ClientContext) -> Vec<JoinHandle<()>> {
    let handle = Handle::current();
    clients
        .iter()
        .map(|client| {
            let node = handle
                .create_node()
                .name(format!("client-{}", client.id))
                .ip(client.ip)
                .build();
            let ctx = ctx.clone();
            let client = client.clone();
            node.spawn(async move { run_client(client, ctx).await })
        })
        .collect()
}

async fn run_client(plan: ClientPlan, ctx: ClientContext) {
    let mut session = Session::new(plan.id, 1, ctx).await;
    for op in plan.ops {
        madsim::time::sleep(Duration::from_millis(op.think_time_ms)).await;
        session.target = op.member;
        let request = session.observed.fill(op.request, op.fill);
        match (op.fill, request) {
            (Fill::Paginate { .. }, Request::Range(first)) => {
                list_pages(&mut session, first).await;
            }
            (_, request) => {
                session.execute(request).await;
            }
        }
    }
}

/// Most pages one list reads (a list of the small key spaces of the workload takes a few).
const MAX_LIST_PAGES: usize = 1000;

/// A paginated list from `first` (its limit the page size): each page one operation of the
/// history, every page after the first at the first page's revision (`plan::next_page`).
/// Returns the list's revision when every page was answered.
pub(super) async fn list_pages(session: &mut Session, first: RangeRequest) -> Option<Revision> {
    assert!(first.limit > 0, "a paginated list has a page size");
    let mut page = first;
    let mut revision = None;
    for _ in 0..MAX_LIST_PAGES {
        let Outcome::Ok(Response::Range(result)) =
            session.execute(Request::Range(page.clone())).await
        else {
            return None;
        };
        let at = if page.revision > 0 {
            page.revision
        } else {
            result.header.revision
        };
        revision.get_or_insert(at);
        match next_page(&page, &result) {
            Some(next) => page = next,
            None => return revision,
        }
    }
    None
}
