//! [`VodCache`]: fragments within a byte budget, evicted by S3-FIFO-like CLOCK (`quick_cache`).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::quality::FixedState;
use parking_lot::Mutex;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, OptionsBuilder, Weighter};

use super::{CacheStats, CachedFragment, FragmentCache, InsertOutcome};
use crate::have::SeqSet;
use crate::ids::{ContentId, FragmentId, TrackId};
use crate::time::Instant;

/// Share of each shard's budget for the "hot" (re-used) ring; the rest is the probationary
/// "cold" ring new fragments enter once the cache is full. `quick_cache` defaults to 0.97; we
/// keep 10 % for the cold ring rather than 3 % so that a freshly fetched fragment has time to be
/// asked for by a neighbour before it is evicted (a judgement, not yet measured on traces).
const HOT_ALLOCATION: f64 = 0.9;
/// `quick_cache` refuses an item heavier than the hot ring. Our own, integer, bound stays a
/// little below `HOT_ALLOCATION` so float rounding can never make the two disagree.
const ADMIT_PERCENT: u64 = 89;
/// [`VodCache::new`] gives each shard at least this many bytes.
const MIN_SHARD_BYTES: u64 = 64 << 20;
/// [`VodCache::new`] uses at most this many shards.
const MAX_SHARDS: u64 = 16;
/// Seed of the cache's hasher. Fixed, so that shard placement and eviction order are the same
/// on every run and the simulator is reproducible; a hash-flooding attack would need to choose
/// the ids *stored*, and those come from manifests, not from peers.
const HASH_SEED: u64 = 0x6869_7665_2076_6f64; // "hive vod"
/// A typical fragment size, to size the map of recently evicted keys ("ghosts").
const TYPICAL_FRAGMENT_BYTES: u64 = 256 << 10;

/// A cache for on-demand content: it keeps fragments within a byte budget.
///
/// Eviction is [`quick_cache`]'s policy, a CLOCK-Pro variant close to S3-FIFO: a new fragment
/// enters a small probationary ring and moves to the main ring only if it is read again, so a
/// viewer streaming a long film once does not flush the fragments many neighbours ask for
/// (scan resistance), while every hit costs only a shared read lock and an atomic flag, so
/// concurrent lookups do not serialise as an LRU's move-to-front would.
///
/// The budget is split over up to 16 shards of at least 64 MiB ([`new`](Self::new)); a fragment
/// larger than [`max_fragment_len`](Self::max_fragment_len) (89 % of one shard) is
/// [`Rejected`](InsertOutcome::Rejected); any other is stored, evicting what the policy picks.
/// The bytes held never exceed the budget.
///
/// Deterministic: the same operations in the same order give the same evictions on every run
/// (the hasher has a fixed seed), so simulations are reproducible.
///
/// [`have`](FragmentCache::have) and [`tracks`](FragmentCache::tracks) read an index of the
/// sequence numbers held per (content, track). Insertions and removals update it under one
/// mutex together with the evictions they cause, so it always matches the cache; lookups do
/// not take that mutex.
///
/// ```
/// use bytes::Bytes;
/// use hive_core::cache::{CachedFragment, FragmentCache, InsertOutcome, VodCache};
/// use hive_core::time::{Duration, Instant};
/// use hive_core::{ContentId, FragmentId, TrackId};
///
/// let cache = VodCache::new(10_000);
/// let content = ContentId::derive("vod/film");
/// for seq in 0..30u64 {
///     let id = FragmentId::new(content, TrackId(0), seq);
///     let f = CachedFragment::new(id, Bytes::from(vec![0u8; 1000]), Duration::ZERO, Duration::ZERO);
///     cache.insert(Instant::ZERO, f);
/// }
/// let s = cache.stats();
/// assert!(s.bytes <= 10_000);
/// assert_eq!(s.entries, cache.have(&content, TrackId(0)).len());
/// assert_eq!(s.evictions, 30 - s.entries);
/// ```
pub struct VodCache {
    max_bytes: u64,
    max_fragment: u64,
    cache: Cache<FragmentId, CachedFragment, ByLen, FixedState, EvictionLog>,
    index: Mutex<Index>,
    lookups: Box<[LookupCounters]>,
}

/// Hit and miss counters, striped by thread so that concurrent lookups do not all write the
/// same cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct LookupCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

const LOOKUP_STRIPES: usize = 8;

/// A small number fixed per thread, to pick a counter stripe.
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut stripe = s.get();
        if stripe == usize::MAX {
            stripe = NEXT.fetch_add(1, Ordering::Relaxed) % LOOKUP_STRIPES;
            s.set(stripe);
        }
        stripe
    })
}

