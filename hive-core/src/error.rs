//! Error types shared by the contracts. Each carries enough context to act on without a debugger.
//! The wire codec has its own [`WireError`](crate::wire::WireError).

use thiserror::Error;

use crate::ids::PeerId;
use crate::time::Duration;

/// A textual id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// Wrong number of hex digits.
    #[error("id must be {expected} hex digits, found {found}")]
    Length {
        /// Expected digits.
        expected: usize,
        /// Digits found.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("id has a non-hex character at position {at}")]
    NotHex {
        /// Position of the first bad character.
        at: usize,
    },
}

/// Errors of a [`Transport`](crate::transport::Transport) or
/// [`Connection`](crate::transport::Connection).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection was closed by this side; no more messages can be sent or received.
    #[error("connection closed locally")]
    Closed,
    /// The peer closed the connection; nothing more can be sent to it.
    #[error("connection closed by the peer")]
    ClosedByPeer,
    /// The peer vanished: no sign of life within the bound.
    #[error("peer {peer:?} silent for {silent_for:?} (dead-peer bound)")]
    PeerGone {
        /// The peer.
        peer: PeerId,
        /// How long it was silent.
        silent_for: Duration,
    },
    /// The peer aborted the connection with an error.
    #[error("connection reset by peer: {reason}")]
    Reset {
        /// What the peer or the stack said.
        reason: String,
    },
    /// The handshake failed or the remote proved a different identity than expected.
    #[error("handshake with {addr} failed: {reason}")]
    Handshake {
        /// The address dialled or accepted.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The remote's authenticated id differs from the one dialled.
    #[error("dialled {expected:?} but the remote proved {actual:?}")]
    WrongPeer {
        /// The id the caller expected.
        expected: PeerId,
        /// The id the handshake proved.
        actual: PeerId,
    },
    /// No address of the target is usable by this transport.
    #[error("no usable address for {peer:?}: {reason}")]
    Unreachable {
        /// The target.
        peer: PeerId,
        /// Why (no address of a supported kind, rendezvous failed, ...).
        reason: String,
    },
    /// The message exceeds the connection's maximum message size.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Message size.
        len: usize,
        /// The connection's maximum.
        max: usize,
    },
    /// Dialling or accepting did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// The operation.
        what: &'static str,
        /// The bound that elapsed.
        after: Duration,
    },
    /// The transport was shut down.
    #[error("transport shut down")]
    Shutdown,
    /// An I/O error of the underlying socket.
    #[error("I/O error during {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The operation is not supported by this transport.
    #[error("not supported by this transport: {0}")]
    Unsupported(&'static str),
}

/// A manifest could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes are not this format (the caller should try another or pass through).
    #[error("not a {format} manifest")]
    NotThisFormat {
        /// The format tried.
        format: &'static str,
    },
    /// The manifest is this format but malformed.
    #[error("malformed {format} manifest at {url}: {reason}")]
    Malformed {
        /// The format.
        format: &'static str,
        /// The manifest's URL.
        url: String,
        /// What is wrong, with position where known.
        reason: String,
    },
    /// The manifest exceeds a configured bound (size, fragments, repeat count, nesting).
    #[error("{format} manifest at {url} exceeds the limit on {what} ({limit})")]
    TooLarge {
        /// The format.
        format: &'static str,
        /// The manifest's URL.
        url: String,
        /// What was bounded.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
}

/// A congestion controller does not support an operation.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[non_exhaustive]
pub enum CcError {
    /// The algorithm has no priority knob.
    #[error("{algo} has no run-time priority")]
    NoPriority {
        /// The algorithm.
        algo: &'static str,
    },
    /// The priority is outside the algorithm's range.
    #[error("priority {value} outside [{min}, {max}]")]
    PriorityOutOfRange {
        /// Requested.
        value: f64,
        /// Lowest accepted.
        min: f64,
        /// Highest accepted.
        max: f64,
    },
}
