//! The in-memory tracker store; see [`MemoryStore`].

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use hive_core::{ContentId, Locality, PeerId};
use parking_lot::Mutex;
use rand::Rng;
use rand::seq::SliceRandom;

use super::sample::with_rng;
use super::store::{SiteCount, StoreError, StoredPeer, TrackerStore};

const SHARDS: usize = 64;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The in-memory store: the embedded default, one process, no dependencies.
///
/// Swarms live in 64 shards (by content id) behind short `parking_lot` mutexes. Each swarm keeps its
/// peers (shared `Arc`s with their expiry) in a vector (uniform sampling by position, no hashing)
/// with a position map (O(1) update and removal), plus one such set per site and per AS for the
/// locality tiers. Expired entries are skipped when
/// sampling and dropped by a sweep of the swarm at most once per TTL, triggered by announces
/// (amortised O(1) per announce) or by [`TrackerStore::sweep`].
///
/// Bounded: at most [`max_swarms`](Self::with_limits) swarms and
/// [`max_peers_per_swarm`](Self::with_limits) peers in each (a new swarm or a new peer beyond
/// is refused with [`StoreError::Full`]; a full swarm is swept first).
pub struct MemoryStore {
    shards: Box<[Mutex<HashMap<ContentId, Swarm>>]>,
    swarms: AtomicUsize,
    max_swarms: usize,
    max_peers: usize,
}

/// Default bound on swarms of a [`MemoryStore`] (and of the Redis store).
pub const DEFAULT_MAX_SWARMS: usize = 100_000;
/// Default bound on peers per swarm of a [`MemoryStore`] (and of the Redis store).
pub const DEFAULT_MAX_PEERS_PER_SWARM: usize = 100_000;

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

/// A peer in a set, with its expiry.
#[derive(Clone)]
struct Member {
    peer: Arc<StoredPeer>,
    expires_ms: u64,
}

/// Peers with uniform random choice by position and O(1) update and removal by id.
#[derive(Default)]
struct Set {
    items: Vec<Member>,
    pos: HashMap<PeerId, usize>,
}

impl Set {
    fn put(&mut self, m: Member) {
        match self.pos.get(&m.peer.id()) {
            Some(&i) => self.items[i] = m,
            None => {
                self.pos.insert(m.peer.id(), self.items.len());
                self.items.push(m);
            }
        }
    }

    fn remove(&mut self, id: &PeerId) -> Option<Member> {
        let i = self.pos.remove(id)?;
        let m = self.items.swap_remove(i);
        if let Some(moved) = self.items.get(i) {
            self.pos.insert(moved.peer.id(), i);
        }
        Some(m)
    }
}

/// One swarm: every peer in `all`, and again in its site's and its AS's set (the tiers).
#[derive(Default)]
struct Swarm {
    all: Set,
    by_site: HashMap<String, Set>,
    by_asn: HashMap<u32, Set>,
    next_sweep_ms: u64,
}

fn set_remove<K: Hash + Eq>(map: &mut HashMap<K, Set>, key: &K, id: &PeerId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(id);
        if set.items.is_empty() {
            map.remove(key);
        }
    }
}

impl Swarm {
    fn unindex(&mut self, id: &PeerId, loc: &Locality) {
        if let Some(site) = &loc.site {
            set_remove(&mut self.by_site, site, id);
        }
        if let Some(asn) = loc.asn {
            set_remove(&mut self.by_asn, &asn, id);
        }
    }

    fn upsert(&mut self, peer: &Arc<StoredPeer>, expires_ms: u64) {
        let m = Member {
            peer: peer.clone(),
            expires_ms,
        };
        let old = self
            .all
            .pos
            .get(&peer.id())
            .map(|&i| self.all.items[i].peer.clone());
        if let Some(old) = old {
            if old.locality != *peer.locality() {
                self.unindex(&peer.id(), &old.locality);
            }
        }
        if let Some(site) = &peer.locality().site {
            match self.by_site.get_mut(site) {
                Some(set) => set.put(m.clone()),
                None => {
                    let mut set = Set::default();
                    set.put(m.clone());
                    self.by_site.insert(site.clone(), set);
                }
            }
        }
        if let Some(asn) = peer.locality().asn {
            self.by_asn.entry(asn).or_default().put(m.clone());
        }
        self.all.put(m);
    }

