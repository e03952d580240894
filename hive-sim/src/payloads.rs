//! One copy of each fragment's bytes for the whole simulation.
//!
//! Every simulated agent caches the fragments it receives, as a real agent does — but a real
//! agent's copy lives on its own machine, while here thousands share one process. The origin's
//! payloads are kept in one table, and [`SharingCache`] stores, in place of a received copy, the
//! table's bytes when their hash matches the hash the fragment came with. (The simulator runs its
//! engines with `verify_hashes` off, since its network cannot alter bytes; every received copy is
//! a slice of the table's bytes, so the two are equal.) Memory then does not grow with viewers ×
//! cache size. Nothing the engine sees changes: the bytes are equal. (The simulator's payloads
//! are themselves slices of one static buffer of zeros, so the table holds little more than
//! ids and hashes, even for a whole on-demand title.) The table also hashes each payload once, and
//! agents take that hash with the origin's bytes instead of hashing every origin fetch again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use hive_core::cache::{CacheStats, CachedFragment, FragmentCache, InsertOutcome};
use hive_core::time::Instant;
use hive_core::{ContentHash, ContentId, FragmentId, SeqSet, TrackId};

/// The origin's payloads, by (track, sequence), with their hashes.
#[derive(Debug, Default)]
pub(crate) struct Payloads {
    map: BTreeMap<(u16, u64), (Bytes, ContentHash)>,
}

impl Payloads {
    /// The payload of `(track, seq)`, made by `make` the first time; keeps the newest `keep`
    /// sequences of each track (`u64::MAX`: all, for an on-demand title).
    pub(crate) fn get_or_make(
        &mut self,
        track: u16,
        seq: u64,
        keep: u64,
        make: impl FnOnce() -> Bytes,
    ) -> (Bytes, ContentHash) {
        if let Some(held) = self.map.get(&(track, seq)) {
            return held.clone();
        }
        let b = make();
        let hash = ContentHash::of(&b);
        self.map.insert((track, seq), (b.clone(), hash));
        // Forget the oldest sequences of this track beyond `keep` (a late request makes them
        // again: the bytes are a function of the id).
        let newest = self
            .map
            .range((track, 0)..=(track, u64::MAX))
            .next_back()
            .map_or(seq, |(&(_, s), _)| s);
        let floor = newest.saturating_sub(keep.saturating_sub(1));
        let old: Vec<(u16, u64)> = self
            .map
            .range((track, 0)..(track, floor))
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.map.remove(&k);
        }
        (b, hash)
    }

    /// The payload of `(track, seq)` and its hash, if it is held.
    pub(crate) fn get(&self, track: u16, seq: u64) -> Option<(Bytes, ContentHash)> {
        self.map.get(&(track, seq)).cloned()
    }

    fn shared(&self, f: &CachedFragment) -> Option<Bytes> {
        let (b, h) = self.map.get(&(f.id.track.0, f.id.sequence))?;
        (*h == f.hash).then(|| b.clone())
    }
}

/// A cache (the live window, or the on-demand cache) that stores the simulation's one copy of a
/// fragment's bytes.
#[derive(Debug)]
pub(crate) struct SharingCache<C> {
    inner: C,
    payloads: Arc<RwLock<Payloads>>,
}

impl<C: FragmentCache> SharingCache<C> {
    pub(crate) fn new(inner: C, payloads: Arc<RwLock<Payloads>>) -> Self {
        SharingCache { inner, payloads }
    }
}

impl<C: FragmentCache> FragmentCache for SharingCache<C> {
    fn get(&self, id: &FragmentId) -> Option<CachedFragment> {
        self.inner.get(id)
    }

    fn contains(&self, id: &FragmentId) -> bool {
        self.inner.contains(id)
    }

    fn insert(&self, now: Instant, mut fragment: CachedFragment) -> InsertOutcome {
        if let Some(b) = self.payloads.read().ok().and_then(|p| p.shared(&fragment)) {
            fragment.data = b;
        }
        self.inner.insert(now, fragment)
    }

    fn remove(&self, id: &FragmentId) -> bool {
        self.inner.remove(id)
    }

