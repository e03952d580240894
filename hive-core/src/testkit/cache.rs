//! The [`FragmentCache`] conformance kit.
//!
//! Every check takes an **empty** cache and panics on the first violation. The checks never
//! need a cache to evict: they store at most 1 MiB in all, fragments of at most 4 KiB, and at
//! most 20 s of media per track (media times from [`fragment`]), all at [`Instant::ZERO`]. A
//! cache must hold that much without evicting to be tested with this kit (a 30 s live window
//! and a 1 MiB byte budget both do).
//!
//! ```
//! use hive_core::cache::LiveWindowCache;
//! use hive_core::testkit::cache;
//!
//! // All of them:
//! cache::run_all(LiveWindowCache::default);
//! // Or one at a time, each on a fresh cache:
//! cache::duplicate_insert_keeps_first(&LiveWindowCache::default());
//! ```

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::cache::{CacheStats, CachedFragment, FragmentCache, InsertOutcome};
use crate::have::SeqSet;
use crate::ids::{ByteRange, ContentId, FragmentId, TrackId};
use crate::time::{Duration, Instant};

/// Media time between consecutive sequence numbers in [`fragment`].
pub const FRAGMENT_DURATION: Duration = Duration::from_millis(50);

/// Runs every check of the kit, each on a fresh cache from `make`.
pub fn run_all<C: FragmentCache, F: Fn() -> C>(make: F) {
    get_returns_what_was_inserted(&make());
    absent_ids_are_misses(&make());
    duplicate_insert_keeps_first(&make());
    remove_drops_one_fragment(&make());
    have_keeps_contents_and_tracks_apart(&make());
    byte_ranges_distinguish_fragments(&make());
    stats_are_exact(&make());
    expire_keeps_fresh_fragments(&make());
    concurrent_use_loses_nothing(&make());
}

/// A test fragment of `len` bytes whose bytes depend on its id, starting at media time
/// `sequence * 50 ms` and lasting [`FRAGMENT_DURATION`].
pub fn fragment(id: FragmentId, len: usize) -> CachedFragment {
    let seed = id.content.as_bytes()[0]
        ^ (id.track.0 as u8).wrapping_mul(29)
        ^ (id.sequence as u8).wrapping_mul(7)
        ^ id.range.map_or(0, |r| (r.start as u8).wrapping_mul(13));
    let data: Vec<u8> = (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect();
    let media_time = FRAGMENT_DURATION.saturating_mul(u32::try_from(id.sequence).unwrap_or(0));
    CachedFragment::new(id, Bytes::from(data), media_time, FRAGMENT_DURATION)
}

fn content(name: &str) -> ContentId {
    ContentId::derive(&format!("hive testkit/{name}"))
}

fn id(c: ContentId, track: u16, seq: u64) -> FragmentId {
    FragmentId::new(c, TrackId(track), seq)
}

fn assert_stored(check: &str, outcome: InsertOutcome, what: &FragmentId) {
    assert!(
        matches!(outcome, InsertOutcome::Stored { evicted: 0 }),
        "{check}: inserting {what} into an empty enough cache gave {outcome:?}, expected Stored {{ evicted: 0 }}"
    );
}

fn seqs(s: &SeqSet) -> Vec<u64> {
    s.iter().collect()
}

fn sorted(mut v: Vec<TrackId>) -> Vec<TrackId> {
    v.sort_unstable();
    v
}

/// `get` after `insert` returns the very fragment stored: same id, bytes, hash and times.
pub fn get_returns_what_was_inserted<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "get_returns_what_was_inserted";
    let c = content("get");
    let frags: Vec<CachedFragment> = [(0, 1000), (1, 1), (2, 4096), (3, 0)]
        .into_iter()
        .map(|(seq, len)| fragment(id(c, 0, seq), len))
        .collect();
    for f in &frags {
        assert_stored(CHECK, cache.insert(Instant::ZERO, f.clone()), &f.id);
    }
    for f in &frags {
        let got = cache.get(&f.id);
        assert_eq!(got.as_ref(), Some(f), "{CHECK}: get({}) differs", f.id);
        if let Some(got) = got {
            assert!(
                got.hash.verify(&got.data),
                "{CHECK}: hash of {} does not verify",
                f.id
            );
        }
        assert!(
            cache.contains(&f.id),
            "{CHECK}: contains({}) is false",
            f.id
        );
    }
}