    fn remove(&mut self, id: &PeerId) -> Option<Member> {
        let m = self.all.remove(id)?;
        self.unindex(id, m.peer.locality());
        Some(m)
    }

    fn sweep(&mut self, now_ms: u64) -> u64 {
        let dead: Vec<PeerId> = self
            .all
            .items
            .iter()
            .filter(|m| m.expires_ms <= now_ms)
            .map(|m| m.peer.id())
            .collect();
        for id in &dead {
            self.remove(id);
        }
        dead.len() as u64
    }

    fn sample(&self, near: &Locality, per_tier: usize, now_ms: u64) -> Vec<Arc<StoredPeer>> {
        let mut out = Vec::with_capacity(per_tier.min(self.all.items.len()));
        // A lower tier never takes a member of a higher one: those were all taken already (a tier
        // is only left short when it has no more live members).
        let in_site = |p: &StoredPeer| near.site.is_some() && p.locality().site == near.site;
        let in_as = |p: &StoredPeer| near.asn.is_some() && p.locality().asn == near.asn;
        if let Some(set) = near.site.as_ref().and_then(|s| self.by_site.get(s)) {
            pick(set, per_tier, now_ms, |_| false, &mut out);
        }
        if out.len() < per_tier {
            if let Some(set) = near.asn.and_then(|a| self.by_asn.get(&a)) {
                pick(set, per_tier, now_ms, in_site, &mut out);
            }
        }
        // The whole swarm: up to per_tier while the nearer tiers fell short, else a far share
        // (the ranking keeps a quarter of each reply for farther peers).
        let far = if out.len() < per_tier {
            per_tier
        } else {
            hive_core::ranking::far_share(per_tier)
        };
        pick(&self.all, far, now_ms, |p| in_site(p) || in_as(p), &mut out);
        out
    }
}

/// Up to `n` live members of `set` not `skip`ped, uniformly at random, onto `out`. Draws twice
/// `n` distinct positions; when those hold too few live members (the set is mostly expired,
/// awaiting its sweep), scans the whole set from a random offset instead.
fn pick(
    set: &Set,
    n: usize,
    now_ms: u64,
    skip: impl Fn(&StoredPeer) -> bool,
    out: &mut Vec<Arc<StoredPeer>>,
) {
    let len = set.items.len();
    if len == 0 || n == 0 {
        return;
    }
    let start = out.len();
    let wanted = |m: &Member| m.expires_ms > now_ms && !skip(&m.peer);
    let draws = n.saturating_mul(2).min(len);
    with_rng(|rng| {
        for i in rand::seq::index::sample(rng, len, draws) {
            if out.len() - start >= n {
                return;
            }
            let m = &set.items[i];
            if wanted(m) {
                out.push(m.peer.clone());
            }
        }
        if out.len() - start < n && draws < len {
            out.truncate(start);
            let offset = rng.random_range(0..len);
            for i in 0..len {
                if out.len() - start >= n {
                    break;
                }
                let m = &set.items[(offset + i) % len];
                if wanted(m) {
                    out.push(m.peer.clone());
                }
            }
        }
    });
}

