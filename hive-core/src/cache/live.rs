//! [`LiveWindowCache`]: the newest N seconds of every track, by media time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::quality::FixedState;
use parking_lot::RwLock;

use super::{CacheStats, CachedFragment, FragmentCache, InsertOutcome};
use crate::have::SeqSet;
use crate::ids::{ByteRange, ContentId, FragmentId, TrackId};
use crate::time::{Duration, Instant};

/// The default window: 30 seconds of media.
pub const DEFAULT_LIVE_WINDOW: Duration = Duration::from_secs(30);

/// Number of independently locked shards; tracks are spread over them by (content, track).
const SHARDS: usize = 16;

/// A fragment's place within its track: sequence number first, so the map iterates in
/// sequence order, then the byte range that tells apart fragments sharing a sequence number.
type Key = (u64, Option<ByteRange>);

/// A cache for live swarms: it keeps the newest `window` of media (default 30 s) of each track.
///
/// The window is measured in **media time**, per (content, track): when a fragment is stored,
/// every fragment of its track whose media end (`media_time + duration`) is at or before
/// `newest_end - window` is evicted, where `newest_end` is the latest media end the track has
/// stored. A fragment that would be evicted at once (it is already outside the window) is
/// [`Rejected`](InsertOutcome::Rejected). So a 30 s window over 2 s fragments holds 15 of them.
///
/// Tracks that viewers switched away from stop receiving fragments; [`expire`](Self::expire)
/// drops a whole track once nothing was stored in it for `window` of **wall time** (the `now`
/// passed to [`insert`](Self::insert)). The same sweep heals a track whose media clock jumped
/// backwards (an encoder restart): its new fragments are rejected until the idle track expires.
///
/// Thread-safe. Tracks are spread over 16 shards, each behind a read-write lock, so lookups run in
/// parallel; hit and miss counters are atomics kept beside each shard's lock.
///
/// A zero window holds nothing: every insertion is rejected.
#[derive(Debug)]
pub struct LiveWindowCache {
    window: Duration,
    shards: Box<[Shard]>,
}

/// One shard, aligned so that two shards' locks and counters never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    state: RwLock<ShardState>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct ShardState {
    /// Fixed-seed hasher: fast, and the same iteration order on every run (reproducible
    /// simulations). Keys come from manifests, not from peers.
    tracks: HashMap<(ContentId, TrackId), Track, FixedState>,
    inserts: u64,
    evictions: u64,
    evicted_bytes: u64,
    entries: u64,
    bytes: u64,
}

/// A track's fragments are held in deques sorted by key and by media end: a live track's
/// fragments arrive in order (each goes at the back) and the window slides from the front, so
/// both stay sorted without the node allocations, splits and shifts of ordered trees. A
/// fragment out of order is placed by binary search.
#[derive(Debug)]
struct Track {
    /// The held fragments, in increasing key order.
    frags: VecDeque<CachedFragment>,
    /// (media end, key) of every held fragment, in increasing order: the window slides from
    /// the front.
    by_end: VecDeque<(Duration, Key)>,
    /// The sequence numbers held, kept in step with `frags` (what `have` returns).
    seqs: SeqSet,
    /// The latest media end stored in this track.
    newest_end: Duration,
    /// Wall time of the last stored insertion.
    last_insert: Instant,
    bytes: u64,
}

fn key_of(id: &FragmentId) -> Key {
    (id.sequence, id.range)
}

fn media_end(f: &CachedFragment) -> Duration {
    f.media_time.saturating_add(f.duration)
}

fn len_u64(f: &CachedFragment) -> u64 {
    u64::try_from(f.len()).unwrap_or(u64::MAX)
}

impl Track {
    fn new(now: Instant) -> Self {
        Track {
            frags: VecDeque::new(),
            by_end: VecDeque::new(),
            seqs: SeqSet::new(),
            newest_end: Duration::ZERO,
            last_insert: now,
            bytes: 0,
        }
    }

    /// Where the fragment with `key` is in `frags` (`Ok`), or would go (`Err`).
    fn find(&self, key: &Key) -> Result<usize, usize> {
        // The common case: a new fragment, past the newest.
        if self.frags.back().is_none_or(|b| key_of(&b.id) < *key) {
            return Err(self.frags.len());
        }
        self.frags.binary_search_by(|f| key_of(&f.id).cmp(key))
    }

    fn get(&self, key: &Key) -> Option<&CachedFragment> {
        self.find(key).ok().and_then(|i| self.frags.get(i))
    }

    fn contains(&self, key: &Key) -> bool {
        self.find(key).is_ok()
    }

