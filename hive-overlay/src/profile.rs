//! One engine configuration for every driver: the policy names, the role profiles and the
//! upload-slot rule.
//!
//! `hive agent`, `hive demo`, `hive sim` and `hive lab` configure their engines from here, so
//! that what the simulator predicts is what the shipped agents do. A difference that remains is
//! a modelling choice, named where the simulator makes it.
//!
//! ```
//! use hive_core::Role;
//! use hive_overlay::{PolicyKind, RoleProfile, SwarmConfig};
//!
//! let policy: PolicyKind = "public-mesh".parse().unwrap();
//! assert_eq!(policy.to_string(), "public-mesh");
//! let cfg = SwarmConfig::for_role(Role::Supernode);
//! assert_eq!(cfg.max_neighbours, RoleProfile::SUPERNODE.max_neighbours);
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hive_core::Role;
use hive_core::overlay::OverlayPolicy;

use crate::{NoPeer, PrivateHierarchy, PublicMesh, RandomMesh, SwarmConfig};

/// The overlay policies, with the one spelling every CLI, report and JSON key uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// `no-peer`: a pure CDN, every fragment from the origin (the baseline).
    NoPeer,
    /// `random-mesh`: random neighbours, no locality, no tiers (the baseline).
    RandomMesh,
    /// `public-mesh`: the public internet: a small capacity-weighted first tier, self-elected
    /// per fragment, races the origin; the others pull from the fastest holder, same AS first.
    PublicMesh,
    /// `private-hierarchy`: enterprise networks: per-site supernodes (promoted by the tracker)
    /// fetch first and serve their site, pulling through across VPN links.
    PrivateHierarchy,
}