/// `contains` and `get` on ids never stored say no, whatever neighbours are held.
pub fn absent_ids_are_misses<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "absent_ids_are_misses";
    let c = content("absent");
    let held = id(c, 1, 10);
    let absent = [
        held,
        id(c, 1, 11),
        id(c, 1, 9),
        id(c, 2, 10),
        id(content("absent/other"), 1, 10),
        held.with_range(ByteRange { start: 0, len: 100 }),
    ];
    for a in &absent {
        assert!(!cache.contains(a), "{CHECK}: empty cache contains {a}");
        assert!(cache.get(a).is_none(), "{CHECK}: empty cache returned {a}");
    }
    assert_stored(
        CHECK,
        cache.insert(Instant::ZERO, fragment(held, 100)),
        &held,
    );
    for a in &absent[1..] {
        assert!(
            !cache.contains(a),
            "{CHECK}: contains({a}) after storing only {held}"
        );
        assert!(
            cache.get(a).is_none(),
            "{CHECK}: get({a}) after storing only {held}"
        );
    }
}

/// A second insertion of a held id returns `AlreadyPresent` and keeps the first bytes.
pub fn duplicate_insert_keeps_first<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "duplicate_insert_keeps_first";
    let c = content("dup");
    let first = fragment(id(c, 0, 5), 300);
    let mut second = fragment(id(c, 0, 5), 700);
    second.data = Bytes::from(vec![0xAB; 700]);
    second.hash = crate::ContentHash::of(&second.data);
    assert_stored(CHECK, cache.insert(Instant::ZERO, first.clone()), &first.id);
    let again = cache.insert(Instant::ZERO, second);
    assert_eq!(
        again,
        InsertOutcome::AlreadyPresent,
        "{CHECK}: second insert"
    );
    assert_eq!(
        cache.get(&first.id),
        Some(first),
        "{CHECK}: first bytes not kept"
    );
    let s = cache.stats();
    assert_eq!(
        (s.inserts, s.entries, s.bytes),
        (1, 1, 300),
        "{CHECK}: {s:?}"
    );
}

/// `remove` drops exactly the fragment named, says whether it was held, and allows re-insertion.
pub fn remove_drops_one_fragment<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "remove_drops_one_fragment";
    let c = content("remove");
    let (a, b) = (fragment(id(c, 0, 1), 100), fragment(id(c, 0, 2), 200));
    assert_stored(CHECK, cache.insert(Instant::ZERO, a.clone()), &a.id);
    assert_stored(CHECK, cache.insert(Instant::ZERO, b.clone()), &b.id);
    assert!(
        cache.remove(&a.id),
        "{CHECK}: remove of a held fragment returned false"
    );
    assert!(!cache.remove(&a.id), "{CHECK}: second remove returned true");
    assert!(
        !cache.remove(&id(c, 0, 3)),
        "{CHECK}: remove of an absent id returned true"
    );
    assert!(
        !cache.contains(&a.id),
        "{CHECK}: removed fragment still contained"
    );
    assert!(
        cache.get(&a.id).is_none(),
        "{CHECK}: removed fragment still returned"
    );
    assert_eq!(
        cache.get(&b.id),
        Some(b),
        "{CHECK}: the other fragment changed"
    );
    let s = cache.stats();
    assert_eq!(
        (s.entries, s.bytes),
        (1, 200),
        "{CHECK}: after remove {s:?}"
    );
    assert_stored(CHECK, cache.insert(Instant::ZERO, a.clone()), &a.id);
    assert_eq!(cache.get(&a.id), Some(a), "{CHECK}: re-inserted fragment");
}

