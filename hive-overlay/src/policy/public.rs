//! `PublicMesh`: the public internet — a self-organising mesh built from local knowledge only.

use std::cmp::Reverse;
use std::collections::VecDeque;

use hive_core::overlay::{
    FetchContext, FetchDecision, LocalView, NeighbourPlan, NeighbourView, OverlayPolicy,
};
use hive_core::time::{Duration, Instant};
use hive_core::{FragmentId, PeerId, PeerInfo, Role, TrackId};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Settings of [`PublicMesh`].
#[derive(Clone, Debug, PartialEq)]
pub struct PublicMeshConfig {
    /// First-tier agents wanted per fragment among the agents one agent knows (neighbours and
    /// candidates) that watch the fragment's bitrate.
    pub tier_seeds: f64,
    /// Lowest share of the agents elected to the first tier.
    pub min_tier_fraction: f64,
    /// Highest share of the agents elected to the first tier.
    pub max_tier_fraction: f64,
    /// Upload capacity, kbit/s, below which an agent never joins the first tier. `None` (the
    /// default): the stream's top bitrate, the highest listed so far
    /// ([`LocalView::top_bitrate_bps`]), or [`FALLBACK_TIER_KBPS`] until one is listed.
    pub min_tier_kbps: Option<u32>,
    /// Same-AS neighbours sought.
    pub local_neighbours: usize,
    /// Highest-capacity neighbours sought, any AS.
    pub fast_neighbours: usize,
    /// A neighbour is kept at least this long before it may be swapped for a better candidate.
    pub min_neighbour_age: Duration,
    /// At most one swap per this period.
    pub swap_every: Duration,
    /// Shape of the second wave: higher keeps more agents waiting for peers until late.
    pub wave_shape: f64,
}

impl Default for PublicMeshConfig {
    fn default() -> Self {
        PublicMeshConfig {
            tier_seeds: 2.0,
            min_tier_fraction: 0.005,
            max_tier_fraction: 0.5,
            min_tier_kbps: None,
            local_neighbours: 6,
            fast_neighbours: 3,
            min_neighbour_age: Duration::from_secs(20),
            swap_every: Duration::from_secs(10),
            wave_shape: 6.0,
        }
    }
}

/// The first tier's least uplink (kbit/s) before the manifest lists a fragment.
pub const FALLBACK_TIER_KBPS: u32 = 1000;

impl PublicMeshConfig {
    /// The least uplink (kbit/s) of a first-tier agent, in this view.
    pub fn tier_kbps(&self, view: &LocalView<'_>) -> u32 {
        self.min_tier_kbps.unwrap_or_else(|| {
            view.top_bitrate_bps.map_or(FALLBACK_TIER_KBPS, |bps| {
                u32::try_from(bps / 1000).unwrap_or(u32::MAX)
            })
        })
    }
}

/// Elections remembered (fragments of both bitrates in flight at once).
const ELECTION_MEMORY: usize = 8;
/// Fragments this agent decided to prefetch, remembered to tell them from its player's requests.
const PREFETCH_MEMORY: usize = 32;
/// Same-AS holders count this much more when choosing where to pull from.
const LOCAL_BONUS: f64 = 2.0;
/// A neighbour is swapped only for a candidate this many times faster.
const SWAP_GAIN: f64 = 2.0;
/// Share of the time left that a transfer from a holder may be expected to take.
const FEASIBLE_SHARE: f64 = 0.7;
/// Share of a fragment's whole slack that a transfer from a holder may be expected to take,
/// however early it is asked: a slower delivery makes the player's throughput estimate fall
/// and its bitrate drop (to one its neighbours do not watch, which then comes from the origin).
/// wan-6000 at 0.1 scale, 600 s: 95.76% offload without this bound, 95.93% with 0.35.
const MAX_TRANSFER_SHARE: f64 = 0.35;
/// How long an agent with too few neighbours waits for their announcements before using the
/// origin.
const JOIN_WAIT: Duration = Duration::from_millis(300);
/// Neighbours that must have announced something before an agent waits for peers (fewer: it is
/// new, and waits only [`JOIN_WAIT`]).
const MIN_ACTIVE: usize = 3;
/// Share of the active neighbours that must watch a bitrate for its fragments to be awaited
/// from peers.
const MINORITY: f64 = 0.3;
/// Assumed throughput of a holder that advertised no capacity, bit/s.
const UNKNOWN_BPS: u64 = 1_000_000;

