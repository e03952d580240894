//! Throughput of the two standard fragment caches under concurrent use.
//!
//! Run with: `cargo bench --bench cache -- --warm-up-time 1 --measurement-time 3`
//!
//! Each benchmark runs 1 and 2 threads; one iteration is one operation on *each* thread, so
//! the time reported is the wall time per operation per thread and the throughput counts the
//! operations of all threads. Threads start together on a barrier; the time of the slowest is
//! reported. Fragments share one buffer and a precomputed hash, so hashing and allocating the
//! payload stay out of the measurement.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant as WallInstant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hive_core::cache::{CachedFragment, FragmentCache, LiveWindowCache, VodCache};
use hive_core::time::Instant;
use hive_core::{ContentHash, ContentId, FragmentId, TrackId};

const FRAGMENT_LEN: usize = 4096;
const SEGMENT: Duration = Duration::from_secs(2);
/// Tracks (live) or fragments (VoD) the `get` benchmarks read, all hits.
const LIVE_TRACKS: u16 = 4;
const VOD_FRAGMENTS: u64 = 2048;

struct Payload {
    data: Bytes,
    hash: ContentHash,
}

impl Payload {
    fn new() -> Self {
        let data = Bytes::from(vec![0x5A; FRAGMENT_LEN]);
        let hash = ContentHash::of(&data);
        Payload { data, hash }
    }

    fn fragment(&self, id: FragmentId) -> CachedFragment {
        CachedFragment {
            id,
            data: self.data.clone(),
            hash: self.hash,
            media_time: SEGMENT.saturating_mul(u32::try_from(id.sequence).unwrap_or(u32::MAX)),
            duration: SEGMENT,
        }
    }
}

/// Runs `op(thread, i)` for `i` in `0..iters` on each of `threads` threads at once and returns
/// the wall time of the slowest thread.
fn on_threads<F: Fn(usize, u64) + Sync>(threads: usize, iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = WallInstant::now();
                    for i in 0..iters {
                        op(t, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn live(c: &mut Criterion) {
    let payload = Payload::new();
    let content = ContentId::derive("bench/live");

    let mut group = c.benchmark_group("live/get");
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                let cache = LiveWindowCache::default();
                let mut ids = Vec::new();
                for track in 0..LIVE_TRACKS {
                    for seq in 0..15 {
                        let id = FragmentId::new(content, TrackId(track), seq);
                        cache.insert(Instant::ZERO, payload.fragment(id));
                        ids.push(id);
                    }
                }
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |t, i| {
                        let id = &ids[(i as usize * 7 + t * 31) % ids.len()];
                        black_box(cache.get(id)).unwrap();
                    })
                });
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("live/insert");
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    // Each thread feeds its own track: the window slides, one eviction per insert.
                    let cache = LiveWindowCache::default();
                    on_threads(threads, iters, |t, i| {
                        let id = FragmentId::new(content, TrackId(t as u16), i);
                        black_box(cache.insert(Instant::ZERO, payload.fragment(id)));
                    })
                });
            },
        );
    }
    group.finish();
}

fn vod(c: &mut Criterion) {
    let payload = Payload::new();
    let content = ContentId::derive("bench/vod");

    // One shard below 128 MiB; 8 shards of 64 MiB at 512 MiB.
    for (label, budget) in [("16MiB", 16u64 << 20), ("512MiB", 512 << 20)] {
        let mut group = c.benchmark_group(format!("vod/get/{label}"));
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(threads),
                &threads,
                |b, &threads| {
                    let cache = VodCache::new(budget);
                    let ids: Vec<FragmentId> = (0..VOD_FRAGMENTS)
                        .map(|seq| FragmentId::new(content, TrackId((seq % 4) as u16), seq))
                        .collect();
                    for id in &ids {
                        cache.insert(Instant::ZERO, payload.fragment(*id));
                    }
                    b.iter_custom(|iters| {
                        on_threads(threads, iters, |t, i| {
                            let id = &ids[(i as usize * 7 + t * 31) % ids.len()];
                            black_box(cache.get(id)).unwrap();
                        })
                    });
                },
            );
        }
        group.finish();

        let mut group = c.benchmark_group(format!("vod/insert/{label}"));
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(threads),
                &threads,
                |b, &threads| {
                    b.iter_custom(|iters| {
                        // Distinct ids per thread; once the budget is full every insert evicts.
                        let cache = VodCache::new(budget);
                        on_threads(threads, iters, |t, i| {
                            let id = FragmentId::new(content, TrackId(t as u16), i);
                            black_box(cache.insert(Instant::ZERO, payload.fragment(id)));
                        })
                    });
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, live, vod);
criterion_main!(benches);
