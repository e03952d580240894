//! Proof that hostile frames cannot make the decoder allocate past the limits: a heap profiler
//! (dhat, in testing mode) counts every allocation while frames claiming 4 GiB, list counts of
//! 2^32 and range-amplifying bitmaps are decoded.
//!
//! dhat replaces the global allocator of this test binary only, and allows one profiler per
//! process: hence one test in this file.

use bytes::{Bytes, BytesMut};
use hive_core::wire::{Decoded, FrameDecoder, Message, WireError, WireLimits, decode_frame};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// A version-1 frame of type `kind` around `body`.
fn frame(kind: u8, body: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(body.len() + 6);
    f.extend_from_slice(&(body.len() as u32 + 2).to_be_bytes());
    f.push(1);
    f.push(kind);
    f.extend_from_slice(body);
    // Through BytesMut, as a transport hands frames over.
    BytesMut::from(&f[..]).freeze()
}

const TWO_POW_32: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x10];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn hostile_frames_allocate_within_the_limits() {
    let limits = WireLimits::default();
    let content = [0x22u8; 32];

    // Everything hostile is built before profiling starts, so only decoding is counted.
    let huge_header = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 1]);
    let mut huge_stream = BytesMut::with_capacity(6);
    huge_stream.extend_from_slice(&huge_header);
    let small_hostile: Vec<(&str, Bytes)> = vec![
        ("4 GiB header", huge_header.clone()),
        ("PeerExchange of 2^32 peers", frame(0x09, &TWO_POW_32)),
        (
            "Have of 2^32 tracks",
            frame(0x02, &cat(&[&[1], &TWO_POW_32])),
        ),
        (
            "Have track of 2^32 blocks",
            frame(0x02, &cat(&[&[1, 1, 0, 0], &TWO_POW_32])),
        ),
        ("Hello of 2^32 versions", frame(0x01, &TWO_POW_32)),
        (
            "Hello token of 2^32 bytes",
            frame(
                0x01,
                &cat(&[&[1, 1], &[0x11; 32], &content, &[0, 0, 0], &TWO_POW_32]),
            ),
        ),
        (
            "Data chunk of 2^32 bytes",
            frame(
                0x04,
                &cat(&[
                    &[7],
                    &content,
                    &[2, 1, 0],
                    &[0xff; 9],
                    &[1, 0],
                    &[0; 32],
                    &TWO_POW_32,
                ]),
            ),
        ),
        ("64 peers announced, none sent", frame(0x09, &[64])),
        ("64 tracks announced, none sent", frame(0x02, &[1, 64])),
        (
            "Bye detail of 2^32 bytes",
            frame(0x0a, &cat(&[&[0], &TWO_POW_32])),
        ),
    ];
    // A 16 KiB Data chunk: decoded zero-copy.
    let payload = Bytes::from(vec![0xabu8; 16 * 1024]);
    let data = Message::Data(hive_core::wire::Data {
        request_id: 1,
        fragment: hive_core::FragmentId::new(
            hive_core::ContentId::from_bytes(content),
            hive_core::TrackId(0),
            1,
        ),
        total_len: payload.len() as u64,
        offset: 0,
        hash: hive_core::ContentHash::of(&payload),
        payload,
    });
    let data_frame = BytesMut::from(&data.encode_to_vec()[..]).freeze();
    // Range amplification: a Have within the default frame limit, of alternating-bit bitmaps,
    // would decode to 4 million ranges (a 144 MB peak, measured) without `max_have_ranges`.
    let mut amplifier = vec![1u8, 64];
    for track in 0..64u8 {
        amplifier.extend_from_slice(&[track, 0, 4]); // track, floor 0, 4 blocks
        for block in 0..4 {
            // gap (zig-zag 0 for the first block, then 1), 4 KiB bitmap of 0x55.
            amplifier.extend_from_slice(&[u8::from(block > 0), 0xff, 0x3f]);
            amplifier.extend_from_slice(&[0x55; 4096]);
        }
    }
    let amplifier = frame(0x02, &amplifier);
    assert!(amplifier.len() <= limits.max_frame_len as usize);

    let _profiler = dhat::Profiler::builder().testing().build();

    // 1. Hostile headers and counts: refused before allocating for them (the only allocation
    //    is the 1-byte version list of the Hello whose token is then refused).
    for (what, f) in &small_hostile {
        let r = decode_frame(f, &limits);
        assert!(r.is_err(), "{what}: {r:?}");
    }
    let r = FrameDecoder::new(limits.clone()).decode(&mut huge_stream);
    assert!(matches!(r, Err(WireError::FrameTooLarge { .. })), "{r:?}");
    let stats = dhat::HeapStats::get();
    eprintln!(
        "hostile headers and counts: {} allocations, {} bytes, peak {} bytes",
        stats.total_blocks, stats.total_bytes, stats.max_bytes
    );
    dhat::assert!(stats.max_bytes <= 64, "peak {} bytes", stats.max_bytes);

    // 2. A 16 KiB Data chunk is a slice of the frame: no copy (`bytes` allocates its small
    //    shared header once per buffer, on the first slice).
    let before = dhat::HeapStats::get();
    let decoded = decode_frame(&data_frame, &limits);
    let after = dhat::HeapStats::get();
    dhat::assert!(matches!(decoded, Ok(Decoded::Message(Message::Data(_)))));
    drop(decoded);
    let data_bytes = after.total_bytes - before.total_bytes;
    eprintln!("16 KiB Data decode: {data_bytes} bytes allocated");
    dhat::assert!(
        data_bytes < 1024,
        "Data decode allocated {data_bytes} bytes"
    );

    // 3. Range amplification stops at max_have_ranges; the peak stays far below what the
    //    frame could otherwise expand to.
    let r = decode_frame(&amplifier, &limits);
    let ranges_limit = u64::from(limits.max_have_ranges);
    assert!(
        matches!(r, Err(WireError::LimitExceeded { what: "Have ranges", limit, .. }) if limit == ranges_limit),
        "{r:?}"
    );
    let stats = dhat::HeapStats::get();
    eprintln!(
        "Have range amplifier ({} byte frame): peak {} bytes",
        amplifier.len(),
        stats.max_bytes
    );
    dhat::assert!(stats.max_bytes < 1 << 20, "peak {} bytes", stats.max_bytes);
}
