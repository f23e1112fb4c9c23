//! A member's watch streams: `WatchCall`s from clients, the hub's outputs queued per stream,
//! long polls parked until something arrives, and the periodic work of the member's tick.

use std::collections::VecDeque;

use faultline_mvcc::WatchOutput;
use tokio::time::Instant;

use super::NodeCore;
use crate::{Sequenced, WatchBatch, WatchCall, WatchReply, WatchStreamError};

/// A stream holding more unacknowledged responses than this is closed: its client is too slow
/// (it reopens from its last revision, as after a restart). A safety net only: the hub stops
/// adding event responses at `NodeConfig::watch_slow_backlog_responses` (slow watchers).
const MAX_STREAM_BUFFERED_RESPONSES: usize = 10_000;
/// A stream not polled for this many poll timeouts is closed (its client went away).
const STREAM_IDLE_POLL_TIMEOUTS: u32 = 20;

/// One client watch stream (see `WatchCall`).
pub(super) struct WatchStream {
    /// Sequence number of the next response.
    next_seq: u64,
    /// Responses not yet acknowledged, ascending by seq.
    buffer: VecDeque<Sequenced>,
    /// A poll waiting for a response, and when it gives up.
    parked: Option<(WatchReply, Instant)>,
    last_poll: Instant,
}

impl NodeCore {
    /// Open, poll, cancel or close a watch stream (see `WatchCall`).
    pub fn handle_watch(&mut self, call: WatchCall, reply: WatchReply, now: Instant) {
        if self.removed {
            let _ = reply.send(Err(WatchStreamError::Stopped));
            return;
        }
        match call {
            WatchCall::Open { request } => {
                let stream = self.stream_base + self.next_stream;
                self.next_stream += 1;
                self.streams.insert(
                    stream,
                    WatchStream {
                        next_seq: 1,
                        buffer: VecDeque::new(),
                        parked: None,
                        last_poll: now,
                    },
                );
                self.create_watch(stream, &request);
                let batch = self.batch_of(stream);
                let _ = reply.send(Ok(batch));
            }
            WatchCall::Create { stream, request } => {
                if !self.streams.contains_key(&stream) {
                    let _ = reply.send(Err(WatchStreamError::UnknownStream { stream }));
                    return;
                }
                self.create_watch(stream, &request);
                let _ = reply.send(Ok(WatchBatch {
                    stream,
                    responses: Vec::new(),
                }));
            }
            WatchCall::Poll { stream, after_seq } => {
                let poll_timeout =
                    std::time::Duration::from_millis(self.config.watch_poll_timeout_ms);
                let Some(state) = self.streams.get_mut(&stream) else {
                    let _ = reply.send(Err(WatchStreamError::UnknownStream { stream }));
                    return;
                };
                let mut taken = 0;
                while state.buffer.front().is_some_and(|r| r.seq <= after_seq) {
                    state.buffer.pop_front();
                    taken += 1;
                }
                // The client has these: they no longer count in the stream's backlog.
                self.hub.acknowledge(stream, taken);
                state.last_poll = now;
                if let Some((old, _)) = state.parked.take() {
                    // A newer poll supersedes it; the client no longer waits for the old one.
                    let _ = old.send(Ok(WatchBatch {
                        stream,
                        responses: Vec::new(),
                    }));
                }
                if state.buffer.is_empty() {
                    state.parked = Some((reply, now + poll_timeout));
                } else {
                    let batch = self.batch_of(stream);
                    let _ = reply.send(Ok(batch));
                }
            }
            WatchCall::RequestProgress { stream } => {
                if !self.streams.contains_key(&stream) {
                    let _ = reply.send(Err(WatchStreamError::UnknownStream { stream }));
                    return;
                }
                if let Some(response) = self.hub.request_progress(stream) {
                    self.deliver_watch(vec![WatchOutput { stream, response }]);
                }
                let _ = reply.send(Ok(WatchBatch {
                    stream,
                    responses: Vec::new(),
                }));
            }
            WatchCall::Cancel { stream, watch_id } => {
                if !self.streams.contains_key(&stream) {
                    let _ = reply.send(Err(WatchStreamError::UnknownStream { stream }));
                    return;
                }
                if let Some(response) = self.hub.cancel(&self.kv, stream, watch_id) {
                    self.deliver_watch(vec![WatchOutput { stream, response }]);
                }
                let _ = reply.send(Ok(WatchBatch {
                    stream,
                    responses: Vec::new(),
                }));
            }
            WatchCall::Close { stream } => {
                self.close_stream(stream);
                let _ = reply.send(Ok(WatchBatch {
                    stream,
                    responses: Vec::new(),
                }));
            }
        }
        self.flush_watch_polls();
    }

