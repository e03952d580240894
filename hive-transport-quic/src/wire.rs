//! The bytes on this transport's QUIC streams.
//!
//! Each side opens two unidirectional streams after the handshake, one per
//! [`Class`]. Each starts with an 8-byte header, then carries
//! messages as length-prefixed frames:
//!
//! ```text
//! header: "HQ" | version (1) | class (0 control, 1 data) | max_message_size (u32, big-endian)
//! frame:  length (u32, big-endian, ≤ the receiver's max_message_size) | message
//! ```
//!
//! `max_message_size` is what the *sender of the header* accepts; a sender uses the smaller of
//! its own and the peer's. A frame longer than the receiver's maximum is a protocol error (the
//! connection is closed); the length is checked before anything is buffered.

use bytes::{Buf, Bytes, BytesMut};
use hive_core::transport::Class;

/// The header's length.
pub(crate) const HEADER_LEN: usize = 8;
/// The wire format version.
pub(crate) const VERSION: u8 = 1;
const MAGIC: [u8; 2] = *b"HQ";
/// The frame length prefix.
pub(crate) const LEN_PREFIX: usize = 4;

/// A malformed stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The stream header is not ours.
    #[error("not a Hive QUIC stream header")]
    BadHeader,
    /// The peer speaks another version.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// A frame exceeds the receiver's maximum message size.
    #[error("frame of {len} bytes exceeds the maximum message size {max}")]
    TooLong {
        /// Announced length.
        len: u64,
        /// The receiver's maximum.
        max: usize,
    },
    /// The stream ended inside a frame or header.
    #[error("stream ended inside a frame")]
    Truncated,
}

/// A parsed stream header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) class: Class,
    pub(crate) max_message_size: usize,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..2].copy_from_slice(&MAGIC);
        h[2] = VERSION;
        h[3] = match self.class {
            Class::Control => 0,
            Class::Data => 1,
        };
        let max = u32::try_from(self.max_message_size).unwrap_or(u32::MAX);
        h[4..].copy_from_slice(&max.to_be_bytes());
        h
    }

    pub(crate) fn decode(h: &[u8; HEADER_LEN]) -> Result<Self, WireError> {
        if h[..2] != MAGIC {
            return Err(WireError::BadHeader);
        }
        if h[2] != VERSION {
            return Err(WireError::Version(h[2]));
        }
        let class = match h[3] {
            0 => Class::Control,
            1 => Class::Data,
            _ => return Err(WireError::BadHeader),
        };
        let max = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        Ok(Header {
            class,
            max_message_size: max,
        })
    }
}

/// The length prefix of a message (the caller checked it fits the peer's maximum).
pub(crate) fn frame_prefix(len: usize) -> Bytes {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    Bytes::copy_from_slice(&len.to_be_bytes())
}

/// Reassembles frames from a stream's chunks.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: BytesMut,
    max: usize,
    /// The length of the frame being read, once its prefix arrived.
    want: Option<usize>,
}

impl FrameReader {
    /// Frames up to `max` bytes are accepted.
    pub(crate) fn new(max: usize) -> Self {
        FrameReader {
            buf: BytesMut::new(),
            max,
            want: None,
        }
    }

    /// Appends a chunk read off the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Takes the stream header, once its 8 bytes arrived.
    pub(crate) fn header(&mut self) -> Result<Option<Header>, WireError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; HEADER_LEN];
        self.buf.copy_to_slice(&mut h);
        Header::decode(&h).map(Some)
    }

    /// The next complete message, if one is buffered.
    pub(crate) fn next_message(&mut self) -> Result<Option<Bytes>, WireError> {
        let len = match self.want {
            Some(len) => len,
            None => {
                if self.buf.len() < LEN_PREFIX {
                    return Ok(None);
                }
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if len as usize > self.max {
                    return Err(WireError::TooLong {
                        len: len.into(),
                        max: self.max,
                    });
                }
                self.buf.advance(LEN_PREFIX);
                let len = len as usize;
                self.want = Some(len);
                // One allocation for the whole message (bounded by `max` above).
                self.buf.reserve(len.saturating_sub(self.buf.len()));
                len
            }
        };
        if self.buf.len() < len {
            return Ok(None);
        }
        self.want = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Whether a frame or header is partly read (an end of stream here is a truncation).
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.want.is_some() || !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_strangers() {
        for class in [Class::Control, Class::Data] {
            let h = Header {
                class,
                max_message_size: 4 << 20,
            };
            assert_eq!(Header::decode(&h.encode()), Ok(h));
        }
        let mut bad = Header {
            class: Class::Data,
            max_message_size: 1,
        }
        .encode();
        bad[2] = 9;
        assert_eq!(Header::decode(&bad), Err(WireError::Version(9)));
        bad[0] = b'X';
        assert_eq!(Header::decode(&bad), Err(WireError::BadHeader));
    }

    #[test]
    fn frames_reassemble_from_any_split() {
        let msgs: Vec<Vec<u8>> = vec![vec![], vec![7], (0..5000u32).map(|i| i as u8).collect()];
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&frame_prefix(m.len()));
            stream.extend_from_slice(m);
        }
        for step in [1, 3, 4, 1000, stream.len()] {
            let mut r = FrameReader::new(5000);
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                r.push(chunk);
                while let Some(m) = r.next_message().expect("well-formed") {
                    got.push(m.to_vec());
                }
            }
            assert_eq!(got, msgs, "chunks of {step}");
            assert!(!r.is_mid_frame());
        }
    }

    #[test]
    fn an_overlong_frame_is_refused_before_buffering() {
        let mut r = FrameReader::new(100);
        r.push(&frame_prefix(101));
        assert_eq!(
            r.next_message(),
            Err(WireError::TooLong { len: 101, max: 100 })
        );
        let mut r = FrameReader::new(100);
        r.push(&u32::MAX.to_be_bytes());
        assert!(r.next_message().is_err());
        let mut r = FrameReader::new(100);
        r.push(&frame_prefix(10));
        r.push(b"abc");
        assert_eq!(r.next_message(), Ok(None));
        assert!(r.is_mid_frame(), "a stream ending here is truncated");
    }
}
