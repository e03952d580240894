//! Getting fragments: player requests, prefetches, the peer-or-origin choice, reassembly and
//! verification.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use hive_core::cache::CachedFragment;
use hive_core::overlay::{FetchContext, FetchDecision};
use hive_core::time::{Duration, Instant};
use hive_core::transport::Class;
use hive_core::wire::{ByeReason, Cancel, Data, Message, RejectReason, Request};
use hive_core::{ContentHash, FragmentId, PeerId};

use super::{FragmentInfo, MAX_EARLY_HASHES, Output, Swarm, Verify};

/// Where a wanted fragment stands.
pub(super) enum State {
    /// Asked the policy; it said wait until then.
    Waiting { until: Instant },
    /// Requested from a peer; give up at `give_up_at`.
    FromPeer {
        peer: PeerId,
        request_id: u64,
        started: Instant,
        give_up_at: Instant,
        buf: BytesMut,
        hash: Option<ContentHash>,
    },
    /// Fetching from the origin (attempt number).
    FromOrigin { started: Instant, attempt: u32 },
    /// The origin failed; retry at `at`.
    OriginBackoff { at: Instant, attempt: u32 },
    /// A peer's whole fragment, consistent with the hash it declared, came in before the
    /// fragment's trusted hash: held (not cached, served nor delivered) until the trusted hash
    /// comes and matches `declared`, or dropped at `until` (then the origin serves).
    Held {
        peer: PeerId,
        data: Bytes,
        declared: ContentHash,
        until: Instant,
    },
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Waiting { until } => write!(f, "Waiting(until {until})"),
            State::FromPeer {
                peer,
                started,
                give_up_at,
                buf,
                ..
            } => {
                write!(
                    f,
                    "FromPeer({peer:?} since {started}, give up {give_up_at}, {} bytes)",
                    buf.len()
                )
            }
            State::FromOrigin { started, attempt } => {
                write!(f, "FromOrigin(since {started}, attempt {attempt})")
            }
            State::OriginBackoff { at, attempt } => {
                write!(f, "OriginBackoff(at {at}, attempt {attempt})")
            }
            State::Held {
                peer, data, until, ..
            } => write!(f, "Held({peer:?}, {} bytes, until {until})", data.len()),
        }
    }
}

/// A fragment this agent needs.
#[derive(Debug)]
pub(super) struct Want {
    info: FragmentInfo,
    deadline: Instant,
    /// Whether a player waits for it (else it is a prefetch).
    player: bool,
    tried: BTreeSet<PeerId>,
    /// Neighbours that refused it as overloaded, hidden until then (they may have room later).
    busy: Vec<(PeerId, Instant)>,
    since: Instant,
    state: State,
    /// Whether the driver was asked for this fragment's trusted hash ([`Output::NeedHash`]).
    asked_hash: bool,
}

impl Want {
    pub(super) fn wake_at(&self) -> Option<Instant> {
        match &self.state {
            State::Waiting { until } => Some(*until),
            State::FromPeer { give_up_at, .. } => Some(*give_up_at),
            State::FromOrigin { .. } => None,
            State::OriginBackoff { at, .. } => Some(*at),
            State::Held { until, .. } => Some(*until),
        }
    }

    pub(super) fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }
}

impl Swarm {
    /// Registers fragments the manifest lists (so requests and prefetches know their URL and
    /// size), and lets the policy decide whether to prefetch the new ones.
    pub fn handle_fragments_published(&mut self, now: Instant, fragments: Vec<FragmentInfo>) {
        for mut info in fragments {
            let id = info.id;
            self.note_bitrate(&info);
            if info.hash.is_none() {
                info.hash = self.early_hashes.remove(&id);
            }
            if let Some(h) = info.hash {
                self.hash_learnt(now, id, h);
            }
            let new = self.known.insert(info);
            if !new || self.cache.contains(&id) || self.wants.contains_key(&id) {
                continue;
            }
            let (policy, view) = self.policy_and_view(usize::MAX);
            if policy.should_prefetch(now, &view, &id) {
                self.stats.prefetches += 1;
                let deadline = now + self.cfg.default_deadline;
                if let Some(info) = self.known.get(&id).cloned() {
                    self.want(now, info, deadline, false);
                }
            }
        }
        self.release_expected(now);
    }