/// The public-internet policy: a self-organising mesh built from local knowledge only.
///
/// No tracker role, no coordination: every decision is a function of the agent's local view
/// and of hashes every agent computes alike.
///
/// - **First tier, self-elected per fragment.** For fragment `f`, an agent `a` is in the first
///   tier iff `u(a, f) < chance(a)`, where `u` is a uniform hash of the agent's id and the
///   fragment and `chance(a)` is proportional to `a`'s upload capacity. The proportion is set
///   from the local view so that about [`PublicMeshConfig::tier_seeds`] of the agents it knows
///   that watch the same bitrate are elected: the tier is a small fraction of the swarm, rotates
///   with every fragment (the load spreads), and favours high-capacity agents. Agents that
///   upload less than [`PublicMeshConfig::min_tier_kbps`] (the stream rate) and consume-only
///   agents are never elected. A tier agent prefetches the fragment from the origin when it is
///   published — only for the bitrate its own player watches — and announces it with `Have`.
/// - **Everyone else pulls from peers.** A fragment a neighbour announced comes from the
///   neighbour expected to deliver it soonest (measured throughput, else its advertised
///   capacity, shared by the requests already sent to it; same-AS neighbours count double),
///   drawn at random in proportion, so requesters spread over holders. Holders that could not
///   make the deadline are not asked.
/// - **Staggered fallback.** An agent no neighbour has served waits for an announcement; the
///   same hash orders the agents for a second wave: the closer an agent came to being elected,
///   the earlier it gives up waiting and fetches from the origin (a few at half the slack, most
///   at the engine's last call). A region the first tier missed is so seeded by a handful of
///   agents rather than by all of them at once. A newcomer (fewer than three neighbours that
///   announced anything) waits only briefly for its first ones.
/// - **Minority bitrates go to the origin.** A viewer of a bitrate few of its neighbours watch
///   (under 30% of those that announced anything) fetches it from the origin at once: nobody
///   nearby would announce it in time, and waiting would collapse its player's throughput
///   estimate and keep it on that bitrate. Fetched fast, it climbs to where the swarm is.
/// - **Neighbours.** A few same-AS neighbours (clustering by ISP), a few of the highest-capacity
///   candidates (high-capacity agents, elected most often, drift together towards the source of
///   each fragment), and random ones for connectivity. When full, the slowest neighbour is
///   swapped now and then for a much faster candidate.
#[derive(Clone, Debug)]
pub struct PublicMesh {
    cfg: PublicMeshConfig,
    rng: ChaCha8Rng,
    /// The bitrate this agent's player asked for last, and at which sequence.
    player_track: Option<(TrackId, u64)>,
    prefetched: VecDeque<FragmentId>,
    next_swap: Instant,
    /// The last few fragments' elections (see [`PublicMesh::election`]).
    elections: VecDeque<(FragmentId, Election)>,
    /// The eligible agents known and their summed capacity, and when that was counted.
    capacity: Option<(Instant, Capacity)>,
}

/// How long a count of the known agents' capacity is reused: it covers up to a few hundred
/// candidates, and changes slowly.
const CAPACITY_REFRESH: Duration = Duration::from_secs(5);