    fn have(&self, content: &ContentId, track: TrackId) -> SeqSet {
        self.inner.have(content, track)
    }

    fn tracks(&self, content: &ContentId) -> Vec<TrackId> {
        self.inner.tracks(content)
    }

    fn expire(&self, now: Instant) -> usize {
        self.inner.expire(now)
    }

    fn stats(&self) -> CacheStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::cache::{LiveWindowCache, VodCache};
    use hive_core::time::Duration;

    #[test]
    fn a_received_copy_is_replaced_by_the_shared_bytes_when_the_hash_matches() {
        let payloads = Arc::new(RwLock::new(Payloads::default()));
        let (shared, hash) = payloads
            .write()
            .expect("lock")
            .get_or_make(1, 7, 64, || Bytes::from(vec![3u8; 1000]));
        // The table hashes what it makes, once (the agents take that hash with the bytes).
        assert_eq!(hash, ContentHash::of(&shared));
        assert_eq!(
            payloads.read().expect("lock").get(1, 7),
            Some((shared.clone(), hash))
        );
        let cache = SharingCache::new(LiveWindowCache::default(), payloads.clone());
        let id = FragmentId::new(ContentId::derive("c"), TrackId(1), 7);
        let received = Bytes::from(vec![3u8; 1000]); // a separate, equal copy
        let f = CachedFragment {
            id,
            hash: ContentHash::of(&received),
            data: received,
            media_time: Duration::from_secs(14),
            duration: Duration::from_secs(2),
        };
        cache.insert(Instant::from_secs(1), f);
        let got = cache.get(&id).expect("held");
        assert_eq!(got.data, shared);
        assert_eq!(
            got.data.as_ptr(),
            shared.as_ptr(),
            "the shared buffer, not a copy"
        );
        // A different payload under the same id keeps its own bytes.
        let id2 = FragmentId::new(ContentId::derive("c"), TrackId(1), 8);
        let other = Bytes::from(vec![9u8; 10]);
        let g = CachedFragment {
            id: id2,
            hash: ContentHash::of(&other),
            data: other.clone(),
            media_time: Duration::from_secs(16),
            duration: Duration::from_secs(2),
        };
        cache.insert(Instant::from_secs(1), g);
        assert_eq!(cache.get(&id2).expect("held").data, other);
    }

    #[test]
    fn an_on_demand_cache_shares_too_and_the_table_keeps_a_whole_title() {
        let payloads = Arc::new(RwLock::new(Payloads::default()));
        let cache = SharingCache::new(VodCache::new(64 << 20), payloads.clone());
        let content = ContentId::derive("vod");
        for seq in 0..900u64 {
            let (shared, _) = payloads
                .write()
                .expect("lock")
                .get_or_make(0, seq, u64::MAX, || Bytes::from(vec![seq as u8; 100]));
            let received = Bytes::from(vec![seq as u8; 100]);
            let f = CachedFragment {
                id: FragmentId::new(content, TrackId(0), seq),
                hash: ContentHash::of(&received),
                data: received,
                media_time: Duration::from_secs(2 * seq),
                duration: Duration::from_secs(2),
            };
            cache.insert(Instant::from_secs(seq), f);
            let got = cache
                .get(&FragmentId::new(content, TrackId(0), seq))
                .expect("held");
            assert_eq!(got.data.as_ptr(), shared.as_ptr());
        }
        assert_eq!(payloads.read().expect("lock").map.len(), 900);
        assert_eq!(cache.have(&content, TrackId(0)).len(), 900);
        // Long after, the first fragment is still held (no live window).
        cache.expire(Instant::from_secs(100_000));
        assert!(cache.contains(&FragmentId::new(content, TrackId(0), 0)));
    }

    #[test]
    fn old_sequences_are_forgotten_per_track() {
        let mut p = Payloads::default();
        for s in 0..100 {
            p.get_or_make(0, s, 10, || Bytes::from_static(b"x"));
            p.get_or_make(1, s, 10, || Bytes::from_static(b"y"));
        }
        assert_eq!(p.map.len(), 20);
        assert!(p.map.contains_key(&(0, 90)) && !p.map.contains_key(&(0, 89)));
    }
}