    /// Live swarms: forgets what the manifest listed once it is `known_window` of media behind
    /// the newest fragment listed of its track, unless it is still wanted or a neighbour waits
    /// for it here. Fragments of a track are ordered by sequence, and sequences by media time,
    /// so each track is trimmed from its front.
    pub(super) fn forget_old_fragments(&mut self) {
        let Some(window) = self.cfg.known_window else {
            return;
        };
        let mut known = std::mem::take(&mut self.known);
        known.forget(window, |id| {
            self.wants.contains_key(id) || self.parked_for(id)
        });
        self.known = known;
    }

    /// The player no longer wants `fragment` (it seeked elsewhere, or its viewer left): nothing
    /// is delivered for it. A request to a peer is cancelled and the want dropped, unless a
    /// neighbour's request waits here for the fragment (the fetch then goes on for it); an
    /// origin fetch in progress completes into the cache (the driver owns that HTTP request).
    pub fn handle_player_cancel(&mut self, _now: Instant, fragment: FragmentId) {
        let parked = self.parked_for(&fragment);
        let Some(w) = self.wants.get_mut(&fragment) else {
            return;
        };
        if !w.player {
            return;
        }
        w.player = false;
        self.stats.player_cancels += 1;
        if parked {
            return;
        }
        match &w.state {
            State::FromOrigin { .. } => {}
            State::FromPeer {
                peer, request_id, ..
            } => {
                let (peer, request_id) = (*peer, *request_id);
                self.cancel_peer_request(peer, request_id);
                self.wants.remove(&fragment);
            }
            State::Waiting { .. } | State::OriginBackoff { .. } | State::Held { .. } => {
                self.wants.remove(&fragment);
            }
        }
    }

    /// The player asks for a fragment, needed by `deadline` (None: the configured default).
    /// The bytes come back as [`Output::Deliver`] — at once on a cache hit.
    pub fn handle_player_request(
        &mut self,
        now: Instant,
        info: FragmentInfo,
        deadline: Option<Instant>,
    ) {
        self.note_bitrate(&info);
        let deadline = deadline.unwrap_or(now + self.cfg.default_deadline);
        let mut info = info;
        match self.known.get(&info.id) {
            Some(k) => {
                info.hash = info.hash.or(k.hash);
                if info.hash != k.hash {
                    self.known.insert(info.clone());
                }
            }
            None => {
                if info.hash.is_none() {
                    info.hash = self.early_hashes.remove(&info.id);
                }
                self.known.insert(info.clone());
            }
        }
        if let Some(hit) = self.cache.get(&info.id) {
            self.stats.player_bytes += hit.data.len() as u64;
            self.stats.delivered_in_time += 1;
            self.out.push_back(Output::Deliver {
                fragment: info.id,
                data: hit.data,
            });
            return;
        }
        if let Some(w) = self.wants.get_mut(&info.id) {
            // A prefetch in progress now has a player waiting, maybe with an earlier deadline.
            w.player = true;
            w.deadline = w.deadline.min(deadline);
            if let Some(h) = info.hash {
                self.hash_learnt(now, info.id, h);
            }
            return;
        }
        self.want(now, info, deadline, true);
    }

    /// Trusted hashes learnt after the fragments were listed (or before: they are kept, up to a
    /// bound, until the manifest lists them). A fragment that waited for its hash is decided
    /// again at once. Hashes come from a source the driver trusts, never from a peer.
    pub fn handle_trusted_hashes(
        &mut self,
        now: Instant,
        hashes: impl IntoIterator<Item = (FragmentId, ContentHash)>,
    ) {
        let mut ready = Vec::new();
        for (id, hash) in hashes {
            if id.content != self.content {
                continue;
            }
            if !self.known.set_hash(&id, hash) {
                if self.early_hashes.len() >= MAX_EARLY_HASHES {
                    // Keep the newest: drop the lowest (oldest) fragment's.
                    if let Some(first) = self.early_hashes.keys().next().copied() {
                        if first > id {
                            continue;
                        }
                        self.early_hashes.remove(&first);
                    }
                }
                self.early_hashes.insert(id, hash);
                continue;
            }
            // Bytes cached before the hash was known (from the origin) that are not the ones
            // the list names are not served on: peers would refuse them, and this agent with.
            if self.cache.get(&id).is_some_and(|c| c.hash != hash) {
                self.cache.remove(&id);
                self.stats.origin_hash_mismatches += 1;
            }
            if self.wants.get(&id).is_some_and(|w| w.info.hash.is_none()) {
                ready.push((id, hash));
            }
        }
        for (id, hash) in ready {
            self.hash_learnt(now, id, hash);
        }
    }