    /// Adds a fragment not held yet, ending at `end`, to `frags` and `by_end` (not `seqs`).
    fn put(&mut self, end: Duration, key: Key, fragment: CachedFragment) {
        match self.find(&key) {
            Err(i) => self.frags.insert(i, fragment),
            // Not reached: callers check first. Replaced, as a map insertion would.
            Ok(i) => self.frags[i] = fragment,
        }
        let e = (end, key);
        if self.by_end.back().is_none_or(|b| *b < e) {
            self.by_end.push_back(e);
        } else {
            let i = self.by_end.partition_point(|x| *x < e);
            self.by_end.insert(i, e);
        }
    }

    /// Removes one fragment from `frags` and keeps `seqs` and `bytes` in step (not `by_end`).
    fn take_frag(&mut self, key: &Key) -> Option<CachedFragment> {
        let i = self.find(key).ok()?;
        let frag = self.frags.remove(i)?;
        // Fragments sharing a sequence number are neighbours in key order.
        let seq = key.0;
        let same_seq_left = (i > 0 && self.frags.get(i - 1).is_some_and(|f| f.id.sequence == seq))
            || self.frags.get(i).is_some_and(|f| f.id.sequence == seq);
        if !same_seq_left {
            self.seqs.remove(seq);
        }
        self.bytes -= len_u64(&frag);
        Some(frag)
    }

    /// Removes one fragment and keeps `by_end`, `seqs` and `bytes` in step.
    fn take(&mut self, key: &Key) -> Option<CachedFragment> {
        let frag = self.take_frag(key)?;
        let e = (media_end(&frag), *key);
        if self.by_end.front() == Some(&e) {
            self.by_end.pop_front();
        } else if let Ok(i) = self.by_end.binary_search(&e) {
            self.by_end.remove(i);
        }
        Some(frag)
    }
}

impl ShardState {
    fn count_evictions(&mut self, n: u64, bytes: u64) {
        self.evictions += n;
        self.evicted_bytes += bytes;
        self.entries -= n;
        self.bytes -= bytes;
    }
}

impl LiveWindowCache {
    /// A cache that keeps the newest `window` of media of each track.
    pub fn new(window: Duration) -> Self {
        Self::with_shards(window, SHARDS)
    }

    /// A cache with `shards` independently locked shards (rounded up to a power of two, at
    /// least one). One shard suits a cache that only one thread uses, such as each of a
    /// simulator's thousands of agents: 2 KiB of locks and counters less per cache, and its
    /// state in fewer cache lines.
    pub fn with_shards(window: Duration, shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        LiveWindowCache {
            window,
            shards: (0..n).map(|_| Shard::default()).collect(),
        }
    }

    /// The window of media time kept per track (also the idle time after which a track expires).
    pub fn window(&self) -> Duration {
        self.window
    }

