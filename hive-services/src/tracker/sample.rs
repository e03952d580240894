//! The tracker's ranking of a store's candidates ([`hive_core::ranking`]): nearest tier first,
//! and within a tier a random order weighted towards upload capacity and supernodes.
//!
//! Tiers follow [`Locality::distance`]: 0 same site (and AS), 1 same AS, 2 same country, 3 the
//! rest. Within a tier, peers are ordered by weighted random sampling without replacement
//! (Efraimidis and Spirakis 2006: key = ln(u) / w, largest first), so better uploaders tend to
//! come first but every announcer gets a different sample and no peer is swamped.

use std::cell::RefCell;
use std::sync::Arc;

use hive_core::{Locality, PeerId};

use super::store::StoredPeer;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(seed()));
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    // A failed OS random source only makes sampling predictable, never unsafe: fall back to time.
    if getrandom::fill(&mut b).is_err() {
        return crate::http::now_unix_ms() ^ 0x9e37_79b9_7f4a_7c15;
    }
    u64::from_le_bytes(b)
}

/// Runs `f` with this thread's sampling generator.
pub(crate) fn with_rng<T>(f: impl FnOnce(&mut SmallRng) -> T) -> T {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// Orders `candidates` for a peer at `near` and keeps the first `want`, never `me`: the
/// ranking the simulator's tracker calls too ([`hive_core::ranking::rank`]), with this thread's
/// generator.
pub(crate) fn rank(
    candidates: Vec<Arc<StoredPeer>>,
    me: Option<PeerId>,
    near: &Locality,
    want: usize,
) -> Vec<Arc<StoredPeer>> {
    let candidates: Vec<Arc<StoredPeer>> = candidates
        .into_iter()
        .filter(|p| Some(p.id()) != me)
        .collect();
    with_rng(|rng| {
        hive_core::ranking::rank(
            candidates,
            near,
            want,
            // The ranking fields only: a peer read back from a store has not parsed the rest.
            |p| (p.locality(), p.role(), p.upload_kbps()),
            || rng.random::<f64>(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::{PeerAddr, PeerInfo, Role};

    fn peer(n: u8, site: &str, asn: u32, kbps: u32, role: Role) -> Arc<StoredPeer> {
        let mut p = PeerInfo::new(PeerId::from_bytes([n; 32]), PeerAddr::Memory(n as u64));
        p.locality = Locality {
            asn: Some(asn),
            site: Some(site.into()),
            country: None,
        };
        p.upload_kbps = kbps;
        p.role = role;
        Arc::new(StoredPeer::new(p))
    }

    #[test]
    fn nearer_tiers_come_first_and_me_is_never_returned() {
        let me = peer(0, "a", 1, 0, Role::Peer);
        let cands = vec![
            peer(1, "z", 9, 100_000, Role::Supernode),
            peer(2, "b", 1, 0, Role::Peer),
            peer(3, "a", 1, 0, Role::Peer),
            me.clone(),
        ];
        let out = rank(cands, Some(me.id), &me.locality, 10);
        let ids: Vec<u8> = out.iter().map(|p| p.id.as_bytes()[0]).collect();
        assert_eq!(ids, vec![3, 2, 1]);
        assert_eq!(rank(out, Some(me.id), &me.locality, 1).len(), 1);
    }

    #[test]
    fn capacity_and_supernodes_are_preferred_but_not_always() {
        let me = peer(0, "a", 1, 0, Role::Peer);
        let mut firsts = [0u32; 3];
        for _ in 0..2000 {
            let cands = vec![
                peer(1, "a", 1, 0, Role::Peer),
                peer(2, "a", 1, 50_000, Role::Peer),
                peer(3, "a", 1, 50_000, Role::Supernode),
            ];
            let out = rank(cands, Some(me.id), &me.locality, 1);
            firsts[out[0].id.as_bytes()[0] as usize - 1] += 1;
        }
        assert!(firsts[2] > firsts[1] && firsts[1] > firsts[0], "{firsts:?}");
        assert!(
            firsts[0] > 0,
            "the weakest peer is still chosen sometimes: {firsts:?}"
        );
    }
}