    /// A wanted fragment's trusted hash is known at last: a want that waited for it is decided
    /// again at once; bytes held for it are used if they match (the sender is banned if not);
    /// a transfer in progress whose sender declared another hash is cancelled, and the sender
    /// banned.
    fn hash_learnt(&mut self, now: Instant, id: FragmentId, hash: ContentHash) {
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        if w.info.hash.is_some() {
            return; // a trusted hash once known stays the one used
        }
        w.info.hash = Some(hash);
        match &w.state {
            State::Waiting { .. } => self.decide(now, id),
            State::Held { declared, .. } if *declared == hash => {
                let State::Held { data, declared, .. } =
                    std::mem::replace(&mut w.state, State::Waiting { until: now })
                else {
                    return;
                };
                self.stats.verified_late += 1;
                self.stats.peer_bytes += data.len() as u64;
                self.finish(now, id, data, declared);
            }
            State::Held { peer, .. } => {
                let peer = *peer;
                w.tried.insert(peer);
                w.state = State::Waiting { until: now };
                self.stats.bad_fragments += 1;
                self.ban(now, peer, id);
                self.decide(now, id);
            }
            State::FromPeer {
                peer,
                request_id,
                hash: Some(declared),
                ..
            } if *declared != hash => {
                let (peer, request_id) = (*peer, *request_id);
                w.tried.insert(peer);
                w.state = State::Waiting { until: now };
                self.stats.bad_fragments += 1;
                self.cancel_peer_request(peer, request_id);
                self.ban(now, peer, id);
                self.decide(now, id);
            }
            _ => {}
        }
    }

    /// Fetches a fragment a neighbour asked for (pull-through), unless already wanted.
    pub(super) fn want_for_neighbour(
        &mut self,
        now: Instant,
        info: FragmentInfo,
        deadline: Instant,
    ) {
        if !self.wants.contains_key(&info.id) {
            self.want(now, info, deadline, false);
        }
    }

    fn want(&mut self, now: Instant, info: FragmentInfo, deadline: Instant, player: bool) {
        let id = info.id;
        let mut info = info;
        if info.hash.is_none() {
            info.hash = self.known.get(&id).and_then(|k| k.hash);
        }
        self.wants.insert(
            id,
            Want {
                info,
                deadline,
                player,
                asked_hash: false,
                tried: BTreeSet::new(),
                busy: Vec::new(),
                since: now,
                state: State::Waiting { until: now },
            },
        );
        self.decide(now, id);
    }

    /// Time needed to fetch `size` bytes from the origin, with the safety margin.
    fn origin_budget(&self, size: u64) -> Duration {
        let bps = self
            .origin_bps
            .unwrap_or(self.cfg.assumed_origin_bps)
            .max(1);
        hive_core::time::secs_f64(size as f64 * 8.0 / bps as f64)
            .saturating_add(self.cfg.origin_margin)
    }