impl PolicyKind {
    /// Every policy, baselines first.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::NoPeer,
        PolicyKind::RandomMesh,
        PolicyKind::PublicMesh,
        PolicyKind::PrivateHierarchy,
    ];

    /// The name in reports, JSON and on command lines.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::NoPeer => "no-peer",
            PolicyKind::RandomMesh => "random-mesh",
            PolicyKind::PublicMesh => "public-mesh",
            PolicyKind::PrivateHierarchy => "private-hierarchy",
        }
    }

    /// Whether this is a baseline (NoPeer, RandomMesh) that runs beside a policy to compare.
    pub fn is_baseline(self) -> bool {
        matches!(self, PolicyKind::NoPeer | PolicyKind::RandomMesh)
    }

    /// The policy for one agent: `seed` feeds its random choices (mix in the agent's id, so
    /// that agents differ); `gateway_site` is the site holding the internet gateway, for
    /// [`PolicyKind::PrivateHierarchy`] (ignored by the others).
    pub fn build(self, seed: u64, gateway_site: Option<String>) -> Box<dyn OverlayPolicy> {
        match self {
            PolicyKind::NoPeer => Box::new(NoPeer),
            PolicyKind::RandomMesh => Box::new(RandomMesh::new(seed)),
            PolicyKind::PublicMesh => Box::new(PublicMesh::new(seed)),
            PolicyKind::PrivateHierarchy => Box::new(PrivateHierarchy::new(gateway_site)),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is none of [`PolicyKind::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: use no-peer, random-mesh, public-mesh or private-hierarchy")]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    /// Parses a [`PolicyKind::name`]. The spellings of Hive 0.1's first releases (`nopeer`,
    /// `randommesh`, `publicmesh`, `hierarchy`) are still read, so old scripts keep working;
    /// they are never written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "no-peer" | "nopeer" => PolicyKind::NoPeer,
            "random-mesh" | "randommesh" => PolicyKind::RandomMesh,
            "public-mesh" | "publicmesh" => PolicyKind::PublicMesh,
            "private-hierarchy" | "hierarchy" | "privatehierarchy" => PolicyKind::PrivateHierarchy,
            _ => return Err(UnknownPolicy(s.to_string())),
        })
    }
}

/// What a role changes in the engine: how many neighbours it keeps, how many uploads it serves
/// at once and whether a request waits for a slot. [`Swarm::set_role`](crate::Swarm::set_role)
/// applies the new role's profile, so an agent the tracker promotes becomes the same supernode
/// the simulator models.
///
/// A supernode of the gateway site and one of a branch share one profile: the gateway site's
/// extra load is the branches' supernodes (a few per branch), which the supernode's neighbour
/// limit covers, and its uploads are limited by the gateway link, not by its slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleProfile {
    /// Most neighbours kept ([`SwarmConfig::max_neighbours`]).
    pub max_neighbours: usize,
    /// Most uploads served at once ([`SwarmConfig::upload_slots`]).
    pub upload_slots: usize,
    /// Whether the slots are sized from the uplink ([`SwarmConfig::slots_from_uplink`]).
    pub slots_from_uplink: bool,
    /// Whether a request waits for a slot ([`SwarmConfig::queue_for_slots`]).
    pub queue_for_slots: bool,
    /// Uploads paced at this share of the uplink, per mille
    /// ([`SwarmConfig::upload_pacing_permille`]).
    pub upload_pacing_permille: Option<u16>,
}

impl RoleProfile {
    /// An ordinary viewer: a dozen neighbours, and as many upload slots as its uplink carries
    /// at eight times the top bitrate ([`upload_slots`]), at most eight; a request that finds
    /// them taken waits when the uplink can still make its deadline. Its uploads are paced at
    /// 90% of its uplink (when it is known: [`SwarmConfig::uplink_known`]), so that they never
    /// fill it: a home uplink's buffer holds 100 ms to seconds, and behind a full one the
    /// viewer's own requests, Haves and acknowledgements wait as long. `hive lab` on
    /// `docs/lab/uplink-30.json` (public-mesh, 1.5-3 Mbit/s uplinks with 1 s buffers), seeds
    /// 1/2/3, unpaced → paced: at a fixed TCP-fair priority, deadline misses 20/57/38 →
    /// 5/15/35 and rebuffering 0.27/0.74/0.55% → 0.015/0.09/0.37%; with priority following
    /// urgency, offload 6.0/6.1/7.3% → 10.1/9.8/10.0% at the same few misses.
    pub const VIEWER: RoleProfile = RoleProfile {
        max_neighbours: 12,
        upload_slots: 8,
        slots_from_uplink: true,
        queue_for_slots: true,
        upload_pacing_permille: Some(900),
    };

    /// A supernode (and a seeder): its site's agents and, at the gateway site, every branch's
    /// supernodes as neighbours; eight uploads at once whatever its uplink, and a request it
    /// cannot serve at once is refused (and goes to another supernode).
    ///
    /// Few slots: a pull-through chain (origin, gateway-site supernode, VPN link, branch
    /// supernode, site) is store-and-forward, so a fragment must cross each hop quickly, not
    /// crawl beside dozens of others. enterprise-2068 at 0.25 scale, 300 s, rebuffering for
    /// seeds 1/2/3: 32 slots 16%/-/-, 16 slots 0%/6.7%/0%, 8 slots 4.9%/0%/0%. No queueing: a
    /// supernode's uplink is not what limits its uploads (its site's VPN link or the gateway
    /// is), so its advertised capacity would promise waits it cannot keep: enterprise-2068 at
    /// 0.25 scale, 300 s, seed 1: 98.94% offload, 4.76% rebuffering when supernodes queue;
    /// 99.64%, 0% when they refuse.
    pub const SUPERNODE: RoleProfile = RoleProfile {
        max_neighbours: 320,
        upload_slots: 8,
        slots_from_uplink: false,
        queue_for_slots: false,
        // Its advertised capacity does not bound it (see above): unpaced.
        upload_pacing_permille: None,
    };

    /// A consume-only agent: a viewer's neighbours; it never uploads, so its slots are unused.
    pub const CONSUME_ONLY: RoleProfile = RoleProfile::VIEWER;

    /// The profile of `role`.
    pub fn of(role: Role) -> RoleProfile {
        match role {
            Role::Peer => RoleProfile::VIEWER,
            Role::Supernode | Role::Seeder => RoleProfile::SUPERNODE,
            Role::ConsumeOnly => RoleProfile::CONSUME_ONLY,
            // A role of a later release: an ordinary viewer's settings.
            _ => RoleProfile::VIEWER,
        }
    }

    /// Sets `role` and this profile's fields in `cfg`, leaving the others.
    pub fn apply_as(&self, role: Role, cfg: &mut SwarmConfig) {
        cfg.role = role;
        cfg.max_neighbours = self.max_neighbours;
        cfg.upload_slots = self.upload_slots;
        cfg.slots_from_uplink = self.slots_from_uplink;
        cfg.queue_for_slots = self.queue_for_slots;
        cfg.upload_pacing_permille = self.upload_pacing_permille;
    }
}

/// The upload-slot rule: as many uploads at once as `uplink_kbps` carries at eight times
/// `top_bitrate_bps`, between 1 and `max` (none when `max` is 0). Each upload then crosses in an eighth of its media
/// time, and its receiver passes it on sooner, rather than a slow uplink being split eight
/// ways and every transfer arriving late; requests beyond wait in the engine's queue when they
/// can still make their deadline. wan-6000 at 0.1 scale, 600 s: 95.02% offload at four times
/// the top bitrate (two or three slots on the fastest links), 95.78% at eight.
pub fn upload_slots(uplink_kbps: u32, top_bitrate_bps: u64, max: usize) -> usize {
    let uplink = u64::from(uplink_kbps) * 1000;
    let fit = uplink / top_bitrate_bps.saturating_mul(8).max(1);
    if max == 0 {
        return 0;
    }
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, max)
}

/// How often an agent refreshes a live playlist by itself while its player watches: every half
/// fragment duration, between 0.5 s and 5 s, on a tick of [`LIVE_REFRESH_TICK`]. An agent
/// learns a new live fragment at its next refresh (or its player's, which passes through it),
/// not when the origin publishes it: `hive agent` refreshes on this period and `hive sim`
/// models its agents' learning on it.
pub fn live_refresh_period(fragment: Duration) -> Duration {
    (fragment / 2).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// The tick on which an agent checks whether a live refresh is due: a refresh happens on the
/// first tick at least [`live_refresh_period`] after the last one.
pub const LIVE_REFRESH_TICK: Duration = Duration::from_millis(250);

/// The interval between two refreshes of one live playlist: the [`live_refresh_period`]
/// rounded up to whole [`LIVE_REFRESH_TICK`]s.
pub fn live_refresh_interval(fragment: Duration) -> Duration {
    let period = live_refresh_period(fragment).as_nanos();
    let tick = LIVE_REFRESH_TICK.as_nanos();
    let ticks = period.div_ceil(tick);
    Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
}

impl SwarmConfig {
    /// The default settings with `role`'s [`RoleProfile`]: what `hive agent` and the
    /// simulator start an agent of that role with.
    pub fn for_role(role: Role) -> SwarmConfig {
        let mut cfg = SwarmConfig::default();
        RoleProfile::of(role).apply_as(role, &mut cfg);
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_refresh_is_half_a_fragment_on_whole_ticks() {
        assert_eq!(
            live_refresh_period(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            live_refresh_interval(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(
            live_refresh_interval(Duration::from_millis(2100)),
            Duration::from_millis(1250)
        );
        assert_eq!(
            live_refresh_period(Duration::from_millis(200)),
            Duration::from_millis(500)
        );
        assert_eq!(
            live_refresh_period(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn names_round_trip_and_old_spellings_are_read() {
        for p in PolicyKind::ALL {
            assert_eq!(p.name().parse::<PolicyKind>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!("hierarchy".parse(), Ok(PolicyKind::PrivateHierarchy));
        assert_eq!("publicmesh".parse(), Ok(PolicyKind::PublicMesh));
        assert_eq!("randommesh".parse(), Ok(PolicyKind::RandomMesh));
        assert_eq!("nopeer".parse(), Ok(PolicyKind::NoPeer));
        let err = "mesh?".parse::<PolicyKind>().unwrap_err();
        assert!(err.to_string().contains("public-mesh"), "{err}");
    }

    #[test]
    fn built_policies_report_their_kind() {
        for p in PolicyKind::ALL {
            // The policies' own names are the canonical ones.
            assert_eq!(p.build(1, None).name(), p.name());
        }
    }

    #[test]
    fn slot_rule_fits_eight_times_the_top_bitrate_in_the_uplink() {
        // 10 Mbit/s up, 700 kbit/s top: 10 000 / 5 600 = 1.
        assert_eq!(upload_slots(10_000, 700_000, 8), 1);
        // 100 Mbit/s, 1 Mbit/s: 12, capped at 8.
        assert_eq!(upload_slots(100_000, 1_000_000, 8), 8);
        assert_eq!(upload_slots(50_000, 1_000_000, 8), 6);
        // Never below one, even on a slow uplink; none when none are allowed.
        assert_eq!(upload_slots(300, 2_000_000, 8), 1);
        // No bitrate known: the most allowed.
        assert_eq!(upload_slots(300, 0, 8), 8);
        assert_eq!(upload_slots(20_000, 700_000, 0), 0);
    }

    #[test]
    fn roles_get_their_profiles() {
        let sn = SwarmConfig::for_role(Role::Supernode);
        assert_eq!(sn.role, Role::Supernode);
        assert_eq!(sn.max_neighbours, 320);
        assert!(!sn.queue_for_slots && !sn.slots_from_uplink);
        let v = SwarmConfig::for_role(Role::Peer);
        assert_eq!((v.max_neighbours, v.upload_slots), (12, 8));
        assert!(v.slots_from_uplink && v.queue_for_slots);
        assert_eq!(RoleProfile::of(Role::ConsumeOnly), RoleProfile::VIEWER);
    }
}
