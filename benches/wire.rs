//! Encode and decode throughput of the wire codec.
//!
//! Run with: `cargo bench --bench wire -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hive::core::wire::{Data, Decoded, FrameDecoder, Have, Message, WireLimits, decode_frame};
use hive::core::{ContentHash, ContentId, FragmentId, SeqSet, TrackId};

/// A live peer's window: 30 s of 2 s fragments (15) on each of 4 tracks.
fn live_have() -> Message {
    let mut have = Have::snapshot();
    let first = 870_000_000; // sequence numbers from wall-clock time / 2 s
    for t in 0..4 {
        have.insert(TrackId(t), first, (first..first + 15).collect());
    }
    Message::Have(have)
}

/// A holey window: a peer that holds scattered fragments of a 60-fragment window per track.
fn holey_have() -> Message {
    let mut have = Have::snapshot();
    let first = 870_000_000u64;
    for t in 0..4u16 {
        let seqs: SeqSet = (first..first + 60)
            .filter(|s| (s * 7 + u64::from(t) * 3) % 5 < 2 || s % 11 == 0)
            .collect();
        have.insert(TrackId(t), first, seqs);
    }
    Message::Have(have)
}

fn data_16k() -> Message {
    let payload = Bytes::from((0..16 * 1024).map(|i| i as u8).collect::<Vec<u8>>());
    Message::Data(Data {
        request_id: 12,
        fragment: FragmentId::new(ContentId::derive("live/ch1"), TrackId(2), 870_000_014),
        total_len: 1_250_000,
        offset: 16 * 1024 * 10,
        hash: ContentHash::of(b"the whole fragment"),
        payload,
    })
}

fn frame_of(m: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    buf.freeze()
}

fn bench_have(c: &mut Criterion) {
    let limits = WireLimits::default();
    let mut group = c.benchmark_group("wire/have");
    group.throughput(Throughput::Elements(1));
    for (name, m) in [("live 4x15", live_have()), ("holey 4x60", holey_have())] {
        let frame = frame_of(&m);
        eprintln!("Have {name}: {} bytes encoded", frame.len());
        let mut buf = BytesMut::with_capacity(4096);
        group.bench_function(format!("encode {name}"), |b| {
            b.iter(|| {
                buf.clear();
                black_box(&m).encode(&mut buf);
                black_box(buf.len())
            })
        });
        group.bench_function(format!("decode {name}"), |b| {
            b.iter(|| decode_frame(black_box(&frame), &limits).unwrap())
        });
    }
    group.finish();
}

fn bench_data(c: &mut Criterion) {
    let limits = WireLimits::default();
    let m = data_16k();
    let frame = frame_of(&m);
    eprintln!("Data 16 KiB: {} bytes encoded", frame.len());
    let mut group = c.benchmark_group("wire/data");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    let mut buf = BytesMut::with_capacity(frame.len());
    group.bench_function("encode 16 KiB", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&m).encode(&mut buf);
            black_box(buf.len())
        })
    });
    group.bench_function("decode 16 KiB", |b| {
        b.iter(|| {
            let d = decode_frame(black_box(&frame), &limits).unwrap();
            debug_assert!(matches!(d, Decoded::Message(Message::Data(_))));
            d
        })
    });
    // The decoder slices the payload without touching it, so the line above does not grow with
    // the chunk size. What a receiver really pays per byte is decoding plus hashing the payload
    // into the fragment's BLAKE3 (verified before anything is cached or served):
    group.bench_function("decode + BLAKE3 16 KiB", |b| {
        b.iter(|| {
            let d = decode_frame(black_box(&frame), &limits).unwrap();
            match d {
                Decoded::Message(Message::Data(data)) => ContentHash::of(&data.payload),
                _ => unreachable!("a Data frame"),
            }
        })
    });
    // A byte stream of 64 such frames through the streaming decoder.
    let mut stream = BytesMut::new();
    for _ in 0..64 {
        m.encode(&mut stream);
    }
    let stream = stream.freeze();
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("stream decode 64 x 16 KiB", |b| {
        b.iter_batched(
            || BytesMut::from(&stream[..]),
            |mut rx| {
                let mut dec = FrameDecoder::new(limits.clone());
                let mut n = 0;
                while let Some(d) = dec.decode(&mut rx).unwrap() {
                    black_box(d);
                    n += 1;
                }
                assert_eq!(n, 64);
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_have, bench_data);
criterion_main!(benches);
