//! Runs the `FragmentCache` conformance kit against both standard caches.

use hive_core::cache::{LiveWindowCache, VodCache};
use hive_core::testkit::cache as kit;

macro_rules! conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn get_returns_what_was_inserted() {
                kit::get_returns_what_was_inserted(&$make);
            }
            #[test]
            fn absent_ids_are_misses() {
                kit::absent_ids_are_misses(&$make);
            }
            #[test]
            fn duplicate_insert_keeps_first() {
                kit::duplicate_insert_keeps_first(&$make);
            }
            #[test]
            fn remove_drops_one_fragment() {
                kit::remove_drops_one_fragment(&$make);
            }
            #[test]
            fn have_keeps_contents_and_tracks_apart() {
                kit::have_keeps_contents_and_tracks_apart(&$make);
            }
            #[test]
            fn byte_ranges_distinguish_fragments() {
                kit::byte_ranges_distinguish_fragments(&$make);
            }
            #[test]
            fn stats_are_exact() {
                kit::stats_are_exact(&$make);
            }
            #[test]
            fn expire_keeps_fresh_fragments() {
                kit::expire_keeps_fresh_fragments(&$make);
            }
            #[test]
            fn concurrent_use_loses_nothing() {
                // Repeated: races show up only sometimes.
                for _ in 0..20 {
                    kit::concurrent_use_loses_nothing(&$make);
                }
            }
            #[test]
            fn run_all() {
                kit::run_all(|| $make);
            }
        }
    };
}

conformance!(live, LiveWindowCache::default());
conformance!(
    live_long_window,
    LiveWindowCache::new(std::time::Duration::from_secs(3600))
);
conformance!(
    live_one_shard,
    LiveWindowCache::with_shards(hive_core::cache::DEFAULT_LIVE_WINDOW, 1)
);
conformance!(vod, VodCache::new(1 << 20));
conformance!(vod_sharded, VodCache::with_shards(1 << 20, 4));

/// The kit must fail caches that break the contract: each flaw below is caught by its check.
mod kit_catches {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use hive_core::cache::{
        CacheStats, CachedFragment, FragmentCache, InsertOutcome, LiveWindowCache,
    };
    use hive_core::testkit::cache as kit;
    use hive_core::time::Instant;
    use hive_core::{ContentId, FragmentId, SeqSet, TrackId};

    #[derive(Clone, Copy, PartialEq)]
    enum Flaw {
        None,
        ContainsCountsAsLookup,
        IgnoresByteRanges,
        ReplacesDuplicates,
        HaveIgnoresTrack,
        ForgetsBytes,
    }

    struct Flawed(LiveWindowCache, Flaw);

    impl Flawed {
        fn key(&self, id: &FragmentId) -> FragmentId {
            match self.1 {
                Flaw::IgnoresByteRanges => FragmentId { range: None, ..*id },
                _ => *id,
            }
        }
    }

    impl FragmentCache for Flawed {
        fn get(&self, id: &FragmentId) -> Option<CachedFragment> {
            let mut f = self.0.get(&self.key(id))?;
            f.id = *id;
            Some(f)
        }
        fn contains(&self, id: &FragmentId) -> bool {
            if self.1 == Flaw::ContainsCountsAsLookup {
                return self.0.get(&self.key(id)).is_some();
            }
            self.0.contains(&self.key(id))
        }
        fn insert(&self, now: Instant, mut f: CachedFragment) -> InsertOutcome {
            f.id = self.key(&f.id);
            if self.1 == Flaw::ReplacesDuplicates {
                self.0.remove(&f.id);
            }
            self.0.insert(now, f)
        }
        fn remove(&self, id: &FragmentId) -> bool {
            self.0.remove(&self.key(id))
        }
        fn have(&self, content: &ContentId, track: TrackId) -> SeqSet {
            if self.1 == Flaw::HaveIgnoresTrack {
                let mut all = SeqSet::new();
                for t in self.0.tracks(content) {
                    for r in self.0.have(content, t).ranges() {
                        all.insert_range(r);
                    }
                }
                return all;
            }
            self.0.have(content, track)
        }
        fn tracks(&self, content: &ContentId) -> Vec<TrackId> {
            self.0.tracks(content)
        }
        fn expire(&self, now: Instant) -> usize {
            self.0.expire(now)
        }
        fn stats(&self) -> CacheStats {
            let mut s = self.0.stats();
            if self.1 == Flaw::ForgetsBytes {
                s.bytes = 0;
            }
            s
        }
    }

    fn fails(flaw: Flaw, check: fn(&Flawed)) -> bool {
        let cache = Flawed(LiveWindowCache::default(), flaw);
        catch_unwind(AssertUnwindSafe(|| check(&cache))).is_err()
    }

    #[test]
    fn the_wrapper_itself_conforms() {
        kit::run_all(|| Flawed(LiveWindowCache::default(), Flaw::None));
    }

    #[test]
    fn contains_counted_as_a_lookup() {
        assert!(fails(Flaw::ContainsCountsAsLookup, kit::stats_are_exact));
    }

    #[test]
    fn byte_ranges_ignored() {
        assert!(fails(
            Flaw::IgnoresByteRanges,
            kit::byte_ranges_distinguish_fragments
        ));
        assert!(fails(Flaw::IgnoresByteRanges, kit::absent_ids_are_misses));
    }

    #[test]
    fn duplicates_replaced() {
        assert!(fails(
            Flaw::ReplacesDuplicates,
            kit::duplicate_insert_keeps_first
        ));
        assert!(fails(
            Flaw::ReplacesDuplicates,
            kit::concurrent_use_loses_nothing
        ));
    }

    #[test]
    fn tracks_mixed_in_have() {
        assert!(fails(
            Flaw::HaveIgnoresTrack,
            kit::have_keeps_contents_and_tracks_apart
        ));
    }

    #[test]
    fn bytes_not_counted() {
        assert!(fails(Flaw::ForgetsBytes, kit::stats_are_exact));
        assert!(fails(Flaw::ForgetsBytes, kit::concurrent_use_loses_nothing));
    }
}
