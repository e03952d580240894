//! An agent within a window ([`Ctx::run_window`]): its queued events and timers go into its
//! engine, the engine's outputs become mail, effects and fragments for its player, and the
//! player asks for the next fragment. [`Ctx`] is what agents read while they run in parallel.

use std::collections::HashMap;
use std::sync::RwLock;

use hive_core::time::{Duration, Instant};
use hive_core::wire::Message;
use hive_core::{ContentId, FragmentId, PeerId};
use hive_overlay::{FragmentInfo, Input, Output, Swarm};

use super::agent::{Agent, IdHash, Viewer, peer_info};
use super::fragments::{fragment_info, trusted_label};
use super::mail::{Effect, Routed};
use super::paths::{Paths, can_connect};
use super::queue::{Local, Queued};
use crate::flownet::Net;
use crate::payloads::Payloads;
use crate::scenario::Scenario;

/// What agents may read while they run in parallel: nothing here changes within a window, but
/// the payload table, whose bytes are a function of the fragment (whoever makes one first).
pub(super) struct Ctx<'a> {
    pub(super) s: &'a Scenario,
    pub(super) paths: &'a Paths,
    pub(super) viewers: &'a [Viewer],
    pub(super) ids: &'a HashMap<PeerId, usize, IdHash>,
    /// Whether agents are described with their site (see [`peer_info`]).
    pub(super) sites: bool,
    pub(super) content: ContentId,
    pub(super) latest: Option<u64>,
    pub(super) payloads: &'a RwLock<Payloads>,
    /// The flows (read only: none starts or ends within a window).
    pub(super) net: &'a Net,
    /// Each viewer's Data backlog (see `Sim::up_backlog`).
    pub(super) up_backlog: &'a [u64],
}

