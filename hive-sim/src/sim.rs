//! The discrete-event loop: one swarm engine per viewer, a flow-level network, players, a
//! tracker, NAT and churn, all on virtual time from one seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hive_core::cache::{DEFAULT_LIVE_WINDOW, FragmentCache, LiveWindowCache, VodCache};
use hive_core::overlay::{OverlayPolicy, SupernodePlan};
use hive_core::time::{Duration, Instant};
use hive_core::wire::Message;
use hive_core::{
    ContentId, FragmentId, KeyKind, Locality, PeerAddr, PeerId, PeerInfo, Role, TrackId,
};
use hive_overlay::{
    FragmentInfo, NoPeer, Output, PrivateHierarchy, PublicMesh, PublicMeshConfig, RandomMesh,
    Swarm, SwarmConfig,
};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::net::{FlowId, LinkId, Net};
use crate::payloads::{Payloads, SharingCache};
use crate::player::Player;
use crate::report::{LinkCopies, Metrics, SimReport};
use crate::scenario::Scenario;

mod vod;

/// How often agents re-announce to the tracker.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(15);
/// How soon an agent with fewer than [`FEW_NEIGHBOURS`] neighbours re-announces.
const ANNOUNCE_SOON: Duration = Duration::from_secs(2);
/// Below this many neighbours an agent re-announces soon.
const FEW_NEIGHBOURS: usize = 4;
/// How soon a branch supernode re-announces while the tracker knows no gateway-site supernode,
/// during its first [`JOINING`]: as often as real agents may (they take no interval under a
/// second; hive-services' tracker tells a branch supernode this while the gateway site has
/// none).
const ANNOUNCE_JOINING: Duration = Duration::from_secs(1);
/// How long after joining a supernode re-announces at [`ANNOUNCE_JOINING`].
const JOINING: Duration = Duration::from_secs(5);
/// Uploads a supernode serves at once (see `join`).
const SUPERNODE_UPLOAD_SLOTS: usize = 8;
/// Fragments a live playlist lists (per bitrate).
const PLAYLIST_FRAGMENTS: u64 = 6;
/// Data chunk size in the simulator: larger than any fragment (16 Mbit/s × 2 s), so that one
/// fragment is one flow (see `join`).
const SIM_CHUNK: usize = 4 << 20;

/// Which policy every agent runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// A pure CDN.
    NoPeer,
    /// Random neighbours, no locality, no tiers.
    RandomMesh,
    /// Supernodes per site (promoted by the tracker), pull-through across VPN links.
    PrivateHierarchy,
    /// The public-internet mesh: a capacity-weighted first tier self-elected per fragment,
    /// locality clustering, pulls from the fastest holder.
    PublicMesh,
}

impl PolicyKind {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::NoPeer => "nopeer",
            PolicyKind::RandomMesh => "randommesh",
            PolicyKind::PrivateHierarchy => "hierarchy",
            PolicyKind::PublicMesh => "publicmesh",
        }
    }

    fn build(
        self,
        seed: u64,
        s: &Scenario,
        gateway_site: Option<String>,
    ) -> Box<dyn OverlayPolicy> {
        match self {
            PolicyKind::NoPeer => Box::new(NoPeer),
            PolicyKind::RandomMesh => Box::new(RandomMesh::new(seed)),
            PolicyKind::PrivateHierarchy => Box::new(PrivateHierarchy::new(gateway_site)),
            PolicyKind::PublicMesh => {
                // The first tier must upload at least the stream's top bitrate.
                let top_kbps = s.ladder_bps.iter().max().map_or(0, |b| b / 1000);
                let cfg = PublicMeshConfig {
                    min_tier_kbps: u32::try_from(top_kbps).unwrap_or(u32::MAX),
                    ..PublicMeshConfig::default()
                };
                Box::new(PublicMesh::with_config(seed, cfg))
            }
        }
    }
}

#[derive(Debug)]
enum Ev {
    Join(usize),
    Leave {
        v: usize,
        crash: bool,
        /// Whether a newcomer replaces the viewer (churn) or not (on demand: it is done).
        replace: bool,
    },
    /// The viewer seeks to a random position (on demand).
    Seek(usize),
    /// Players whose buffer was full ask for more (on demand; live players are woken by each
    /// new fragment).
    Tick,
    Publish(u64),
    Msg {
        to: usize,
        from: usize,
        msg: Message,
    },
    Connected {
        a: usize,
        b: usize,
        ok: bool,
    },
    Disconnected {
        v: usize,
        peer: usize,
    },
    /// The agent re-announces to the tracker and gets a fresh sample.
    Announce(usize),
    Arrive {
        flow: FlowTag,
    },
}

/// Queued events' payloads, in slots reused as events are taken (the queue itself orders small
/// (time, sequence, slot) entries).
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Ev>>,
    free: Vec<usize>,
}

impl Slab {
    fn put(&mut self, ev: Ev) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(ev);
                i
            }
            None => {
                self.slots.push(Some(ev));
                self.slots.len() - 1
            }
        }
    }

    fn take(&mut self, i: usize) -> Option<Ev> {
        let ev = self.slots.get_mut(i)?.take();
        if ev.is_some() {
            self.free.push(i);
        }
        ev
    }
}