/// Weight of a fragment: its length, and at least 1 since `quick_cache` never evicts
/// zero-weight items.
#[derive(Clone, Debug)]
struct ByLen;

impl Weighter<FragmentId, CachedFragment> for ByLen {
    fn weight(&self, _id: &FragmentId, f: &CachedFragment) -> u64 {
        len_u64(f).max(1)
    }
}

/// Collects what one insertion evicted, so the index and counters can follow.
#[derive(Clone, Debug)]
struct EvictionLog;

impl Lifecycle<FragmentId, CachedFragment> for EvictionLog {
    type RequestState = Vec<(FragmentId, CachedFragment)>;

    fn on_evict(&self, state: &mut Self::RequestState, id: FragmentId, f: CachedFragment) {
        state.push((id, f));
    }
}

/// What is held per content and track, plus the counters that change with it.
#[derive(Debug, Default)]
struct Index {
    contents: HashMap<ContentId, BTreeMap<TrackId, TrackIndex>>,
    inserts: u64,
    evictions: u64,
    evicted_bytes: u64,
    entries: u64,
    bytes: u64,
}

#[derive(Debug, Default)]
struct TrackIndex {
    seqs: SeqSet,
    /// Fragments held per sequence number (more than one when byte ranges split it).
    count: HashMap<u64, u32>,
}

fn len_u64(f: &CachedFragment) -> u64 {
    u64::try_from(f.len()).unwrap_or(u64::MAX)
}

impl Index {
    fn add(&mut self, id: &FragmentId, len: u64) {
        let t = self
            .contents
            .entry(id.content)
            .or_default()
            .entry(id.track)
            .or_default();
        let n = t.count.entry(id.sequence).or_insert(0);
        *n += 1;
        if *n == 1 {
            t.seqs.insert(id.sequence);
        }
        self.entries += 1;
        self.bytes += len;
    }

    fn drop_entry(&mut self, id: &FragmentId, len: u64) {
        self.entries -= 1;
        self.bytes -= len;
        let Some(tracks) = self.contents.get_mut(&id.content) else {
            return;
        };
        let Some(t) = tracks.get_mut(&id.track) else {
            return;
        };
        if let Some(n) = t.count.get_mut(&id.sequence) {
            *n -= 1;
            if *n == 0 {
                t.count.remove(&id.sequence);
                t.seqs.remove(id.sequence);
            }
        }
        if t.count.is_empty() {
            tracks.remove(&id.track);
            if tracks.is_empty() {
                self.contents.remove(&id.content);
            }
        }
    }
}

impl VodCache {
    /// A cache holding at most `max_bytes` of fragment data, in as many shards (a power of two,
    /// at most 16) as leave each at least 64 MiB, so fragments up to about 57 MiB are always
    /// admitted once the budget is 128 MiB or more.
    pub fn new(max_bytes: u64) -> Self {
        let shards = (max_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        // Round down to a power of two.
        let shards = 1u64 << (63 - shards.leading_zeros());
        VodCache::with_shards(max_bytes, shards as usize)
    }

    /// A cache holding at most `max_bytes`, split into `shards` independently locked parts
    /// (rounded up to a power of two). More shards mean less lock contention and a smaller
    /// [`max_fragment_len`](Self::max_fragment_len).
    pub fn with_shards(max_bytes: u64, shards: usize) -> Self {
        let shards = shards.clamp(1, 1 << 16).next_power_of_two() as u64;
        // A multiple of the shard count, so the shards' shares add up to no more than the budget.
        let capacity = max_bytes - max_bytes % shards;
        let shard_bytes = capacity / shards;
        let estimated_items = (max_bytes / TYPICAL_FRAGMENT_BYTES).max(32 * shards);
        let options = OptionsBuilder::new()
            .shards(shards as usize)
            .weight_capacity(capacity)
            .estimated_items_capacity(usize::try_from(estimated_items).unwrap_or(usize::MAX))
            .hot_allocation(HOT_ALLOCATION)
            .build();
        let cache = match options {
            Ok(o) => Cache::with_options(o, ByLen, FixedState::with_seed(HASH_SEED), EvictionLog),
            // Unreachable: both required options are set above.
            Err(_) => Cache::with(
                usize::try_from(estimated_items).unwrap_or(usize::MAX),
                capacity,
                ByLen,
                FixedState::with_seed(HASH_SEED),
                EvictionLog,
            ),
        };
        VodCache {
            max_bytes,
            max_fragment: shard_bytes / 100 * ADMIT_PERCENT
                + shard_bytes % 100 * ADMIT_PERCENT / 100,
            cache,
            index: Mutex::new(Index::default()),
            lookups: (0..LOOKUP_STRIPES)
                .map(|_| LookupCounters::default())
                .collect(),
        }
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The largest fragment this cache admits; larger ones are rejected.
    pub fn max_fragment_len(&self) -> u64 {
        self.max_fragment
    }
}

impl std::fmt::Debug for VodCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VodCache")
            .field("max_bytes", &self.max_bytes)
            .field("max_fragment", &self.max_fragment)
            .field("shards", &self.cache.num_shards())
            .field("stats", &self.stats())
            .finish()
    }
}