    /// Chooses a source for a wanted fragment that has none in progress.
    pub(super) fn decide(&mut self, now: Instant, id: FragmentId) {
        let Some(w) = self.wants.get(&id) else { return };
        if matches!(
            w.state,
            State::FromPeer { .. } | State::FromOrigin { .. } | State::Held { .. }
        ) {
            return;
        }
        // (A want is only made for a fragment the cache lacks, and leaves when the fragment is
        // stored: the cache is not asked again at every decision.)
        if !w.player && now >= w.deadline {
            // Nobody waits for it any more (a neighbour's request past its deadline, or a
            // prefetch): drop it, and refuse what is parked on it.
            self.wants.remove(&id);
            self.release_parked(now, id, false);
            return;
        }
        let size = w.info.size_estimate;
        // The last moment the origin can still make the deadline — but peers always get the first
        // half of the slack: a slow origin is a congested one, and sending everyone there at
        // once (because it is slow) would only make it slower.
        let half = w.since + w.deadline.saturating_duration_since(w.since) / 2;
        let last_call = w
            .deadline
            .checked_sub(self.origin_budget(size))
            .unwrap_or(Instant::ZERO)
            .max(half);
        // Hide the neighbours that failed us for this fragment; show those busy for a while as
        // choked (a policy may still count them, e.g. to agree on who fetches, but not ask them).
        let busy: Vec<PeerId> = w
            .busy
            .iter()
            .filter(|(_, t)| *t > now)
            .map(|(p, _)| *p)
            .collect();
        let busy_until = w.busy.iter().map(|(_, t)| *t).filter(|t| *t > now).min();
        let need = FetchContext {
            fragment: id,
            size_estimate: size,
            deadline: w.deadline,
            attempts: w.tried.len() as u32,
            since: w.since,
        };
        let (player, deadline) = (w.player, w.deadline);
        let unverifiable = self.cfg.verify.needs_trusted_hash() && w.info.hash.is_none();
        let decision = if w.tried.is_empty() && busy.is_empty() {
            let (policy, view) = self.policy_and_view(usize::MAX);
            policy.fetch_source(now, &view, &need)
        } else {
            // Lend the policy the views in place: swap the tried ones past the end of the slice
            // it sees and mark the busy ones choked, then undo both.
            let mut hide: Vec<usize> = w.tried.iter().filter_map(|p| self.slot(p)).collect();
            hide.sort_unstable_by(|a, b| b.cmp(a));
            let mut end = self.views.len();
            let mut swaps = Vec::with_capacity(hide.len());
            for i in hide {
                end -= 1;
                self.views.swap(i, end);
                swaps.push((i, end));
            }
            let mut marked = Vec::new();
            for (i, v) in self.views[..end].iter_mut().enumerate() {
                if !v.choked && busy.contains(&v.info.id) {
                    v.choked = true;
                    marked.push(i);
                }
            }
            let (policy, view) = self.policy_and_view(end);
            let decision = policy.fetch_source(now, &view, &need);
            for i in marked {
                self.views[i].choked = false;
            }
            for (i, j) in swaps.into_iter().rev() {
                self.views.swap(i, j);
            }
            decision
        };
        let tried = |p: &PeerId| self.wants.get(&id).is_some_and(|w| w.tried.contains(p));
        let decision = match decision {
            FetchDecision::Origin => {
                self.stats.origin_by_policy += 1;
                FetchDecision::Origin
            }
            // The time budget overrides the policy: past the last call, only the origin is safe.
            _ if now >= last_call && player => {
                self.stats.origin_last_call += 1;
                FetchDecision::Origin
            }
            FetchDecision::Peer(p) if !self.is_neighbour(&p) || tried(&p) || busy.contains(&p) => {
                self.stats.origin_peer_unusable += 1;
                FetchDecision::Origin
            }
            // No trusted hash yet: the peer's bytes cannot be checked until it comes. Ask the
            // driver for it and start the transfer meanwhile; the bytes are held, unused,
            // until the hash comes and matches (or dropped at the last call, when the origin
            // serves).
            FetchDecision::Peer(p) if unverifiable => {
                self.stats.no_trusted_hash += 1;
                if let Some(w) = self.wants.get_mut(&id)
                    && !std::mem::replace(&mut w.asked_hash, true)
                {
                    self.out.push_back(Output::NeedHash { fragment: id });
                }
                FetchDecision::Peer(p)
            }
            // A player's fragment is decided again at its last call (the origin then); a
            // neighbour's request or a prefetch can wait until its deadline, when it is dropped.
            FetchDecision::WaitUntil(t) => FetchDecision::WaitUntil(
                t.min(if player { last_call } else { deadline })
                    .min(busy_until.unwrap_or(t))
                    .max(now + Duration::from_millis(1)),
            ),
            d => d,
        };
        match decision {
            FetchDecision::Origin => self.fetch_origin(now, id, 1),
            FetchDecision::WaitUntil(until) => {
                if let Some(w) = self.wants.get_mut(&id) {
                    w.state = State::Waiting { until };
                }
            }
            FetchDecision::Peer(peer) => self.request_from(now, id, peer, last_call),
        }
    }