#[derive(Debug, Clone)]
enum FlowTag {
    Origin {
        v: usize,
        id: FragmentId,
    },
    Data {
        from: usize,
        to: usize,
        msg: Message,
    },
}

struct Viewer {
    site: usize,
    id: PeerId,
    up: LinkId,
    /// Upload capacity, kbit/s (what the agent advertises).
    up_kbps: u32,
    down: LinkId,
    natted: bool,
    role: Role,
    swarm: Option<Swarm>,
    player: Player,
    /// On demand: the viewer has the title's last fragment and leaves when it is played.
    ending: bool,
    /// The engine's wake-up time queued in `timers` (later entries for this viewer are stale
    /// and skipped without asking the engine).
    timer: Option<Instant>,
}

/// Per bottleneck link: bytes per track, and sizes of the distinct fragments that crossed.
#[derive(Default)]
struct Copies {
    bytes: BTreeMap<TrackId, u64>,
    distinct: BTreeMap<TrackId, BTreeMap<u64, u64>>,
}

struct Sim<'a> {
    s: &'a Scenario,
    policy: PolicyKind,
    now: Instant,
    rng: ChaCha8Rng,
    net: Net,
    origin_link: LinkId,
    core_link: LinkId,
    gw_down: Option<LinkId>,
    vpn: Vec<Option<(LinkId, LinkId)>>,
    viewers: Vec<Viewer>,
    /// Viewer index by agent id (looked up for every message sent; never iterated).
    ids: HashMap<PeerId, usize, foldhash::fast::FixedState>,
    events: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    payloads: Slab,
    seq: u64,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    flows: BTreeMap<FlowId, (FlowTag, Vec<LinkId>)>,
    pair_queues: BTreeMap<(usize, usize), VecDeque<Message>>,
    pair_busy: BTreeSet<(usize, usize)>,
    content: ContentId,
    t0: Instant,
    latest: Option<u64>,
    /// The origin's payloads, shared with every agent's cache (one copy per fragment).
    origin_payloads: Arc<Mutex<Payloads>>,
    copies: BTreeMap<LinkId, Copies>,
    /// Origin flows in progress: when each started and its bytes (the egress series).
    origin_flows: BTreeMap<FlowId, (Instant, u64)>,
    metrics: Metrics,
    /// The tracker's index of the agents running, per site and in all.
    tracker: TrackerIndex,
    /// How many supernodes the tracker promotes per site (the default plan, the gateway site
    /// named).
    supernode_plan: SupernodePlan,
}

/// The agents running, per site and in all, with each one's place in those lists: the tracker
/// draws its samples from here in time proportional to the sample, not to the swarm.
#[derive(Default)]
struct TrackerIndex {
    by_site: Vec<Vec<usize>>,
    all: Vec<usize>,
    /// Per viewer: its index in `by_site[site]` and in `all` (when running).
    place: BTreeMap<usize, (usize, usize)>,
    /// Supernodes running, per site.
    supernodes: Vec<Vec<usize>>,
}

impl TrackerIndex {
    fn add(&mut self, v: usize, site: usize, supernode: bool) {
        if self.by_site.len() <= site {
            self.by_site.resize_with(site + 1, Vec::new);
            self.supernodes.resize_with(site + 1, Vec::new);
        }
        if self.place.contains_key(&v) {
            return;
        }
        self.place
            .insert(v, (self.by_site[site].len(), self.all.len()));
        self.by_site[site].push(v);
        self.all.push(v);
        if supernode {
            self.supernodes[site].push(v);
        }
    }

    fn remove(&mut self, v: usize, site: usize) {
        let Some((i, j)) = self.place.remove(&v) else {
            return;
        };
        self.by_site[site].swap_remove(i);
        if let Some(&moved) = self.by_site[site].get(i) {
            if let Some(p) = self.place.get_mut(&moved) {
                p.0 = i;
            }
        }
        self.all.swap_remove(j);
        if let Some(&moved) = self.all.get(j) {
            if let Some(p) = self.place.get_mut(&moved) {
                p.1 = j;
            }
        }
        self.supernodes[site].retain(|&u| u != v);
    }
}

/// Runs `s` with every agent on `policy`.
pub fn run(s: &Scenario, policy: PolicyKind) -> SimReport {
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(s, policy);
    sim.main_loop();
    sim.report(wall.elapsed())
}