    fn shard(&self, content: &ContentId, track: TrackId) -> &Shard {
        // Content ids are BLAKE3 outputs: any 8 of their bytes are uniformly distributed.
        let b = content.as_bytes();
        let h = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            ^ u64::from(track.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The number of shards is a power of two.
        &self.shards[(h as usize) & (self.shards.len() - 1)]
    }
}

impl Default for LiveWindowCache {
    /// A cache with the [default 30 s window](DEFAULT_LIVE_WINDOW).
    fn default() -> Self {
        LiveWindowCache::new(DEFAULT_LIVE_WINDOW)
    }
}

impl FragmentCache for LiveWindowCache {
    fn get(&self, id: &FragmentId) -> Option<CachedFragment> {
        let shard = self.shard(&id.content, id.track);
        let found = shard
            .state
            .read()
            .tracks
            .get(&(id.content, id.track))
            .and_then(|t| t.get(&key_of(id)))
            .cloned();
        let counter = if found.is_some() {
            &shard.hits
        } else {
            &shard.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn contains(&self, id: &FragmentId) -> bool {
        self.shard(&id.content, id.track)
            .state
            .read()
            .tracks
            .get(&(id.content, id.track))
            .is_some_and(|t| t.contains(&key_of(id)))
    }

    /// Stores `fragment` unless it is already held or outside its track's window, then slides
    /// the window. `now` becomes the track's last-insertion time (see [`expire`](Self::expire)).
    fn insert(&self, now: Instant, fragment: CachedFragment) -> InsertOutcome {
        let id = fragment.id;
        let key = key_of(&id);
        let end = media_end(&fragment);
        let mut state = self.shard(&id.content, id.track).state.write();
        let state = &mut *state;

        let (newest_end, exists) = match state.tracks.get(&(id.content, id.track)) {
            Some(t) if t.contains(&key) => return InsertOutcome::AlreadyPresent,
            Some(t) => (t.newest_end.max(end), true),
            None => (end, false),
        };
        let cutoff = newest_end.checked_sub(self.window);
        if cutoff.is_some_and(|c| end <= c) {
            return InsertOutcome::Rejected;
        }
        if !exists {
            state.tracks.insert((id.content, id.track), Track::new(now));
        }
        let Some(track) = state.tracks.get_mut(&(id.content, id.track)) else {
            // Just inserted above under the same lock.
            return InsertOutcome::Rejected;
        };

        let len = len_u64(&fragment);
        track.put(end, key, fragment);
        track.seqs.insert(id.sequence);
        track.bytes += len;
        track.newest_end = newest_end;
        track.last_insert = track.last_insert.max(now);
        state.inserts += 1;
        state.entries += 1;
        state.bytes += len;

        let (mut evicted, mut evicted_bytes) = (0usize, 0u64);
        if let Some(cutoff) = cutoff {
            while let Some(&(old_end, old_key)) = track.by_end.front() {
                if old_end > cutoff {
                    break;
                }
                track.by_end.pop_front();
                if let Some(old) = track.take_frag(&old_key) {
                    evicted += 1;
                    evicted_bytes += len_u64(&old);
                }
            }
        }
        state.count_evictions(evicted as u64, evicted_bytes);
        InsertOutcome::Stored { evicted }
    }

    /// Removes a fragment. This is not an eviction: only `entries` and `bytes` change.
    fn remove(&self, id: &FragmentId) -> bool {
        let mut state = self.shard(&id.content, id.track).state.write();
        let state = &mut *state;
        let Some(track) = state.tracks.get_mut(&(id.content, id.track)) else {
            return false;
        };
        match track.take(&key_of(id)) {
            Some(frag) => {
                state.entries -= 1;
                state.bytes -= len_u64(&frag);
                true
            }
            None => false,
        }
    }

    fn have(&self, content: &ContentId, track: TrackId) -> SeqSet {
        self.shard(content, track)
            .state
            .read()
            .tracks
            .get(&(*content, track))
            .map(|t| t.seqs.clone())
            .unwrap_or_default()
    }

    /// The tracks of `content` holding at least one fragment, in increasing order.
    fn tracks(&self, content: &ContentId) -> Vec<TrackId> {
        let mut out: Vec<TrackId> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.state
                    .read()
                    .tracks
                    .iter()
                    .filter(|((c, _), t)| c == content && !t.frags.is_empty())
                    .map(|((_, tr), _)| *tr)
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Drops every track in which nothing was stored for `window` of wall time before `now`
    /// (tracks the viewers switched away from). Dropped fragments count as evictions.
    fn expire(&self, now: Instant) -> usize {
        let mut dropped = 0usize;
        for shard in self.shards.iter() {
            let mut state = shard.state.write();
            let state = &mut *state;
            let window = self.window;
            let (mut n, mut bytes) = (0u64, 0u64);
            state.tracks.retain(|_, t| {
                let idle = now.saturating_duration_since(t.last_insert) >= window;
                if idle {
                    n += t.frags.len() as u64;
                    bytes += t.bytes;
                }
                !idle
            });
            state.count_evictions(n, bytes);
            dropped = dropped.saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        }
        dropped
    }

    fn stats(&self) -> CacheStats {
        let mut s = CacheStats::default();
        for shard in self.shards.iter() {
            s.hits += shard.hits.load(Ordering::Relaxed);
            s.misses += shard.misses.load(Ordering::Relaxed);
            let st = shard.state.read();
            s.inserts += st.inserts;
            s.evictions += st.evictions;
            s.evicted_bytes += st.evicted_bytes;
            s.entries += st.entries;
            s.bytes += st.bytes;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn content() -> ContentId {
        ContentId::derive("live/test")
    }

    fn frag(track: u16, seq: u64, media_s: u64, dur_s: u64) -> CachedFragment {
        CachedFragment::new(
            FragmentId::new(content(), TrackId(track), seq),
            Bytes::from(vec![seq as u8; 100]),
            Duration::from_secs(media_s),
            Duration::from_secs(dur_s),
        )
    }

    #[test]
    fn window_slides_by_media_time() {
        let c = LiveWindowCache::new(Duration::from_secs(10));
        for seq in 0..5 {
            assert_eq!(
                c.insert(Instant::ZERO, frag(0, seq, 2 * seq, 2)),
                InsertOutcome::Stored { evicted: 0 }
            );
        }
        // Newest end is 10 s: nothing ends at or before 0.
        assert_eq!(c.have(&content(), TrackId(0)).len(), 5);
        // Fragment 5 ends at 12 s: fragment 0 (ends at 2 s) is out.
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 5, 10, 2)),
            InsertOutcome::Stored { evicted: 1 }
        );
        let have = c.have(&content(), TrackId(0));
        assert_eq!(have.ranges().collect::<Vec<_>>(), vec![1..=5]);
        // A jump ahead of 7 s evicts everything ending at or before 9 s.
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 9, 17, 2)),
            InsertOutcome::Stored { evicted: 3 }
        );
        assert_eq!(
            c.have(&content(), TrackId(0)).iter().collect::<Vec<_>>(),
            vec![4, 5, 9]
        );
        let s = c.stats();
        assert_eq!(
            (s.evictions, s.evicted_bytes, s.entries, s.bytes),
            (4, 400, 3, 300)
        );
        assert_eq!(s.inserts, 7);
    }

