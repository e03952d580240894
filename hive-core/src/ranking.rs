//! The tracker's ranking of candidates: one pure function, called by the tracker
//! (hive-services) and by the simulator's tracker, so a simulated agent meets the neighbours a
//! real one would.
//!
//! Candidates are ordered nearest tier first ([`Locality::distance`]: 0 same site and AS, 1 same
//! AS, 2 same country, 3 the rest), and within a tier by weighted random sampling without
//! replacement (Efraimidis and Spirakis 2006: key = ln(u) / w, largest first): better uploaders
//! and supernodes tend to come first, but every announcer gets a different sample and no peer
//! is swamped. The randomness is injected, so a simulator's seed decides it.
//!
//! ```
//! use hive_core::ranking::rank;
//! use hive_core::{Locality, Role};
//!
//! let here = Locality { site: Some("hq".into()), asn: Some(1), country: None };
//! let away = Locality { site: Some("paris".into()), asn: Some(2), country: None };
//! // (locality, role, upload kbit/s) of three candidates.
//! let cands = vec![(&away, Role::Supernode, 100_000), (&here, Role::Peer, 0), (&here, Role::Peer, 0)];
//! let mut draws = [0.5, 0.25, 0.75].into_iter();
//! let ranked = rank(cands, &here, 2, |c| (c.0, c.1, c.2), || draws.next().unwrap_or(0.5));
//! assert!(ranked.iter().all(|c| c.0 == &here), "the same site first");
//! ```

use crate::ids::{Locality, Role};

/// Peers a tracker returns per announce unless the agent asks for another number (the agent's
/// default `tracker_want`).
pub const DEFAULT_WANT: usize = 30;

/// Gateway-site supernodes a tracker adds to the reply of a supernode of another site (which
/// fetches through them), even when its own site fills the reply.
pub const UPLINK_CANDIDATES: usize = 10;

/// How strongly a candidate is preferred within its tier: grows with the square root of its
/// upload capacity; supernodes and seeders count four times, consume-only agents a twentieth.
pub fn weight(role: Role, upload_kbps: u32) -> f64 {
    let capacity = 1.0 + (f64::from(upload_kbps.min(10_000_000)) / 1000.0).sqrt();
    let role = match role {
        Role::Supernode | Role::Seeder => 4.0,
        Role::ConsumeOnly => 0.05,
        _ => 1.0,
    };
    capacity * role
}

/// The share of a reply kept for candidates farther than the nearest tier, when there are
/// any: a quarter. A reply of only one's own site or AS would make each big site or AS a
/// closed club (PublicMesh's fast neighbours come from anywhere): `hive sim -s wan-6000
/// --duration 600 --policy public-mesh`: 96.04% offload with replies of the nearest tier only,
/// 97.33% with the far share.
pub fn far_share(want: usize) -> usize {
    want / 4
}

