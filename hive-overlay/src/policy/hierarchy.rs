//! `PrivateHierarchy`: enterprise networks of sites joined by VPN links behind few gateways.

use hive_core::overlay::{
    FetchContext, FetchDecision, LocalView, NeighbourPlan, NeighbourView, OverlayPolicy,
};
use hive_core::time::{Duration, Instant};
use hive_core::{FragmentId, PeerId, PeerInfo, Role};

/// How many agents per neighbourhood go straight to the supernode for a fragment; the others
/// wait briefly for them to announce it.
const FIRST_WAVE: usize = 2;
/// How long the others wait before asking the supernode anyway.
const SECOND_WAVE_DELAY: Duration = Duration::from_millis(300);
/// How long an agent that knows site candidates but has no site neighbour yet (it has just
/// joined) waits for its connections before a fragment goes to the origin.
const JOIN_WAIT: Duration = Duration::from_millis(250);
/// How long after its first fragment a branch supernode that knows no gateway-site supernode
/// waits for one (until each fragment's last call) instead of fetching through the gateway.
const JOINING: Duration = Duration::from_secs(5);
/// How often a branch supernode waiting for an uplink looks again.
const UPLINK_POLL: Duration = Duration::from_millis(100);
/// Gateway-site supernodes a branch supernode keeps as neighbours.
const UPLINKS: usize = 4;
/// Supernodes of its site an ordinary agent keeps as neighbours: enough to survive one leaving,
/// few enough that a site of hundreds fits in the supernodes' neighbour limits.
const SUPERNODE_LINKS: usize = 2;

/// A fixed fragment for hashes that are about agents alone.
const NO_FRAGMENT: FragmentId = FragmentId::new(
    hive_core::ContentId::from_bytes([0; hive_core::ids::ID_LEN]),
    hive_core::TrackId(0),
    0,
);

/// The enterprise policy: sites joined by VPN links behind few gateways.
///
/// The tracker promotes a few agents per site to [`Role::Supernode`] (hive-services' tracker
/// does with a supernode plan naming the gateway site; so does the simulator's). Per fragment, one
/// supernode per site is *designated* by rendezvous (highest-random-weight) hashing over the
/// site's supernodes, so every agent that knows the same supernodes picks the same one without
/// talking:
///
/// - at the gateway site, the designated supernode fetches from the origin;
/// - at a branch, it fetches across the VPN from the gateway site's designated supernode;
/// - other agents of a site fetch from a site neighbour that already holds the fragment, or —
///   the few that rank first for this fragment among their neighbours — from the designated
///   supernode, which answers when the fragment arrives (pull-through).
///
/// So each VPN and gateway link carries one copy per fragment and bitrate in use, and within a
/// site the fragment spreads as a tree over the LAN.
#[derive(Clone, Debug)]
pub struct PrivateHierarchy {
    gateway_site: Option<String>,
    /// When this agent first looked for a fragment: the start of its [`JOINING`] period.
    started: Option<Instant>,
}

impl PrivateHierarchy {
    /// A policy for a network whose internet gateway is at `gateway_site` (None: every site
    /// reaches the origin directly).
    pub fn new(gateway_site: Option<String>) -> Self {
        PrivateHierarchy {
            gateway_site,
            started: None,
        }
    }

    fn at_gateway(&self, p: &PeerInfo) -> bool {
        match &self.gateway_site {
            None => true,
            Some(g) => p.locality.site.as_deref() == Some(g.as_str()),
        }
    }
}

fn same_site(a: &PeerInfo, b: &PeerInfo) -> bool {
    a.locality.site.is_some() && a.locality.site == b.locality.site
}

/// Rendezvous hashing: the weight of `peer` for `fragment`.
fn weight(peer: &PeerId, f: &FragmentId) -> u64 {
    salted_weight(peer, f, 0)
}

/// The weight with a salt, so that different askers spread over the same candidates.
fn salted_weight(peer: &PeerId, f: &FragmentId, salt: u64) -> u64 {
    let b = peer.as_bytes();
    let id = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    super::fragment_hash(id ^ salt.rotate_left(29), f)
}

fn designated<'a>(ids: impl Iterator<Item = &'a PeerId>, f: &FragmentId) -> Option<PeerId> {
    ids.max_by_key(|id| (weight(id, f), **id)).copied()
}

/// The candidate a given asker (`salt`) pulls `f` from: spreads askers over the candidates.
fn spread<'a>(ids: impl Iterator<Item = &'a PeerId>, f: &FragmentId, salt: u64) -> Option<PeerId> {
    ids.max_by_key(|id| (salted_weight(id, f, salt), **id))
        .copied()
}

