//! Transfers through the flow network: Data queued per connection and sent one transfer at a
//! time, fetches from the origin, their completions, and the copies of each fragment counted
//! per bottleneck link.

use std::collections::{BTreeMap, VecDeque};

use hive_core::time::{Duration, Instant};
use hive_core::wire::Message;
use hive_core::{FragmentId, TrackId};

use super::Sim;
use super::fragments::fragment_size;
use super::queue::Local;
use crate::flownet::{FlowId, LinkId};

/// What a transfer in the network carries: a fragment from the origin to viewer `v`, or Data
/// from one agent to another.
#[derive(Debug, Clone)]
pub(super) enum FlowTag {
    Origin {
        v: usize,
        id: FragmentId,
    },
    Data {
        from: usize,
        to: usize,
        msg: Box<Message>,
        /// What it waits in the sender's uplink queue (see [`super::engine::up_queue`]).
        queue: Duration,
    },
}

/// Per bottleneck link: bytes per track, and sizes of the distinct fragments that crossed.
#[derive(Default)]
pub(super) struct Copies {
    pub(super) bytes: BTreeMap<TrackId, u64>,
    pub(super) distinct: BTreeMap<TrackId, BTreeMap<u64, u64>>,
}

impl Sim<'_> {
    /// Queues Data from `from` to `to` on their connection, sent when the transfers before it
    /// have ended.
    pub(super) fn send_data(&mut self, from: usize, to: usize, msg: Box<Message>) {
        if let Message::Data(d) = &*msg {
            self.up_backlog[from] += d.payload.len() as u64;
        }
        self.pair_queues
            .entry((from, to))
            .or_default()
            .push_back(msg);
        self.pump_pair(from, to);
    }

    /// Starts agent `v`'s fetch of `id` from the origin.
    pub(super) fn fetch_origin(&mut self, v: usize, id: FragmentId) {
        let now = self.now;
        let path = self.path_origin(v);
        let bytes = fragment_size(self.s, id.sequence, usize::from(id.track.0));
        self.count_copies(&path, id, bytes, bytes);
        let f = self.net.start(now, path.clone(), bytes);
        self.origin_flows.insert(f, (now, bytes));
        self.flows.insert(f, (FlowTag::Origin { v, id }, path));
    }

    /// The network's completions up to `upto` (included or not).
    pub(super) fn complete(&mut self, upto: Instant, included: bool, end: Instant) {
        while let Some(c) = self.net.next_completion() {
            if c > upto || (!included && c == upto) {
                break;
            }
            self.now = self.now.max(c);
            for flow in self.net.advance(c) {
                self.flow_done(flow, end);
            }
        }
    }

    /// Starts the next queued Data message of a pair if the pair is idle (one connection: in
    /// order).
    fn pump_pair(&mut self, from: usize, to: usize) {
        if self.pair_busy.contains(&(from, to)) {
            return;
        }
        let Some(msg) = self
            .pair_queues
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
        let Message::Data(d) = &*msg else { return };
        let path = self.path_peer(from, to);
        let bytes = d.payload.len() as u64;
        self.count_copies(&path, d.fragment, bytes, d.total_len);
        let f = self.net.start(self.now, path.clone(), bytes + 64);
        // Judged with this transfer under way: alone, it saturates an uplink it is bounded by.
        let backlog = self.up_backlog[from];
        let queue = super::engine::up_queue(self.s, &self.net, &self.viewers[from], backlog);
        self.flows.insert(
            f,
            (
                FlowTag::Data {
                    from,
                    to,
                    msg,
                    queue,
                },
                path,
            ),
        );
        self.pair_busy.insert((from, to));
    }

    fn count_copies(&mut self, path: &[LinkId], id: FragmentId, bytes: u64, total: u64) {
        for &l in path {
            if self.net.links[l].bottleneck {
                let c = self.copies.entry(l).or_default();
                *c.bytes.entry(id.track).or_default() += bytes;
                c.distinct
                    .entry(id.track)
                    .or_default()
                    .insert(id.sequence, total);
            }
        }
    }

    /// A transfer completed (within the window ending at `end`): its bytes arrive after the
    /// path's latency; a sender learns at the window's end that they left.
    fn flow_done(&mut self, flow: FlowId, end: Instant) {
        let Some((tag, path)) = self.flows.remove(&flow) else {
            return;
        };
        let origin = self.origin_flows.remove(&flow);
        if let Some((start, bytes)) = origin {
            self.metrics.add_origin_egress(start, self.now, bytes);
        }
        let at = (self.now + self.net.latency(&path)).max(end);
        match tag {
            FlowTag::Data {
                from,
                to,
                msg,
                queue,
            } => {
                let at = (self.now + self.net.latency(&path) + queue).max(end);
                self.pair_busy.remove(&(from, to));
                // The chunk left the sender: its send window has room again.
                if let Message::Data(d) = &*msg {
                    let len = d.payload.len() as u64;
                    self.up_backlog[from] = self.up_backlog[from].saturating_sub(len);
                    self.push(from, end, Local::Sent { peer: to, len });
                }
                self.pump_pair(from, to);
                self.push(to, at, Local::Msg { from, msg });
            }
            FlowTag::Origin { v, id } => {
                // Origin bytes count when they arrive by the end of the run, whether or not
                // their viewer is still there.
                if let Some((_, bytes)) = origin {
                    if at <= Instant::ZERO + self.s.duration {
                        self.metrics.origin_bytes += bytes;
                    }
                }
                let (track, seq) = (id.track, id.sequence);
                self.push(v, at, Local::Origin { track, seq });
            }
        }
    }
}
