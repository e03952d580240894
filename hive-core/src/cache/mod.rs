//! The `FragmentCache` contract and its two standard implementations.
//!
//! - [`LiveWindowCache`]: keeps the newest N seconds (default 30 s) of each track by media time —
//!   what a live swarm needs.
//! - [`VodCache`]: keeps fragments within a byte budget, evicting by recency/frequency
//!   (`quick_cache`'s S3-FIFO-like CLOCK) — for on-demand content.
//!
//! Both are thread-safe (`&self` methods) and count hits, misses, insertions, evictions and bytes.
//!
//! ```
//! use bytes::Bytes;
//! use hive_core::cache::{CachedFragment, FragmentCache, LiveWindowCache};
//! use hive_core::time::{Duration, Instant};
//! use hive_core::{ContentId, FragmentId, TrackId};
//!
//! let cache = LiveWindowCache::new(Duration::from_secs(30));
//! let content = ContentId::derive("live/ch1");
//! for seq in 0..20u64 {
//!     let id = FragmentId::new(content, TrackId(0), seq);
//!     let frag = CachedFragment::new(id, Bytes::from(vec![0u8; 1000]),
//!         Duration::from_secs(2 * seq), Duration::from_secs(2));
//!     cache.insert(Instant::ZERO, frag);
//! }
//! // 20 fragments of 2 s: only the newest 30 s are kept.
//! assert!(!cache.contains(&FragmentId::new(content, TrackId(0), 0)));
//! assert!(cache.get(&FragmentId::new(content, TrackId(0), 19)).is_some());
//! assert_eq!(cache.have(&content, TrackId(0)).len(), 15);
//! ```

use bytes::Bytes;

use crate::hash::ContentHash;
use crate::have::SeqSet;
use crate::ids::{ContentId, FragmentId, TrackId};
use crate::time::{Duration, Instant};

mod live;
mod vod;

pub use live::{DEFAULT_LIVE_WINDOW, LiveWindowCache};
pub use vod::VodCache;

/// A verified fragment as stored in a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedFragment {
    /// Which fragment.
    pub id: FragmentId,
    /// Its bytes (cheaply clonable).
    pub data: Bytes,
    /// The BLAKE3 hash of `data`.
    pub hash: ContentHash,
    /// Media time of the fragment's start within its track.
    pub media_time: Duration,
    /// Playback duration.
    pub duration: Duration,
}

impl CachedFragment {
    /// A fragment whose hash is computed from `data`.
    pub fn new(id: FragmentId, data: Bytes, media_time: Duration, duration: Duration) -> Self {
        let hash = ContentHash::of(&data);
        CachedFragment {
            id,
            data,
            hash,
            media_time,
            duration,
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the fragment has no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What an insertion did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored; `evicted` older entries made room.
    Stored {
        /// Entries evicted by this insertion.
        evicted: usize,
    },
    /// Already present: the existing entry was kept.
    AlreadyPresent,
    /// Not stored: outside the live window, or too large for the cache's byte budget.
    Rejected,
}

/// Counters of a cache, monotonically increasing except `entries` and `bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found the fragment.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Fragments stored.
    pub inserts: u64,
    /// Fragments evicted (window slide, expiry or budget).
    pub evictions: u64,
    /// Bytes evicted.
    pub evicted_bytes: u64,
    /// Fragments currently held.
    pub entries: u64,
    /// Bytes currently held.
    pub bytes: u64,
}

/// A store of verified fragments shared by the swarm engine and the player proxy.
///
/// Implementations are thread-safe and never block for long: the agent calls them from its event
/// loop and from HTTP handlers.
///
/// Conformance: every implementation should pass
/// [`testkit::cache::run_all`](crate::testkit::cache::run_all) (feature `testkit`).
pub trait FragmentCache: Send + Sync {
    /// The fragment, if held. Counts a hit or a miss.
    fn get(&self, id: &FragmentId) -> Option<CachedFragment>;

    /// Whether the fragment is held. Does not count as a lookup.
    fn contains(&self, id: &FragmentId) -> bool;

    /// Stores a verified fragment. `now` drives time-based expiry.
    fn insert(&self, now: Instant, fragment: CachedFragment) -> InsertOutcome;

    /// Removes a fragment; returns whether it was held.
    fn remove(&self, id: &FragmentId) -> bool;

    /// The sequence numbers held for one track of one swarm (what a `Have` advertises).
    fn have(&self, content: &ContentId, track: TrackId) -> SeqSet;

    /// The tracks of `content` with at least one fragment held.
    fn tracks(&self, content: &ContentId) -> Vec<TrackId>;

    /// Drops what has expired at `now`; returns the number of fragments dropped.
    fn expire(&self, now: Instant) -> usize;

    /// The counters.
    fn stats(&self) -> CacheStats;
}