impl<'a> Sim<'a> {
    fn new(s: &'a Scenario, policy: PolicyKind) -> Self {
        let mut net = Net::new();
        let origin_link = net.add_link("origin", None, Duration::from_millis(20), false);
        let core_link = net.add_link("internet", None, Duration::from_millis(20), false);
        // Traffic from the internet into the gateway site: the link that bounds origin fetches.
        let gw_down = s
            .gateway_bps
            .map(|b| net.add_link("gateway:down", Some(b), Duration::from_millis(2), true));
        let vpn = s
            .sites
            .iter()
            .map(|site| {
                site.vpn_bps.map(|b| {
                    (
                        net.add_link(
                            format!("vpn:{}:down", site.name),
                            Some(b),
                            Duration::from_millis(15),
                            true,
                        ),
                        net.add_link(
                            format!("vpn:{}:up", site.name),
                            Some(b),
                            Duration::from_millis(15),
                            true,
                        ),
                    )
                })
            })
            .collect();
        let mut sim = Sim {
            s,
            policy,
            now: Instant::ZERO,
            rng: ChaCha8Rng::seed_from_u64(s.seed),
            net,
            origin_link,
            core_link,
            gw_down,
            vpn,
            viewers: Vec::new(),
            ids: HashMap::default(),
            events: BinaryHeap::new(),
            payloads: Slab::default(),
            seq: 0,
            timers: BinaryHeap::new(),
            flows: BTreeMap::new(),
            pair_queues: BTreeMap::new(),
            pair_busy: BTreeSet::new(),
            content: ContentId::derive(&format!("sim/{}", s.name)),
            t0: Instant::ZERO,
            latest: None,
            origin_payloads: Arc::new(Mutex::new(Payloads::default())),
            copies: BTreeMap::new(),
            origin_flows: BTreeMap::new(),
            metrics: Metrics::default(),
            tracker: TrackerIndex::default(),
            supernode_plan: SupernodePlan {
                gateway_site: s.enterprise().then(|| s.sites[0].name.clone()),
                ..SupernodePlan::default()
            },
        };
        // Viewers, in join order spread over `join_over`.
        let mut order = Vec::new();
        for (site, spec) in s.sites.iter().enumerate() {
            for _ in 0..spec.viewers {
                order.push(site);
            }
        }
        order.shuffle(&mut sim.rng);
        for site in order {
            let v = sim.add_viewer(site);
            let at = Instant::ZERO
                + Duration::from_secs(4)
                + s.join_over.mul_f64(sim.rng.random::<f64>());
            sim.at(at, Ev::Join(v));
        }
        if let Some(n) = s.vod_fragments() {
            // On demand: the whole title exists from the start.
            sim.latest = Some(n - 1);
            sim.at(Instant::ZERO + s.fragment, Ev::Tick);
        } else {
            // Live fragments: one every fragment duration from t0.
            let n = (s.duration.as_secs_f64() / s.fragment.as_secs_f64()).ceil() as u64 + 1;
            for k in 0..n {
                sim.at(sim.t0 + s.fragment * (k as u32 + 1), Ev::Publish(k));
            }
        }
        // Churn: leaves spread over the run, each replaced by a newcomer at the same site.
        let leaves = (s.churn_per_min * s.viewers() as f64 * s.duration.as_secs_f64() / 60.0)
            .round() as usize;
        for _ in 0..leaves {
            let at = Instant::ZERO
                + s.join_over
                + (s.duration.saturating_sub(s.join_over)).mul_f64(sim.rng.random::<f64>());
            let victim = sim.rng.random_range(0..sim.viewers.len());
            let crash = sim.rng.random_bool(0.5);
            sim.at(
                at,
                Ev::Leave {
                    v: victim,
                    crash,
                    replace: true,
                },
            );
        }
        sim
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
        let up = self.net.add_link(
            format!("up:{v}"),
            Some(up_bps),
            Duration::from_millis(5),
            false,
        );
        let down = self.net.add_link(
            format!("down:{v}"),
            Some(self.s.access.down_bps),
            Duration::from_millis(5),
            false,
        );
        let natted = self.rng.random_bool(self.s.nat_fraction.clamp(0.0, 1.0));
        self.ids.insert(id, v);
        self.viewers.push(Viewer {
            site,
            id,
            up,
            up_kbps: u32::try_from(up_bps / 1000).unwrap_or(u32::MAX),
            down,
            natted,
            role: Role::Peer,
            swarm: None,
            player: Player::new(Instant::ZERO, 0, 0),
            ending: false,
            timer: None,
        });
        v
    }

    fn at(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        let slot = self.payloads.put(ev);
        self.events.push(Reverse((t, self.seq, slot)));
    }

    fn info(&self, seq: u64, track: usize) -> FragmentInfo {
        FragmentInfo {
            id: FragmentId::new(self.content, TrackId(track as u16), seq),
            url: format!("http://origin/{}/t{track}/{seq}.ts", self.s.name),
            media_time: self.s.fragment * seq as u32,
            duration: self.s.fragment,
            size_estimate: self.fragment_size(seq, track),
        }
    }