/// `have` and `tracks` follow insertions and removals per (content, track), never mixing them.
pub fn have_keeps_contents_and_tracks_apart<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "have_keeps_contents_and_tracks_apart";
    let (c1, c2, c3) = (content("have/1"), content("have/2"), content("have/3"));
    let plan: [(ContentId, u16, &[u64]); 3] = [
        (c1, 0, &[0, 1, 2, 3, 4]),
        (c1, 1, &[10, 11, 12]),
        (c2, 0, &[3, 7]),
    ];
    for (c, t, ss) in plan {
        for &s in ss {
            let f = fragment(id(c, t, s), 64);
            assert_stored(CHECK, cache.insert(Instant::ZERO, f), &id(c, t, s));
        }
    }
    for (c, t, ss) in plan {
        assert_eq!(
            seqs(&cache.have(&c, TrackId(t))),
            ss,
            "{CHECK}: have({c:?}, t{t})"
        );
    }
    for (c, t) in [(c1, 2), (c2, 1), (c3, 0)] {
        assert!(
            cache.have(&c, TrackId(t)).is_empty(),
            "{CHECK}: have({c:?}, t{t}) not empty"
        );
    }
    assert_eq!(
        sorted(cache.tracks(&c1)),
        [TrackId(0), TrackId(1)],
        "{CHECK}: tracks(c1)"
    );
    assert_eq!(cache.tracks(&c2), [TrackId(0)], "{CHECK}: tracks(c2)");
    assert!(
        cache.tracks(&c3).is_empty(),
        "{CHECK}: tracks of an unknown content"
    );

    assert!(cache.remove(&id(c1, 0, 2)), "{CHECK}: remove");
    assert_eq!(
        seqs(&cache.have(&c1, TrackId(0))),
        [0, 1, 3, 4],
        "{CHECK}: hole"
    );
    for s in [10, 11, 12] {
        assert!(cache.remove(&id(c1, 1, s)), "{CHECK}: remove");
    }
    assert!(
        cache.have(&c1, TrackId(1)).is_empty(),
        "{CHECK}: emptied track"
    );
    assert_eq!(
        cache.tracks(&c1),
        [TrackId(0)],
        "{CHECK}: tracks after emptying t1"
    );
    assert_eq!(
        seqs(&cache.have(&c2, TrackId(0))),
        [3, 7],
        "{CHECK}: other content changed"
    );
}

/// Fragments that share a sequence number but not a byte range are distinct entries; `have`
/// lists the number while any of them is held.
pub fn byte_ranges_distinguish_fragments<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "byte_ranges_distinguish_fragments";
    let c = content("ranges");
    let whole = id(c, 0, 4);
    let r1 = whole.with_range(ByteRange { start: 0, len: 500 });
    let r2 = whole.with_range(ByteRange {
        start: 500,
        len: 500,
    });
    let frags = [fragment(whole, 1000), fragment(r1, 500), fragment(r2, 500)];
    for f in &frags {
        assert_stored(CHECK, cache.insert(Instant::ZERO, f.clone()), &f.id);
    }
    for f in &frags {
        assert_eq!(cache.get(&f.id).as_ref(), Some(f), "{CHECK}: get({})", f.id);
    }
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes), (3, 2000), "{CHECK}: {s:?}");
    for (i, f) in frags.iter().enumerate() {
        assert!(
            cache.have(&c, TrackId(0)).contains(4),
            "{CHECK}: have lost 4 early"
        );
        assert!(cache.remove(&f.id), "{CHECK}: remove({})", f.id);
        for g in &frags[i + 1..] {
            assert!(
                cache.contains(&g.id),
                "{CHECK}: removing {} took {}",
                f.id,
                g.id
            );
        }
    }
    assert!(
        cache.have(&c, TrackId(0)).is_empty(),
        "{CHECK}: have after all removed"
    );
}

/// Counters are exact: hits and misses count `get`s only, `inserts` counts stored fragments,
/// `entries` and `bytes` what is held.
pub fn stats_are_exact<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "stats_are_exact";
    assert_eq!(cache.stats(), CacheStats::default(), "{CHECK}: a new cache");
    let c = content("stats");
    let frags: Vec<CachedFragment> = (0..3)
        .map(|s| fragment(id(c, 0, s), 100 * (s as usize + 1)))
        .collect();
    for f in &frags {
        assert_stored(CHECK, cache.insert(Instant::ZERO, f.clone()), &f.id);
    }
    let _ = cache.insert(Instant::ZERO, frags[0].clone());
    let _ = cache.contains(&frags[0].id);
    let _ = cache.contains(&id(c, 0, 99));
    for f in &frags[..2] {
        let _ = cache.get(&f.id);
    }
    let _ = cache.get(&frags[0].id);
    for s in 50..54 {
        let _ = cache.get(&id(c, 0, s));
    }
    let want = CacheStats {
        hits: 3,
        misses: 4,
        inserts: 3,
        evictions: 0,
        evicted_bytes: 0,
        entries: 3,
        bytes: 600,
    };
    assert_eq!(
        cache.stats(),
        want,
        "{CHECK}: after 3 inserts, 3 hits, 4 misses"
    );
    assert!(cache.remove(&frags[1].id), "{CHECK}: remove");
    let after = CacheStats {
        entries: 2,
        bytes: 400,
        ..want
    };
    assert_eq!(cache.stats(), after, "{CHECK}: after a remove");
}

