//! Bad input gives typed errors: truncation at every length, oversized and malformed frames,
//! unknown versions, and lists past their limits. Unknown types are skipped.

#[path = "common/samples.rs"]
mod samples;

use bytes::{Bytes, BytesMut};
use hive_core::wire::{
    Decoded, FrameDecoder, Message, Ping, Pong, WireError, WireLimits, decode_frame,
};
use hive_core::{PeerAddr, PeerId, PeerInfo};

fn limits() -> WireLimits {
    WireLimits::default()
}

/// A version-1 frame of type `kind` around `body`.
fn frame(kind: u8, body: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(body.len() + 6);
    f.extend_from_slice(&(body.len() as u32 + 2).to_be_bytes());
    f.push(1);
    f.push(kind);
    f.extend_from_slice(body);
    Bytes::from(f)
}

fn decode(kind: u8, body: &[u8]) -> Result<Decoded, WireError> {
    decode_frame(&frame(kind, body), &limits())
}

/// A sample's encoding with byte `at` replaced.
fn patched(msg: Message, at: usize, byte: u8) -> Result<Decoded, WireError> {
    let mut f = msg.encode_to_vec();
    f[at] = byte;
    decode_frame(&Bytes::from(f), &limits())
}

#[test]
fn truncated_at_every_prefix_length() {
    for (name, msg) in samples::all() {
        let full = msg.to_bytes();
        for n in 0..full.len() {
            let prefix = full.slice(..n);
            match decode_frame(&prefix, &limits()) {
                Err(WireError::Truncated { needed, have, .. }) => {
                    assert_eq!(have, n, "{name} cut at {n}");
                    assert!(needed > have, "{name} cut at {n}");
                }
                other => panic!("{name} cut at {n}: {other:?}"),
            }
            // The streaming decoder waits for more, consuming nothing.
            let mut buf = BytesMut::from(&prefix[..]);
            assert_eq!(
                FrameDecoder::default().decode(&mut buf),
                Ok(None),
                "{name} at {n}"
            );
            assert_eq!(buf.len(), n);
        }
    }
}