    fn request_from(&mut self, now: Instant, id: FragmentId, peer: PeerId, last_call: Instant) {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        // A peer gets until the last call, but at least a short while to answer.
        let give_up_at = last_call.max(now + Duration::from_millis(200));
        let deadline_ms = w
            .deadline
            .saturating_duration_since(now)
            .as_millis()
            .min(u128::from(u32::MAX)) as u32;
        w.state = State::FromPeer {
            peer,
            request_id,
            started: now,
            give_up_at,
            buf: BytesMut::new(),
            hash: None,
        };
        let priority = if w.player { 0 } else { 4 };
        if let Some(l) = self.link_mut(&peer) {
            l.add_request(request_id, id);
        }
        self.with_view(peer, |v| v.inflight_requests += 1);
        self.send(
            peer,
            Message::Request(Request {
                request_id,
                fragment: id,
                deadline_ms,
                priority,
                resume_offset: 0,
            }),
            Class::Control,
        );
    }

    fn fetch_origin(&mut self, now: Instant, id: FragmentId, attempt: u32) {
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        w.state = State::FromOrigin {
            started: now,
            attempt,
        };
        self.out.push_back(Output::FetchOrigin {
            fragment: w.info.clone(),
            deadline: w.deadline,
        });
    }

    /// The answer to [`Output::FetchOrigin`]: the fragment's bytes, or an error description.
    /// The engine hashes the bytes (peers it serves check them against that hash).
    pub fn handle_origin_result(
        &mut self,
        now: Instant,
        fragment: FragmentId,
        result: Result<Bytes, String>,
    ) {
        self.origin_result(now, fragment, result.map(|data| (data, None)));
    }

    /// [`Swarm::handle_origin_result`] for bytes whose hash the driver already has (a manifest
    /// that lists fragments' hashes, or a simulator whose agents share one copy of each
    /// fragment): the engine takes `hash` as the bytes' and does not hash them again. A wrong
    /// hash makes every peer that verifies refuse the fragment from this agent.
    pub fn handle_origin_bytes(
        &mut self,
        now: Instant,
        fragment: FragmentId,
        data: Bytes,
        hash: ContentHash,
    ) {
        self.origin_result(now, fragment, Ok((data, Some(hash))));
    }

    fn origin_result(
        &mut self,
        now: Instant,
        fragment: FragmentId,
        result: Result<(Bytes, Option<ContentHash>), String>,
    ) {
        let Some(w) = self.wants.get(&fragment) else {
            return;
        };
        let State::FromOrigin { started, attempt } = w.state else {
            return;
        };
        match result {
            Ok((data, hash)) => {
                let secs = now
                    .saturating_duration_since(started)
                    .as_secs_f64()
                    .max(1e-3);
                let bps = (data.len() as f64 * 8.0 / secs) as u64;
                // Smoothed, so one slow fetch does not swing the budget.
                self.origin_bps = Some(self.origin_bps.map_or(bps, |o| (o * 3 + bps) / 4));
                self.stats.origin_bytes += data.len() as u64;
                let hash = hash.unwrap_or_else(|| ContentHash::of(&data));
                let trusted = self.wants.get(&fragment).and_then(|w| w.info.hash);
                if trusted.is_some_and(|t| t != hash) {
                    // The origin's bytes are what the player would get without Hive, but they
                    // are not the ones the trusted source lists: not cached, not served.
                    self.stats.origin_hash_mismatches += 1;
                    self.deliver_uncached(now, fragment, data);
                    return;
                }
                self.finish(now, fragment, data, hash);
            }
            Err(_) if attempt < self.cfg.origin_attempts => {
                let backoff = Duration::from_millis(100 * (1 << attempt.min(6)));
                if let Some(w) = self.wants.get_mut(&fragment) {
                    w.state = State::OriginBackoff {
                        at: now + backoff,
                        attempt: attempt + 1,
                    };
                }
            }
            Err(_) => {
                let w = self.wants.remove(&fragment);
                if w.is_some_and(|w| w.player) {
                    self.out.push_back(Output::Failed { fragment });
                }
                self.release_parked(now, fragment, false);
            }
        }
    }

