//! Feeds arbitrary bytes to `hive_core::wire`'s decoders: `decode_frame` on the input as is,
//! `decode_frame` on the input behind a corrected length prefix (so the fuzzer reaches message
//! bodies without having to guess lengths), and the streaming `FrameDecoder` on the input cut in
//! two. Whatever decodes must re-encode to a frame that decodes to the same message, with a
//! stable encoding, an exact `encoded_len` and a passing `check`.

#![no_main]

use bytes::{Bytes, BytesMut};
use hive_core::wire::{Decoded, FrameDecoder, WireError, WireLimits, decode_frame};
use libfuzzer_sys::fuzz_target;

fn reencodes(decoded: &Decoded, limits: &WireLimits) {
    let Decoded::Message(m) = decoded else {
        return;
    };
    let again = m.to_bytes();
    assert_eq!(again.len(), m.encoded_len(), "encoded_len of {m:?}");
    assert_eq!(m.check(limits), Ok(()), "check of {m:?}");
    let back = decode_frame(&again, limits).expect("a re-encoded message decodes");
    assert_eq!(&back, decoded, "re-encoded message decodes differently");
    if let Decoded::Message(m2) = &back {
        assert_eq!(m2.to_bytes(), again, "encoding is not stable");
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = WireLimits::default();

    // 1. The input as one frame.
    if let Ok(d) = decode_frame(&Bytes::copy_from_slice(data), &limits) {
        reencodes(&d, &limits);
    }

    // 2. The input as version, type and body behind a correct length prefix.
    if data.len() >= 2 && data.len() + 4 <= limits.max_frame_len as usize {
        let mut framed = Vec::with_capacity(data.len() + 4);
        framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
        framed.extend_from_slice(data);
        if let Ok(d) = decode_frame(&Bytes::from(framed), &limits) {
            reencodes(&d, &limits);
        }
    }

    // 3. The input as a byte stream arriving in two pieces.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut decoder = FrameDecoder::new(limits.clone());
    let mut buf = BytesMut::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(d)) => reencodes(&d, &limits),
                Ok(None) => break,
                // Framing lost: a real connection closes here.
                Err(WireError::FrameTooLarge { .. } | WireError::BadFrameLength { .. }) => return,
                // One bad frame, consumed: go on with the next.
                Err(_) => {}
            }
        }
    }
});
