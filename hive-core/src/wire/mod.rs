//! The binary protocol agents speak to each other.
//!
//! Agents exchange [`Message`]s over a transport connection, one message per frame.
//! The message set follows PPSPP (RFC 7574) where it fits — HANDSHAKE, HAVE, REQUEST, DATA,
//! CANCEL, CHOKE/UNCHOKE, PEX — adapted to fragments of adaptive video: fragments are named by
//! [`FragmentId`](crate::FragmentId) instead of chunk bins, requests carry a deadline and a
//! priority, and data chunks are byte ranges of a fragment whose BLAKE3 hash travels with them
//! (instead of RFC 7574's Merkle hash trees, §5).
//!
//! ```
//! use hive_core::wire::{decode_frame, Decoded, Message, Request, WireLimits};
//! use hive_core::{ContentId, FragmentId, TrackId};
//!
//! let req = Message::Request(Request {
//!     request_id: 42,
//!     fragment: FragmentId::new(ContentId::derive("live/ch1"), TrackId(2), 1041),
//!     deadline_ms: 1500,
//!     priority: 0,
//!     resume_offset: 0,
//! });
//! let frame = req.to_bytes(); // one whole frame: hand it to the transport
//! assert_eq!(frame.len(), req.encoded_len());
//! let back = decode_frame(&frame, &WireLimits::default())?;
//! assert_eq!(back, Decoded::Message(req));
//! # Ok::<(), hive_core::wire::WireError>(())
//! ```
//!
//! # Frames
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------------------------------------------------------+
//! |                 length (u32, big-endian) = 2 + N              |
//! +---------------+---------------+-------------------------------+
//! |    version    |     type      |    body (N bytes) ...         |
//! +---------------+---------------+-------------------------------+
//! ```
//!
//! - `length` counts the bytes after itself: version, type and body. A frame is
//!   `4 + length` bytes; that total may not exceed [`WireLimits::max_frame_len`], checked as
//!   soon as the 4 prefix bytes are read, before anything is allocated or awaited.
//! - `version` is the frame format version, [`VERSION`] (= 1) today.
//! - `type` is the [`MessageKind`] code. The body must be consumed exactly.
//!
//! A transport that carries whole messages (a WebRTC data channel message, a datagram of
//! Hive's UDP transport) hands each frame to [`decode_frame`]; a byte stream (a QUIC or TCP
//! stream) goes through a [`FrameDecoder`]. The prefix is kept on message transports too, so a
//! frame is the same bytes everywhere.
//!
//! # Field encodings
//!
//! | notation  | encoding |
//! |-----------|----------|
//! | `u8`      | one byte |
//! | `u16be`, `u64be` | fixed-width big-endian |
//! | `varint`  | unsigned LEB128: 7 bits a byte, least significant first, high bit = more; at most 10 bytes; overlong forms are rejected, so each value has one encoding. Fields narrower than 64 bits reject larger values |
//! | `[N]`     | N raw bytes |
//! | `bytes`   | `varint` length, then that many bytes |
//! | `string`  | `bytes` holding UTF-8 |
//!
//! Shared structures:
//!
//! - **fragment** (a [`FragmentId`](crate::FragmentId)): content id `[32]` · track `varint`
//!   (≤ 65535) · sequence `varint` · range flag `u8` (0: none, 1: a range follows) ·
//!   if 1: start `varint` · length `varint`.
//! - **locality** (a [`Locality`](crate::Locality)): flags `u8` (`0x01` AS number, `0x02` site,
//!   `0x04` country; other bits must be 0) · then, for each flag set in that order: AS number
//!   `varint` (≤ u32) · site `string` · country `[2]`.
//! - **peer** (a [`PeerInfo`](crate::PeerInfo)): peer id `[32]` · role `u8` · upload kbit/s
//!   `varint` · locality · address count `varint` · addresses, each: family `u8` (4: IPv4
//!   `[4]`, 6: IPv6 `[16]`) · port `u16be`. Only socket addresses are sent (see
//!   [`PeerExchange`]).
//! - **role**: [`Role::code`](crate::Role::code): 0 peer, 1 supernode, 2 consume-only,
//!   3 seeder.
//!
//! # Messages
//!
//! | type | message | body |
//! |------|---------|------|
//! | `0x01` | [`Hello`] | versions `bytes` (each byte a version; 1 to [`max_versions`](WireLimits::max_versions)) · peer id `[32]` · content id `[32]` · role `u8` · upload kbit/s `varint` · locality · registrar token `bytes` |
//! | `0x02` | [`Have`] | flags `u8` (1 snapshot, 0 add) · track count `varint` · tracks (ids strictly increasing), each: track `varint` · floor `varint` · block count `varint` · blocks (below) |
//! | `0x03` | [`Request`] | request id `varint` · fragment · deadline ms `varint` (≤ u32) · priority `u8` · resume offset `varint` |
//! | `0x04` | [`Data`] | request id `varint` · fragment · total length `varint` · offset `varint` · BLAKE3 hash of the whole fragment `[32]` · chunk `bytes` (`offset + chunk length ≤ total length`) |
//! | `0x05` | [`Cancel`] | request id `varint` |
//! | `0x06` | [`Reject`] | request id `varint` · reason `u8` ([`RejectReason`]; unknown codes are kept) |
//! | `0x07` | `Choke` | empty |
//! | `0x08` | `Unchoke` | empty |
//! | `0x09` | [`PeerExchange`] | peer count `varint` · peers |
//! | `0x0a` | [`Bye`] | reason `u8` ([`ByeReason`]; unknown codes are kept) · detail `string` |
//! | `0x0b` | [`Ping`] | nonce `u64be` |
//! | `0x0c` | [`Pong`] | nonce `u64be` |
//!
//! ## `Have` blocks
//!
//! A track's set of sequence numbers is a list of blocks in increasing order, each starting
//! after the previous one ends:
//!
//! ```text
//! block  = gap:varint  head:varint  [bitmap bytes]
//! start  = floor + unzigzag(gap)      (first block; wrapping, so any start is expressible)
//!        = previous end + 1 + gap     (other blocks)
//! head   = (len - 1) << 1             run: start ..= start + len - 1
//!        = (nbytes - 1) << 1 | 1      bitmap: nbytes bytes follow; bit i of the bitmap
//!                                     (bit i % 8 of byte i / 8, least significant first)
//!                                     set means start + i is held. The first bit must be
//!                                     set and the last byte non-zero.
//! ```
//!
//! The encoder chooses runs or bitmaps to minimise bytes (see [`Have`]). A live
//! window of 15 fragments on each of 4 tracks takes 32 to 44 bytes in all, frame header
//! included.
//!
//! # Limits
//!
//! Every length and count on the wire — frame, token, string, list, bitmap, chunk, fragment
//! length, and the ranges a decoded `Have` allocates — is bounded by a field of
//! [`WireLimits`], and checked against the declared value before anything is allocated for it.
//! List counts are also checked against the bytes left (each item takes a minimum of bytes), so
//! `Vec::with_capacity` never sees a count the input does not back. Decoding never panics.
//! Senders can check a message against the same bounds with [`Message::check`].
//!
//! # Versions and forward compatibility
//!
//! - Each side's first message is a [`Hello`] listing the versions it speaks (RFC 7574 §7.2
//!   and §7.3 carry a version and a minimum version in the handshake instead); both then use the
//!   highest version listed by both ([`negotiate`]), and close with
//!   [`Bye`]/[`ByeReason::ProtocolError`] if there is none. `Hello` frames are always sent with
//!   frame version 1, so any peer can read them.
//! - A frame of a version this codec does not speak is refused with
//!   [`WireError::UnknownVersion`]: a new version may change any body.
//! - Within a version, a frame of an **unknown type** is skipped: decoding returns
//!   [`Decoded::Unknown`] and the caller ignores it, so message types can be added without a
//!   new version. (PPSPP's messages are not length-prefixed, so RFC 7574 §7.10 has peers list the
//!   messages they support instead; the length prefix makes skipping possible.)
//! - Bodies are strict: unknown flag bits, unknown role or address-family codes, and trailing
//!   bytes are errors. A new field means a new message type or a new version. Reason codes of
//!   `Reject` and `Bye` are the exception: unknown codes are preserved
//!   ([`RejectReason::Unknown`]) because they only inform.
//!
//! # Tests
//!
//! Golden vectors (one per message, `tests/wire_vectors.rs`), property tests (round trips,
//! arbitrary bytes), bad-input tests, a heap-profiling test proving hostile frames cannot make
//! the decoder allocate past the limits (`tests/wire_alloc.rs`), and a cargo-fuzz target
//! (`fuzz/`, see its README).

