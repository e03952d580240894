//! The errors of the wire codec.

use thiserror::Error;

/// Why bytes could not be decoded into a [`Message`](super::Message).
///
/// Every variant names what was being read, so a log line is enough to tell a truncated
/// stream from a hostile or buggy peer. Errors inside one frame ([`Truncated`](Self::Truncated)
/// within a body, [`Malformed`](Self::Malformed), [`InvalidCode`](Self::InvalidCode),
/// [`LimitExceeded`](Self::LimitExceeded), [`TrailingBytes`](Self::TrailingBytes),
/// [`UnknownVersion`](Self::UnknownVersion)) concern that frame only: the
/// [`FrameDecoder`](super::FrameDecoder) has already consumed it and the next frame can be read.
/// [`FrameTooLarge`](Self::FrameTooLarge) and [`BadFrameLength`](Self::BadFrameLength) mean the
/// stream's framing cannot be trusted any more: close the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended inside a field.
    #[error("truncated {context}: needed {needed} bytes, {have} left")]
    Truncated {
        /// Bytes the field (or frame) needs.
        needed: usize,
        /// Bytes that were left.
        have: usize,
        /// The field or structure being read.
        context: &'static str,
    },
    /// A frame's length prefix exceeds [`WireLimits::max_frame_len`](super::WireLimits). Checked
    /// before anything is allocated or awaited.
    #[error("frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The frame's declared length, prefix included.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A frame's length prefix is too small to hold the version and type bytes.
    #[error("frame length {len} is shorter than the 2-byte version and type header")]
    BadFrameLength {
        /// The declared length (after the prefix).
        len: u32,
    },
    /// The frame's version byte is not one this codec speaks.
    #[error("unknown wire version {version} (supported: {supported:?})")]
    UnknownVersion {
        /// The version read.
        version: u8,
        /// The versions this codec speaks.
        supported: &'static [u8],
    },
    /// A field's bytes are not a valid encoding.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A code (role, address family, flag) has a value this version does not define.
    #[error("invalid {field} code {code}")]
    InvalidCode {
        /// The field.
        field: &'static str,
        /// The value read.
        code: u64,
    },
    /// A length or count exceeds its [`WireLimits`](super::WireLimits) bound. Checked before
    /// anything is allocated for it.
    #[error("{what} of {len} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was bounded.
        what: &'static str,
        /// The length or count read (or reached).
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes were left after a complete frame or body.
    #[error("{extra} trailing bytes after {context}")]
    TrailingBytes {
        /// The frame or message whose end was reached.
        context: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
}
