//! Property tests of the wire codec: round trips of every message, the streaming decoder on
//! arbitrary splits, `check` agreeing with the decoder, and no panic on arbitrary or mutated
//! input.

#[path = "common/strategies.rs"]
mod strategies;

use bytes::{Bytes, BytesMut};
use hive_core::wire::{Decoded, FrameDecoder, Message, WireError, WireLimits, decode_frame};
use proptest::collection::vec;
use proptest::prelude::*;

fn round_trip(m: &Message) -> Result<(), TestCaseError> {
    let frame = m.to_bytes();
    prop_assert_eq!(frame.len(), m.encoded_len());
    prop_assert_eq!(m.check(&WireLimits::default()), Ok(()));
    let back = decode_frame(&frame, &WireLimits::default());
    prop_assert_eq!(back, Ok(Decoded::Message(m.clone())));
    Ok(())
}

/// Feeds `bytes` to a fresh streaming decoder in one piece and collects what it yields, up to
/// the first error (whose frame, if any, was consumed) or framing error (which stops it).
fn stream_all(bytes: &[u8], limits: &WireLimits) -> Vec<Result<Decoded, WireError>> {
    let mut dec = FrameDecoder::new(limits.clone());
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(d)) => out.push(Ok(d)),
            Ok(None) => break,
            Err(e @ (WireError::FrameTooLarge { .. } | WireError::BadFrameLength { .. })) => {
                out.push(Err(e));
                break;
            }
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// If `decoded` is a message, re-encoding and decoding it again gives it back, and encoding is
/// idempotent.
fn reencodes(decoded: &Decoded) -> Result<(), TestCaseError> {
    if let Decoded::Message(m) = decoded {
        let again = m.to_bytes();
        let back = decode_frame(&again, &WireLimits::default());
        prop_assert_eq!(back, Ok(decoded.clone()));
        prop_assert_eq!(again, m.to_bytes());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hello_round_trips(m in strategies::hello()) { round_trip(&Message::Hello(m))?; }

    #[test]
    fn have_round_trips(m in strategies::have()) { round_trip(&Message::Have(m))?; }

    #[test]
    fn request_round_trips(m in strategies::request()) { round_trip(&Message::Request(m))?; }

    #[test]
    fn data_round_trips(m in strategies::data()) { round_trip(&Message::Data(m))?; }

    #[test]
    fn every_message_round_trips(m in strategies::message()) { round_trip(&m)?; }

    #[test]
    fn stream_decoder_reassembles_any_split(
        msgs in vec(strategies::message(), 0..8),
        cuts in vec(1usize..64, 1..32),
    ) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            m.encode(&mut wire);
        }
        let mut dec = FrameDecoder::default();
        let mut rx = BytesMut::new();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            i += 1;
            rx.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(d) = dec.decode(&mut rx).unwrap() {
                got.push(d.into_message().unwrap());
            }
        }
        prop_assert!(rx.is_empty());
        prop_assert_eq!(got, msgs);
    }

    /// `check` accepts a message exactly when a decoder with the same limits does.
    #[test]
    fn check_agrees_with_decoder(
        m in strategies::message(),
        small in (8u32..600, 0u32..20, 0u32..300, 1u32..8, 0u32..6, 0u32..40, 1u32..80, 0u32..200, 0u32..6, 0u32..4),
    ) {
        let mut limits = WireLimits::default();
        (limits.max_frame_len, limits.max_versions, limits.max_token_len, limits.max_have_tracks,
         limits.max_peers, limits.max_string_len, limits.max_have_bitmap_len, limits.max_have_ranges,
         limits.max_have_blocks, limits.max_peer_addrs) =
            (small.0 * 4, small.1, small.2, small.3, small.4, small.5, small.6, small.7, small.8 * 4, small.9);
        limits.max_chunk_len = small.2 * 4;
        limits.max_fragment_len = u64::from(small.0) * 1000;
        let checked = m.check(&limits);
        let decoded = decode_frame(&m.to_bytes(), &limits);
        prop_assert_eq!(checked.is_ok(), decoded.is_ok(), "check {:?} vs decode {:?}", checked, decoded);
    }

    /// Arbitrary bytes never make either decoder panic; what decodes re-encodes.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let limits = WireLimits::default();
        if let Ok(d) = decode_frame(&Bytes::from(bytes.clone()), &limits) {
            reencodes(&d)?;
        }
        for d in stream_all(&bytes, &limits).into_iter().flatten() {
            reencodes(&d)?;
        }
    }

    /// Arbitrary bodies behind a valid header, for every type: deeper than random bytes get.
    #[test]
    fn arbitrary_bodies_never_panic(kind in 0u8..16, body in vec(any::<u8>(), 0..300)) {
        let mut frame = Vec::with_capacity(body.len() + 6);
        frame.extend_from_slice(&(body.len() as u32 + 2).to_be_bytes());
        frame.push(1);
        frame.push(kind);
        frame.extend_from_slice(&body);
        if let Ok(d) = decode_frame(&Bytes::from(frame), &WireLimits::default()) {
            reencodes(&d)?;
        }
    }

    /// Valid frames with bytes overwritten, cut or inserted never make the decoder panic.
    #[test]
    fn mutated_frames_never_panic(
        m in strategies::message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut frame = m.encode_to_vec();
        for (at, byte, op) in edits {
            if frame.is_empty() {
                break;
            }
            let i = at.index(frame.len());
            match op {
                0 => frame[i] = byte,
                1 => frame.truncate(i),
                _ => frame.insert(i, byte),
            }
        }
        let limits = WireLimits::default();
        if let Ok(d) = decode_frame(&Bytes::from(frame.clone()), &limits) {
            reencodes(&d)?;
        }
        for d in stream_all(&frame, &limits).into_iter().flatten() {
            reencodes(&d)?;
        }
    }
}