    pub(super) fn on_data(&mut self, now: Instant, from: PeerId, d: Data) {
        let Some(id) = self
            .slot(&from)
            .and_then(|i| self.links[i].request(d.request_id))
        else {
            return; // cancelled or unknown: ignore
        };
        if d.fragment != id
            || d.total_len > self.cfg.max_fragment_len
            || d.offset.saturating_add(d.payload.len() as u64) > d.total_len
        {
            self.drop_peer(
                now,
                from,
                ByeReason::ProtocolError,
                "Data does not match the request",
            );
            return;
        }
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        let State::FromPeer {
            peer,
            request_id,
            buf,
            hash,
            started,
            give_up_at,
        } = &mut w.state
        else {
            return;
        };
        if *peer != from || *request_id != d.request_id {
            return;
        }
        // One class, in order: chunks arrive at increasing offsets without gaps.
        if d.offset != buf.len() as u64 || hash.is_some_and(|h| h != d.hash) {
            self.drop_peer(now, from, ByeReason::ProtocolError, "Data out of order");
            return;
        }
        // A sender that declares another hash than the trusted one is serving other bytes:
        // refuse them at the first chunk rather than after the whole fragment. (Without a
        // trusted hash yet, the bytes are taken and held until it comes.)
        let trusted = w.info.hash;
        if self.cfg.verify.needs_trusted_hash() && trusted.is_some_and(|t| t != d.hash) {
            w.tried.insert(from);
            w.state = State::Waiting { until: now };
            self.stats.bad_fragments += 1;
            if let Some(l) = self.link_mut(&from) {
                l.take_request(d.request_id);
            }
            self.ban(now, from, id);
            self.decide(now, id);
            return;
        }
        let hold_until = if w.player { *give_up_at } else { w.deadline };
        // A chunk that is the whole fragment is kept as it is, without a copy.
        let whole = buf.is_empty() && d.payload.len() as u64 == d.total_len;
        if !whole {
            if buf.is_empty() {
                // What the manifest leads us to expect, not what the sender claims: a claim of
                // the largest fragment would reserve that much for each request.
                let expected = w
                    .info
                    .size_estimate
                    .saturating_mul(2)
                    .saturating_add(64 << 10);
                buf.reserve(d.total_len.min(expected) as usize);
            }
            buf.extend_from_slice(&d.payload);
        }
        *hash = Some(d.hash);
        let (done, started) = (whole || buf.len() as u64 == d.total_len, *started);
        let taken = if done {
            std::mem::replace(&mut w.state, State::Waiting { until: now })
        } else {
            State::Waiting { until: now }
        };
        self.with_view(from, |v| v.bytes_from += d.payload.len() as u64);
        let State::FromPeer { buf, .. } = taken else {
            return;
        };
        let data = if whole {
            d.payload.clone()
        } else {
            buf.freeze()
        };
        if let Some(l) = self.link_mut(&from) {
            l.take_request(d.request_id);
        }
        let secs = now
            .saturating_duration_since(started)
            .as_secs_f64()
            .max(1e-3);
        let bps = (data.len() as f64 * 8.0 / secs) as u64;
        self.with_view(from, |v| {
            v.inflight_requests = v.inflight_requests.saturating_sub(1);
            v.throughput_bps = Some(v.throughput_bps.map_or(bps, |o| (o * 3 + bps) / 4));
        });
        // Never cache, serve or deliver bytes that do not match their trusted hash (checked
        // above to be the one declared); refuse who sent them from now on.
        let ok = match self.cfg.verify {
            Verify::Trusted | Verify::SenderHash => d.hash.verify(&data),
            Verify::TrustedDeclared => true,
        };
        let trusted = self.wants.get(&id).and_then(|w| w.info.hash);
        if !ok {
            self.stats.bad_fragments += 1;
            if let Some(w) = self.wants.get_mut(&id) {
                w.tried.insert(from);
            }
            if self.cfg.verify.needs_trusted_hash() && trusted.is_some() {
                self.ban(now, from, id);
            } else {
                // Bytes that fail the sender's own hash: corrupt in transit, or a broken
                // sender; no trusted source was contradicted.
                self.drop_peer(now, from, ByeReason::BadData, "fragment failed its hash");
            }
            self.decide(now, id);
            return;
        }
        if self.cfg.verify.needs_trusted_hash() && trusted.is_none() {
            // Whole and consistent, but not verifiable yet: held for the trusted hash.
            self.stats.held_for_hash += 1;
            if let Some(w) = self.wants.get_mut(&id) {
                w.state = State::Held {
                    peer: from,
                    data,
                    declared: d.hash,
                    until: hold_until.max(now),
                };
            }
            return;
        }
        self.stats.peer_bytes += data.len() as u64;
        self.finish(now, id, data, d.hash);
    }