impl MemoryStore {
    /// An empty store, with the default bounds ([`DEFAULT_MAX_SWARMS`],
    /// [`DEFAULT_MAX_PEERS_PER_SWARM`]).
    pub fn new() -> Self {
        MemoryStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            swarms: AtomicUsize::new(0),
            max_swarms: DEFAULT_MAX_SWARMS,
            max_peers: DEFAULT_MAX_PEERS_PER_SWARM,
        }
    }

    /// This store with at most `max_swarms` swarms and `max_peers_per_swarm` peers in each
    /// (each at least 1).
    pub fn with_limits(mut self, max_swarms: usize, max_peers_per_swarm: usize) -> Self {
        self.max_swarms = max_swarms.max(1);
        self.max_peers = max_peers_per_swarm.max(1);
        self
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
    ) -> Result<T, StoreError> {
        let mut shard = self.shard(&content).lock();
        if !shard.contains_key(&content) {
            if self.swarms.load(Ordering::Relaxed) >= self.max_swarms {
                return Err(StoreError::Full(format!(
                    "the tracker holds {} swarms, its maximum",
                    self.max_swarms
                )));
            }
            self.swarms.fetch_add(1, Ordering::Relaxed);
        }
        let swarm = shard.entry(content).or_default();
        if now_ms >= swarm.next_sweep_ms {
            swarm.sweep(now_ms);
            swarm.next_sweep_ms = now_ms + expires_ms.saturating_sub(now_ms).max(1);
        }
        if !swarm.all.pos.contains_key(&peer.id()) && swarm.all.items.len() >= self.max_peers {
            swarm.sweep(now_ms);
            if swarm.all.items.len() >= self.max_peers {
                if swarm.all.items.is_empty() {
                    shard.remove(&content);
                    self.swarms.fetch_sub(1, Ordering::Relaxed);
                }
                return Err(StoreError::Full(format!(
                    "this swarm holds {} peers, the tracker's maximum",
                    self.max_peers
                )));
            }
        }
        swarm.upsert(peer, expires_ms);
        Ok(then(swarm))
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
        self.with_upsert(content, peer, now_ms, expires_ms, |_| ())
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
        if swarm.all.items.is_empty() {
            shard.remove(&content);
            self.swarms.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(removed.is_some_and(|e| e.expires_ms > now_ms))
    }

    async fn get(
        &self,
        content: ContentId,
        peer: PeerId,
        now_ms: u64,
    ) -> Result<Option<Arc<StoredPeer>>, StoreError> {
        let shard = self.shard(&content).lock();
        Ok(shard.get(&content).and_then(|s| {
            let m = &s.all.items[*s.all.pos.get(&peer)?];
            (m.expires_ms > now_ms).then(|| m.peer.clone())
        }))
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
        self.with_upsert(content, peer, now_ms, expires_ms, |s| {
            s.sample(&peer.locality, per_tier, now_ms)
        })
    }

    async fn site_count(
        &self,
        content: ContentId,
        site: &str,
        except: PeerId,
        now_ms: u64,
    ) -> Result<SiteCount, StoreError> {
        let shard = self.shard(&content).lock();
        let members = shard
            .get(&content)
            .and_then(|s| s.by_site.get(site))
            .map(|set| {
                set.items
                    .iter()
                    .filter(|m| m.expires_ms > now_ms && m.peer.id() != except)
            });
        Ok(SiteCount::of_roles(
            members.into_iter().flatten().map(|m| m.peer.role()),
        ))
    }

    async fn site_supernodes(
        &self,
        content: ContentId,
        site: &str,
        max: usize,
        now_ms: u64,
    ) -> Result<Vec<Arc<StoredPeer>>, StoreError> {
        let mut out: Vec<Arc<StoredPeer>> = {
            let shard = self.shard(&content).lock();
            let set = shard.get(&content).and_then(|s| s.by_site.get(site));
            set.map(|set| {
                set.items
                    .iter()
                    .filter(|m| {
                        m.expires_ms > now_ms && m.peer.role() == hive_core::Role::Supernode
                    })
                    .map(|m| m.peer.clone())
                    .collect()
            })
            .unwrap_or_default()
        };
        with_rng(|rng| out.shuffle(rng));
        out.truncate(max);
        Ok(out)
    }

    async fn peer_count(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            n += shard
                .values()
                .flat_map(|s| s.all.items.iter())
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
            let before = shard.len();
            shard.retain(|_, s| !s.all.items.is_empty());
            self.swarms
                .fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
        Ok(n)
    }
}