    /// A watch on an open stream: its created response (and catch-up) queue on the stream.
    fn create_watch(&mut self, stream: u64, request: &faultline_api::WatchCreateRequest) {
        let responses = self.hub.create(&self.kv, stream, request);
        self.deliver_watch(
            responses
                .into_iter()
                .map(|response| WatchOutput { stream, response })
                .collect(),
        );
    }

    pub(super) fn close_stream(&mut self, stream: u64) {
        self.hub.close_stream(stream);
        if let Some(state) = self.streams.remove(&stream) {
            if let Some((parked, _)) = state.parked {
                let _ = parked.send(Err(WatchStreamError::UnknownStream { stream }));
            }
        }
    }

    /// Everything buffered (unacknowledged) on a stream.
    fn batch_of(&self, stream: u64) -> WatchBatch {
        WatchBatch {
            stream,
            responses: self
                .streams
                .get(&stream)
                .map(|s| s.buffer.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Queue hub outputs on their streams (sent by the next poll or `flush_watch_polls`).
    pub(super) fn deliver_watch(&mut self, outputs: Vec<WatchOutput>) {
        let mut overflowing = Vec::new();
        for WatchOutput {
            stream,
            mut response,
        } in outputs
        {
            assert!(
                self.streams.contains_key(&stream),
                "the hub answered for stream {stream}, which the member does not hold"
            );
            response.header.member_id = self.config.id;
            response.header.raft_term = self.term.0;
            let fragment_watch = self.hub.wants_fragments(stream, response.watch_id);
            let parts = self.buggify_split_watch(response, fragment_watch);
            self.hub.count_split(stream, parts.len() - 1);
            let state = self.streams.get_mut(&stream).expect("checked above");
            for response in parts {
                let seq = state.next_seq;
                state.next_seq += 1;
                state.buffer.push_back(Sequenced { seq, response });
            }
            if state.buffer.len() > MAX_STREAM_BUFFERED_RESPONSES {
                overflowing.push(stream);
            }
        }
        overflowing.dedup();
        for stream in overflowing {
            self.close_stream(stream);
        }
        for (&stream, state) in &self.streams {
            // Every response of a stream comes from the hub, which counts what is unacknowledged.
            debug_assert_eq!(state.buffer.len(), self.hub.backlog(stream));
        }
    }

    /// Answer every parked poll whose stream has something buffered.
    pub(super) fn flush_watch_polls(&mut self) {
        let ready: Vec<u64> = self
            .streams
            .iter()
            .filter(|(_, s)| s.parked.is_some() && !s.buffer.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for stream in ready {
            let batch = self.batch_of(stream);
            let state = self.streams.get_mut(&stream).expect("listed above");
            let (reply, _) = state.parked.take().expect("listed above");
            let _ = reply.send(Ok(batch));
        }
    }

    /// Expire parked polls, close abandoned streams, send periodic progress notifications.
    pub(super) fn watch_tick(&mut self, now: Instant, now_ms: u64) {
        let poll_timeout = std::time::Duration::from_millis(self.config.watch_poll_timeout_ms);
        let idle_limit = poll_timeout * STREAM_IDLE_POLL_TIMEOUTS;
        let mut abandoned = Vec::new();
        for (&stream, state) in self.streams.iter_mut() {
            if state
                .parked
                .as_ref()
                .is_some_and(|(_, until)| *until <= now)
            {
                let (reply, _) = state.parked.take().expect("checked");
                let _ = reply.send(Ok(WatchBatch {
                    stream,
                    responses: Vec::new(),
                }));
            }
            if state.parked.is_none() && now.duration_since(state.last_poll) > idle_limit {
                abandoned.push(stream);
            }
        }
        for stream in abandoned {
            self.close_stream(stream);
        }
        // etcd's syncWatchersLoop: unsynced watchers (from the past, or slow) catch up here.
        let outputs = self.hub.sync(&self.kv);
        self.deliver_watch(outputs);
        let interval_ms = self.config.watch_progress_notify_interval_ms;
        if now_ms >= self.last_progress_notify_ms.saturating_add(interval_ms) {
            self.last_progress_notify_ms = now_ms;
            let outputs = self.hub.progress_notify();
            self.deliver_watch(outputs);
        }
        self.flush_watch_polls();
    }
}
