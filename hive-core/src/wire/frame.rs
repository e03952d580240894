//! Frames: decoding one whole frame, and a streaming decoder for byte streams.

use bytes::{Bytes, BytesMut};

use super::decode::decode_body;
use super::error::WireError;
use super::limits::WireLimits;
use super::message::{Message, MessageKind};
use super::reader::Reader;
use super::{FRAME_HEADER_LEN, LENGTH_PREFIX_LEN, SUPPORTED_VERSIONS};

/// What one frame decoded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A message of a type this version defines.
    Message(Message),
    /// A well-formed frame of a supported version whose type byte this version does not define:
    /// a later extension. It was skipped; ignore it (forward compatibility).
    Unknown {
        /// The frame's type byte.
        kind: u8,
        /// The frame's length in bytes, its length prefix included.
        len: usize,
    },
}

impl Decoded {
    /// The message, or `None` for a skipped unknown frame.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Decoded::Message(m) => Some(m),
            Decoded::Unknown { .. } => None,
        }
    }
}

/// Reads a frame's length prefix: `None` if fewer than 4 bytes are there, else the frame's
/// total length (prefix included), checked against the limit before anything else happens.
fn frame_len(buf: &[u8], limits: &WireLimits) -> Result<Option<usize>, WireError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX_LEN) else {
        return Ok(None);
    };
    let mut raw = [0u8; LENGTH_PREFIX_LEN];
    raw.copy_from_slice(prefix);
    let len = u32::from_be_bytes(raw);
    let total = LENGTH_PREFIX_LEN as u64 + u64::from(len);
    if total > u64::from(limits.max_frame_len) {
        return Err(WireError::FrameTooLarge {
            len: total,
            limit: u64::from(limits.max_frame_len),
        });
    }
    if (len as usize) < FRAME_HEADER_LEN - LENGTH_PREFIX_LEN {
        return Err(WireError::BadFrameLength { len });
    }
    // At most `max_frame_len`, a u32: fits a usize.
    Ok(Some(total as usize))
}

/// Decodes a complete frame whose length prefix has been checked.
fn decode_checked(frame: &Bytes, limits: &WireLimits) -> Result<Decoded, WireError> {
    let (version, kind) = match frame.get(LENGTH_PREFIX_LEN..FRAME_HEADER_LEN) {
        Some(&[v, k]) => (v, k),
        _ => {
            return Err(WireError::Truncated {
                needed: FRAME_HEADER_LEN,
                have: frame.len(),
                context: "frame header",
            });
        }
    };
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(WireError::UnknownVersion {
            version,
            supported: SUPPORTED_VERSIONS,
        });
    }
    let Some(kind) = MessageKind::from_code(kind) else {
        return Ok(Decoded::Unknown {
            kind,
            len: frame.len(),
        });
    };
    let mut r = Reader::new(frame, FRAME_HEADER_LEN, frame.len());
    decode_body(kind, &mut r, limits).map(Decoded::Message)
}

/// Decodes exactly one whole frame, as a message transport delivers it.
///
/// The length prefix is checked against `limits` first; then the input must hold exactly the
/// frame (no fewer bytes: [`WireError::Truncated`]; no more: [`WireError::TrailingBytes`]).
/// `Data` payloads and `Hello` tokens are zero-copy slices of `frame`.
///
/// ```
/// use hive_core::wire::{decode_frame, Decoded, Message, Ping, WireError, WireLimits};
/// let frame = Message::Ping(Ping { nonce: 7 }).to_bytes();
/// let limits = WireLimits::default();
/// assert_eq!(decode_frame(&frame, &limits), Ok(Decoded::Message(Message::Ping(Ping { nonce: 7 }))));
/// assert!(matches!(decode_frame(&frame.slice(..5), &limits), Err(WireError::Truncated { .. })));
/// ```
pub fn decode_frame(frame: &Bytes, limits: &WireLimits) -> Result<Decoded, WireError> {
    let Some(total) = frame_len(frame, limits)? else {
        return Err(WireError::Truncated {
            needed: LENGTH_PREFIX_LEN,
            have: frame.len(),
            context: "frame length prefix",
        });
    };
    match frame.len().cmp(&total) {
        std::cmp::Ordering::Less => Err(WireError::Truncated {
            needed: total,
            have: frame.len(),
            context: "frame",
        }),
        std::cmp::Ordering::Greater => Err(WireError::TrailingBytes {
            context: "frame",
            extra: frame.len() - total,
        }),
        std::cmp::Ordering::Equal => decode_checked(frame, limits),
    }
}

/// Cuts a byte stream into frames and decodes them.
///
/// Feed received bytes into a `BytesMut` and call [`decode`](Self::decode) until it returns
/// `Ok(None)` (more bytes needed). The length prefix is checked against the limits as soon as
/// its 4 bytes are there, before the decoder reserves room for or waits on the rest. Errors:
///
/// - [`WireError::FrameTooLarge`] and [`WireError::BadFrameLength`] leave the buffer as it is:
///   the stream's framing is lost, close the connection.
/// - Any other error concerns one frame, which has been consumed: the caller may log it and go
///   on, or close the connection.
///
/// ```
/// use bytes::BytesMut;
/// use hive_core::wire::{Decoded, FrameDecoder, Message, Ping, Pong, WireLimits};
///
/// let mut stream = BytesMut::new();
/// Message::Ping(Ping { nonce: 1 }).encode(&mut stream);
/// Message::Pong(Pong { nonce: 2 }).encode(&mut stream);
/// let mut decoder = FrameDecoder::new(WireLimits::default());
/// let mut rx = BytesMut::new();
/// let mut got = Vec::new();
/// for byte in stream.iter() {
///     rx.extend_from_slice(&[*byte]); // bytes arrive one at a time
///     while let Some(frame) = decoder.decode(&mut rx).unwrap() {
///         got.push(frame.into_message().unwrap());
///     }
/// }
/// assert_eq!(got, vec![Message::Ping(Ping { nonce: 1 }), Message::Pong(Pong { nonce: 2 })]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameDecoder {
    limits: WireLimits,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: WireLimits) -> Self {
        FrameDecoder { limits }
    }

    /// The limits enforced.
    pub fn limits(&self) -> &WireLimits {
        &self.limits
    }

    /// Decodes the next frame of `buf`, removing it; `Ok(None)` if `buf` holds no whole frame
    /// yet (room for the rest of a started frame is then reserved, within the limit).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, WireError> {
        let Some(total) = frame_len(buf, &self.limits)? else {
            return Ok(None);
        };
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let frame = buf.split_to(total).freeze();
        decode_checked(&frame, &self.limits).map(Some)
    }
}
