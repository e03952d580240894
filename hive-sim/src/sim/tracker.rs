//! The simulated tracker: its index of the agents running ([`TrackerIndex`]), its store's
//! draw ([`pick`]), the samples it answers and ranks, the supernodes it promotes, and when
//! agents announce again.

use std::collections::BTreeMap;

use hive_core::time::Duration;
use hive_core::{Locality, Role, ranking};
use hive_overlay::PolicyKind;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Sim;

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

/// Up to `n` of `members` that are not `skip`ped, uniformly at random, onto `out`: the
/// tracker store's draw (hive-services' memory store: twice `n` distinct positions, then a
/// scan from a random offset when those held too few).
fn pick(
    rng: &mut ChaCha8Rng,
    members: &[usize],
    n: usize,
    skip: impl Fn(usize) -> bool,
    out: &mut Vec<usize>,
) {
    let len = members.len();
    if len == 0 || n == 0 {
        return;
    }
    let start = out.len();
    let draws = n.saturating_mul(2).min(len);
    for i in rand::seq::index::sample(rng, len, draws) {
        if out.len() - start >= n {
            return;
        }
        let u = members[i];
        if !skip(u) {
            out.push(u);
        }
    }
    if out.len() - start < n && draws < len {
        let from = rng.random_range(0..len);
        for k in 0..len {
            if out.len() - start >= n {
                break;
            }
            let u = members[(from + k) % len];
            if !skip(u) && !out[start..].contains(&u) {
                out.push(u);
            }
        }
    }
}

/// The agents running, per site and in all, with each one's place in those lists: the tracker
/// draws its samples from here in time proportional to the sample, not to the swarm.
#[derive(Default)]
pub(super) struct TrackerIndex {
    pub(super) by_site: Vec<Vec<usize>>,
    pub(super) all: Vec<usize>,
    /// Per viewer: its index in `by_site[site]` and in `all` (when running).
    pub(super) place: BTreeMap<usize, (usize, usize)>,
    /// Supernodes running, per site.
    pub(super) supernodes: Vec<Vec<usize>>,
}