/// `expire` at the time of insertion drops nothing.
pub fn expire_keeps_fresh_fragments<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "expire_keeps_fresh_fragments";
    let c = content("expire");
    let now = Instant::from_secs(100);
    for s in 0..5 {
        assert_stored(
            CHECK,
            cache.insert(now, fragment(id(c, 0, s), 100)),
            &id(c, 0, s),
        );
    }
    assert_eq!(
        cache.expire(now),
        0,
        "{CHECK}: expire(now) dropped fragments"
    );
    assert_eq!(
        seqs(&cache.have(&c, TrackId(0))),
        [0, 1, 2, 3, 4],
        "{CHECK}: have"
    );
    assert_eq!(cache.stats().entries, 5, "{CHECK}: entries");
}

/// Four threads inserting and reading at once lose nothing: every insertion is stored exactly
/// once (racing duplicates included), and afterwards `entries`, `bytes` and `have` match what
/// `get` returns, and `hits + misses` equals the lookups made.
pub fn concurrent_use_loses_nothing<C: FragmentCache + ?Sized>(cache: &C) {
    const CHECK: &str = "concurrent_use_loses_nothing";
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100;
    const SHARED: u64 = 50;
    let c = content("concurrent");
    let len = |seq: u64| 200 + (seq % 7) as usize * 10;
    // Thread t owns track t % 2 and the sequence numbers i * 2 + t / 2 of it.
    let own = |t: u64, i: u64| id(c, (t % 2) as u16, i * 2 + t / 2);

    let per_thread: Vec<(u64, u64, u64, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let (mut stored, mut gets, mut hits, mut shared_stored) = (0, 0, 0, 0);
                    for i in 0..PER_THREAD {
                        let f = fragment(own(t, i), len(i));
                        let fid = f.id;
                        if matches!(
                            cache.insert(Instant::ZERO, f.clone()),
                            InsertOutcome::Stored { .. }
                        ) {
                            stored += 1;
                        }
                        let got = cache.get(&fid);
                        assert_eq!(got, Some(f), "{CHECK}: thread {t} lost {fid}");
                        // A neighbour's fragment, which may or may not be there yet.
                        let other = cache.get(&own((t + 1) % THREADS, i));
                        gets += 2;
                        hits += 1 + u64::from(other.is_some());
                    }
                    // All threads race to store the same fragments of track 2.
                    for s in 0..SHARED {
                        let f = fragment(id(c, 2, s), len(s));
                        match cache.insert(Instant::ZERO, f) {
                            InsertOutcome::Stored { .. } => shared_stored += 1,
                            InsertOutcome::AlreadyPresent => {}
                            other => panic!("{CHECK}: racing insert gave {other:?}"),
                        }
                    }
                    (stored, gets, hits, shared_stored)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });

    let stored: u64 = per_thread.iter().map(|r| r.0).sum();
    let gets: u64 = per_thread.iter().map(|r| r.1).sum();
    let hits: u64 = per_thread.iter().map(|r| r.2).sum();
    let shared: u64 = per_thread.iter().map(|r| r.3).sum();
    assert_eq!(stored, THREADS * PER_THREAD, "{CHECK}: own inserts stored");
    assert_eq!(
        shared, SHARED,
        "{CHECK}: racing inserts stored exactly once"
    );
    let s = cache.stats();
    assert_eq!(s.inserts, stored + shared, "{CHECK}: inserts {s:?}");
    assert_eq!(
        (s.hits, s.misses),
        (hits, gets - hits),
        "{CHECK}: lookups {s:?}"
    );

    // What get() sees, against the counters and have().
    let mut ids: Vec<FragmentId> = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| own(t, i)))
        .collect();
    ids.extend((0..SHARED).map(|s| id(c, 2, s)));
    let (mut entries, mut bytes) = (0u64, 0u64);
    let mut held: [BTreeSet<u64>; 3] = Default::default();
    for fid in &ids {
        if let Some(f) = cache.get(fid) {
            entries += 1;
            bytes += f.len() as u64;
            held[usize::from(fid.track.0)].insert(fid.sequence);
        }
    }
    assert_eq!(
        entries,
        stored + shared,
        "{CHECK}: fragments visible to get"
    );
    let s = cache.stats();
    assert_eq!(
        (s.entries, s.bytes),
        (entries, bytes),
        "{CHECK}: entries/bytes vs get: {s:?}"
    );
    for (t, want) in held.iter().enumerate() {
        let have = cache.have(&c, TrackId(t as u16));
        assert_eq!(
            seqs(&have),
            want.iter().copied().collect::<Vec<_>>(),
            "{CHECK}: have(t{t})"
        );
    }
}
