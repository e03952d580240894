//! Cost of one `on_ack` for each congestion controller.
//!
//! Run with: `cargo bench --bench cc`
//!
//! Each iteration feeds one ack to a controller that has been warmed up into congestion
//! avoidance with a realistic delay history, varying the RTT and one-way delay a little so
//! delay-based controllers walk their filters.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hive::core::cc::{AckEvent, CongestionController};
use hive::core::time::{Duration, Instant};
use hive_cc::Algorithm;

fn ack(now: Instant, i: u64) -> AckEvent {
    let jitter = Duration::from_micros((i * 7919) % 20_000);
    AckEvent {
        bytes_acked: 1200,
        bytes_in_flight: 60_000,
        rtt: Duration::from_millis(40) + jitter,
        min_rtt: Duration::from_millis(40),
        one_way_delay: Some(Duration::from_millis(20) + jitter),
        sent_time: now - Duration::from_millis(40),
        app_limited: false,
    }
}

fn warm(cc: &mut dyn CongestionController) -> (Instant, u64) {
    let mut now = Instant::from_secs(1);
    for i in 0..10_000 {
        now += Duration::from_micros(960);
        cc.on_sent(now, 1200, 60_000);
        cc.on_ack(now, &ack(now, i));
    }
    (now, 10_000)
}

fn on_ack(c: &mut Criterion) {
    let mut g = c.benchmark_group("on_ack");
    g.throughput(Throughput::Elements(1));
    for algo in [
        Algorithm::NewReno,
        Algorithm::Cubic,
        Algorithm::Ledbat,
        Algorithm::LedbatPlusPlus,
        Algorithm::Dtl(0.5),
    ] {
        let mut cc = algo.build(1200);
        let (mut now, mut i) = warm(cc.as_mut());
        g.bench_function(algo.to_string(), |b| {
            b.iter(|| {
                now += Duration::from_micros(960);
                i += 1;
                let a = ack(now, i);
                cc.on_ack(now, black_box(&a));
                black_box(cc.window())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, on_ack);
criterion_main!(benches);