    #[test]
    fn window_is_per_track() {
        let c = LiveWindowCache::new(Duration::from_secs(10));
        c.insert(Instant::ZERO, frag(0, 0, 0, 2));
        c.insert(Instant::ZERO, frag(1, 100, 100, 2));
        assert!(c.contains(&frag(0, 0, 0, 2).id));
        assert_eq!(c.tracks(&content()), vec![TrackId(0), TrackId(1)]);
    }

    #[test]
    fn out_of_window_insert_is_rejected() {
        let c = LiveWindowCache::new(Duration::from_secs(10));
        c.insert(Instant::ZERO, frag(0, 10, 20, 2));
        // Ends at 12 s = 22 s - 10 s: outside.
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 5, 10, 2)),
            InsertOutcome::Rejected
        );
        // Ends at 13 s: inside, late arrivals within the window are fine.
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 6, 11, 2)),
            InsertOutcome::Stored { evicted: 0 }
        );
        let s = c.stats();
        assert_eq!((s.inserts, s.entries, s.evictions), (2, 2, 0));
    }

    #[test]
    fn zero_window_holds_nothing() {
        let c = LiveWindowCache::new(Duration::ZERO);
        assert_eq!(
            c.insert(Instant::ZERO, frag(0, 0, 0, 2)),
            InsertOutcome::Rejected
        );
        assert!(c.tracks(&content()).is_empty());
        assert_eq!(c.stats(), CacheStats::default());
    }

    #[test]
    fn idle_tracks_expire_by_wall_time() {
        let c = LiveWindowCache::default();
        assert_eq!(c.window(), Duration::from_secs(30));
        c.insert(Instant::from_secs(0), frag(0, 0, 0, 2));
        c.insert(Instant::from_secs(1), frag(0, 1, 2, 2));
        c.insert(Instant::from_secs(10), frag(1, 0, 0, 2));
        // Track 0 was last fed at 1 s, track 1 at 10 s.
        assert_eq!(c.expire(Instant::from_secs(30)), 0);
        assert_eq!(c.expire(Instant::from_secs(31)), 2);
        assert_eq!(c.tracks(&content()), vec![TrackId(1)]);
        assert!(c.have(&content(), TrackId(0)).is_empty());
        assert_eq!(c.expire(Instant::from_secs(40)), 1);
        let s = c.stats();
        assert_eq!(
            (s.evictions, s.evicted_bytes, s.entries, s.bytes),
            (3, 300, 0, 0)
        );
        // A track that comes back starts a fresh window.
        assert_eq!(
            c.insert(Instant::from_secs(50), frag(0, 0, 0, 2)),
            InsertOutcome::Stored { evicted: 0 }
        );
    }

    #[test]
    fn rejected_inserts_do_not_keep_a_track_alive() {
        // An encoder restart sends media time back to zero: the stale track rejects the new
        // timeline until it expires, then accepts it.
        let c = LiveWindowCache::new(Duration::from_secs(10));
        c.insert(Instant::from_secs(0), frag(0, 500, 1000, 2));
        assert_eq!(
            c.insert(Instant::from_secs(5), frag(0, 0, 0, 2)),
            InsertOutcome::Rejected
        );
        assert_eq!(c.expire(Instant::from_secs(10)), 1);
        assert_eq!(
            c.insert(Instant::from_secs(11), frag(0, 0, 0, 2)),
            InsertOutcome::Stored { evicted: 0 }
        );
    }

    /// A model track: fragment key → (media end, bytes), and the latest media end stored.
    type ModelTrack = (std::collections::BTreeMap<Key, (Duration, u64)>, Duration);

    /// The window as ordered maps keep it (what the deques must match), per track.
    #[derive(Default)]
    struct Model {
        tracks: std::collections::BTreeMap<u16, ModelTrack>,
    }

    impl Model {
        fn insert(
            &mut self,
            window: Duration,
            track: u16,
            key: Key,
            end: Duration,
            len: u64,
        ) -> InsertOutcome {
            let (newest, exists) = match self.tracks.get(&track) {
                Some((m, _)) if m.contains_key(&key) => return InsertOutcome::AlreadyPresent,
                Some((_, n)) => ((*n).max(end), true),
                None => (end, false),
            };
            let cutoff = newest.checked_sub(window);
            if cutoff.is_some_and(|c| end <= c) {
                return InsertOutcome::Rejected;
            }
            if !exists {
                self.tracks.insert(track, Default::default());
            }
            let Some((m, n)) = self.tracks.get_mut(&track) else {
                return InsertOutcome::Rejected;
            };
            m.insert(key, (end, len));
            *n = newest;
            let before = m.len();
            if let Some(c) = cutoff {
                m.retain(|_, (e, _)| *e > c);
            }
            InsertOutcome::Stored {
                evicted: before - m.len(),
            }
        }

        fn seqs(&self, track: u16) -> Vec<u64> {
            let mut v: Vec<u64> = self
                .tracks
                .get(&track)
                .map(|(m, _)| m.keys().map(|k| k.0).collect())
                .unwrap_or_default();
            v.dedup();
            v
        }
    }

    proptest::proptest! {
        /// Out-of-order arrivals, byte ranges sharing sequence numbers, removals and media
        /// times that go backwards: the deques hold what ordered maps would.
        #[test]
        fn matches_ordered_maps(ops in proptest::collection::vec(
            (0u8..4, 0u16..2, 0u64..24, 0u64..3, 0u64..50, 1u64..4), 0..120)
        ) {
            let window = Duration::from_secs(12);
            let c = LiveWindowCache::with_shards(window, 1);
            let mut m = Model::default();
            for (op, track, seq, r, media, dur) in ops {
                let range = (r > 0).then(|| ByteRange { start: r * 10, len: 10 });
                let mut id = FragmentId::new(content(), TrackId(track), seq);
                id.range = range;
                let key = key_of(&id);
                if op == 0 {
                    proptest::prop_assert_eq!(c.remove(&id), m.tracks.get_mut(&track).is_some_and(|(t, _)| t.remove(&key).is_some()));
                } else {
                    let len = 1 + seq + r;
                    let f = CachedFragment::new(id, Bytes::from(vec![0u8; len as usize]), Duration::from_secs(media), Duration::from_secs(dur));
                    let end = media_end(&f);
                    proptest::prop_assert_eq!(c.insert(Instant::ZERO, f), m.insert(window, track, key, end, len));
                }
                for t in 0..2u16 {
                    proptest::prop_assert_eq!(c.have(&content(), TrackId(t)).iter().collect::<Vec<_>>(), m.seqs(t));
                    for s in 0..24 {
                        for r in 0..3u64 {
                            let mut id = FragmentId::new(content(), TrackId(t), s);
                            id.range = (r > 0).then(|| ByteRange { start: r * 10, len: 10 });
                            let held = m.tracks.get(&t).and_then(|(x, _)| x.get(&key_of(&id)).copied());
                            proptest::prop_assert_eq!(c.contains(&id), held.is_some());
                        }
                    }
                }
                let st = c.stats();
                let (n, b) = m.tracks.values().flat_map(|(x, _)| x.values()).fold((0, 0), |(n, b), (_, l)| (n + 1, b + l));
                proptest::prop_assert_eq!((st.entries, st.bytes), (n, b));
            }
        }
    }

    #[test]
    fn ranges_sharing_a_sequence_number_leave_have_together() {
        let c = LiveWindowCache::new(Duration::from_secs(10));
        let r = |start| ByteRange { start, len: 10 };
        let mut a = frag(0, 0, 0, 2);
        a.id = a.id.with_range(r(0));
        let mut b = frag(0, 0, 0, 2);
        b.id = b.id.with_range(r(10));
        c.insert(Instant::ZERO, a.clone());
        c.insert(Instant::ZERO, b.clone());
        assert!(c.remove(&a.id));
        assert!(c.have(&content(), TrackId(0)).contains(0));
        // The window slide takes the other one.
        c.insert(Instant::ZERO, frag(0, 9, 20, 2));
        assert!(!c.have(&content(), TrackId(0)).contains(0));
        assert!(!c.contains(&b.id));
    }
}
