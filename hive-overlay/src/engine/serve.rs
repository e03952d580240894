//! Serving neighbours: requests, upload slots and cap, and Have announcements.

use bytes::Bytes;
use hive_core::time::{Duration, Instant};
use hive_core::transport::Class;
use hive_core::wire::{Data, Have, Message, Reject, RejectReason, Request};
use hive_core::{ContentHash, FragmentId, PeerId, Role, SeqSet};

use std::collections::BTreeMap;

use super::{Output, Swarm};

/// Share of a request's deadline that the wait for an upload slot and the transfer may take
/// together for the request to be queued rather than refused (the requester gives up on a peer
/// a little before its deadline, to leave the origin time).
const QUEUE_SHARE: f64 = 0.4;

/// Takes the requests of `list` whose time is up at `now`.
fn take_expired(list: &mut Vec<Parked>, now: Instant) -> Vec<Parked> {
    if list.is_empty() {
        return Vec::new();
    }
    let (late, rest) = std::mem::take(list)
        .into_iter()
        .partition(|p| p.expires <= now);
    *list = rest;
    late
}

/// How many sequences past the newest listed a request may be for and wait to be listed.
const EXPECTED_AHEAD: u64 = 2;
/// How long such a request waits for the manifest to list its fragment: a refresh every half
/// fragment duration, and the fetch, take less.
const EXPECTED_WAIT: Duration = Duration::from_millis(1500);

/// A neighbour's request waiting for a fragment this agent is fetching.
#[derive(Debug)]
pub(super) struct Parked {
    from: PeerId,
    request: Request,
    expires: Instant,
    /// Bytes to send once served, when the request waits for an upload slot (the fragment is
    /// held); 0 when it waits for the fragment itself.
    queued_bytes: u64,
}

impl Parked {
    pub(super) fn expires_at(&self) -> Instant {
        self.expires
    }
}

/// A fragment being sent to a neighbour, chunk by chunk.
#[derive(Debug)]
pub(super) struct Upload {
    pub(super) to: PeerId,
    pub(super) request_id: u64,
    fragment: FragmentId,
    data: Bytes,
    hash: ContentHash,
    offset: usize,
    /// When its requester's player needs it; `Instant::MAX` for a prefetch or a relay nobody
    /// watches yet (never urgent).
    deadline: Instant,
    /// When it started, and from which offset: its pace so far.
    started: Instant,
    start_offset: usize,
    /// Urgent (it stays so): at risk of missing its deadline at its pace so far, or within
    /// [`SwarmConfig::urgent_within`](crate::SwarmConfig::urgent_within) of it.
    urgent: bool,
}

/// An upload's pace is judged once it has run this long.
const PACE_AFTER: Duration = Duration::from_millis(250);
/// How often a scavenger upload with a deadline has its pace judged again.
const PACE_EVERY: Duration = Duration::from_millis(100);
/// An upload is at risk when, at its pace so far, what is left would take more than this share
/// of the time left before its deadline.
const AT_RISK_SHARE: f64 = 0.75;

impl Upload {
    /// Whether it must now go at TCP-fair priority: within `urgent_within` of its deadline, or
    /// too slow so far to make it as a scavenger.
    fn becomes_urgent(&self, now: Instant, urgent_within: Duration) -> bool {
        if self.deadline == Instant::MAX {
            return false;
        }
        let left = self.deadline.saturating_duration_since(now);
        if left <= urgent_within {
            return true;
        }
        let ran = now.saturating_duration_since(self.started);
        if ran < PACE_AFTER {
            return false;
        }
        let sent = self.offset.saturating_sub(self.start_offset) as f64;
        let rest = self.data.len().saturating_sub(self.offset) as f64;
        // Bytes per second so far; none sent in a quarter second is as slow as it gets.
        let pace = sent / ran.as_secs_f64();
        pace <= 0.0 || rest / pace > left.as_secs_f64() * AT_RISK_SHARE
    }
}