impl TrackerIndex {
    pub(super) fn add(&mut self, v: usize, site: usize, supernode: bool) {
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

    pub(super) fn remove(&mut self, v: usize, site: usize) {
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

impl Sim<'_> {
    /// Whether agent `v`, joining, becomes a supernode.
    pub(super) fn promote(&mut self, v: usize) {
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
    }

    /// When agent `v` asks the tracker again: soon while it has few neighbours (it may have
    /// joined before the agents it needs, such as a branch supernode before any gateway-site
    /// supernode, which then fetched from the origin until its next announce), else after
    /// [`ANNOUNCE_EVERY`].
    pub(super) fn next_announce(&self, v: usize) -> Duration {
        // A branch supernode that has just joined while the tracker knows no gateway-site
        // supernode asks again quickly: until it knows one, its fragments cross the gateway on
        // their own (a copy too many for each fragment the gateway site fetches again).
        let viewer = &self.viewers[v];
        if let Some(g) = self.gateway_site()
            && viewer.site != g
            && viewer.role == Role::Supernode
            && self.tracker.supernodes.get(g).is_none_or(Vec::is_empty)
            && self.now < self.agents[v].player.joined + JOINING
        {
            return ANNOUNCE_JOINING;
        }
        let few = self.agents[v]
            .swarm
            .as_ref()
            .is_some_and(|s| s.neighbours().len() < FEW_NEIGHBOURS);
        if few { ANNOUNCE_SOON } else { ANNOUNCE_EVERY }
    }

    /// The site holding the internet gateway (enterprise: the first site).
    pub(super) fn gateway_site(&self) -> Option<usize> {
        self.s.enterprise().then_some(0)
    }

    /// What the tracker answers agent `v`, as hive-services' tracker does: its store's sample
    /// around the agent (`TrackerStore::sample`: up to `2 × want` agents of its site, then of
    /// its AS while fewer, then of the whole swarm while fewer, else a far share; each tier
    /// uniform), ranked by
    /// [`hive_core::ranking::rank`] (nearest tier first, weighted towards capacity and
    /// supernodes) to [`ranking::DEFAULT_WANT`]; with supernodes, its site's supernodes and, for
    /// a supernode away from the gateway site, the gateway site's ([`ranking::with_uplinks`]).
    ///
    /// Modelling choice: the random-mesh baseline's agents announce no locality (the baseline
    /// has none), so their samples come from the whole swarm, weighted by capacity only.
    pub(super) fn tracker_sample(&mut self, v: usize) -> Vec<usize> {
        let want = ranking::DEFAULT_WANT;
        let per_tier = 2 * want;
        let site = self.viewers[v].site;
        let gateway = self.gateway_site();
        let no_locality = Locality::default();
        let near = if self.policy == PolicyKind::RandomMesh {
            &no_locality
        } else {
            &self.site_localities[site]
        };
        let t = &self.tracker;
        let rng = &mut self.rng;
        let viewers = &self.viewers;
        let asn_of = |u: usize| self.s.sites[viewers[u].site].asn;
        let mut pool: Vec<usize> = Vec::with_capacity(2 * per_tier);
        // Tier by tier, as the store: its site (named sites only), its AS, everyone.
        if near.site.is_some() {
            let members = t.by_site.get(site).map_or(&[][..], Vec::as_slice);
            pick(rng, members, per_tier, |_| false, &mut pool);
        }
        if let Some(asn) = near.asn
            && pool.len() < per_tier
        {
            let in_site = |u: usize| near.site.is_some() && viewers[u].site == site;
            if self.single_asn {
                pick(rng, &t.all, per_tier, in_site, &mut pool);
            } else {
                let members: Vec<usize> = (0..self.s.sites.len())
                    .filter(|&i| self.s.sites[i].asn == asn)
                    .flat_map(|i| t.by_site.get(i).map_or(&[][..], Vec::as_slice))
                    .copied()
                    .collect();
                pick(rng, &members, per_tier, in_site, &mut pool);
            }
        }
        let far = if pool.len() < per_tier {
            per_tier
        } else {
            ranking::far_share(per_tier)
        };
        let nearer = |u: usize| {
            (near.site.is_some() && viewers[u].site == site) || near.asn == Some(asn_of(u))
        };
        pick(rng, &t.all, far, nearer, &mut pool);
        pool.retain(|&u| u != v);
        let localities = &self.site_localities;
        let cands: Vec<(usize, &Locality, Role, u32)> = pool
            .into_iter()
            .map(|u| {
                let w = &viewers[u];
                (u, &localities[w.site], w.role, w.up_kbps)
            })
            .collect();
        let ranked = ranking::rank(
            cands,
            near,
            want,
            |c| (c.1, c.2, c.3),
            || rng.random::<f64>(),
        );
        let peers: Vec<usize> = ranked.into_iter().map(|c| c.0).collect();
        if self.policy != PolicyKind::PrivateHierarchy {
            return peers;
        }
        // With supernodes (the tracker's supernode plan): every agent meets its site's
        // supernodes, and a supernode away from the gateway site the gateway site's first.
        let max = ranking::UPLINK_CANDIDATES.min(want);
        let mut site_supernodes = |of: usize| {
            let mut l: Vec<usize> = t.supernodes.get(of).cloned().unwrap_or_default();
            l.shuffle(rng);
            l.truncate(max);
            l
        };
        let mut ups = site_supernodes(site);
        match gateway {
            Some(g) if g != site && viewers[v].role == Role::Supernode => {
                let mut gw = site_supernodes(g);
                gw.extend(ups);
                ups = gw;
            }
            _ => {}
        }
        ups.retain(|&u| u != v);
        ranking::with_uplinks(peers, ups, want, |a, b| a == b)
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
