//! The paths of transfers and messages: between viewers (their links and latencies, [`Paths`]),
//! from the origin, and whether two viewers behind NAT connect ([`can_connect`]).

use hive_core::time::Duration;

use super::Sim;
use super::agent::Viewer;
use crate::flownet::LinkId;
use crate::scenario::Scenario;

/// Latency of each access link (uplink and downlink): a message between two agents crosses two.
pub(super) const ACCESS_LATENCY: Duration = crate::scenario::latency::ACCESS;

/// The links between viewers: the core (public internet) or each site's VPN links (enterprise).
pub(super) struct Paths {
    pub(super) enterprise: bool,
    pub(super) core_link: LinkId,
    pub(super) vpn: Vec<Option<(LinkId, LinkId)>>,
    /// The latencies of the core and of each site's VPN links (down, up), copied from the
    /// network (a message's latency then reads neither the network nor the links).
    pub(super) core_latency: Duration,
    pub(super) vpn_latency: Vec<Option<(Duration, Duration)>>,
}

impl Paths {
    /// The links from one viewer to another, in order: its uplink, the VPN links between their
    /// sites (enterprise) or the core (public internet) when the sites differ, the receiver's
    /// downlink. A fixed array, so that a message's latency needs no allocation.
    pub(super) fn hops(&self, viewers: &[Viewer], from: usize, to: usize) -> ([LinkId; 4], usize) {
        let (a, b) = (&viewers[from], &viewers[to]);
        let mut hops = [a.up; 4];
        let mut n = 1;
        let mut push = |l: LinkId| {
            hops[n] = l;
            n += 1;
        };
        if a.site != b.site {
            if self.enterprise {
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

    /// The one-way latency from one viewer to another (asked for every message): the sum of
    /// the latencies of [`Paths::hops`]; every access link adds [`ACCESS_LATENCY`].
    pub(super) fn latency(&self, viewers: &[Viewer], from: usize, to: usize) -> Duration {
        let (a, b) = (&viewers[from], &viewers[to]);
        let mut d = ACCESS_LATENCY + ACCESS_LATENCY;
        if a.site != b.site {
            if self.enterprise {
                if let Some(Some((_, up))) = self.vpn_latency.get(a.site) {
                    d += *up;
                }
                if let Some(Some((down, _))) = self.vpn_latency.get(b.site) {
                    d += *down;
                }
            } else {
                d += self.core_latency;
            }
        }
        d
    }
}

/// NAT: two NATed viewers connect with the scenario's probability (fixed per pair).
pub(super) fn can_connect(s: &Scenario, viewers: &[Viewer], a: usize, b: usize) -> bool {
    if !(viewers[a].natted && viewers[b].natted) {
        return true;
    }
    let (x, y) = (a.min(b) as u64, a.max(b) as u64);
    let h =
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ s.seed)
            .rotate_left(23);
    (h % 10_000) as f64 / 10_000.0 < s.nat_pair_success
}

impl Sim<'_> {
    pub(super) fn path_origin(&self, v: usize) -> Vec<LinkId> {
        let mut p = vec![self.origin_link];
        if let Some(gw) = self.gw_down {
            p.push(gw);
        } else {
            p.push(self.paths.core_link);
        }
        if let Some((down, _)) = self.paths.vpn[self.viewers[v].site] {
            p.push(down);
        }
        p.push(self.viewers[v].down);
        p
    }

    pub(super) fn path_peer(&self, from: usize, to: usize) -> Vec<LinkId> {
        let (hops, n) = self.paths.hops(&self.viewers, from, to);
        hops[..n].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use hive_overlay::PolicyKind;

    use crate::sim::Sim;

    /// A message's latency, computed from the viewers' sites, is the sum of its path's links'
    /// latencies in the network, on the public internet and in an enterprise.
    #[test]
    fn message_latency_is_its_path_through_the_network() {
        for (name, factor) in [("wan-6000", 0.01), ("enterprise-2068", 0.02)] {
            let full = crate::scenario::named(name, 1).expect("a named scenario");
            let s = crate::scenario::scaled(full, factor, hive_core::time::Duration::from_secs(10));
            let sim = Sim::new(&s, PolicyKind::PublicMesh);
            let n = sim.viewers.len();
            assert!(n > 20, "{name}: {n} viewers");
            let mut pairs = 0;
            for a in 0..n {
                for b in (0..n).step_by(7) {
                    let (hops, k) = sim.paths.hops(&sim.viewers, a, b);
                    let want = sim.net.latency(&hops[..k]);
                    assert_eq!(
                        sim.paths.latency(&sim.viewers, a, b),
                        want,
                        "{name}: {a} to {b}"
                    );
                    pairs += usize::from(sim.viewers[a].site != sim.viewers[b].site);
                }
            }
            assert!(pairs > 0, "{name}: pairs across sites were checked");
        }
    }
}