/// Orders `candidates` for an agent at `near` and keeps `want`: the nearest tier's best-ranked,
/// leaving [`far_share`] of the places to farther candidates when there are any, then, if
/// places are left, the farther ones in order. `fields` reads a candidate's locality, role and
/// upload capacity (kbit/s); `uniform` draws from `[0, 1)`, one draw per candidate in order. The
/// caller removes the announcer itself beforehand.
pub fn rank<T>(
    candidates: Vec<T>,
    near: &Locality,
    want: usize,
    fields: impl Fn(&T) -> (&Locality, Role, u32),
    mut uniform: impl FnMut() -> f64,
) -> Vec<T> {
    let mut keyed: Vec<(u8, f64, T)> = candidates
        .into_iter()
        .map(|c| {
            // u in (0, 1]: ln(u) is finite and <= 0 (a draw out of range is clamped).
            let d = uniform();
            let u = 1.0
                - if d.is_nan() {
                    0.5
                } else {
                    d.clamp(0.0, 1.0 - f64::EPSILON)
                };
            let (locality, role, kbps) = fields(&c);
            (near.distance(locality), u.ln() / weight(role, kbps), c)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let best = keyed.first().map_or(0, |k| k.0);
    let nearest = keyed.iter().take_while(|k| k.0 == best).count();
    let farther = keyed.len() - nearest;
    // Places for the nearest tier: all but the far share (as far as farther ones exist).
    let near_places = nearest.min(want - far_share(want).min(farther).min(want));
    let far_places = farther.min(want - near_places);
    let mut out = Vec::with_capacity(near_places + far_places);
    for (i, k) in keyed.into_iter().enumerate() {
        if i < near_places || (i >= nearest && i < nearest + far_places) {
            out.push(k.2);
        }
    }
    out
}

/// A supernode's reply with the gateway site's supernodes `uplinks` in it: the ranked `peers`
/// (those not among the uplinks; `same` compares two) cut to leave room, then the uplinks, at
/// most `want` in all.
pub fn with_uplinks<T>(
    mut peers: Vec<T>,
    mut uplinks: Vec<T>,
    want: usize,
    same: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    uplinks.truncate(want);
    peers.retain(|p| !uplinks.iter().any(|u| same(p, u)));
    peers.truncate(want - uplinks.len());
    peers.extend(uplinks);
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(site: &str, asn: u32) -> Locality {
        Locality {
            asn: Some(asn),
            site: Some(site.into()),
            country: None,
        }
    }

    #[test]
    fn nearer_tiers_come_first() {
        let me = loc("a", 1);
        let cands = vec![
            (1u8, loc("z", 9), Role::Supernode, 100_000),
            (2, loc("b", 1), Role::Peer, 0),
            (3, loc("a", 1), Role::Peer, 0),
        ];
        let mut x = 0.0;
        let out = rank(
            cands,
            &me,
            10,
            |c| (&c.1, c.2, c.3),
            || {
                x += 0.3;
                x % 1.0
            },
        );
        let ids: Vec<u8> = out.iter().map(|c| c.0).collect();
        assert_eq!(ids, vec![3, 2, 1]);
    }

    #[test]
    fn a_quarter_of_a_full_reply_comes_from_farther_tiers() {
        let me = loc("a", 1);
        let mut cands: Vec<(u32, Locality)> = (0..100).map(|i| (i, loc("a", 1))).collect();
        cands.extend((100..110).map(|i| (i, loc("b", 2))));
        let out = rank(cands.clone(), &me, 20, |c| (&c.1, Role::Peer, 0), || 0.5);
        assert_eq!(out.len(), 20);
        assert_eq!(out.iter().filter(|c| c.0 >= 100).count(), far_share(20));
        // Without farther candidates, the nearest fill the reply; with few, they all come.
        cands.truncate(100);
        let out = rank(cands.clone(), &me, 20, |c| (&c.1, Role::Peer, 0), || 0.5);
        assert_eq!(out.len(), 20);
        cands.truncate(3);
        cands.push((100, loc("b", 2)));
        let out = rank(cands, &me, 20, |c| (&c.1, Role::Peer, 0), || 0.5);
        let ids: Vec<u32> = out.iter().map(|c| c.0).collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(ids[3], 100, "nearest first");
    }

    #[test]
    fn capacity_and_supernodes_are_preferred_but_not_always() {
        let me = loc("a", 1);
        let mut firsts = [0u32; 3];
        // A fixed sequence of draws (SplitMix64): reproducible.
        let mut state = 7u64;
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        };
        for _ in 0..2000 {
            let cands = vec![
                (0usize, Role::Peer, 0u32, me.clone()),
                (1, Role::Peer, 50_000, me.clone()),
                (2, Role::Supernode, 50_000, me.clone()),
            ];
            let out = rank(cands, &me, 1, |c| (&c.3, c.1, c.2), &mut uniform);
            firsts[out[0].0] += 1;
        }
        assert!(firsts[2] > firsts[1] && firsts[1] > firsts[0], "{firsts:?}");
        assert!(firsts[0] > 0, "the weakest is still chosen: {firsts:?}");
    }

    #[test]
    fn out_of_range_draws_do_not_break_the_order() {
        let me = loc("a", 1);
        let cands = vec![me.clone(), me.clone(), me.clone()];
        let out = rank(cands, &me, 2, |c| (c, Role::Peer, 0), || f64::NAN);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn uplinks_get_room_and_are_not_repeated() {
        // 4 ranked last is an uplink: kept, once.
        let out = with_uplinks(vec![1, 2, 3, 4], vec![4, 9], 4, |a, b| a == b);
        assert_eq!(out, vec![1, 2, 4, 9]);
        let out = with_uplinks(vec![1], vec![7, 8, 9], 2, |a, b| a == b);
        assert_eq!(out, vec![7, 8]);
        let out = with_uplinks(vec![1, 2], vec![], 4, |a, b| a == b);
        assert_eq!(out, vec![1, 2]);
    }
}
