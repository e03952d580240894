//! The in-memory store: the embedded default, one process, no dependencies.
//!
//! Swarms live in 64 shards (by content id) behind short `parking_lot` mutexes. Each swarm keeps its
//! peers in a vector (uniform sampling by index) with a position map (O(1) update and removal),
//! plus one such set per site and per AS for the locality tiers. Expired entries are skipped when
//! sampling and dropped by a sweep of the swarm at most once per TTL, triggered by announces
//! (amortised O(1) per announce) or by [`TrackerStore::sweep`].

use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId};
use parking_lot::Mutex;
use rand::Rng;

use super::sample::with_rng;
use super::store::{StoreError, StoredPeer, TrackerStore};

const SHARDS: usize = 64;

type Seen = std::collections::HashSet<PeerId, foldhash::fast::RandomState>;
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The in-memory [`TrackerStore`].
pub struct MemoryStore {
    shards: Box<[Mutex<HashMap<ContentId, Swarm>>]>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A set with uniform random choice and O(1) insert/remove.
#[derive(Default)]
struct IdSet {
    ids: Vec<PeerId>,
    pos: HashMap<PeerId, usize>,
}

impl IdSet {
    fn insert(&mut self, id: PeerId) {
        if !self.pos.contains_key(&id) {
            self.pos.insert(id, self.ids.len());
            self.ids.push(id);
        }
    }

    fn remove(&mut self, id: &PeerId) {
        if let Some(i) = self.pos.remove(id) {
            self.ids.swap_remove(i);
            if let Some(moved) = self.ids.get(i) {
                self.pos.insert(*moved, i);
            }
        }
    }
}

struct Entry {
    info: Arc<StoredPeer>,
    expires_ms: u64,
}

#[derive(Default)]
struct Swarm {
    peers: HashMap<PeerId, Entry>,
    all: IdSet,
    by_site: HashMap<String, IdSet>,
    by_asn: HashMap<u32, IdSet>,
    next_sweep_ms: u64,
}

fn index_remove<K: Hash + Eq>(map: &mut HashMap<K, IdSet>, key: &K, id: &PeerId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(id);
        if set.ids.is_empty() {
            map.remove(key);
        }
    }
}

impl Swarm {
    fn unindex(&mut self, id: &PeerId, loc: &Locality) {
        if let Some(site) = &loc.site {
            index_remove(&mut self.by_site, site, id);
        }
        if let Some(asn) = loc.asn {
            index_remove(&mut self.by_asn, &asn, id);
        }
    }

    fn upsert(&mut self, info: &Arc<StoredPeer>, expires_ms: u64) {
        let id = info.id;
        if let Some(old) = self.peers.get(&id).map(|e| e.info.clone()) {
            if old.locality != info.locality {
                self.unindex(&id, &old.locality);
            }
        }
        if let Some(site) = &info.locality.site {
            self.by_site.entry(site.clone()).or_default().insert(id);
        }
        if let Some(asn) = info.locality.asn {
            self.by_asn.entry(asn).or_default().insert(id);
        }
        self.all.insert(id);
        self.peers.insert(
            id,
            Entry {
                info: info.clone(),
                expires_ms,
            },
        );
    }

    fn remove(&mut self, id: &PeerId) -> Option<Entry> {
        let e = self.peers.remove(id)?;
        self.all.remove(id);
        self.unindex(id, &e.info.locality);
        Some(e)
    }

    fn sweep(&mut self, now_ms: u64) -> u64 {
        let dead: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| e.expires_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &dead {
            self.remove(id);
        }
        dead.len() as u64
    }