    /// Realistic sizes: the nominal bitrate ±10%, varying per fragment.
    fn fragment_size(&self, seq: u64, track: usize) -> u64 {
        let nominal = self.s.ladder_bps[track] as f64 * self.s.fragment.as_secs_f64() / 8.0;
        let h = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ track as u64).rotate_left(17) % 2001;
        (nominal * (0.9 + 0.2 * h as f64 / 2000.0)) as u64
    }

    fn payload(&mut self, id: FragmentId) -> Bytes {
        let size = self.fragment_size(id.sequence, usize::from(id.track.0)) as usize;
        let make = || Bytes::from(vec![(id.sequence as u8) ^ (id.track.0 as u8); size]);
        // The newest 64 of each track: more than any live window; on demand, the whole title.
        let keep = if self.s.vod.is_some() { u64::MAX } else { 64 };
        match self.origin_payloads.lock() {
            Ok(mut p) => p.get_or_make(id.track.0, id.sequence, keep, make),
            Err(_) => make(),
        }
    }

    fn path_origin(&self, v: usize) -> Vec<LinkId> {
        let mut p = vec![self.origin_link];
        if let Some(gw) = self.gw_down {
            p.push(gw);
        } else {
            p.push(self.core_link);
        }
        if let Some((down, _)) = self.vpn[self.viewers[v].site] {
            p.push(down);
        }
        p.push(self.viewers[v].down);
        p
    }

    /// The links from one viewer to another, in order: its uplink, the VPN links between their
    /// sites (enterprise) or the core (public internet) when the sites differ, the receiver's
    /// downlink. A fixed array, so that a message's latency needs no allocation.
    fn peer_hops(&self, from: usize, to: usize) -> ([LinkId; 4], usize) {
        let (a, b) = (&self.viewers[from], &self.viewers[to]);
        let mut hops = [a.up; 4];
        let mut n = 1;
        let mut push = |l: LinkId| {
            hops[n] = l;
            n += 1;
        };
        if a.site != b.site {
            if self.s.enterprise() {
                if let Some((_, up)) = self.vpn[a.site] {
                    push(up);
                }
                if let Some((down, _)) = self.vpn[b.site] {
                    push(down);
                }
            } else {
                push(self.core_link);
            }
        }
        push(b.down);
        (hops, n)
    }

    /// The one-way latency from one viewer to another (asked for every message).
    fn peer_latency(&self, from: usize, to: usize) -> Duration {
        let (hops, n) = self.peer_hops(from, to);
        self.net.latency(&hops[..n])
    }

    fn path_peer(&self, from: usize, to: usize) -> Vec<LinkId> {
        let (hops, n) = self.peer_hops(from, to);
        hops[..n].to_vec()
    }

    fn main_loop(&mut self) {
        let end = Instant::ZERO + self.s.duration;
        loop {
            let t_ev = self.events.peek().map(|Reverse((t, _, _))| *t);
            let t_net = self.net.next_completion();
            let t_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let Some(t) = [t_ev, t_net, t_timer].into_iter().flatten().min() else {
                break;
            };
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            if t_net == Some(t) {
                for flow in self.net.advance(t) {
                    self.flow_done(flow);
                }
            } else if t_ev == Some(t) {
                let Some(Reverse((_, _, slot))) = self.events.pop() else {
                    break;
                };
                if let Some(ev) = self.payloads.take(slot) {
                    self.handle(ev);
                }
            } else if let Some(Reverse((at, v))) = self.timers.pop() {
                if self.viewers[v].timer != Some(at) {
                    continue;
                }
                self.viewers[v].timer = None;
                let now = self.now;
                let Some(next) = self.viewers[v].swarm.as_ref().and_then(Swarm::poll_timeout)
                else {
                    continue;
                };
                if next <= now {
                    if let Some(s) = self.viewers[v].swarm.as_mut() {
                        s.handle_timeout(now);
                    }
                    self.drain(v);
                } else {
                    self.arm(v, next);
                }
            }
        }
        self.now = end;
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Join(v) => self.join(v),
            Ev::Leave { v, crash, replace } => self.leave(v, crash, replace),
            Ev::Seek(v) => self.seek(v),
            Ev::Tick => self.vod_tick(),
            Ev::Publish(k) => {
                self.latest = Some(k);
                let infos: Vec<FragmentInfo> = (0..self.s.ladder_bps.len())
                    .map(|t| self.info(k, t))
                    .collect();
                for v in 0..self.viewers.len() {
                    if let Some(s) = self.viewers[v].swarm.as_mut() {
                        s.handle_fragments_published(now, infos.clone());
                        self.drain(v);
                        self.maybe_request(v);
                    }
                }
            }
            Ev::Msg { to, from, msg } => {
                let from_id = self.viewers[from].id;
                if let Some(s) = self.viewers[to].swarm.as_mut() {
                    s.handle_message(now, from_id, msg);
                    self.drain(to);
                }
            }
            Ev::Connected { a, b, ok } => {
                let alive = self.viewers[a].swarm.is_some() && self.viewers[b].swarm.is_some();
                let (ia, ib) = (self.peer_info(a), self.peer_info(b));
                if ok && alive {
                    if let Some(s) = self.viewers[a].swarm.as_mut() {
                        s.handle_peer_connected(now, ib);
                    }
                    if let Some(s) = self.viewers[b].swarm.as_mut() {
                        s.handle_peer_connected(now, ia);
                    }
                    self.drain(a);
                    self.drain(b);
                } else if let Some(s) = self.viewers[a].swarm.as_mut() {
                    s.handle_connect_failed(now, ib.id);
                    self.drain(a);
                }
            }
            Ev::Announce(v) => {
                if self.viewers[v].swarm.is_some() {
                    let candidates = self.tracker_sample(v);
                    if let Some(s) = self.viewers[v].swarm.as_mut() {
                        s.handle_candidates(now, candidates);
                    }
                    self.drain(v);
                    let next = self.next_announce(v);
                    self.at(now + next, Ev::Announce(v));
                }
            }
            Ev::Disconnected { v, peer } => {
                let pid = self.viewers[peer].id;
                if let Some(s) = self.viewers[v].swarm.as_mut() {
                    s.handle_peer_disconnected(now, pid);
                    self.drain(v);
                }
            }
            Ev::Arrive { flow } => match flow {
                FlowTag::Origin { v, id } => {
                    let data = self.payload(id);
                    self.metrics.origin_bytes += data.len() as u64;
                    if let Some(s) = self.viewers[v].swarm.as_mut() {
                        s.handle_origin_result(now, id, Ok(data));
                        self.drain(v);
                    }
                }
                FlowTag::Data { from, to, msg } => {
                    let from_id = self.viewers[from].id;
                    if let Some(s) = self.viewers[to].swarm.as_mut() {
                        s.handle_message(now, from_id, msg);
                        self.drain(to);
                    }
                }
            },
        }
    }

    fn peer_info(&self, v: usize) -> PeerInfo {
        let site = &self.s.sites[self.viewers[v].site];
        let mut p = PeerInfo::new(self.viewers[v].id, PeerAddr::Memory(v as u64));
        p.locality = Locality {
            asn: Some(site.asn),
            site: Some(site.name.clone()),
            country: None,
        };
        p.role = self.viewers[v].role;
        p.upload_kbps = self.viewers[v].up_kbps;
        p
    }

    fn join(&mut self, v: usize) {
        let now = self.now;
        // The tracker promotes the first agents of each site to supernodes, as many as the
        // default supernode plan wants for the site's viewers (more at the gateway site), and
        // replaces those that leave.
        let site = self.viewers[v].site;
        let spec = &self.s.sites[site];
        let wanted = self.supernode_plan.wanted(&spec.name, spec.viewers as u64);
        let live = self.tracker.supernodes.get(site).map_or(0, Vec::len);
        if self.policy == PolicyKind::PrivateHierarchy && (live as u64) < wanted {
            self.viewers[v].role = Role::Supernode;
        }
        let me = self.peer_info(v);
        let mut cfg = SwarmConfig {
            role: self.viewers[v].role,
            // The simulated network cannot alter bytes, and hashing every copy of every
            // fragment (300 GB at wan-6000's full size) would take longer than the rest of the
            // run: the simulator trusts fragments' hashes.
            verify_hashes: false,
            // A fragment crosses the flow-level network as one flow, not as chunks: the same
            // max-min shares and the same store-and-forward relaying (the engine passes a
            // fragment on once it holds all of it), at a third of the events. wan-6000 at 0.1
            // scale, 300 s: 94.07% offload in 9.5 s wall with 60 KiB chunks, 94.17% in 6.1 s.
            chunk_size: SIM_CHUNK,
            // An on-demand title's listing is kept whole.
            known_window: if self.s.vod.is_some() {
                None
            } else {
                SwarmConfig::default().known_window
            },
            ..SwarmConfig::default()
        };
        if cfg.role == Role::Supernode {
            // Supernodes serve their site and, at the gateway site, every branch's supernodes.
            // Few uploads at once: a pull-through chain (origin, gateway-site supernode, VPN,
            // branch supernode, site) is store-and-forward, so a fragment must cross each hop
            // quickly, not crawl beside dozens of others. enterprise-2068 at 0.25 scale, 300 s,
            // rebuffering for seeds 1/2/3: 32 slots 16%/-/-, 16 slots 0%/6.7%/0%, 8 slots
            // 4.9%/0%/0%. The swarm is bistable (late fragments send branch agents to the origin
            // through the same VPN link, which makes more of them late); slots only move the odds.
            cfg.upload_slots = SUPERNODE_UPLOAD_SLOTS;
            cfg.max_neighbours = 320;
            // A supernode's uplink is not what limits its uploads (its site's VPN link or the
            // gateway is), so its advertised capacity would promise waits it cannot keep:
            // requests it cannot serve at once are refused, and go to another supernode.
            // enterprise-2068 at 0.25 scale, 300 s, seed 1: 98.94% offload, 4.76% rebuffering
            // when supernodes queue; 99.64%, 0% when they refuse.
            cfg.queue_for_slots = false;
        }
        if matches!(self.policy, PolicyKind::PublicMesh | PolicyKind::RandomMesh) {
            // (The RandomMesh baseline gets the same engine settings: the comparison is of
            // policies, and with eight slots per home uplink its transfers tied the whole swarm
            // into one max-min computation — 440 s for wan-6000 at 0.1 scale, 600 s.)
            // As many upload slots as the uplink carries at eight times the top bitrate, at
            // least one: on wan-6000's access links (0.3 to 10 Mbit/s up, 700 kbit/s stream) one
            // each. A fragment then crosses at the whole uplink and its receiver passes it on
            // sooner; requests beyond it wait in the engine's queue when it can still make their
            // deadline. wan-6000 at 0.1 scale, 600 s: 95.02% offload with four times the top
            // bitrate (two or three slots on the fastest links), 95.78% with eight.
            let top = self.s.ladder_bps.iter().max().copied().unwrap_or(1).max(1);
            let up = u64::from(self.viewers[v].up_kbps) * 1000;
            cfg.upload_slots = usize::try_from(up / (8 * top)).unwrap_or(8).clamp(1, 8);
        }
        let gateway = self.gateway_site().map(|i| self.s.sites[i].name.clone());
        let policy = self.policy.build(self.s.seed ^ v as u64, self.s, gateway);
        let payloads = self.origin_payloads.clone();
        let cache: Arc<dyn FragmentCache> = match &self.s.vod {
            Some(vod) => Arc::new(SharingCache::new(VodCache::new(vod.cache_bytes), payloads)),
            // One agent, one thread: one shard.
            None => Arc::new(SharingCache::new(
                LiveWindowCache::with_shards(DEFAULT_LIVE_WINDOW, 1),
                payloads,
            )),
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
        self.viewers[v].swarm = Some(swarm);
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
        self.viewers[v].player = Player::new(now, start, 0);
        self.vod_joined(v);
        // The tracker: same site first, then anyone (random order).
        let candidates = self.tracker_sample(v);
        if let Some(s) = self.viewers[v].swarm.as_mut() {
            s.handle_candidates(now, candidates);
        }
        self.drain(v);
        self.maybe_request(v);
        let next = self.next_announce(v);
        self.at(now + next, Ev::Announce(v));
    }

    /// When agent `v` asks the tracker again: soon while it has few neighbours (it may have
    /// joined before the agents it needs, such as a branch supernode before any gateway-site
    /// supernode, which then fetched from the origin until its next announce), else after
    /// [`ANNOUNCE_EVERY`].
    fn next_announce(&self, v: usize) -> Duration {
        // A branch supernode that has just joined while the tracker knows no gateway-site
        // supernode asks again quickly: until it knows one, its fragments cross the gateway on
        // their own (a copy too many for each fragment the gateway site fetches again).
        let viewer = &self.viewers[v];
        if let Some(g) = self.gateway_site()
            && viewer.site != g
            && viewer.role == Role::Supernode
            && self.tracker.supernodes.get(g).is_none_or(Vec::is_empty)
            && self.now < viewer.player.joined + JOINING
        {
            return ANNOUNCE_JOINING;
        }
        let few = self.viewers[v]
            .swarm
            .as_ref()
            .is_some_and(|s| s.neighbours().len() < FEW_NEIGHBOURS);
        if few { ANNOUNCE_SOON } else { ANNOUNCE_EVERY }
    }

    /// The site holding the internet gateway (enterprise: the first site).
    fn gateway_site(&self) -> Option<usize> {
        self.s.enterprise().then_some(0)
    }

    /// What the tracker answers agent `v`: with locality, up to 30 agents of its site (its
    /// supernodes first) and 10 of other sites (the gateway site's supernodes first); without
    /// (RandomMesh), 40 agents drawn from all. Random order within each group.
    fn tracker_sample(&mut self, v: usize) -> Vec<PeerInfo> {
        let site = self.viewers[v].site;
        let gateway = self.gateway_site();
        let t = &self.tracker;
        let rng = &mut self.rng;
        let mut picked: Vec<usize> = Vec::with_capacity(40);
        if matches!(self.policy, PolicyKind::RandomMesh) {
            let n = t.all.len();
            for i in rand::seq::index::sample(rng, n, n.min(41)) {
                let u = t.all[i];
                if u != v && picked.len() < 40 {
                    picked.push(u);
                }
            }
        } else {
            // The site: its supernodes, then a sample of the others.
            let mut sn: Vec<usize> = t.supernodes.get(site).map_or(Vec::new(), |l| {
                l.iter().copied().filter(|&u| u != v).collect()
            });
            sn.shuffle(rng);
            sn.truncate(30);
            picked.extend(&sn);
            let pool = t.by_site.get(site).map_or(&[][..], Vec::as_slice);
            let extra = sn.len() + 1;
            for i in rand::seq::index::sample(rng, pool.len(), pool.len().min(30 + extra)) {
                let u = pool[i];
                if picked.len() >= 30 {
                    break;
                }
                if u != v && !sn.contains(&u) {
                    picked.push(u);
                }
            }
            // Other sites: the gateway site's supernodes, then agents drawn from all (those of
            // this site skipped).
            let mut other: Vec<usize> = match gateway {
                Some(g) if g != site => t.supernodes.get(g).cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            other.shuffle(rng);
            other.truncate(10);
            let n = t.all.len();
            let mut tries = 0;
            while other.len() < 10 && tries < 200 && n > 0 {
                tries += 1;
                let u = t.all[rng.random_range(0..n)];
                if self.viewers[u].site != site && !other.contains(&u) {
                    other.push(u);
                }
            }
            picked.extend(other);
        }
        picked.into_iter().map(|u| self.peer_info(u)).collect()
    }

    fn leave(&mut self, v: usize, crash: bool, replace: bool) {
        let Some(swarm) = self.viewers[v].swarm.take() else {
            return;
        };
        self.tracker.remove(v, self.viewers[v].site);
        self.metrics.viewer_change(self.now, -1);
        self.metrics
            .absorb(&swarm.stats(), &self.viewers[v].player, self.now);
        self.viewers[v].player.gone = true;
        let detect = if crash {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        for peer in swarm.neighbour_ids() {
            if let Some(&u) = self.ids.get(&peer) {
                self.at(self.now + detect, Ev::Disconnected { v: u, peer: v });
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

    fn maybe_request(&mut self, v: usize) {
        let now = self.now;
        let Some(latest) = self.latest else { return };
        let vod = self.s.vod.is_some();
        let p = &mut self.viewers[v].player;
        p.update(now);
        if p.next_seq > latest && vod && !p.gone {
            self.vod_title_end(v);
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
        // A playing viewer whose buffer is empty (it seeked, or starved) is stalled until this
        // fragment arrives: it is due now, as players tell peer-to-peer engines of urgent
        // fragments (p2p-media-loader fetches those over HTTP), and the engine goes to the
        // origin at once. Otherwise the fragment is due when the buffer runs dry, and at least
        // in the default 2 s.
        let slack = if p.started.is_some() && p.buffer() < 0.5 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((p.buffer() - 0.5).max(2.0))
        };
        let info = self.info(seq, track);
        if let Some(s) = self.viewers[v].swarm.as_mut() {
            s.handle_player_request(now, info, Some(now + slack));
        }
        self.drain(v);
    }

    fn drain(&mut self, v: usize) {
        let now = self.now;
        loop {
            let Some(out) = self.viewers[v].swarm.as_mut().and_then(Swarm::poll_output) else {
                break;
            };
            match out {
                Output::Send { to, message, .. } => {
                    let Some(&u) = self.ids.get(&to) else {
                        continue;
                    };
                    if matches!(message, Message::Data(_)) {
                        self.pair_queues
                            .entry((v, u))
                            .or_default()
                            .push_back(message);
                        self.pump_pair(v, u);
                    } else {
                        let lat = self.peer_latency(v, u);
                        self.at(
                            now + lat,
                            Ev::Msg {
                                to: u,
                                from: v,
                                msg: message,
                            },
                        );
                    }
                }
                Output::FetchOrigin { fragment, .. } => {
                    let path = self.path_origin(v);
                    let bytes =
                        self.fragment_size(fragment.id.sequence, usize::from(fragment.id.track.0));
                    self.count_copies(&path, fragment.id, bytes, bytes);
                    let f = self.net.start(now, path.clone(), bytes);
                    self.origin_flows.insert(f, (now, bytes));
                    self.flows
                        .insert(f, (FlowTag::Origin { v, id: fragment.id }, path));
                }
                Output::Deliver { fragment, data } => {
                    let track = usize::from(fragment.track.0);
                    let bps = self.s.ladder_bps[track];
                    let ladder = self.s.ladder_bps.clone();
                    let frag_s = self.s.fragment.as_secs_f64();
                    let p = &mut self.viewers[v].player;
                    if p.inflight
                        .is_some_and(|(s, t, _)| s == fragment.sequence && t == track)
                    {
                        p.on_fragment(
                            now,
                            fragment.sequence,
                            bps,
                            data.len() as u64,
                            frag_s,
                            &ladder,
                        );
                        self.maybe_request(v);
                    }
                }
                Output::Failed { fragment } => {
                    let p = &mut self.viewers[v].player;
                    if p.inflight.is_some_and(|(s, _, _)| s == fragment.sequence) {
                        p.inflight = None;
                        p.next_seq = fragment.sequence + 1;
                    }
                }
                Output::Connect(peer) => {
                    let Some(&u) = self.ids.get(&peer.id) else {
                        continue;
                    };
                    let ok = self.can_connect(v, u);
                    let rtt = self.peer_latency(v, u) * 3;
                    self.at(now + rtt, Ev::Connected { a: v, b: u, ok });
                }
                Output::Disconnect { peer, .. } => {
                    if let Some(&u) = self.ids.get(&peer) {
                        let lat = self.peer_latency(v, u);
                        self.at(now + lat, Ev::Disconnected { v: u, peer: v });
                    }
                }
            }
        }
        if let Some(t) = self.viewers[v].swarm.as_ref().and_then(Swarm::poll_timeout) {
            self.arm(v, t.max(now));
        }
    }

    /// Queues viewer `v`'s wake-up at `t` unless an earlier one is queued already.
    fn arm(&mut self, v: usize, t: Instant) {
        let viewer = &mut self.viewers[v];
        if viewer.timer.is_none_or(|armed| t < armed) {
            viewer.timer = Some(t);
            self.timers.push(Reverse((t, v)));
        }
    }

    /// NAT: two NATed viewers connect with the scenario's probability (fixed per pair).
    fn can_connect(&self, a: usize, b: usize) -> bool {
        if !(self.viewers[a].natted && self.viewers[b].natted) {
            return true;
        }
        let (x, y) = (a.min(b) as u64, a.max(b) as u64);
        let h = (x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ y.wrapping_mul(0xBF58_476D_1CE4_E5B9)
            ^ self.s.seed)
            .rotate_left(23);
        (h % 10_000) as f64 / 10_000.0 < self.s.nat_pair_success
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
        let Message::Data(d) = &msg else { return };
        let path = self.path_peer(from, to);
        let bytes = d.payload.len() as u64;
        self.count_copies(&path, d.fragment, bytes, d.total_len);
        let f = self.net.start(self.now, path.clone(), bytes + 64);
        self.flows
            .insert(f, (FlowTag::Data { from, to, msg }, path));
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

    fn flow_done(&mut self, flow: FlowId) {
        let Some((tag, path)) = self.flows.remove(&flow) else {
            return;
        };
        if let Some((start, bytes)) = self.origin_flows.remove(&flow) {
            self.metrics.add_origin_egress(start, self.now, bytes);
        }
        let lat = self.net.latency(&path);
        if let FlowTag::Data { from, to, msg } = &tag {
            let (from, to) = (*from, *to);
            self.pair_busy.remove(&(from, to));
            // The chunk left the sender: its send window has room again.
            if let Message::Data(d) = msg {
                let (now, peer, len) = (self.now, self.viewers[to].id, d.payload.len() as u64);
                if let Some(s) = self.viewers[from].swarm.as_mut() {
                    s.handle_sent(now, peer, len);
                }
                self.drain(from);
            }
            self.pump_pair(from, to);
        }
        self.at(self.now + lat, Ev::Arrive { flow: tag });
    }

    fn report(mut self, wall: std::time::Duration) -> SimReport {
        let now = self.now;
        for v in 0..self.viewers.len() {
            if let Some(s) = self.viewers[v].swarm.take() {
                self.viewers[v].player.update(now);
                self.metrics
                    .absorb(&s.stats(), &self.viewers[v].player, now);
                let p = &self.viewers[v].player;
                if p.started.is_some() && self.s.vod.is_none() {
                    let edge = now.saturating_duration_since(self.t0).as_secs_f64();
                    let media =
                        (p.playhead_seq + 1) as f64 * self.s.fragment.as_secs_f64() - p.buffer();
                    self.metrics.live_delays.push((edge - media).max(0.0));
                }
            }
        }
        let max_copies = self
            .copies
            .values()
            .flat_map(|c| {
                c.bytes.iter().map(|(t, b)| {
                    let distinct: u64 = c.distinct.get(t).map_or(0, |d| d.values().sum());
                    if distinct == 0 {
                        0.0
                    } else {
                        *b as f64 / distinct as f64
                    }
                })
            })
            .fold(0.0f64, f64::max);
        let mut report =
            SimReport::new(self.s, self.policy.name(), &self.metrics, max_copies, wall);
        report.link_copies = self
            .copies
            .iter()
            .flat_map(|(l, c)| c.bytes.iter().map(move |(t, b)| (*l, *t, *b)))
            .map(|(l, t, b)| {
                let d = self.copies[&l].distinct.get(&t);
                let distinct: u64 = d.map_or(0, |d| d.values().sum());
                LinkCopies {
                    link: self.net.links[l].name.clone(),
                    bitrate_kbps: self
                        .s
                        .ladder_bps
                        .get(usize::from(t.0))
                        .map_or(0, |b| b / 1000),
                    fragments: d.map_or(0, |d| d.len() as u64),
                    copies: if distinct == 0 {
                        0.0
                    } else {
                        b as f64 / distinct as f64
                    },
                }
            })
            .collect();
        report
            .link_copies
            .sort_by(|a, b| b.copies.total_cmp(&a.copies).then(a.link.cmp(&b.link)));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::TrackerIndex;

    /// The index lists exactly the agents running, per site and in all, through any order of
    /// joins and leaves (its swap-removals keep every place up to date).
    #[test]
    fn tracker_index_follows_joins_and_leaves() {
        let mut t = TrackerIndex::default();
        let mut running: std::collections::BTreeMap<usize, usize> = Default::default();
        let mut x: u64 = 7;
        for step in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> 33) as usize % 50;
            let site = v % 4;
            if running.remove(&v).is_some() {
                t.remove(v, site);
            } else {
                t.add(v, site, v % 10 == 0);
                running.insert(v, site);
            }
            if step % 50 == 0 {
                let mut all = t.all.clone();
                all.sort_unstable();
                assert_eq!(all, running.keys().copied().collect::<Vec<_>>());
                for s in 0..t.by_site.len() {
                    let mut here = t.by_site[s].clone();
                    here.sort_unstable();
                    let want: Vec<usize> = running
                        .iter()
                        .filter(|(_, st)| **st == s)
                        .map(|(&v, _)| v)
                        .collect();
                    assert_eq!(here, want, "site {s}");
                    let mut sn = t.supernodes[s].clone();
                    sn.sort_unstable();
                    let want_sn: Vec<usize> =
                        want.iter().copied().filter(|v| v % 10 == 0).collect();
                    assert_eq!(sn, want_sn, "supernodes of site {s}");
                }
                for (&v, &(i, j)) in &t.place {
                    assert_eq!(t.by_site[running[&v]][i], v);
                    assert_eq!(t.all[j], v);
                }
            }
        }
    }
}