impl PublicMesh {
    /// A policy with the default settings and its own seeded random source.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, PublicMeshConfig::default())
    }

    /// A policy with these settings.
    pub fn with_config(seed: u64, cfg: PublicMeshConfig) -> Self {
        PublicMesh {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            player_track: None,
            prefetched: VecDeque::new(),
            next_swap: Instant::ZERO,
            elections: VecDeque::new(),
            capacity: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &PublicMeshConfig {
        &self.cfg
    }

    /// The election for `f`, computed once per fragment: it is asked for when the fragment is
    /// published and again each time its fetch is decided, and the view barely changes in
    /// between (the first answer also keeps the prefetch and the second wave consistent).
    fn election(&mut self, now: Instant, view: &LocalView<'_>, f: &FragmentId) -> Election {
        if let Some((_, e)) = self.elections.iter().find(|(id, _)| id == f) {
            return *e;
        }
        let capacity = match self.capacity {
            Some((at, c)) if now < at + CAPACITY_REFRESH => c,
            _ => {
                let c = Capacity::count(&self.cfg, view);
                self.capacity = Some((now, c));
                c
            }
        };
        let e = Election::with_capacity(&self.cfg, view, f, capacity);
        if self.elections.len() >= ELECTION_MEMORY {
            self.elections.pop_front();
        }
        self.elections.push_back((*f, e));
        e
    }

    fn note_player_request(&mut self, f: &FragmentId) {
        if self.prefetched.contains(f) {
            return;
        }
        if self.player_track.is_none_or(|(_, s)| f.sequence >= s) {
            self.player_track = Some((f.track, f.sequence));
        }
    }
}

/// The first 8 bytes of a peer id as a hash key.
fn key(peer: &PeerId) -> u64 {
    let b = peer.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A uniform draw in (0, 1) fixed for `peer`, `f` and `salt`.
fn unit(peer: &PeerId, f: &FragmentId, salt: u64) -> f64 {
    let x = super::fragment_hash(key(peer) ^ salt.rotate_left(17) ^ 0x7075_626c_6963, f);
    ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

fn same_as(a: &PeerInfo, b: &PeerInfo) -> bool {
    a.locality.asn.is_some() && a.locality.asn == b.locality.asn
}

/// The bitrate a neighbour watches: the track of the newest fragment it announced.
fn watched_track(n: &NeighbourView, content: hive_core::ContentId) -> Option<TrackId> {
    n.have
        .iter()
        .filter(|(c, _, s)| *c == content && !s.is_empty())
        .filter_map(|(_, t, s)| s.last().map(|last| (last, t)))
        .max()
        .map(|(_, t)| t)
}

/// Neighbours that announced anything, and those of them watching `f`'s bitrate.
fn audience(view: &LocalView<'_>, f: &FragmentId) -> (usize, usize) {
    let (mut active, mut watching) = (0, 0);
    for n in view.neighbours {
        if let Some(t) = watched_track(n, f.content) {
            active += 1;
            watching += usize::from(t == f.track);
        }
    }
    (active, watching)
}

/// The first-tier election for one bitrate, as this agent's view sees it.
#[derive(Clone, Copy, Debug)]
struct Election {
    /// Share of the eligible agents elected.
    fraction: f64,
    /// Mean capacity of the eligible agents known, kbit/s.
    mean_kbps: f64,
    min_kbps: u32,
}

/// The agents an election draws from: those known (this one, neighbours, candidates) that may
/// upload, and their summed capacity.
#[derive(Clone, Copy, Debug)]
struct Capacity {
    n: usize,
    sum_kbps: f64,
}

impl Capacity {
    fn count(cfg: &PublicMeshConfig, view: &LocalView<'_>) -> Self {
        let min_kbps = cfg.tier_kbps(view);
        let eligible = |p: &PeerInfo| p.role != Role::ConsumeOnly && p.upload_kbps >= min_kbps;
        let known = std::iter::once(view.me)
            .chain(view.neighbours.iter().map(|n| &n.info))
            .chain(view.candidates.iter())
            .filter(|p| eligible(p));
        let (mut n, mut sum_kbps) = (0usize, 0f64);
        for p in known {
            n += 1;
            sum_kbps += f64::from(p.upload_kbps);
        }
        Capacity { n, sum_kbps }
    }
}

impl Election {
    #[cfg(test)]
    fn new(cfg: &PublicMeshConfig, view: &LocalView<'_>, f: &FragmentId) -> Self {
        Self::with_capacity(cfg, view, f, Capacity::count(cfg, view))
    }

    fn with_capacity(
        cfg: &PublicMeshConfig,
        view: &LocalView<'_>,
        f: &FragmentId,
        capacity: Capacity,
    ) -> Self {
        let Capacity { n, sum_kbps: sum } = capacity;
        // The share of the neighbourhood watching this bitrate (this agent counts as one).
        let (mut watching, mut active) = (1usize, 1usize);
        for nb in view.neighbours {
            if let Some(t) = watched_track(nb, f.content) {
                active += 1;
                watching += usize::from(t == f.track);
            }
        }
        let audience = n as f64 * watching as f64 / active as f64;
        let fraction = (cfg.tier_seeds / audience.max(1.0))
            .clamp(cfg.min_tier_fraction, cfg.max_tier_fraction);
        Election {
            fraction,
            mean_kbps: if n == 0 { 1.0 } else { sum / n as f64 },
            min_kbps: cfg.tier_kbps(view),
        }
    }

    /// The probability that `p` is elected for a fragment (0 when it never is).
    fn chance(&self, p: &PeerInfo) -> f64 {
        if p.role == Role::ConsumeOnly || p.upload_kbps < self.min_kbps {
            return 0.0;
        }
        (self.fraction * f64::from(p.upload_kbps) / self.mean_kbps.max(1.0)).min(1.0)
    }

    fn elected(&self, p: &PeerInfo, f: &FragmentId) -> bool {
        unit(&p.id, f, 0) < self.chance(p)
    }

    /// The share of its slack after which `p` stops waiting for peers and fetches `f` from the
    /// origin: 0 when elected, near 1 for most agents, `None` for agents never elected.
    fn wave(&self, p: &PeerInfo, f: &FragmentId, shape: f64) -> Option<f64> {
        let q = self.chance(p);
        if q <= 0.0 {
            return None;
        }
        let u = unit(&p.id, f, 0);
        if u < q || q >= 1.0 {
            return Some(0.0);
        }
        // x in (0, 1): how close the draw came to electing p (1 = elected).
        let x = u.ln() / q.ln();
        Some((1.0 - x).clamp(0.0, 1.0).powf(1.0 / shape.max(1e-3)))
    }
}

impl PublicMesh {
    /// The holder of `need.fragment` expected to deliver it soonest, drawn in proportion to its
    /// expected rate so that requesters spread; `None` if no holder can make the deadline.
    fn best_holder(
        &self,
        now: Instant,
        view: &LocalView<'_>,
        need: &FetchContext,
    ) -> Option<PeerId> {
        let f = &need.fragment;
        let time_left = need.deadline.saturating_duration_since(now).as_secs_f64();
        let bits = need.size_estimate as f64 * 8.0;
        let salt = key(&view.me.id);
        view.neighbours
            .iter()
            .filter(|n| !n.choked && n.info.role != Role::ConsumeOnly && n.has(f))
            .filter_map(|n| {
                let advertised = u64::from(n.info.upload_kbps) * 1000;
                let bps = n
                    .throughput_bps
                    .unwrap_or(if advertised > 0 {
                        advertised
                    } else {
                        UNKNOWN_BPS
                    })
                    .max(1) as f64
                    / f64::from(1 + n.inflight_requests);
                let slack = need
                    .deadline
                    .saturating_duration_since(need.since)
                    .as_secs_f64();
                let secs = bits / bps;
                if secs > time_left * FEASIBLE_SHARE || secs > slack * MAX_TRANSFER_SHARE {
                    return None;
                }
                let w = if same_as(view.me, &n.info) {
                    bps * LOCAL_BONUS
                } else {
                    bps
                };
                // Weighted rendezvous: the smallest -ln(u)/w wins with probability ∝ w.
                Some((-unit(&n.info.id, f, salt).ln() / w, n.info.id))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, id)| id)
    }

    /// A neighbour's or candidate's worth as a source, kbit/s.
    fn worth(me: &PeerInfo, p: &PeerInfo, measured_bps: Option<u64>) -> f64 {
        if p.role == Role::ConsumeOnly {
            return 0.0;
        }
        let kbps = measured_bps.map_or(f64::from(p.upload_kbps), |b| b as f64 / 1000.0);
        if same_as(me, p) {
            kbps * LOCAL_BONUS
        } else {
            kbps
        }
    }
}

impl OverlayPolicy for PublicMesh {
    fn name(&self) -> &'static str {
        "public-mesh"
    }

    fn plan_neighbours(&mut self, now: Instant, view: &LocalView<'_>) -> NeighbourPlan {
        let me = view.me;
        let mut drop = Vec::new();
        // When full, now and then swap the slowest neighbour for a much faster candidate.
        if view.neighbours.len() >= view.max_neighbours && now >= self.next_swap {
            let worst = view
                .neighbours
                .iter()
                .filter(|n| {
                    n.info.role != Role::ConsumeOnly
                        && now.saturating_duration_since(n.connected_at)
                            >= self.cfg.min_neighbour_age
                })
                .map(|n| (Self::worth(me, &n.info, n.throughput_bps), n.info.id))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let best = view
                .candidates
                .iter()
                .map(|c| Self::worth(me, c, None))
                .fold(0.0f64, f64::max);
            if let Some((w, id)) = worst {
                if best > w * SWAP_GAIN {
                    drop.push(id);
                    self.next_swap = now + self.cfg.swap_every;
                }
            }
        }
        let mut room = view
            .max_neighbours
            .saturating_sub(view.neighbours.len() - drop.len());
        let mut connect: Vec<PeerId> = Vec::new();
        if room == 0 {
            return NeighbourPlan { connect, drop };
        }
        // Highest capacity first (ties by id, so the order is deterministic). Sorted as compact
        // keys (capacity, the id's head, place), not as references to whole candidates: this
        // runs at every review of an agent with room. Ids order as their heads unless equal.
        let cands = view.candidates;
        let mut keyed: Vec<(Reverse<u32>, u64, usize)> = cands
            .iter()
            .enumerate()
            .map(|(i, c)| (Reverse(c.upload_kbps), c.id.head(), i))
            .collect();
        // Candidates' ids are distinct: no two keys tie, so an unstable sort gives the order a
        // stable one would.
        keyed.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| cands[a.2].id.cmp(&cands[b.2].id))
        });
        let mut pool: Vec<&PeerInfo> = keyed.iter().map(|k| &cands[k.2]).collect();
        let take = |pool: &mut Vec<&PeerInfo>,
                    connect: &mut Vec<PeerId>,
                    room: &mut usize,
                    want: usize,
                    pick: &dyn Fn(&PeerInfo) -> bool| {
            let mut taken = 0;
            pool.retain(|c| {
                if taken < want && *room > 0 && pick(c) {
                    connect.push(c.id);
                    taken += 1;
                    *room -= 1;
                    false
                } else {
                    true
                }
            });
        };
        let local_have = view
            .neighbours
            .iter()
            .filter(|n| same_as(me, &n.info))
            .count();
        let local_want = self.cfg.local_neighbours.saturating_sub(local_have);
        take(&mut pool, &mut connect, &mut room, local_want, &|c| {
            same_as(me, c)
        });
        let fast_have = view
            .neighbours
            .iter()
            .filter(|n| n.info.upload_kbps >= me.upload_kbps.max(self.cfg.tier_kbps(view)))
            .count();
        let fast_want = self.cfg.fast_neighbours.saturating_sub(fast_have);
        take(&mut pool, &mut connect, &mut room, fast_want, &|c| {
            c.role != Role::ConsumeOnly
        });
        pool.shuffle(&mut self.rng);
        let rest = room;
        take(&mut pool, &mut connect, &mut room, rest, &|_| true);
        NeighbourPlan { connect, drop }
    }

    fn fetch_source(
        &mut self,
        now: Instant,
        view: &LocalView<'_>,
        need: &FetchContext,
    ) -> FetchDecision {
        let f = need.fragment;
        self.note_player_request(&f);
        if let Some(p) = self.best_holder(now, view, need) {
            return FetchDecision::Peer(p);
        }
        if self.prefetched.contains(&f) {
            return FetchDecision::Origin;
        }
        let (active, watching) = audience(view, &f);
        if active < MIN_ACTIVE {
            // A newcomer (or an isolated agent): give its first neighbours a moment to announce
            // what they hold, then the origin.
            let until = need.since + JOIN_WAIT;
            return if now < until {
                FetchDecision::WaitUntil(until)
            } else {
                FetchDecision::Origin
            };
        }
        if (watching as f64) < MINORITY * active as f64 {
            // Viewers of a bitrate few neighbours watch are better served by the origin: its
            // fragments are rarely nearby, and waiting for them makes the player's throughput
            // estimate, and so its bitrate, collapse.
            return FetchDecision::Origin;
        }
        let election = self.election(now, view, &f);
        let slack = need.deadline.saturating_duration_since(need.since);
        let until = match election.wave(view.me, &f, self.cfg.wave_shape) {
            Some(share) => need.since + slack.mul_f64(share),
            // Never elected: wait for peers (the engine sends it to the origin at its last call).
            None => need.deadline,
        };
        if now >= until {
            FetchDecision::Origin
        } else {
            FetchDecision::WaitUntil(until)
        }
    }

    fn should_prefetch(&mut self, now: Instant, view: &LocalView<'_>, f: &FragmentId) -> bool {
        if view.me.role == Role::ConsumeOnly || self.player_track.is_none_or(|(t, _)| t != f.track)
        {
            return false;
        }
        let elected = self.election(now, view, f).elected(view.me, f);
        if elected {
            if self.prefetched.len() >= PREFETCH_MEMORY {
                self.prefetched.pop_front();
            }
            self.prefetched.push_back(*f);
        }
        elected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::{ContentId, KeyKind, Locality, PeerAddr, SeqSet};

    fn peer(n: u32, asn: u32, kbps: u32) -> PeerInfo {
        let mut p = PeerInfo::new(
            PeerId::from_public_key(KeyKind::X25519, &n.to_le_bytes()),
            PeerAddr::Memory(u64::from(n)),
        );
        p.locality = Locality {
            asn: Some(asn),
            site: None,
            country: None,
        };
        p.upload_kbps = kbps;
        p
    }

    fn content() -> ContentId {
        ContentId::derive("live")
    }

    fn frag(track: u16, seq: u64) -> FragmentId {
        FragmentId::new(content(), TrackId(track), seq)
    }

    /// A neighbour that announced `seqs` of `track`.
    fn nb(info: PeerInfo, track: u16, seqs: std::ops::RangeInclusive<u64>) -> NeighbourView {
        let mut set = SeqSet::new();
        set.insert_range(seqs);
        NeighbourView {
            info,
            have: [((content(), TrackId(track)), set)].into_iter().collect(),
            throughput_bps: None,
            rtt: None,
            choked: false,
            inflight_requests: 0,
            bytes_from: 0,
            bytes_to: 0,
            connected_at: Instant::ZERO,
        }
    }

    fn view<'a>(
        me: &'a PeerInfo,
        nbs: &'a [NeighbourView],
        cands: &'a [PeerInfo],
    ) -> LocalView<'a> {
        LocalView {
            me,
            neighbours: nbs,
            candidates: cands,
            max_neighbours: 12,
            origin_throughput_bps: None,
            top_bitrate_bps: None,
        }
    }

    /// A policy whose player watches `track`.
    fn watching(track: u16) -> PublicMesh {
        let mut p = PublicMesh::new(1);
        p.note_player_request(&frag(track, 0));
        p
    }

    fn need(f: FragmentId, deadline_s: u64) -> FetchContext {
        FetchContext {
            fragment: f,
            size_estimate: 175_000,
            deadline: Instant::from_secs(deadline_s),
            attempts: 0,
            since: Instant::ZERO,
        }
    }

    /// Who, among `everyone` (each seeing all the others as neighbours), prefetches `f`.
    fn tier(everyone: &[PeerInfo], f: FragmentId) -> Vec<u32> {
        (0..everyone.len())
            .filter(|&i| {
                let nbs: Vec<NeighbourView> = everyone
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| nb(p.clone(), f.track.0, 0..=0))
                    .collect();
                watching(f.track.0).should_prefetch(
                    Instant::ZERO,
                    &view(&everyone[i], &nbs, &[]),
                    &f,
                )
            })
            .map(|i| i as u32)
            .collect()
    }

    #[test]
    fn election_is_deterministic_and_ignores_order() {
        let me = peer(0, 1, 5000);
        let mut nbs: Vec<NeighbourView> = (1..12).map(|n| nb(peer(n, 1, 5000), 0, 0..=3)).collect();
        let cands: Vec<PeerInfo> = (12..40).map(|n| peer(n, 2, 2000)).collect();
        let picks = |nbs: &[NeighbourView]| -> Vec<bool> {
            (0..300)
                .map(|s| {
                    watching(0).should_prefetch(Instant::ZERO, &view(&me, nbs, &cands), &frag(0, s))
                })
                .collect()
        };
        let forward = picks(&nbs);
        nbs.reverse();
        assert_eq!(forward, picks(&nbs));
        assert!(forward.iter().any(|&b| b), "elected for some fragments");
        assert!(
            forward.iter().filter(|&&b| b).count() < 100,
            "but a small share"
        );
    }

    #[test]
    fn tier_is_small_and_rotates_across_fragments() {
        let everyone: Vec<PeerInfo> = (0..40).map(|n| peer(n, n % 3, 5000)).collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut sizes = 0;
        for s in 0..200 {
            let t = tier(&everyone, frag(0, s));
            sizes += t.len();
            seen.extend(t);
        }
        // About two elected per fragment (tier_seeds = 2 among 40 known agents).
        let mean = sizes as f64 / 200.0;
        assert!((1.0..3.0).contains(&mean), "mean tier size {mean}");
        assert!(
            seen.len() >= 30,
            "the tier rotates over {} agents",
            seen.len()
        );
    }

    #[test]
    fn high_capacity_agents_are_elected_more_often() {
        let everyone: Vec<PeerInfo> = (0..40)
            .map(|n| peer(n, 1, if n < 20 { 10_000 } else { 1000 }))
            .collect();
        let (mut fast, mut slow) = (0, 0);
        for s in 0..400 {
            for i in tier(&everyone, frag(0, s)) {
                if i < 20 { fast += 1 } else { slow += 1 }
            }
        }
        assert!(fast > 4 * slow, "fast {fast} slow {slow}");
    }

    #[test]
    fn slow_and_consume_only_agents_never_prefetch_nor_join_the_second_wave() {
        let nbs: Vec<NeighbourView> = (1..4).map(|n| nb(peer(n, 1, 5000), 0, 0..=3)).collect();
        let slow = peer(100, 1, 300); // below the 1000 kbit/s default floor
        let mut consume = peer(101, 1, 10_000);
        consume.role = Role::ConsumeOnly;
        for me in [&slow, &consume] {
            let v = view(me, &nbs, &[]);
            let e = Election::new(&PublicMeshConfig::default(), &v, &frag(0, 1));
            assert_eq!(e.chance(me), 0.0);
            for s in 4..500 {
                let f = frag(0, s);
                assert!(!watching(0).should_prefetch(Instant::ZERO, &v, &f));
                assert_eq!(e.wave(me, &f, 6.0), None);
                // It waits for peers until its deadline (the engine's last call caps that).
                assert_eq!(
                    watching(0).fetch_source(Instant::ZERO, &v, &need(f, 4)),
                    FetchDecision::WaitUntil(Instant::from_secs(4))
                );
            }
        }
    }

    #[test]
    fn prefetches_only_the_bitrate_its_player_watches() {
        let me = peer(0, 1, 10_000);
        let nbs: Vec<NeighbourView> = (1..4).map(|n| nb(peer(n, 1, 5000), 1, 0..=3)).collect();
        let v = view(&me, &nbs, &[]);
        let mut p = watching(1);
        let on_1 = (0..200)
            .filter(|&s| p.should_prefetch(Instant::ZERO, &v, &frag(1, s)))
            .count();
        let on_0 = (0..200)
            .filter(|&s| p.should_prefetch(Instant::ZERO, &v, &frag(0, s)))
            .count();
        assert!(on_1 > 0);
        assert_eq!(on_0, 0);
        assert!(
            !PublicMesh::new(1).should_prefetch(Instant::ZERO, &v, &frag(1, 5)),
            "no player yet"
        );
    }

    #[test]
    fn pulls_from_same_as_holders_first_and_skips_hopeless_ones() {
        let me = peer(0, 7, 5000);
        let near = peer(1, 7, 5000);
        let far = peer(2, 8, 5000);
        let crawl = peer(3, 7, 10); // 175 kB at 10 kbit/s: never in time
        let nbs = vec![
            nb(near.clone(), 0, 0..=50),
            nb(far.clone(), 0, 0..=50),
            nb(crawl.clone(), 0, 0..=50),
        ];
        let v = view(&me, &nbs, &[]);
        let mut p = watching(0);
        let (mut from_near, mut from_far) = (0, 0);
        for s in 0..=50 {
            match p.fetch_source(Instant::ZERO, &v, &need(frag(0, s), 4)) {
                FetchDecision::Peer(id) if id == near.id => from_near += 1,
                FetchDecision::Peer(id) if id == far.id => from_far += 1,
                d => panic!("unexpected {d:?}"),
            }
        }
        assert!(from_near > from_far, "near {from_near} far {from_far}");
        assert!(from_far > 0, "load still spreads");
    }

    #[test]
    fn a_holder_that_would_deliver_slowly_is_not_asked() {
        // 175 kB at 1 Mbit/s: 1.4 s, inside a 2 s deadline but more than 35% of it — the
        // player's throughput estimate would fall. At 5 Mbit/s (0.28 s) it is asked.
        let me = peer(0, 1, 5000);
        for (kbps, asked) in [(1000, false), (5000, true)] {
            let nbs = vec![nb(peer(1, 1, kbps), 0, 0..=9)];
            let v = view(&me, &nbs, &[]);
            let d = watching(0).fetch_source(Instant::ZERO, &v, &need(frag(0, 9), 2));
            assert_eq!(
                matches!(d, FetchDecision::Peer(_)),
                asked,
                "{kbps} kbit/s: {d:?}"
            );
        }
    }

    #[test]
    fn a_bitrate_nobody_around_watches_comes_from_the_origin() {
        let me = peer(0, 1, 5000);
        let nbs: Vec<NeighbourView> = (1..6).map(|n| nb(peer(n, 1, 5000), 1, 0..=9)).collect();
        let v = view(&me, &nbs, &[]);
        let mut p = watching(0);
        assert_eq!(
            p.fetch_source(Instant::ZERO, &v, &need(frag(0, 9), 4)),
            FetchDecision::Origin
        );
        // The watched bitrate is awaited from peers (or pulled at once when announced).
        assert!(matches!(
            p.fetch_source(Instant::ZERO, &v, &need(frag(1, 10), 4)),
            FetchDecision::WaitUntil(_) | FetchDecision::Origin
        ));
        assert!(matches!(
            p.fetch_source(Instant::ZERO, &v, &need(frag(1, 9), 4)),
            FetchDecision::Peer(_)
        ));
    }

    #[test]
    fn a_newcomer_waits_briefly_for_its_first_neighbours() {
        let me = peer(0, 1, 5000);
        let quiet = [NeighbourView {
            have: Default::default(),
            ..nb(peer(1, 1, 5000), 0, 0..=0)
        }];
        let v = view(&me, &quiet, &[]);
        let mut p = watching(0);
        let n = need(frag(0, 5), 4);
        assert_eq!(
            p.fetch_source(Instant::ZERO, &v, &n),
            FetchDecision::WaitUntil(Instant::ZERO + JOIN_WAIT)
        );
        assert_eq!(
            p.fetch_source(Instant::ZERO + JOIN_WAIT, &v, &n),
            FetchDecision::Origin
        );
    }

    #[test]
    fn neighbours_cluster_by_as_keep_fast_ones_and_swap_the_slowest() {
        let me = peer(0, 1, 5000);
        let mut cands: Vec<PeerInfo> = (1..30).map(|n| peer(n, 2 + n % 5, 1000)).collect();
        cands.extend((30..40).map(|n| peer(n, 1, 1000)));
        cands.push(peer(99, 9, 10_000));
        let mut p = PublicMesh::new(3);
        let plan = p.plan_neighbours(Instant::ZERO, &view(&me, &[], &cands));
        assert_eq!(plan.connect.len(), 12);
        let ases: Vec<u32> = plan
            .connect
            .iter()
            .map(|id| {
                cands
                    .iter()
                    .find(|c| c.id == *id)
                    .and_then(|c| c.locality.asn)
                    .unwrap_or(0)
            })
            .collect();
        assert_eq!(ases[..6], [1; 6], "same-AS first");
        assert!(
            plan.connect.contains(&peer(99, 9, 10_000).id),
            "the fastest candidate"
        );
        // Full, with a slow old neighbour and a much faster candidate: swap one.
        let nbs: Vec<NeighbourView> = (100..112).map(|n| nb(peer(n, 2, 1000), 0, 0..=1)).collect();
        let later = Instant::from_secs(60);
        let plan = p.plan_neighbours(later, &view(&me, &nbs, &[peer(200, 3, 10_000)]));
        assert_eq!(plan.drop.len(), 1);
        assert_eq!(plan.connect, vec![peer(200, 3, 10_000).id]);
        // Not again before `swap_every`.
        let plan = p.plan_neighbours(later, &view(&me, &nbs, &[peer(201, 3, 10_000)]));
        assert!(plan.drop.is_empty());
    }
}