    /// Up to `n` live members of `set` not yet in `seen`, uniformly at random, onto `out`.
    fn pick(
        &self,
        set: &IdSet,
        n: usize,
        now_ms: u64,
        seen: &mut Seen,
        out: &mut Vec<Arc<StoredPeer>>,
    ) {
        let target = out.len() + n;
        let mut take = |id: PeerId, out: &mut Vec<Arc<StoredPeer>>| {
            if let Some(e) = self.peers.get(&id).filter(|e| e.expires_ms > now_ms) {
                if seen.insert(id) {
                    out.push(e.info.clone());
                }
            }
        };
        with_rng(|rng| {
            if set.ids.len() <= n.saturating_mul(3) {
                // Small set: a random permutation (Fisher-Yates), first live ones.
                let mut ids = set.ids.clone();
                for i in (1..ids.len()).rev() {
                    ids.swap(i, rng.random_range(0..=i));
                }
                for id in ids {
                    if out.len() >= target {
                        break;
                    }
                    take(id, out);
                }
            } else {
                // Large set: random positions, a bounded number of tries.
                for _ in 0..n.saturating_mul(4) {
                    if out.len() >= target {
                        break;
                    }
                    take(set.ids[rng.random_range(0..set.ids.len())], out);
                }
                // Mostly expired entries (awaiting the swarm's sweep): scan from a random offset.
                if out.len() < target {
                    let start = rng.random_range(0..set.ids.len());
                    for i in 0..set.ids.len() {
                        if out.len() >= target {
                            break;
                        }
                        take(set.ids[(start + i) % set.ids.len()], out);
                    }
                }
            }
        });
    }

    fn sample(&self, near: &Locality, per_tier: usize, now_ms: u64) -> Vec<Arc<StoredPeer>> {
        let mut out = Vec::with_capacity(per_tier.min(self.peers.len()));
        let mut seen = Seen::default();
        if let Some(set) = near.site.as_ref().and_then(|s| self.by_site.get(s)) {
            self.pick(set, per_tier, now_ms, &mut seen, &mut out);
        }
        if out.len() < per_tier {
            if let Some(set) = near.asn.and_then(|a| self.by_asn.get(&a)) {
                self.pick(set, per_tier, now_ms, &mut seen, &mut out);
            }
        }
        if out.len() < per_tier {
            self.pick(&self.all, per_tier, now_ms, &mut seen, &mut out);
        }
        out
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    fn shard(&self, content: &ContentId) -> &Mutex<HashMap<ContentId, Swarm>> {
        &self.shards[content.as_bytes()[0] as usize % SHARDS]
    }

    /// Upserts into the swarm (sweeping it first when its sweep is due) and runs `then` on it.
    fn with_upsert<T>(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
        then: impl FnOnce(&Swarm) -> T,
    ) -> T {
        let mut shard = self.shard(&content).lock();
        let swarm = shard.entry(content).or_default();
        if now_ms >= swarm.next_sweep_ms {
            swarm.sweep(now_ms);
            swarm.next_sweep_ms = now_ms + expires_ms.saturating_sub(now_ms).max(1);
        }
        swarm.upsert(peer, expires_ms);
        then(swarm)
    }
}

#[async_trait]
impl TrackerStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn upsert(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.with_upsert(content, peer, now_ms, expires_ms, |_| ());
        Ok(())
    }

    async fn remove(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut shard = self.shard(&content).lock();
        let Some(swarm) = shard.get_mut(&content) else {
            return Ok(false);
        };
        let removed = swarm.remove(&peer);
        if swarm.peers.is_empty() {
            shard.remove(&content);
        }
        Ok(removed.is_some_and(|e| e.expires_ms > now_ms))
    }

    async fn sample(
        &self,
        content: ContentId,
        near: &Locality,
        per_tier: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        let shard = self.shard(&content).lock();
        Ok(shard
            .get(&content)
            .map(|s| s.sample(near, per_tier, now_ms))
            .unwrap_or_default())
    }

    async fn announce(
        &self,
        content: ContentId,
        peer: &Arc<StoredPeer>,
        now_ms: u64,
        expires_ms: u64,
        per_tier: usize,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        Ok(self.with_upsert(content, peer, now_ms, expires_ms, |s| {
            s.sample(&peer.locality, per_tier, now_ms)
        }))
    }

    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            n += shard
                .values()
                .flat_map(|s| s.peers.values())
                .filter(|e| e.expires_ms > now_ms)
                .count() as u64;
        }
        Ok(n)
    }

    async fn sweep(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            for swarm in shard.values_mut() {
                n += swarm.sweep(now_ms);
            }
            shard.retain(|_, s| !s.peers.is_empty());
        }
        Ok(n)
    }
}
