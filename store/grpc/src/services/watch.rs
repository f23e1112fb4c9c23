//! The Watch service: one gRPC stream is one watch stream of the member (`WatchCall`), opened
//! by the stream's first create request. A poller task long-polls the member and sends what
//! it gets, in order; the reader task turns the client's requests into calls. Backpressure:
//! when the client reads slowly the poller stops polling and the member's watch hub treats
//! the watchers as slow (caught up from history later), as etcd's does.

use std::pin::Pin;

use faultline_node::WatchCall;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

use super::Etcd;
use crate::convert::{header_from_api, status_from_stream_error};
use crate::pb::etcdserverpb as pb;
use crate::pb::etcdserverpb::watch_server::Watch;
use crate::Backend;

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send + 'static>>;
type Out = mpsc::Sender<Result<pb::WatchResponse, Status>>;

/// etcd's watch ID for responses that belong to no single watch (clientv3.InvalidWatchID;
/// the member's hub uses the same, `faultline_mvcc::watch::BROADCAST_WATCH_ID`).
const BROADCAST_WATCH_ID: i64 = -1;

/// Responses waiting for a slow client before the poller stops polling.
const OUT_BUFFER_RESPONSES: usize = 128;

#[tonic::async_trait]
impl<B: Backend> Watch for Etcd<B> {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: GrpcRequest<Streaming<pb::WatchRequest>>,
    ) -> Result<GrpcResponse<WatchStream>, Status> {
        let (out_tx, out_rx) = mpsc::channel(OUT_BUFFER_RESPONSES);
        let session = Session {
            member: self.member.clone(),
            out: out_tx,
            stream: None,
            poller: None,
        };
        tokio::spawn(session.run(request.into_inner()));
        Ok(GrpcResponse::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

/// One client's gRPC watch stream.
struct Session<B> {
    member: B,
    out: Out,
    /// The member's stream, once the first create opened it.
    stream: Option<u64>,
    poller: Option<JoinHandle<()>>,
}

impl<B: Backend> Session<B> {
    async fn run(mut self, mut requests: Streaming<pb::WatchRequest>) {
        // The client's stream ending (or breaking) ends the session.
        while let Ok(Some(request)) = requests.message().await {
            if let Err(status) = self.handle(request).await {
                let _ = self.out.send(Err(status)).await;
                break;
            }
        }
        if let Some(poller) = self.poller.take() {
            poller.abort();
        }
        if let Some(stream) = self.stream {
            let _ = self.member.watch(WatchCall::Close { stream }).await;
        }
    }

    async fn handle(&mut self, request: pb::WatchRequest) -> Result<(), Status> {
        use pb::watch_request::RequestUnion;
        let call = match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let request = create.try_into()?;
                let Some(stream) = self.stream else {
                    return self.open(request).await;
                };
                WatchCall::Create { stream, request }
            }
            Some(RequestUnion::CancelRequest(cancel)) => match self.stream {
                Some(stream) => WatchCall::Cancel {
                    stream,
                    watch_id: cancel.watch_id,
                },
                // No watch yet, so no watch to cancel: etcd ignores an unknown ID too.
                None => return Ok(()),
            },
            Some(RequestUnion::ProgressRequest(_)) => match self.stream {
                Some(stream) => WatchCall::RequestProgress { stream },
                None => return self.progress_without_watches().await,
            },
            None => return Ok(()),
        };
        // Answers (created, canceled, progress) arrive through the poller.
        self.member
            .watch(call)
            .await
            .map_err(|e| status_from_stream_error(&e))?;
        Ok(())
    }

    /// The first create: open the member's stream, send its first responses, start polling.
    async fn open(&mut self, request: faultline_api::WatchCreateRequest) -> Result<(), Status> {
        let batch = self
            .member
            .watch(WatchCall::Open { request })
            .await
            .map_err(|e| status_from_stream_error(&e))?;
        self.stream = Some(batch.stream);
        let mut after_seq = 0;
        for sequenced in batch.responses {
            after_seq = sequenced.seq;
            if self.out.send(Ok(sequenced.response.into())).await.is_err() {
                return Ok(()); // the client went away; the reader ends the session
            }
        }
        let poller = poll(
            self.member.clone(),
            batch.stream,
            after_seq,
            self.out.clone(),
        );
        self.poller = Some(tokio::spawn(poller));
        Ok(())
    }

    /// A progress request on a stream with no watch: every (no) watcher is synced, so the
    /// answer is the current revision at once, with watch_id -1 as etcd 3.4 sends it.
    async fn progress_without_watches(&mut self) -> Result<(), Status> {
        let status = match self
            .member
            .cluster(faultline_api::ClusterRequest::Status)
            .await
        {
            Ok(faultline_api::ClusterResponse::Status(status)) => status,
            Ok(other) => return Err(Status::internal(format!("Status answered {other:?}"))),
            Err(error) => return Err(crate::convert::status_from_error(&error)),
        };
        let response = pb::WatchResponse {
            header: header_from_api(&status.header),
            watch_id: BROADCAST_WATCH_ID,
            ..Default::default()
        };
        let _ = self.out.send(Ok(response)).await;
        Ok(())
    }
}

/// Long-poll the member's stream and send every response once, in order, until the client
/// goes away or the member loses the stream (then the client's stream ends with Unavailable,
/// and etcd clients reconnect and resume from their last revision).
async fn poll<B: Backend>(member: B, stream: u64, mut after_seq: u64, out: Out) {
    loop {
        let batch = match member.watch(WatchCall::Poll { stream, after_seq }).await {
            Ok(batch) => batch,
            Err(error) => {
                let _ = out.send(Err(status_from_stream_error(&error))).await;
                return;
            }
        };
        for sequenced in batch.responses {
            if sequenced.seq <= after_seq {
                continue;
            }
            after_seq = sequenced.seq;
            if out.send(Ok(sequenced.response.into())).await.is_err() {
                return;
            }
        }
        if out.is_closed() {
            return;
        }
    }
}