impl FragmentCache for VodCache {
    fn get(&self, id: &FragmentId) -> Option<CachedFragment> {
        let found = self.cache.get(id);
        let stripe = &self.lookups[thread_stripe()];
        let counter = if found.is_some() {
            &stripe.hits
        } else {
            &stripe.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn contains(&self, id: &FragmentId) -> bool {
        self.cache.contains_key(id)
    }

    /// Stores `fragment`, evicting others as the budget requires. `now` is not used: on-demand
    /// fragments do not go stale.
    fn insert(&self, _now: Instant, fragment: CachedFragment) -> InsertOutcome {
        let len = len_u64(&fragment);
        if len > self.max_fragment {
            return InsertOutcome::Rejected;
        }
        let id = fragment.id;
        let mut evicted: Vec<(FragmentId, CachedFragment)> = Vec::new();
        let outcome = {
            let mut index = self.index.lock();
            if self.cache.contains_key(&id) {
                return InsertOutcome::AlreadyPresent;
            }
            // A re-inserted id that quick_cache remembers as recently evicted (a "ghost") goes
            // straight to the hot ring and the ring is trimmed afterwards, which can evict the
            // newcomer itself. Inserting once more takes the normal path, which makes room first
            // and never evicts the item being inserted, so a fragment that fits is always kept.
            let mut stored = false;
            for _ in 0..2 {
                self.cache
                    .insert_with_lifecycle(id, fragment.clone(), &mut evicted);
                stored = !evicted.iter().any(|(old_id, _)| *old_id == id);
                if stored {
                    break;
                }
                evicted.retain(|(old_id, _)| *old_id != id);
            }
            for (old_id, old) in &evicted {
                let old_len = len_u64(old);
                index.drop_entry(old_id, old_len);
                index.evictions += 1;
                index.evicted_bytes += old_len;
            }
            if stored {
                index.add(&id, len);
                index.inserts += 1;
                InsertOutcome::Stored {
                    evicted: evicted.len(),
                }
            } else {
                // Not reached for fragments within max_fragment_len (see above).
                InsertOutcome::Rejected
            }
        };
        // The evicted fragments' bytes are released here, after both locks.
        drop(evicted);
        outcome
    }

    /// Removes a fragment. This is not an eviction: only `entries` and `bytes` change.
    fn remove(&self, id: &FragmentId) -> bool {
        let removed = {
            let mut index = self.index.lock();
            let removed = self.cache.remove(id);
            if let Some((_, f)) = &removed {
                index.drop_entry(id, len_u64(f));
            }
            removed
        };
        removed.is_some()
    }

    fn have(&self, content: &ContentId, track: TrackId) -> SeqSet {
        self.index
            .lock()
            .contents
            .get(content)
            .and_then(|tracks| tracks.get(&track))
            .map(|t| t.seqs.clone())
            .unwrap_or_default()
    }

    /// The tracks of `content` holding at least one fragment, in increasing order.
    fn tracks(&self, content: &ContentId) -> Vec<TrackId> {
        self.index
            .lock()
            .contents
            .get(content)
            .map(|tracks| tracks.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Does nothing and returns 0: an on-demand fragment never goes stale (its id names one
    /// version of one asset, and its bytes were verified against their hash), so only the
    /// byte budget limits what is kept.
    fn expire(&self, _now: Instant) -> usize {
        0
    }

    fn stats(&self) -> CacheStats {
        let (hits, misses) = self.lookups.iter().fold((0, 0), |(h, m), c| {
            (
                h + c.hits.load(Ordering::Relaxed),
                m + c.misses.load(Ordering::Relaxed),
            )
        });
        let index = self.index.lock();
        CacheStats {
            hits,
            misses,
            inserts: index.inserts,
            evictions: index.evictions,
            evicted_bytes: index.evicted_bytes,
            entries: index.entries,
            bytes: index.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ByteRange;
    use crate::time::Duration;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn frag(content: u8, track: u16, seq: u64, range: Option<u64>, len: usize) -> CachedFragment {
        let mut id = FragmentId::new(ContentId::from_bytes([content; 32]), TrackId(track), seq);
        if let Some(start) = range {
            id = id.with_range(ByteRange { start, len: 10 });
        }
        CachedFragment::new(
            id,
            Bytes::from(vec![seq as u8; len]),
            Duration::ZERO,
            Duration::ZERO,
        )
    }

    #[test]
    fn fragments_too_large_are_rejected() {
        let c = VodCache::new(10_000);
        assert_eq!(c.max_bytes(), 10_000);
        assert_eq!(c.max_fragment_len(), 8_900);
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 0, 0, None, 10_001)),
            InsertOutcome::Rejected
        );
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 0, 1, None, 10_000)),
            InsertOutcome::Rejected
        );
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 0, 2, None, 8_901)),
            InsertOutcome::Rejected
        );
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 0, 3, None, 8_900)),
            InsertOutcome::Stored { evicted: 0 }
        );
        let s = c.stats();
        assert_eq!((s.inserts, s.entries, s.bytes), (1, 1, 8_900));
        // A zero budget holds nothing, not even empty fragments.
        let z = VodCache::new(0);
        assert_eq!(
            z.insert(Instant::ZERO, frag(0, 0, 0, None, 0)),
            InsertOutcome::Rejected
        );
        assert_eq!(z.stats(), CacheStats::default());
    }

    #[test]
    fn shards_follow_the_budget() {
        assert_eq!(VodCache::new(1 << 20).cache.num_shards(), 1);
        assert_eq!(VodCache::new(200 << 20).cache.num_shards(), 2);
        assert_eq!(VodCache::new(100 << 30).cache.num_shards(), 16);
        let c = VodCache::with_shards(10_000, 3);
        assert_eq!(c.cache.num_shards(), 4);
        assert_eq!(c.max_fragment_len(), 2_500 * 89 / 100);
    }

    #[test]
    fn evictions_are_counted() {
        let c = VodCache::new(10_000);
        let mut evicted = 0;
        for seq in 0..20 {
            match c.insert(Instant::ZERO, frag(0, 0, seq, None, 1000)) {
                InsertOutcome::Stored { evicted: n } => evicted += n as u64,
                other => panic!("insert {seq}: {other:?}"),
            }
        }
        let s = c.stats();
        assert!(evicted >= 10, "{s:?}");
        assert_eq!(s.evictions, evicted);
        assert_eq!(s.evicted_bytes, 1000 * evicted);
        assert_eq!(s.entries + s.evictions, 20);
        assert_eq!(s.bytes, 1000 * s.entries);
        let have = c.have(&ContentId::from_bytes([0; 32]), TrackId(0));
        for seq in 0..20 {
            assert_eq!(have.contains(seq), c.contains(&frag(0, 0, seq, None, 0).id));
        }
        assert_eq!(c.expire(Instant::MAX), 0);
    }

    #[test]
    fn fragments_read_again_survive_a_scan() {
        // 50 fragments neighbours asked for twice, then a viewer streams 500 others once, five
        // budgets' worth. An LRU would keep none of the 50: they are the least recently used.
        let c = VodCache::new(100_000);
        for seq in 0..50 {
            c.insert(Instant::ZERO, frag(0, 0, seq, None, 1000));
        }
        for _ in 0..2 {
            for seq in 0..50 {
                assert!(c.get(&frag(0, 0, seq, None, 0).id).is_some());
            }
        }
        for seq in 0..500 {
            c.insert(Instant::ZERO, frag(1, 0, seq, None, 1000));
        }
        let kept = (0..50)
            .filter(|&s| c.contains(&frag(0, 0, s, None, 0).id))
            .count();
        assert_eq!(kept, 50, "popular fragments were flushed by the scan");
        // The scan itself still cycles through the rest of the budget.
        assert!(c.contains(&frag(1, 0, 499, None, 0).id));
        assert!(c.stats().evictions >= 450);
    }

    #[test]
    fn a_re_admitted_fragment_is_kept() {
        // Found by `budget_is_never_exceeded`: fragment 0 is evicted (quick_cache remembers it
        // as a ghost), then comes back while the hot ring is over its share. quick_cache puts
        // it in the hot ring and trims the ring, which evicted 0 itself; VodCache retries.
        let c = VodCache::new(5000);
        let content = ContentId::from_bytes([0; 32]);
        for (seq, len) in [(2, 2000), (0, 3000), (1, 3000)] {
            assert!(matches!(
                c.insert(Instant::ZERO, frag(0, 0, seq, None, len)),
                InsertOutcome::Stored { .. }
            ));
        }
        assert!(!c.contains(&frag(0, 0, 0, None, 0).id));
        assert!(c.get(&frag(0, 0, 1, None, 0).id).is_some());
        let again = c.insert(Instant::ZERO, frag(0, 0, 0, None, 2000));
        assert!(matches!(again, InsertOutcome::Stored { .. }), "{again:?}");
        assert!(c.contains(&frag(0, 0, 0, None, 0).id));
        let s = c.stats();
        assert!(s.bytes <= 5000);
        assert_eq!(s.entries, c.have(&content, TrackId(0)).len());
        assert_eq!(s.inserts, s.entries + s.evictions);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            content: u8,
            track: u16,
            seq: u64,
            range: Option<u64>,
            len: usize,
        },
        Remove {
            content: u8,
            track: u16,
            seq: u64,
            range: Option<u64>,
        },
        Get {
            content: u8,
            track: u16,
            seq: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let range = proptest::option::weighted(0.2, 0u64..2);
        prop_oneof![
            6 => (0u8..2, 0u16..3, 0u64..40, range.clone(), 0usize..3000)
                .prop_map(|(content, track, seq, range, len)| Op::Insert { content, track, seq, range, len }),
            1 => (0u8..2, 0u16..3, 0u64..40, range)
                .prop_map(|(content, track, seq, range)| Op::Remove { content, track, seq, range }),
            2 => (0u8..2, 0u16..3, 0u64..40).prop_map(|(content, track, seq)| Op::Get { content, track, seq }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn budget_is_never_exceeded(
            budget in prop_oneof![Just(5_000u64), Just(20_000), 0u64..50_000],
            shards in prop_oneof![Just(1usize), Just(2), Just(4)],
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let c = VodCache::with_shards(budget, shards);
            // Length of what each id was last stored with.
            let mut lens: HashMap<FragmentId, u64> = HashMap::new();
            let mut removed = 0u64;
            for op in ops {
                match op {
                    Op::Insert { content, track, seq, range, len } => {
                        let f = frag(content, track, seq, range, len);
                        let (fid, was_held, before) = (f.id, c.contains(&f.id), c.stats());
                        let outcome = c.insert(Instant::ZERO, f);
                        let after = c.stats();
                        let too_large = len as u64 > c.max_fragment_len() || budget < 4;
                        match outcome {
                            InsertOutcome::Stored { evicted } => {
                                prop_assert!(!was_held && !too_large);
                                prop_assert_eq!(after.evictions - before.evictions, evicted as u64);
                                prop_assert_eq!(after.inserts, before.inserts + 1);
                                lens.insert(fid, len as u64);
                            }
                            InsertOutcome::AlreadyPresent => {
                                prop_assert!(was_held);
                                prop_assert_eq!(after, before);
                            }
                            InsertOutcome::Rejected => {
                                prop_assert!(too_large, "len {} <= {}", len, c.max_fragment_len());
                                prop_assert_eq!(after, before);
                            }
                        }
                    }
                    Op::Remove { content, track, seq, range } => {
                        let fid = frag(content, track, seq, range, 0).id;
                        let was_held = c.contains(&fid);
                        prop_assert_eq!(c.remove(&fid), was_held);
                        removed += u64::from(was_held);
                    }
                    Op::Get { content, track, seq } => {
                        let fid = frag(content, track, seq, None, 0).id;
                        prop_assert_eq!(c.get(&fid).is_some(), c.contains(&fid));
                    }
                }
                let s = c.stats();
                prop_assert!(s.bytes <= budget, "{:?} over {}", s, budget);
                let held: Vec<(&FragmentId, &u64)> = lens.iter().filter(|(id, _)| c.contains(id)).collect();
                prop_assert_eq!(s.entries, held.len() as u64);
                prop_assert_eq!(s.bytes, held.iter().map(|(_, l)| **l).sum::<u64>());
                prop_assert_eq!(s.inserts, s.entries + s.evictions + removed);
                for content in 0..2u8 {
                    let cid = ContentId::from_bytes([content; 32]);
                    let mut tracks = Vec::new();
                    for track in 0..3u16 {
                        let want: SeqSet = held
                            .iter()
                            .filter(|(id, _)| id.content == cid && id.track == TrackId(track))
                            .map(|(id, _)| id.sequence)
                            .collect();
                        if !want.is_empty() {
                            tracks.push(TrackId(track));
                        }
                        prop_assert_eq!(c.have(&cid, TrackId(track)), want);
                    }
                    prop_assert_eq!(c.tracks(&cid), tracks);
                }
            }
        }
    }
}