impl Swarm {
    pub(super) fn on_request(&mut self, now: Instant, from: PeerId, r: Request) {
        let reject = |reason| {
            Message::Reject(Reject {
                request_id: r.request_id,
                reason,
            })
        };
        if !self.is_uploader() {
            self.send(from, reject(RejectReason::Choked), Class::Control);
            return;
        }
        if r.fragment.content != self.content {
            self.send(from, reject(RejectReason::BadRequest), Class::Control);
            return;
        }
        let Some(hit) = self.cache.get(&r.fragment) else {
            self.park_or_refuse(now, from, r);
            return;
        };
        // Upload slots bound the transfers served at once. When they are all taken, a request
        // waits for one if this agent's uplink can still make its deadline with everything
        // ahead of it; otherwise it is refused, and the requester goes elsewhere at once.
        if self.slots_busy() >= self.slots {
            let len = hit.data.len() as u64;
            if self.cfg.queue_for_slots
                && self.parked.len() < self.cfg.max_parked
                && self
                    .queue_wait(len)
                    .is_some_and(|wait| wait <= r.deadline().mul_f64(QUEUE_SHARE))
            {
                let expires = now + r.deadline();
                self.parked.push(Parked {
                    from,
                    request: r,
                    expires,
                    queued_bytes: len,
                });
            } else {
                self.send(from, reject(RejectReason::Overloaded), Class::Control);
            }
            return;
        }
        let offset = usize::try_from(r.resume_offset)
            .unwrap_or(usize::MAX)
            .min(hit.data.len());
        let deadline = if r.priority == 0 {
            now + r.deadline()
        } else {
            Instant::MAX
        };
        self.uploads.push_back(Upload {
            to: from,
            request_id: r.request_id,
            fragment: r.fragment,
            data: hit.data,
            hash: hit.hash,
            offset,
            deadline,
            started: now,
            start_offset: offset,
            urgent: false,
        });
        self.pump_uploads(now);
    }

    /// A request for a fragment not held: wait for it if it is on its way (or the policy wants
    /// this agent to fetch it for its neighbours), else NotFound.
    fn park_or_refuse(&mut self, now: Instant, from: PeerId, r: Request) {
        let id = r.fragment;
        let refuse = |reason| {
            Message::Reject(Reject {
                request_id: r.request_id,
                reason,
            })
        };
        let coming = self.wants.contains_key(&id);
        let through = !coming && self.known.contains(&id) && {
            let (policy, view) = self.policy_and_view(usize::MAX);
            policy.pull_through(now, &view, &id)
        };
        if !(coming || through) {
            // Not listed yet, but the next of a track this agent follows, and this agent would
            // fetch it for the neighbour (a supernode): its manifest lists it any moment (a
            // neighbour that refreshed its own a little earlier asks already). Refusing would
            // send the neighbour elsewhere, often to the origin. An agent that would not fetch
            // it refuses at once, as before: the neighbour loses no time on it.
            let expected = !self.known.contains(&id)
                && self
                    .known
                    .newest(&id.content, id.track)
                    .is_some_and(|n| id.sequence > n && id.sequence <= n + EXPECTED_AHEAD)
                && {
                    let (policy, view) = self.policy_and_view(usize::MAX);
                    policy.pull_through(now, &view, &id)
                };
            if expected && self.expected.len() < self.cfg.max_parked {
                let expires = (now + r.deadline()).min(now + EXPECTED_WAIT);
                self.expected.push(Parked {
                    from,
                    request: r,
                    expires,
                    queued_bytes: 0,
                });
                return;
            }
            self.send(from, refuse(RejectReason::NotFound), Class::Control);
            return;
        }
        if self.parked.len() >= self.cfg.max_parked {
            self.send(from, refuse(RejectReason::Overloaded), Class::Control);
            return;
        }
        let expires = now + r.deadline();
        self.parked.push(Parked {
            from,
            request: r,
            expires,
            queued_bytes: 0,
        });
        if through {
            if let Some(info) = self.known.get(&id).cloned() {
                self.stats.prefetches += 1;
                self.want_for_neighbour(now, info, expires);
            }
        }
    }