impl Ctx<'_> {
    fn latency(&self, from: usize, to: usize) -> Duration {
        self.paths.latency(self.viewers, from, to)
    }

    /// What a message from `v` waits in its uplink's queue now (see [`up_queue`]).
    fn up_queue(&self, v: usize) -> Duration {
        up_queue(self.s, self.net, &self.viewers[v], self.up_backlog[v])
    }

    fn info(&self, seq: u64, track: usize) -> FragmentInfo {
        fragment_info(self.s, self.content, seq, track)
    }

    /// Runs agent `v`'s events and timers due before `end`, in time order (at equal times,
    /// events before the timer).
    pub(super) fn run_window(&self, v: usize, a: &mut Agent, end: Instant) {
        a.queue.extend(a.inbox.drain(..));
        loop {
            let q = a.queue.peek().map(|q| q.t).filter(|&t| t < end);
            let timer = a.timer.filter(|&t| t < end);
            match (q, timer) {
                (None, None) => break,
                (Some(tq), Some(tt)) if tt < tq => self.fire_timer(v, a, tt),
                (None, Some(tt)) => self.fire_timer(v, a, tt),
                (Some(_), _) => {
                    if let Some(Queued { t, ev, .. }) = a.queue.pop() {
                        self.local(v, a, t, ev);
                    }
                }
            }
        }
    }

    /// The engine's timer is due. (It is what the engine last said: every call into the engine
    /// is followed by [`Ctx::drain`], which reads it again.)
    fn fire_timer(&self, v: usize, a: &mut Agent, now: Instant) {
        if let Some(s) = a.swarm.as_mut() {
            s.handle_input(now, Input::Timeout);
        }
        self.drain(v, a, now);
    }

    fn local(&self, v: usize, a: &mut Agent, now: Instant, ev: Local) {
        if let Local::PlayerSees(k) = ev {
            a.player_latest = Some(a.player_latest.map_or(k, |l| l.max(k)));
            self.maybe_request(v, a, now);
            return;
        }
        let Some(s) = a.swarm.as_mut() else {
            return;
        };
        let published = matches!(ev, Local::Published(_));
        let Some(input) = self.input(ev) else {
            return;
        };
        s.handle_input(now, input);
        self.drain(v, a, now);
        if published {
            self.maybe_request(v, a, now);
        }
    }

    /// The engine's [`Input`] for a queued event (kept compact in the queue: agents by index,
    /// fragments by number), or none when it no longer applies (the peer left meanwhile).
    fn input(&self, ev: Local) -> Option<Input> {
        let info = |peer: usize| peer_info(self.s, self.viewers, peer, self.sites);
        Some(match ev {
            Local::Msg { from, msg } => Input::Message {
                from: self.viewers[from].id,
                message: *msg,
            },
            Local::Dialled { peer, ok } => {
                if ok && self.viewers[peer].running {
                    Input::PeerConnected(info(peer))
                } else {
                    Input::ConnectFailed(self.viewers[peer].id)
                }
            }
            Local::Accepted { peer } => {
                if !self.viewers[peer].running {
                    return None;
                }
                Input::PeerConnected(info(peer))
            }
            Local::Disconnected { peer } => Input::PeerDisconnected(self.viewers[peer].id),
            Local::Origin { track, seq } => {
                let id = FragmentId::new(self.content, track, seq);
                let (data, _) = self.payload(id);
                Input::Origin {
                    fragment: id,
                    result: Ok(data),
                    hash: Some(trusted_label(&id)),
                }
            }
            Local::Sent { peer, len } => Input::Sent {
                peer: self.viewers[peer].id,
                bytes: len,
            },
            Local::Published(k) => Input::FragmentsPublished(
                (0..self.s.ladder_bps.len())
                    .map(|t| self.info(k, t))
                    .collect(),
            ),
            Local::Candidates(peers) => Input::Candidates(peers.into_iter().map(info).collect()),
            Local::PlayerSees(_) => return None,
        })
    }

    pub(super) fn maybe_request(&self, v: usize, a: &mut Agent, now: Instant) {
        let Some(latest) = self.latest else { return };
        let vod = self.s.vod.is_some();
        // Live: the player asks for nothing its own playlist has not listed yet.
        let latest = match (vod, a.player_latest) {
            (true, _) => latest,
            (false, Some(seen)) => seen.min(latest),
            (false, None) => return,
        };
        let p = &mut a.player;
        p.update(now);
        if p.next_seq > latest && vod && !p.gone {
            // On demand, the title's last fragment is here: the viewer leaves once it is
            // played.
            if !std::mem::replace(&mut a.ending, true) {
                let left = Duration::from_secs_f64(a.player.buffer().max(0.0));
                a.out.push((now, Effect::Leave { at: now + left }));
            }
            return;
        }
        if !p.wants_more() || p.next_seq > latest {
            return;
        }
        // Live sync, as hls.js and dash.js do: a player that fell far behind the live edge
        // jumps back to three fragments behind it.
        if !vod && latest.saturating_sub(p.next_seq) > crate::player::LIVE_SYNC_FRAGMENTS {
            p.next_seq = latest.saturating_sub(2);
        }
        let (seq, track) = (p.next_seq, p.track);
        p.inflight = Some((seq, track, now));
        let slack = p.fragment_deadline();
        let info = self.info(seq, track);
        if let Some(s) = a.swarm.as_mut() {
            s.handle_player_request(now, info, Some(now + slack));
        }
        self.drain(v, a, now);
    }

    /// Takes the engine's outputs: effects beyond the agent for after the window, fragments
    /// for its player, and its next timer.
    pub(super) fn drain(&self, v: usize, a: &mut Agent, now: Instant) {
        loop {
            let Some(out) = a.swarm.as_mut().and_then(Swarm::poll_output) else {
                break;
            };
            match out {
                Output::Send { to, message, .. } => {
                    let Some(&u) = self.ids.get(&to) else {
                        continue;
                    };
                    if matches!(message, Message::Data(_)) {
                        let msg = Box::new(message);
                        a.out.push((now, Effect::Data { to: u, msg }));
                    } else {
                        a.mail.push(Routed {
                            to: u,
                            at: now + self.latency(v, u) + self.up_queue(v),
                            ev: Local::Msg {
                                from: v,
                                msg: Box::new(message),
                            },
                        });
                    }
                }
                Output::FetchOrigin { fragment, .. } => {
                    a.out.push((now, Effect::FetchOrigin { id: fragment.id }));
                }
                Output::Deliver { fragment, data } => {
                    let track = usize::from(fragment.track.0);
                    let bps = self.s.ladder_bps[track];
                    let frag_s = self.s.fragment.as_secs_f64();
                    let p = &mut a.player;
                    if p.inflight
                        .is_some_and(|(s, t, _)| s == fragment.sequence && t == track)
                    {
                        p.on_fragment(
                            now,
                            fragment.sequence,
                            bps,
                            data.len() as u64,
                            frag_s,
                            &self.s.ladder_bps,
                        );
                        self.maybe_request(v, a, now);
                    }
                }
                Output::Failed { fragment } => {
                    let p = &mut a.player;
                    if p.inflight.is_some_and(|(s, _, _)| s == fragment.sequence) {
                        p.inflight = None;
                        p.next_seq = fragment.sequence + 1;
                    }
                }
                Output::Connect(peer) => {
                    if let Some(&u) = self.ids.get(&peer.id) {
                        let ok = can_connect(self.s, self.viewers, v, u);
                        let at = now + self.latency(v, u) * 3 + self.up_queue(v);
                        a.mail.push(Routed {
                            to: v,
                            at,
                            ev: Local::Dialled { peer: u, ok },
                        });
                        if ok {
                            let ev = Local::Accepted { peer: v };
                            a.mail.push(Routed { to: u, at, ev });
                        }
                    }
                }
                // Simulated peers serve what the origin served: none fails verification.
                // Simulated trusted hashes are known when a fragment is listed.
                Output::BadPeer { .. } | Output::NeedHash { .. } => {}
                // The flow model shares links max-min and has no per-connection controller
                // (engines run with `priority_follows_urgency` off: see `join`).
                Output::CcPriority { .. } => {}
                Output::Disconnect { peer, .. } => {
                    if let Some(&u) = self.ids.get(&peer) {
                        let at = now + self.latency(v, u);
                        let ev = Local::Disconnected { peer: v };
                        a.mail.push(Routed { to: u, at, ev });
                    }
                }
            }
        }
        a.timer = a
            .swarm
            .as_ref()
            .and_then(Swarm::poll_timeout)
            .map(|t| t.max(now));
    }
}