fn salt_of(text: &[u8]) -> u64 {
    text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn least_loaded<'a>(
    holders: impl Iterator<Item = &'a NeighbourView>,
    f: &FragmentId,
) -> Option<PeerId> {
    holders
        .min_by_key(|n| (n.inflight_requests, u64::MAX - weight(&n.info.id, f)))
        .map(|n| n.info.id)
}

impl OverlayPolicy for PrivateHierarchy {
    fn name(&self) -> &'static str {
        "private-hierarchy"
    }

    fn plan_neighbours(&mut self, _now: Instant, view: &LocalView<'_>) -> NeighbourPlan {
        let me = view.me;
        let supernode = me.role == Role::Supernode;
        let keep = |p: &PeerInfo| same_site(me, p) || (supernode && p.role == Role::Supernode);
        let drop: Vec<PeerId> = view
            .neighbours
            .iter()
            .filter(|n| !keep(&n.info))
            .map(|n| n.info.id)
            .collect();
        let mut room = view
            .max_neighbours
            .saturating_sub(view.neighbours.len() - drop.len());
        let connected = |id: &PeerId| view.neighbours.iter().any(|n| n.info.id == *id);
        let mut connect = Vec::new();
        // Branch supernodes first secure their uplinks to the gateway site's supernodes.
        if supernode && !self.at_gateway(me) {
            let have = view
                .neighbours
                .iter()
                .filter(|n| n.info.role == Role::Supernode && self.at_gateway(&n.info))
                .count();
            for c in view
                .candidates
                .iter()
                .filter(|c| c.role == Role::Supernode && self.at_gateway(c) && !connected(&c.id))
            {
                if have + connect.len() >= UPLINKS || room == 0 {
                    break;
                }
                connect.push(c.id);
                room -= 1;
            }
        }
        // Then the site's supernodes (all of them for a supernode, which must know its peers to
        // agree on the designated one; a few for the others, spread by rendezvous on their own
        // id), then the rest of the site.
        let mut site: Vec<&PeerInfo> = view
            .candidates
            .iter()
            .filter(|c| same_site(me, c) && !connected(&c.id))
            .collect();
        let salt = salt_of(me.id.as_bytes());
        site.sort_by_key(|c| {
            (
                c.role != Role::Supernode,
                u64::MAX - super::fragment_hash(salt ^ salt_of(c.id.as_bytes()), &NO_FRAGMENT),
            )
        });
        let mut supernodes = view
            .neighbours
            .iter()
            .filter(|n| same_site(me, &n.info) && n.info.role == Role::Supernode)
            .count();
        for c in site {
            if room == 0 {
                break;
            }
            if c.role == Role::Supernode {
                if !supernode && supernodes >= SUPERNODE_LINKS {
                    continue;
                }
                supernodes += 1;
            }
            connect.push(c.id);
            room -= 1;
        }
        NeighbourPlan { connect, drop }
    }

    fn fetch_source(
        &mut self,
        now: Instant,
        view: &LocalView<'_>,
        need: &FetchContext,
    ) -> FetchDecision {
        let me = view.me;
        let f = &need.fragment;
        let started = *self.started.get_or_insert(now);
        let joining = now < started + JOINING;
        let site_nb = || {
            view.neighbours
                .iter()
                .filter(|n| !n.choked && same_site(me, &n.info))
        };
        if let Some(p) = least_loaded(site_nb().filter(|n| n.has(f)), f) {
            return FetchDecision::Peer(p);
        }
        let no_site_neighbour = !view.neighbours.iter().any(|n| same_site(me, &n.info));
        if need.attempts == 0
            && now < need.since + JOIN_WAIT
            && (now < started + JOIN_WAIT
                || (view.neighbours.is_empty() && !view.candidates.is_empty())
                || (no_site_neighbour && view.candidates.iter().any(|c| same_site(me, c))))
        {
            // Just joined (a supernode too), or the agents it will connect to are known but not
            // connected yet: the site's agents that joined just before or after it may be
            // fetching the same fragment, and announce it within this wait. Without it every
            // supernode's first fragment crossed the VPN and gateway links on its own, and two
            // supernodes of a branch joining a few tens of milliseconds apart each fetched it
            // (each was designated while it knew only itself).
            return FetchDecision::WaitUntil(need.since + JOIN_WAIT);
        }
        let site_supernodes: Vec<PeerId> = site_nb()
            .filter(|n| n.info.role == Role::Supernode)
            .map(|n| n.info.id)
            .collect();
        if me.role == Role::Supernode {
            // Designation counts the site's busy (choked) supernodes too: otherwise a busy
            // designated one would make another fetch the same fragment over the VPN or gateway.
            let all_site_supernodes = view
                .neighbours
                .iter()
                .filter(|n| same_site(me, &n.info) && n.info.role == Role::Supernode)
                .map(|n| &n.info.id);
            let mine = designated(all_site_supernodes.chain(std::iter::once(&me.id)), f);
            if mine != Some(me.id) {
                // Another supernode of this site is designated: pull through it, or wait while
                // it is busy (the engine retries when its busy time ends, or goes to the origin
                // at the last call).
                return match mine {
                    Some(p) if site_supernodes.contains(&p) => FetchDecision::Peer(p),
                    Some(_) => FetchDecision::WaitUntil(need.deadline),
                    None => FetchDecision::Origin,
                };
            }
            if self.at_gateway(me) {
                return FetchDecision::Origin;
            }
            let uplinks = || {
                view.neighbours.iter().filter(|n| {
                    !n.choked && n.info.role == Role::Supernode && self.at_gateway(&n.info)
                })
            };
            if let Some(p) = least_loaded(uplinks().filter(|n| n.has(f)), f) {
                return FetchDecision::Peer(p);
            }
            // Branches spread over the gateway site's supernodes (each pulls through the one
            // designated to fetch from the origin, over the LAN).
            let ups: Vec<PeerId> = uplinks().map(|n| n.info.id).collect();
            let salt = salt_of(me.locality.site.as_deref().unwrap_or_default().as_bytes());
            if let Some(p) = spread(ups.iter(), f, salt) {
                return FetchDecision::Peer(p);
            }
            // Every uplink is busy: wait for one (the origin is reached through the same VPN
            // link and loads the gateway besides; the engine retries when the busy time ends,
            // and still goes to the origin at the last call). None connected yet but some
            // known, or none known while this agent is joining (it may have come before anyone
            // at the gateway site, or before the tracker told it of them): look again shortly,
            // until the last call. Otherwise the origin: a copy over the gateway that the
            // gateway site's supernodes would fetch again.
            let busy_uplink = view
                .neighbours
                .iter()
                .any(|n| n.choked && n.info.role == Role::Supernode && self.at_gateway(&n.info));
            let coming_uplink = view
                .candidates
                .iter()
                .any(|c| c.role == Role::Supernode && self.at_gateway(c));
            return if busy_uplink {
                FetchDecision::WaitUntil(need.deadline)
            } else if coming_uplink || joining {
                FetchDecision::WaitUntil((now + UPLINK_POLL).min(need.deadline))
            } else {
                FetchDecision::Origin
            };
        }
        let Some(sn) = spread(site_supernodes.iter(), f, salt_of(me.id.as_bytes())) else {
            // No supernode in reach: any holder, else wait for a site neighbour to announce it
            // (the engine's time budget sends us to the origin at the last call).
            let any = view.neighbours.iter().filter(|n| !n.choked && n.has(f));
            if let Some(p) = least_loaded(any, f) {
                return FetchDecision::Peer(p);
            }
            return if site_nb().next().is_some() {
                FetchDecision::WaitUntil(need.deadline)
            } else if need.attempts == 0
                && now < need.since + JOIN_WAIT
                && view.candidates.iter().any(|c| same_site(me, c))
            {
                // Just joined: the site's agents are known but not connected yet.
                FetchDecision::WaitUntil(need.since + JOIN_WAIT)
            } else {
                FetchDecision::Origin
            };
        };
        // The first wave (by rank among this neighbourhood) asks the supernode now; the rest
        // wait for their announcements, then ask it anyway.
        let my_weight = weight(&me.id, f);
        let rank = view
            .neighbours
            .iter()
            .filter(|n| same_site(me, &n.info) && weight(&n.info.id, f) > my_weight)
            .count();
        if rank < FIRST_WAVE || need.attempts > 0 || now >= need.since + SECOND_WAVE_DELAY {
            FetchDecision::Peer(sn)
        } else {
            FetchDecision::WaitUntil(need.since + SECOND_WAVE_DELAY)
        }
    }

    /// No push: fragments move when players ask (pull-through). Prefetching the tracks that
    /// neighbours watch was tried and fed back on itself (a prefetch makes its track look
    /// watched), saturating the VPN links with every bitrate.
    fn should_prefetch(&mut self, _now: Instant, _view: &LocalView<'_>, _f: &FragmentId) -> bool {
        false
    }

    fn pull_through(
        &mut self,
        _now: Instant,
        view: &LocalView<'_>,
        _fragment: &FragmentId,
    ) -> bool {
        view.me.role == Role::Supernode
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::{ContentId, KeyKind, Locality, PeerAddr, TrackId};

    fn peer(n: u8, site: &str, role: Role) -> PeerInfo {
        let mut p = PeerInfo::new(
            PeerId::from_public_key(KeyKind::X25519, &[n; 32]),
            PeerAddr::Memory(u64::from(n)),
        );
        p.locality = Locality {
            asn: Some(1),
            site: Some(site.into()),
            country: None,
        };
        p.role = role;
        p
    }

    #[test]
    fn designation_is_the_same_whoever_asks() {
        let ids: Vec<PeerId> = (0..5).map(|n| peer(n, "a", Role::Supernode).id).collect();
        let f = FragmentId::new(ContentId::derive("c"), TrackId(1), 42);
        let forward = designated(ids.iter(), &f);
        let backward = designated(ids.iter().rev(), &f);
        assert_eq!(forward, backward);
        // Different fragments spread over the supernodes.
        let picks: std::collections::BTreeSet<_> = (0..50)
            .map(|s| {
                designated(
                    ids.iter(),
                    &FragmentId::new(ContentId::derive("c"), TrackId(1), s),
                )
            })
            .collect();
        assert!(picks.len() >= 4);
    }

    #[test]
    fn a_branch_supernode_alone_waits_for_the_gateway_site_while_joining_then_goes_to_the_origin() {
        let me = peer(1, "branch", Role::Supernode);
        let mut p = PrivateHierarchy::new(Some("hq".into()));
        let view = LocalView {
            me: &me,
            neighbours: &[],
            candidates: &[],
            max_neighbours: 8,
            origin_throughput_bps: None,
            top_bitrate_bps: None,
        };
        let t0 = Instant::ZERO + Duration::from_secs(4);
        let need = |now: Instant, seq: u64| FetchContext {
            fragment: FragmentId::new(ContentId::derive("c"), TrackId(0), seq),
            size_estimate: 100_000,
            deadline: now + Duration::from_secs(2),
            attempts: 0,
            since: now,
        };
        // Just started: wait for the site's agents that join beside it to announce it.
        let d = p.fetch_source(t0, &view, &need(t0, 0));
        assert_eq!(d, FetchDecision::WaitUntil(t0 + JOIN_WAIT));
        // Joining, nobody known: look again shortly (the tracker may name a gateway-site
        // supernode), never past the deadline.
        let t = t0 + JOIN_WAIT;
        let d = p.fetch_source(t, &view, &need(t0, 0));
        assert_eq!(d, FetchDecision::WaitUntil(t + UPLINK_POLL));
        let late = t0 + Duration::from_millis(1950);
        let d = p.fetch_source(late, &view, &need(t0, 0));
        assert_eq!(d, FetchDecision::WaitUntil(t0 + Duration::from_secs(2)));
        // Once the gateway site's supernode is a candidate, still wait for the connection.
        let hq = peer(2, "hq", Role::Supernode);
        let cands = [hq.clone()];
        let with_candidate = LocalView {
            candidates: &cands,
            ..view
        };
        let t = t0 + Duration::from_millis(300);
        let d = p.fetch_source(t, &with_candidate, &need(t0, 1));
        assert_eq!(d, FetchDecision::WaitUntil(t + UPLINK_POLL));
        // Past the joining period, alone: the origin at once.
        let t = t0 + JOINING;
        assert_eq!(p.fetch_source(t, &view, &need(t, 5)), FetchDecision::Origin);
    }

    #[test]
    fn branch_supernode_keeps_gateway_supernodes_and_drops_strangers() {
        let me = peer(1, "branch", Role::Supernode);
        let hq_sn = peer(2, "hq", Role::Supernode);
        let hq_peer = peer(3, "hq", Role::Peer);
        let mut p = PrivateHierarchy::new(Some("hq".into()));
        let view = LocalView {
            me: &me,
            neighbours: &[],
            candidates: &[hq_peer.clone(), hq_sn.clone()],
            max_neighbours: 8,
            origin_throughput_bps: None,
            top_bitrate_bps: None,
        };
        let plan = p.plan_neighbours(Instant::ZERO, &view);
        assert_eq!(plan.connect, vec![hq_sn.id]);
    }
}