    /// Parked requests for `id`: refused if it could not be fetched; otherwise served as upload
    /// slots allow (the rest stay parked until a slot frees or their deadline passes).
    pub(super) fn release_parked(&mut self, now: Instant, id: FragmentId, held: bool) {
        if held {
            self.serve_parked(now);
            return;
        }
        let (failed, rest): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.request.fragment == id);
        self.parked = rest;
        for p in failed {
            let m = Message::Reject(Reject {
                request_id: p.request.request_id,
                reason: RejectReason::NotFound,
            });
            self.send(p.from, m, Class::Control);
        }
    }

    /// Whether a neighbour's request waits here for `id`.
    pub(super) fn parked_for(&self, id: &FragmentId) -> bool {
        self.parked.iter().any(|p| p.request.fragment == *id)
    }

    /// A neighbour cancelled a request: stop serving it, or drop it from the queue.
    pub(super) fn on_cancel(&mut self, from: PeerId, request_id: u64) {
        self.uploads
            .retain(|u| !(u.to == from && u.request_id == request_id));
        self.parked
            .retain(|p| !(p.from == from && p.request.request_id == request_id));
        self.expected
            .retain(|p| !(p.from == from && p.request.request_id == request_id));
    }

    /// Serves parked requests whose fragment is now held while slots are free: supernodes'
    /// first (each passes the fragment on to a whole site or branch, so a supernode queued
    /// behind its site's ordinary agents delays all of them), then the others; within each,
    /// the earliest deadline first. enterprise-3000 at full size: a gateway-site supernode
    /// held 25 to 55 requests per fragment, and branch supernodes served in turn reached their
    /// last call together.
    pub(super) fn serve_parked(&mut self, now: Instant) {
        let mut parked = std::mem::take(&mut self.parked);
        parked.retain(|p| self.is_neighbour(&p.from));
        self.parked = parked;
        while self.slots_busy() < self.slots {
            let next = self
                .parked
                .iter()
                .enumerate()
                .filter(|(_, p)| self.cache.contains(&p.request.fragment))
                .min_by_key(|(i, p)| {
                    let from_supernode = self
                        .slot(&p.from)
                        .is_some_and(|k| self.views[k].info.role == Role::Supernode);
                    (!from_supernode, p.expires, *i)
                })
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let p = self.parked.remove(i);
            self.on_request(now, p.from, p.request);
        }
    }

    /// Expected requests whose fragment the manifest now lists: decided as if they came now.
    pub(super) fn release_expected(&mut self, now: Instant) {
        if self.expected.is_empty() {
            return;
        }
        let (listed, rest): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.expected)
            .into_iter()
            .partition(|p| self.known.contains(&p.request.fragment));
        self.expected = rest;
        for p in listed {
            if self.is_neighbour(&p.from) {
                self.park_or_refuse(now, p.from, p.request);
            }
        }
    }

    /// Expected requests whose fragment was not listed in time are refused (NotFound: the
    /// requester asks another source at once).
    pub(super) fn expire_expected(&mut self, now: Instant) {
        let late = take_expired(&mut self.expected, now);
        self.refuse_all(late, RejectReason::NotFound);
    }

    /// Parked requests past their deadline are refused (the requester has moved on).
    pub(super) fn expire_parked(&mut self, now: Instant) {
        let late = take_expired(&mut self.parked, now);
        self.refuse_all(late, RejectReason::TooLate);
    }

    fn refuse_all(&mut self, requests: Vec<Parked>, reason: RejectReason) {
        for p in requests {
            let m = Message::Reject(Reject {
                request_id: p.request.request_id,
                reason,
            });
            self.send(p.from, m, Class::Control);
        }
    }

    /// The driver handed `bytes` of Data to `peer`'s connection (the transport accepted them):
    /// that much of the per-peer send window is free again.
    pub fn handle_sent(&mut self, now: Instant, peer: PeerId, bytes: u64) {
        if let Some(w) = self.unsent.get_mut(&peer) {
            *w = w.saturating_sub(bytes);
        }
        let before = self.draining.len();
        for (p, left) in &mut self.draining {
            if *p == peer {
                *left = left.saturating_sub(bytes);
            }
        }
        self.draining.retain(|(_, left)| *left > 0);
        if self.draining.len() < before {
            self.slot_freed = true;
        }
        self.pump_uploads(now);
    }

    /// How long a transfer of `len` more bytes would take to finish behind everything this agent
    /// is sending or has queued, at its advertised upload capacity; `None` when it advertised
    /// none (such an agent never queues requests).
    fn queue_wait(&self, len: u64) -> Option<Duration> {
        let bps = u64::from(self.me.upload_kbps) * 1000;
        if bps == 0 {
            return None;
        }
        let sending: u64 = self
            .uploads
            .iter()
            .map(|u| (u.data.len() - u.offset) as u64)
            .sum();
        let in_transport: u64 = self.draining.iter().map(|(_, left)| *left).sum();
        let queued: u64 = self.parked.iter().map(|p| p.queued_bytes).sum();
        let bits = sending
            .saturating_add(in_transport)
            .saturating_add(queued)
            .saturating_add(len) as f64
            * 8.0;
        Some(hive_core::time::secs_f64(bits / bps as f64))
    }

    /// Upload slots in use: transfers in progress, including those whose last bytes are still
    /// in the transport (a slot bounds what crosses the uplink at once, not what the engine has
    /// yet to hand over).
    fn slots_busy(&self) -> usize {
        self.uploads.len() + self.draining.len()
    }

    /// Emits upload chunks while each peer's send window and the upload cap allow. Chunks wait
    /// here rather than in a transport queue, so a `Cancel` takes effect at once and slots are
    /// held only by transfers really in progress.
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        // Priorities first: the driver sets them before the chunks they apply to go out.
        self.follow_urgency(now);
        self.pump_chunks(now);
        while std::mem::take(&mut self.slot_freed) && !self.parked.is_empty() {
            self.serve_parked(now);
            self.follow_urgency(now);
            self.pump_chunks(now);
        }
    }

    /// Priority follows urgency: the congestion-control priority of the connection to each
    /// peer this agent uploads to is 1 (TCP-fair) while an upload to it is urgent, and 0 (a
    /// scavenger that yields to other traffic, and keeps queues short) otherwise. An upload for
    /// a player is urgent once it is within `urgent_within` of its deadline, or earlier when its
    /// pace so far would not make the deadline (what is left would take more than three quarters
    /// of the time left): a scavenger that keeps pace never fills the uplink's buffer, which
    /// delays everything else this agent sends, its own requests and acknowledgements included;
    /// one that other traffic holds back competes in time. Prefetches and relays stay
    /// scavengers. A change goes to the driver as [`Output::CcPriority`]; a peer with no upload
    /// keeps its last priority.
    pub(super) fn follow_urgency(&mut self, now: Instant) {
        if !self.cfg.priority_follows_urgency {
            return;
        }
        let within = self.cfg.urgent_within;
        let mut wanted: BTreeMap<PeerId, bool> = BTreeMap::new();
        for u in &mut self.uploads {
            if !u.urgent && u.becomes_urgent(now, within) {
                u.urgent = true;
            }
            *wanted.entry(u.to).or_default() |= u.urgent;
        }
        for (peer, urgent) in wanted {
            let p = if urgent { 1.0 } else { 0.0 };
            if self.cc_priority.get(&peer) != Some(&p) {
                self.cc_priority.insert(peer, p);
                self.stats.priority_changes += 1;
                self.out.push_back(Output::CcPriority { peer, priority: p });
            }
        }
        self.urgency_wake = self.next_urgency(now);
    }

    /// When an upload's urgency is judged next (the engine wakes then): every
    /// [`PACE_EVERY`] while a scavenger upload has a deadline.
    fn next_urgency(&self, now: Instant) -> Option<Instant> {
        if !self.cfg.priority_follows_urgency {
            return None;
        }
        let within = self.cfg.urgent_within;
        self.uploads
            .iter()
            .filter(|u| !u.urgent && u.deadline != Instant::MAX)
            .map(|u| {
                let floor = u.deadline.checked_sub(within).unwrap_or(now);
                let first = u.started + PACE_AFTER;
                let pace = if now < first { first } else { now + PACE_EVERY };
                floor.min(pace).max(now + Duration::from_millis(1))
            })
            .min()
    }

    fn pump_chunks(&mut self, now: Instant) {
        let cap = self.upload_cap();
        if let Some(cap) = cap {
            // Token bucket: `cap` bytes per second, bursts of two chunks.
            let elapsed = now
                .saturating_duration_since(self.upload_last_refill)
                .as_secs_f64();
            let burst = (2 * self.cfg.chunk_size) as f64;
            self.upload_tokens = (self.upload_tokens + elapsed * cap as f64).min(burst);
            self.upload_last_refill = now;
        }
        let window = self.cfg.send_window;
        let mut progress = true;
        while progress {
            progress = false;
            let mut i = 0;
            while i < self.uploads.len() {
                let u = &self.uploads[i];
                let len = (u.data.len() - u.offset).min(self.cfg.chunk_size);
                let unsent = self.unsent.get(&u.to).copied().unwrap_or(0);
                if unsent > 0 && unsent + len as u64 > window {
                    i += 1;
                    continue;
                }
                if let Some(cap) = cap {
                    if self.upload_tokens < len as f64 {
                        let wait = (len as f64 - self.upload_tokens) / cap.max(1) as f64;
                        self.upload_wake_at = now + hive_core::time::secs_f64(wait.max(1e-4));
                        return;
                    }
                    self.upload_tokens -= len as f64;
                }
                let u = &mut self.uploads[i];
                let chunk = Data {
                    request_id: u.request_id,
                    fragment: u.fragment,
                    total_len: u.data.len() as u64,
                    offset: u.offset as u64,
                    hash: u.hash,
                    payload: u.data.slice(u.offset..u.offset + len),
                };
                u.offset += len;
                let (to, done) = (u.to, u.offset >= u.data.len());
                let unsent = self.unsent.entry(to).or_default();
                *unsent += len as u64;
                if done {
                    self.uploads.remove(i);
                    self.draining.push((to, *unsent));
                } else {
                    i += 1;
                }
                self.stats.uploaded_bytes += len as u64;
                self.with_view(to, |v| v.bytes_to += len as u64);
                self.send(to, Message::Data(chunk), Class::Data);
                progress = true;
            }
        }
    }

    /// Queues a fragment for the next batched `Have`.
    pub(super) fn announce(&mut self, now: Instant, id: FragmentId) {
        if !self.is_uploader() || id.content != self.content {
            return;
        }
        self.pending_have
            .entry(id.track)
            .or_default()
            .insert(id.sequence);
        if self.have_flush_at.is_none() {
            self.have_flush_at = Some(now + self.cfg.have_batch);
        }
    }

    pub(super) fn flush_have_if_due(&mut self, now: Instant) {
        if self.have_flush_at.is_none_or(|t| t > now) {
            return;
        }
        self.have_flush_at = None;
        let pending = std::mem::take(&mut self.pending_have);
        if pending.is_empty() {
            return;
        }
        // A neighbour that announced every one of these fragments itself gains nothing from
        // hearing of them (it will not ask for them): it is skipped, which in a live swarm
        // saves a large share of the announcements.
        let content = self.content;
        let to: Vec<PeerId> = self
            .views
            .iter()
            .filter(|v| {
                pending.iter().any(|(track, seqs)| {
                    let theirs = v.have.get(&content, *track);
                    seqs.iter()
                        .any(|seq| !theirs.is_some_and(|t| t.contains(seq)))
                })
            })
            .map(|v| v.info.id)
            .collect();
        // Each track's floor is the oldest fragment still held, so that neighbours forget what
        // this agent's cache let go (their views stay as small as its live window).
        let mut have = Have::add();
        for (track, seqs) in pending {
            let floor = self.cache.have(&content, track).first().unwrap_or(0);
            have.insert(track, floor, seqs);
        }
        for peer in to {
            self.send(peer, Message::Have(have.clone()), Class::Control);
        }
    }

    /// Everything held, for a new neighbour.
    pub(super) fn snapshot_have(&self) -> Option<Have> {
        if !self.is_uploader() {
            return None;
        }
        let mut have = Have::snapshot();
        for track in self.cache.tracks(&self.content) {
            let seqs: SeqSet = self.cache.have(&self.content, track);
            if !seqs.is_empty() {
                let floor = seqs.first().unwrap_or(0);
                have.insert(track, floor, seqs);
            }
        }
        (!have.tracks.is_empty()).then_some(have)
    }
}