#[test]
fn body_cut_short_behind_a_consistent_header_is_truncated() {
    for (name, msg) in samples::all() {
        let full = msg.to_bytes();
        let (kind, body) = (full[5], &full[6..]);
        for n in 0..body.len() {
            match decode(kind, &body[..n]) {
                Err(WireError::Truncated { .. }) => {}
                other => panic!("{name} body cut at {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn oversized_frame_is_rejected_before_allocation() {
    let limit = u64::from(limits().max_frame_len);
    // A header claiming 4 GiB.
    let header = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        decode_frame(&header, &limits()),
        Err(WireError::FrameTooLarge {
            len: 4 + u64::from(u32::MAX),
            limit
        })
    );
    let mut buf = BytesMut::with_capacity(4);
    buf.extend_from_slice(&header);
    let cap = buf.capacity();
    assert!(matches!(
        FrameDecoder::default().decode(&mut buf),
        Err(WireError::FrameTooLarge { .. })
    ));
    // Nothing reserved, nothing consumed: the connection must be closed.
    assert_eq!((buf.len(), buf.capacity()), (4, cap));

    // One byte over the limit is refused; exactly at the limit is awaited.
    let at = limits().max_frame_len - 4;
    let mut over = BytesMut::from(&(at + 1).to_be_bytes()[..]);
    assert_eq!(
        FrameDecoder::default().decode(&mut over),
        Err(WireError::FrameTooLarge {
            len: limit + 1,
            limit
        })
    );
    let mut exact = BytesMut::from(&at.to_be_bytes()[..]);
    assert_eq!(FrameDecoder::default().decode(&mut exact), Ok(None));
    assert!(exact.capacity() >= limit as usize);
}

#[test]
fn frame_length_below_header_is_an_error() {
    for len in [0u32, 1] {
        let mut f = len.to_be_bytes().to_vec();
        f.resize(4 + len as usize, 1);
        assert_eq!(
            decode_frame(&Bytes::from(f), &limits()),
            Err(WireError::BadFrameLength { len })
        );
    }
}

#[test]
fn unknown_version_is_a_typed_error_and_the_stream_goes_on() {
    let bad = Bytes::from_static(&[0, 0, 0, 2, 9, 0x07]);
    assert_eq!(
        decode_frame(&bad, &limits()),
        Err(WireError::UnknownVersion {
            version: 9,
            supported: &[1]
        })
    );
    let mut buf = BytesMut::from(&bad[..]);
    buf.extend_from_slice(&samples::ping().to_bytes());
    let mut dec = FrameDecoder::default();
    assert!(matches!(
        dec.decode(&mut buf),
        Err(WireError::UnknownVersion { .. })
    ));
    assert_eq!(
        dec.decode(&mut buf),
        Ok(Some(Decoded::Message(samples::ping())))
    );
}

#[test]
fn unknown_type_is_skipped_in_a_stream() {
    let mut buf = BytesMut::new();
    Message::Ping(Ping { nonce: 1 }).encode(&mut buf);
    buf.extend_from_slice(&frame(0xee, b"a future message"));
    Message::Pong(Pong { nonce: 2 }).encode(&mut buf);
    let mut dec = FrameDecoder::default();
    let mut got = Vec::new();
    while let Some(d) = dec.decode(&mut buf).unwrap() {
        got.push(d);
    }
    assert_eq!(
        got,
        vec![
            Decoded::Message(Message::Ping(Ping { nonce: 1 })),
            Decoded::Unknown {
                kind: 0xee,
                len: 22
            },
            Decoded::Message(Message::Pong(Pong { nonce: 2 })),
        ]
    );
}

#[test]
fn trailing_bytes_are_errors() {
    let mut f = samples::ping().encode_to_vec();
    f.push(0);
    assert_eq!(
        decode_frame(&Bytes::from(f), &limits()),
        Err(WireError::TrailingBytes {
            context: "frame",
            extra: 1
        })
    );
    assert_eq!(
        decode(0x05, &[0x07, 0x00]),
        Err(WireError::TrailingBytes {
            context: "Cancel",
            extra: 1
        })
    );
    assert_eq!(
        decode(0x07, &[0x00]),
        Err(WireError::TrailingBytes {
            context: "Choke",
            extra: 1
        })
    );
}

#[test]
fn bad_role_code() {
    // Hello: header 6, versions 2, peer id 32, content id 32: the role is byte 72.
    assert_eq!(
        patched(samples::hello(), 72, 9),
        Err(WireError::InvalidCode {
            field: "role",
            code: 9
        })
    );
}

#[test]
fn bad_address_family() {
    // PeerExchange: header 6, count 1, id 32, role, capacity, locality flags, address count.
    assert_eq!(
        patched(samples::peer_exchange(), 43, 5),
        Err(WireError::InvalidCode {
            field: "address family",
            code: 5
        })
    );
}

#[test]
fn chunk_beyond_total_length() {
    // Data: header 6, request id 1, fragment 39, total length 1: the offset is byte 47.
    assert_eq!(
        patched(samples::data(), 47, 7),
        Err(WireError::Malformed {
            field: "Data chunk",
            reason: "extends beyond the fragment's total length"
        })
    );
}

#[test]
fn counts_and_lengths_over_their_limits() {
    let two_pow_32 = [0x80, 0x80, 0x80, 0x80, 0x10];
    let over = |what: &'static str, len: u64, limit: u64| {
        Err(WireError::LimitExceeded { what, len, limit })
    };
    // A list count of 2^32 with nothing behind it.
    assert_eq!(
        decode(0x09, &two_pow_32),
        over("PeerExchange peers", 1 << 32, 64)
    );
    assert_eq!(
        decode(0x02, &[[1].as_slice(), &two_pow_32].concat()),
        over("Have tracks", 1 << 32, 64)
    );
    assert_eq!(
        decode(0x01, &two_pow_32),
        over("Hello versions", 1 << 32, 16)
    );
    // A Data chunk longer than allowed, declared without its bytes.
    let mut body = vec![0x07];
    body.extend_from_slice(&[0x22; 32]);
    body.extend_from_slice(&[0x02, 0x01, 0x00]); // track 2, seq 1, no range
    body.extend_from_slice(&[0x80, 0x80, 0x40, 0x00]); // total 1 MiB, offset 0
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&[0x81, 0x80, 0x10]); // chunk of 256 KiB + 1
    assert_eq!(
        decode(0x04, &body),
        over("Data chunk", 256 * 1024 + 1, 256 * 1024)
    );
    // A total fragment length past the limit.
    let mut body = vec![0x07];
    body.extend_from_slice(&[0x22; 32]);
    body.extend_from_slice(&[0x02, 0x01, 0x00]);
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // total 2^32 - 1
    assert_eq!(
        decode(0x04, &body),
        over("Data total length", (1 << 32) - 1, 256 << 20)
    );
    // Counts within the limit but past the bytes left are truncation, caught before
    // allocating.
    assert!(matches!(
        decode(0x09, &[64]),
        Err(WireError::Truncated {
            context: "PeerExchange peers",
            ..
        })
    ));
}

#[test]
fn token_and_string_limits() {
    let mut limits = WireLimits::default();
    limits.max_token_len = 2;
    assert_eq!(
        decode_frame(&samples::hello().to_bytes(), &limits),
        Err(WireError::LimitExceeded {
            what: "Hello token",
            len: 3,
            limit: 2
        })
    );
    limits = WireLimits::default();
    limits.max_string_len = 2;
    assert_eq!(
        decode_frame(&samples::bye().to_bytes(), &limits),
        Err(WireError::LimitExceeded {
            what: "Bye detail",
            len: 3,
            limit: 2
        })
    );
    assert!(matches!(
        decode_frame(&samples::hello().to_bytes(), &limits),
        Err(WireError::LimitExceeded {
            what: "locality site",
            ..
        })
    ));
}

#[test]
fn malformed_fields() {
    let malformed =
        |field: &'static str, reason: &'static str| Err(WireError::Malformed { field, reason });
    // Varints: overlong, and past 64 bits.
    assert_eq!(
        decode(0x05, &[0x87, 0x00]),
        malformed("request id", "overlong varint")
    );
    assert_eq!(
        decode(0x05, &[0xff; 10]),
        malformed("request id", "varint exceeds 64 bits")
    );
    // Empty version list.
    assert_eq!(
        decode(0x01, &[0x00]),
        malformed("Hello versions", "no version listed")
    );
    // Site not UTF-8: Hello's site starts after role (72), capacity (3), flags, AS (2), length.
    assert_eq!(
        patched(samples::hello(), 80, 0xff),
        malformed("locality site", "not UTF-8")
    );
    // Unknown locality flag bit.
    assert_eq!(
        patched(samples::hello(), 76, 0x0f),
        Err(WireError::InvalidCode {
            field: "locality flags",
            code: 0x0f
        })
    );
    // Byte range flag 2 in a Request's fragment (header 6, id 1, content 32, track 1, seq 2).
    assert_eq!(
        patched(samples::request(), 42, 2),
        Err(WireError::InvalidCode {
            field: "byte range flag",
            code: 2
        })
    );
    // A track id past 16 bits.
    let mut body = vec![0x07];
    body.extend_from_slice(&[0x22; 32]);
    body.extend_from_slice(&[0x80, 0x80, 0x04]); // 65536
    assert_eq!(
        decode(0x03, &body),
        malformed("fragment track", "value exceeds 16 bits")
    );
}

#[test]
fn malformed_have() {
    // flags, track count, then per track: id, floor, block count, blocks.
    assert_eq!(
        decode(0x02, &[0x02, 0x00]),
        Err(WireError::InvalidCode {
            field: "Have flags",
            code: 2
        })
    );
    assert_eq!(
        decode(0x02, &[0x01, 0x02, 0x05, 0x00, 0x00, 0x05, 0x00, 0x00]),
        Err(WireError::Malformed {
            field: "Have track",
            reason: "track ids not strictly increasing"
        })
    );
    assert_eq!(
        decode(0x02, &[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02]),
        Err(WireError::Malformed {
            field: "Have bitmap",
            reason: "does not start with a set bit"
        })
    );
    assert_eq!(
        decode(
            0x02,
            &[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00]
        ),
        Err(WireError::Malformed {
            field: "Have bitmap",
            reason: "ends with a zero byte"
        })
    );
    // A run from u64::MAX - 1 (floor u64::MAX, delta -1) of length 3 overflows.
    let mut body = vec![0x01, 0x01, 0x00];
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    body.extend_from_slice(&[0x01, 0x01, 0x04]);
    assert_eq!(
        decode(0x02, &body),
        Err(WireError::Malformed {
            field: "Have block",
            reason: "sequence number overflows"
        })
    );
    // A bitmap of alternating bits makes many ranges: bounded by max_have_ranges.
    let mut limits = WireLimits::default();
    limits.max_have_ranges = 10;
    let mut body = vec![0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x0f];
    body.extend_from_slice(&[0x55; 8]);
    assert_eq!(
        decode_frame(&frame(0x02, &body), &limits),
        Err(WireError::LimitExceeded {
            what: "Have ranges",
            len: 11,
            limit: 10
        })
    );
    // A bitmap past max_have_bitmap_len.
    limits.max_have_bitmap_len = 4;
    assert_eq!(
        decode_frame(&frame(0x02, &body), &limits),
        Err(WireError::LimitExceeded {
            what: "Have bitmap",
            len: 8,
            limit: 4
        })
    );
}

#[test]
fn only_socket_addresses_travel() {
    let mut peer = PeerInfo::new(PeerId::from_bytes([1; 32]), PeerAddr::Memory(7));
    peer.addrs.push(PeerAddr::Rendezvous);
    peer.addrs
        .push(PeerAddr::Socket("192.0.2.9:1".parse().unwrap()));
    let m = Message::PeerExchange(hive_core::wire::PeerExchange {
        peers: vec![peer.clone()],
    });
    let Ok(Decoded::Message(Message::PeerExchange(back))) = decode_frame(&m.to_bytes(), &limits())
    else {
        panic!("did not decode");
    };
    assert_eq!(
        back.peers[0].addrs,
        vec![PeerAddr::Socket("192.0.2.9:1".parse().unwrap())]
    );
}