    pub(super) fn on_reject(
        &mut self,
        now: Instant,
        from: PeerId,
        request_id: u64,
        reason: RejectReason,
    ) {
        let Some(id) = self
            .link_mut(&from)
            .and_then(|l| l.take_request(request_id))
        else {
            return;
        };
        self.with_view(from, |v| {
            v.inflight_requests = v.inflight_requests.saturating_sub(1)
        });
        if reason == RejectReason::Overloaded {
            // Busy now, not failed: ask others, and it again after a pause.
            if let Some(w) = self.wants.get_mut(&id) {
                if matches!(&w.state, State::FromPeer { peer, .. } if *peer == from) {
                    w.busy.retain(|(p, _)| *p != from);
                    w.busy.push((from, now + self.cfg.busy_retry));
                    w.state = State::Waiting { until: now };
                    self.stats.peer_fallbacks += 1;
                    self.decide(now, id);
                }
            }
            return;
        }
        self.abandon_peer_request(now, id, from);
    }

    /// A peer will not deliver `id`: remember it and choose again.
    pub(super) fn abandon_peer_request(&mut self, now: Instant, id: FragmentId, peer: PeerId) {
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        if matches!(&w.state, State::FromPeer { peer: p, .. } if *p == peer) {
            w.tried.insert(peer);
            w.state = State::Waiting { until: now };
            self.stats.peer_fallbacks += 1;
            self.decide(now, id);
        }
    }

    /// Withdraws a request sent to `peer`: tells it, and forgets the request.
    fn cancel_peer_request(&mut self, peer: PeerId, request_id: u64) {
        self.send(peer, Message::Cancel(Cancel { request_id }), Class::Control);
        if let Some(l) = self.link_mut(&peer) {
            l.take_request(request_id);
        }
        self.with_view(peer, |v| {
            v.inflight_requests = v.inflight_requests.saturating_sub(1)
        });
    }

    /// Timers of wanted fragments.
    pub(super) fn wake_wants(&mut self, now: Instant) {
        let due: Vec<FragmentId> = self
            .wants
            .iter()
            .filter(|(_, w)| w.wake_at().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(w) = self.wants.get_mut(&id) else {
                continue;
            };
            match &w.state {
                State::FromPeer {
                    peer, request_id, ..
                } => {
                    let (peer, request_id) = (*peer, *request_id);
                    self.cancel_peer_request(peer, request_id);
                    self.abandon_peer_request(now, id, peer);
                }
                State::OriginBackoff { attempt, .. } => {
                    let attempt = *attempt;
                    self.fetch_origin(now, id, attempt);
                }
                State::Waiting { .. } => self.decide(now, id),
                State::FromOrigin { .. } => {}
                State::Held { peer, .. } => {
                    // No trusted hash came in time: the bytes are dropped unused.
                    w.tried.insert(*peer);
                    w.state = State::Waiting { until: now };
                    self.stats.held_dropped += 1;
                    self.decide(now, id);
                }
            }
        }
    }

    /// Origin bytes that do not match the trusted hash: delivered to a waiting player, and
    /// nothing else (neighbours parked on the fragment are refused).
    fn deliver_uncached(&mut self, now: Instant, id: FragmentId, data: Bytes) {
        let Some(w) = self.wants.remove(&id) else {
            return;
        };
        self.release_parked(now, id, false);
        self.deliver_to_player(now, &w, id, data);
    }

    /// Hands a want's bytes to its player, if one waits, counting whether in time.
    fn deliver_to_player(&mut self, now: Instant, w: &Want, id: FragmentId, data: Bytes) {
        if !w.player {
            return;
        }
        self.stats.player_bytes += data.len() as u64;
        if now <= w.deadline {
            self.stats.delivered_in_time += 1;
        } else {
            self.stats.deadline_misses += 1;
        }
        self.out.push_back(Output::Deliver { fragment: id, data });
    }

    /// A wanted fragment is here and verified: store, deliver, announce.
    pub(super) fn finish(&mut self, now: Instant, id: FragmentId, data: Bytes, hash: ContentHash) {
        let Some(w) = self.wants.remove(&id) else {
            return;
        };
        let fragment = CachedFragment {
            id,
            data: data.clone(),
            hash,
            media_time: w.info.media_time,
            duration: w.info.duration,
        };
        self.cache.insert(now, fragment);
        self.release_parked(now, id, true);
        self.deliver_to_player(now, &w, id, data);
        self.announce(now, id);
    }
}
