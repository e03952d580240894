//! Viewers coming and going: the joins, publications and churn a scenario plans, a viewer's
//! arrival (its engine configured as `hive agent` configures it, its player, the tracker's first
//! sample) and its departure.

use std::sync::Arc;

use hive_core::cache::{DEFAULT_LIVE_WINDOW, FragmentCache, LiveWindowCache, VodCache};
use hive_core::time::{Duration, Instant};
use hive_core::{KeyKind, PeerId, PeerInfo, Role};
use hive_overlay::{FragmentInfo, Swarm, SwarmConfig, Verify};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::Sim;
use super::agent::{Agent, Sched, Viewer};
use super::paths::ACCESS_LATENCY;
use super::queue::{Ev, Local};
use crate::player::Player;

/// Fragments a live playlist lists (per bitrate).
const PLAYLIST_FRAGMENTS: u64 = 6;

impl Sim<'_> {
    /// Queues the scenario's events before the run: the viewers' joins, the publications (live)
    /// or the first tick (on demand), and churn.
    pub(super) fn plan(&mut self) {
        let s = self.s;
        // Viewers, in join order spread over `join_over`.
        let mut order = Vec::new();
        for (site, spec) in s.sites.iter().enumerate() {
            for _ in 0..spec.viewers {
                order.push(site);
            }
        }
        order.shuffle(&mut self.rng);
        for site in order {
            let v = self.add_viewer(site);
            let at = Instant::ZERO
                + Duration::from_secs(4)
                + s.join_over.mul_f64(self.rng.random::<f64>());
            self.at(at, Ev::Join(v));
        }
        if let Some(n) = s.vod_fragments() {
            // On demand: the whole title exists from the start.
            self.latest = Some(n - 1);
            self.at(Instant::ZERO + s.fragment, Ev::Tick);
        } else {
            // Live fragments: one every fragment duration from t0.
            let n = (s.duration.as_secs_f64() / s.fragment.as_secs_f64()).ceil() as u64 + 1;
            for k in 0..n {
                self.at(self.t0 + s.fragment * (k as u32 + 1), Ev::Publish(k));
            }
        }
        // Churn: leaves spread over the run, each replaced by a newcomer at the same site.
        let leaves = (s.churn_per_min * s.viewers() as f64 * s.duration.as_secs_f64() / 60.0)
            .round() as usize;
        for _ in 0..leaves {
            let at = Instant::ZERO
                + s.join_over
                + (s.duration.saturating_sub(s.join_over)).mul_f64(self.rng.random::<f64>());
            let victim = self.rng.random_range(0..self.viewers.len());
            let crash = self.rng.random_bool(0.5);
            self.at(
                at,
                Ev::Leave {
                    v: victim,
                    crash,
                    replace: true,
                },
            );
        }
    }

    fn add_viewer(&mut self, site: usize) -> usize {
        let v = self.viewers.len();
        let id = PeerId::from_public_key(
            KeyKind::X25519,
            format!("{}/viewer-{v}", self.s.seed).as_bytes(),
        );
        let up_bps = *self
            .s
            .access
            .up_bps
            .choose(&mut self.rng)
            .unwrap_or(&10_000_000);
        let up = self
            .net
            .add_link(format!("up:{v}"), Some(up_bps), ACCESS_LATENCY, false);
        let down = self.net.add_link(
            format!("down:{v}"),
            Some(self.s.access.down_bps),
            ACCESS_LATENCY,
            false,
        );
        let natted = self.rng.random_bool(self.s.nat_fraction.clamp(0.0, 1.0));
        self.ids.insert(id, v);
        self.up_backlog.push(0);
        self.viewers.push(Viewer {
            site,
            id,
            up,
            up_kbps: u32::try_from(up_bps / 1000).unwrap_or(u32::MAX),
            down,
            natted,
            role: Role::Peer,
            running: false,
        });
        self.agents.push(Agent::new());
        self.sched.push(Sched::IDLE);
        v
    }

    pub(super) fn join(&mut self, v: usize) {
        let now = self.now;
        self.promote(v);
        let site = self.viewers[v].site;
        let me = self.peer_info(v);
        // The role's profile (neighbours, upload slots, queueing) and the upload-slot rule
        // are hive-overlay's, as `hive agent` has them.
        let cfg = SwarmConfig {
            // The simulated network cannot alter bytes, and hashing every copy of every
            // fragment (300 GB at wan-6000's full size) would take longer than the rest of the
            // run: senders' declared hashes are compared with the trusted ones (see
            // `trusted_label`), and the bytes are not hashed again. (Modelling choice: the
            // same decisions as an agent's, without the hashing.)
            verify: Verify::TrustedDeclared,
            // A fragment crosses the flow-level network as one flow, not as chunks: the same
            // max-min shares and the same store-and-forward relaying (the engine passes a
            // fragment on once it holds all of it), at a third of the events. wan-6000 at 0.1
            // scale, 300 s: 94.07% offload in 9.5 s wall with 60 KiB chunks, 94.17% in 6.1 s.
            // Whole, a fragment is also passed on without a copy: every agent's cache holds a
            // slice of the origin's one payload. (Modelling choice.)
            chunk_size: self.chunk_size(),
            // An on-demand title's listing is kept whole.
            known_window: if self.s.vod.is_some() {
                None
            } else {
                SwarmConfig::default().known_window
            },
            // Modelling choice: the flow model shares each link max-min among its flows and
            // has no congestion controller per connection, so there is no priority for the
            // engine to set (`hive agent` sets it: priority follows urgency); without the
            // engine's wake-ups for it, runs stay as fast and their results as before.
            priority_follows_urgency: false,
            // A paced viewer's uplink carries its uploads at the pacing share of its rate:
            // modelled in the flow network (its uplink's capacity, below), not by the engine's
            // token bucket, which would hold a whole-fragment chunk back until its tokens are
            // in and then send it at the full rate. (Modelling choice: the same rate, paced
            // smoothly.)
            upload_pacing_permille: None,
            ..SwarmConfig::for_role(self.viewers[v].role)
        };
        if let Some(permille) =
            hive_overlay::RoleProfile::of(self.viewers[v].role).upload_pacing_permille
        {
            let up = self.viewers[v].up;
            // (A viewer joins once: its uplink still has its full rate here.)
            self.net.links[up].capacity *= f64::from(permille) / 1000.0;
        }
        let gateway = self.gateway_site().map(|i| self.s.sites[i].name.clone());
        let policy = self.policy.build(self.s.seed ^ v as u64, gateway);
        let cache: Arc<dyn FragmentCache> = match &self.s.vod {
            Some(vod) => Arc::new(VodCache::new(vod.cache_bytes)),
            // One agent, one thread: one shard.
            None => Arc::new(LiveWindowCache::with_shards(DEFAULT_LIVE_WINDOW, 1)),
        };
        let mut swarm = Swarm::new(now, me, self.content, cfg, policy, cache);
        // Live: the agent reads the playlist, which lists the last few fragments of every
        // bitrate, not only those published from now on. (Without them an agent that joined
        // after a fragment's publication refused to pull it through for a neighbour, and
        // branch supernodes went to the origin for it.)
        if let (None, Some(latest)) = (&self.s.vod, self.latest) {
            let listed: Vec<FragmentInfo> = (latest.saturating_sub(PLAYLIST_FRAGMENTS - 1)
                ..=latest)
                .flat_map(|k| (0..self.s.ladder_bps.len()).map(move |t| (k, t)))
                .map(|(k, t)| self.info(k, t))
                .collect();
            swarm.handle_fragments_published(now, listed);
        }
        self.agents[v].swarm = Some(swarm);
        self.viewers[v].running = true;
        let supernode = self.viewers[v].role == Role::Supernode;
        self.tracker.add(v, site, supernode);
        self.metrics.viewer_change(now, 1);
        // Live: start three fragments behind the live edge (as HLS players do); on demand, at
        // the title's start or a random position. At the lowest bitrate.
        let start = if self.s.vod.is_some() {
            self.vod_start()
        } else {
            self.latest.map_or(0, |k| k.saturating_sub(2))
        };
        // The player fetched the master and media playlists through its agent before its
        // first fragment: a new connection to the origin and two requests, three round trips
        // over the viewer's path to the origin. They count in start-up, as a real player's do
        // (`hive lab` measures them); the agent joins the swarm when they are done. (Modelling
        // choice: the simulator has no playlists, so their time is put before the join.)
        let playlists = self.net.latency(&self.path_origin(v)) * 6;
        let joined = now.checked_sub(playlists).unwrap_or(now);
        self.agents[v].player = Player::new(joined, start, 0);
        // Its playlists list every fragment published so far.
        self.agents[v].player_latest = self.latest;
        // Playback, stalls and buffer start now; only start-up counts from `joined`.
        self.agents[v].player.update(now);
        self.vod_joined(v);
        // The tracker: same site first, then anyone (random order).
        let candidates: Vec<PeerInfo> = self
            .tracker_sample(v)
            .into_iter()
            .map(|u| self.peer_info(u))
            .collect();
        self.with_agent(v, |ctx, a, now| {
            if let Some(s) = a.swarm.as_mut() {
                s.handle_candidates(now, candidates);
            }
            ctx.drain(v, a, now);
            ctx.maybe_request(v, a, now);
        });
        let next = self.next_announce(v);
        self.at(now + next, Ev::Announce(v));
    }

    pub(super) fn leave(&mut self, v: usize, crash: bool, replace: bool) {
        let a = &mut self.agents[v];
        let Some(swarm) = a.swarm.take() else {
            return;
        };
        a.player.gone = true;
        a.clear();
        // Effects it made before leaving (between windows) are still applied after this
        // window; nothing of it runs again.
        self.sched[v].wake = Instant::MAX;
        self.viewers[v].running = false;
        self.tracker.remove(v, self.viewers[v].site);
        self.metrics.viewer_change(self.now, -1);
        self.metrics
            .absorb(&swarm.stats(), &self.agents[v].player, self.now);
        let detect = if crash {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        for peer in swarm.neighbour_ids() {
            if let Some(&u) = self.ids.get(&peer) {
                self.push(u, self.now + detect, Local::Disconnected { peer: v });
            }
        }
        if !replace {
            return;
        }
        // A replacement viewer joins the same site at once.
        let site = self.viewers[v].site;
        let n = self.add_viewer(site);
        self.at(self.now + Duration::from_millis(100), Ev::Join(n));
    }
}