mod check;
mod decode;
mod encode;
mod error;
mod frame;
mod have;
mod limits;
mod message;
mod reader;
mod varint;

pub use error::WireError;
pub use frame::{Decoded, FrameDecoder, decode_frame};
pub use have::{ENCODER_MAX_BITMAP_LEN, Have, HaveKind, HaveTracks, TrackHave};
pub use limits::WireLimits;
pub use message::{
    Bye, ByeReason, Cancel, Data, Hello, Message, MessageKind, PeerExchange, Ping, Pong, Reject,
    RejectReason, Request,
};

/// The frame version this codec writes.
pub const VERSION: u8 = 1;

/// The frame versions this codec reads (and lists in its `Hello`).
pub const SUPPORTED_VERSIONS: &[u8] = &[VERSION];

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Bytes of a frame's header: length prefix, version, type.
pub const FRAME_HEADER_LEN: usize = LENGTH_PREFIX_LEN + 2;

/// The version two peers speak: the highest listed by both, if any.
///
/// ```
/// use hive_core::wire::negotiate;
/// assert_eq!(negotiate(&[1, 2, 3], &[2, 1]), Some(2));
/// assert_eq!(negotiate(&[1], &[2]), None);
/// ```
pub fn negotiate(ours: &[u8], theirs: &[u8]) -> Option<u8> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max()
}