/// What viewer `v` sends waits this long in its uplink's queue now: the queue a loss-based
/// controller keeps in a saturated uplink ([`crate::scenario::saturated_uplink_queue`]), but
/// no more than its Data `backlog` takes to cross the uplink (a transfer cannot queue more
/// than it has to send), and none while its uploads leave room: when the uplink is not their
/// bottleneck, or when they are paced below its rate (a viewer's role profile,
/// [`hive_overlay::RoleProfile::upload_pacing_permille`]).
pub(super) fn up_queue(s: &Scenario, net: &Net, v: &Viewer, backlog: u64) -> Duration {
    // A paced viewer's uploads leave its uplink room: no queue.
    let paced = hive_overlay::RoleProfile::of(v.role)
        .upload_pacing_permille
        .is_some_and(|p| p < 1000);
    if paced || backlog == 0 || !net.saturated(v.up) {
        return Duration::ZERO;
    }
    let drain = backlog as f64 * 8.0 / (f64::from(v.up_kbps.max(1)) * 1e3);
    crate::scenario::saturated_uplink_queue(s.access.up_buffer)
        .min(Duration::from_secs_f64(drain.min(60.0)))
}

#[cfg(test)]
mod tests {
    use hive_core::{KeyKind, Role};

    use super::*;

    /// An unpaced viewer (a supernode) whose upload fills its uplink makes what it sends wait
    /// the buffer's queue, at most its backlog's time to cross; a paced viewer, an idle uplink
    /// or an upload bounded elsewhere make it wait nothing.
    #[test]
    fn only_an_unpaced_saturated_uplink_queues() {
        let s = crate::scenario::named("corporate-130", 1).expect("a named scenario");
        let mut net = Net::new();
        let up = net.add_link("up", Some(1_000_000), Duration::ZERO, false);
        let down = net.add_link("down", Some(100_000_000), Duration::ZERO, false);
        let thin = net.add_link("thin", Some(500_000), Duration::ZERO, false);
        let viewer = |role| Viewer {
            site: 0,
            id: PeerId::from_public_key(KeyKind::X25519, b"v"),
            up,
            up_kbps: 1000,
            down,
            natted: false,
            role,
            running: true,
        };
        let (supernode, peer) = (viewer(Role::Supernode), viewer(Role::Peer));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        assert_eq!(
            up_queue(&s, &net, &supernode, 1_000_000),
            Duration::ZERO,
            "idle"
        );
        let f = net.start(Instant::ZERO, vec![up, down], 1_000_000);
        // 85% of the default 100 ms buffer, or what the backlog takes at 1 Mbit/s (1 000 B: 8 ms).
        assert!((ms(up_queue(&s, &net, &supernode, 1_000_000)) - 85.0).abs() < 1e-6);
        assert!((ms(up_queue(&s, &net, &supernode, 1_000)) - 8.0).abs() < 1e-6);
        assert_eq!(
            up_queue(&s, &net, &supernode, 0),
            Duration::ZERO,
            "no backlog"
        );
        assert_eq!(
            up_queue(&s, &net, &peer, 1_000_000),
            Duration::ZERO,
            "paced"
        );
        let done = net.next_completion().expect("a flow under way");
        assert_eq!(net.advance(done), vec![f]);
        // Bounded by a thinner link further on: the uplink keeps room.
        net.start(done, vec![up, thin], 1_000_000);
        assert_eq!(up_queue(&s, &net, &supernode, 1_000_000), Duration::ZERO);
    }
}
