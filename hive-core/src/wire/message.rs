//! The messages agents exchange, in memory.

use bytes::Bytes;

use super::have::Have;
use crate::hash::ContentHash;
use crate::ids::{ContentId, FragmentId, Locality, PeerId, PeerInfo, Role};
use crate::time::Duration;

/// One protocol message. See the [module docs](super) for each message's layout on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Opens a connection: versions, identity, swarm, role, capacity, locality, token.
    Hello(Hello),
    /// Which fragments the sender holds, per track.
    Have(Have),
    /// Asks for (part of) a fragment.
    Request(Request),
    /// A chunk of a fragment, answering a request.
    Data(Data),
    /// Withdraws a request.
    Cancel(Cancel),
    /// Refuses a request.
    Reject(Reject),
    /// The sender will not serve requests until it sends `Unchoke`.
    Choke,
    /// The sender serves requests again.
    Unchoke,
    /// Peers the sender knows in the same swarm.
    PeerExchange(PeerExchange),
    /// The sender closes the connection.
    Bye(Bye),
    /// Asks for a `Pong` with the same nonce (liveness, round-trip time).
    Ping(Ping),
    /// Answers a `Ping`.
    Pong(Pong),
}

/// The type byte of a frame: which [`Message`] its body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// [`Message::Hello`], type `0x01`.
    Hello,
    /// [`Message::Have`], type `0x02`.
    Have,
    /// [`Message::Request`], type `0x03`.
    Request,
    /// [`Message::Data`], type `0x04`.
    Data,
    /// [`Message::Cancel`], type `0x05`.
    Cancel,
    /// [`Message::Reject`], type `0x06`.
    Reject,
    /// [`Message::Choke`], type `0x07`.
    Choke,
    /// [`Message::Unchoke`], type `0x08`.
    Unchoke,
    /// [`Message::PeerExchange`], type `0x09`.
    PeerExchange,
    /// [`Message::Bye`], type `0x0a`.
    Bye,
    /// [`Message::Ping`], type `0x0b`.
    Ping,
    /// [`Message::Pong`], type `0x0c`.
    Pong,
}

impl MessageKind {
    /// Every kind, in type-code order.
    pub const ALL: [MessageKind; 12] = [
        MessageKind::Hello,
        MessageKind::Have,
        MessageKind::Request,
        MessageKind::Data,
        MessageKind::Cancel,
        MessageKind::Reject,
        MessageKind::Choke,
        MessageKind::Unchoke,
        MessageKind::PeerExchange,
        MessageKind::Bye,
        MessageKind::Ping,
        MessageKind::Pong,
    ];

    /// The type byte on the wire.
    pub const fn code(self) -> u8 {
        match self {
            MessageKind::Hello => 0x01,
            MessageKind::Have => 0x02,
            MessageKind::Request => 0x03,
            MessageKind::Data => 0x04,
            MessageKind::Cancel => 0x05,
            MessageKind::Reject => 0x06,
            MessageKind::Choke => 0x07,
            MessageKind::Unchoke => 0x08,
            MessageKind::PeerExchange => 0x09,
            MessageKind::Bye => 0x0a,
            MessageKind::Ping => 0x0b,
            MessageKind::Pong => 0x0c,
        }
    }

    /// The kind of a type byte, if this version defines it.
    pub const fn from_code(code: u8) -> Option<MessageKind> {
        match code {
            0x01 => Some(MessageKind::Hello),
            0x02 => Some(MessageKind::Have),
            0x03 => Some(MessageKind::Request),
            0x04 => Some(MessageKind::Data),
            0x05 => Some(MessageKind::Cancel),
            0x06 => Some(MessageKind::Reject),
            0x07 => Some(MessageKind::Choke),
            0x08 => Some(MessageKind::Unchoke),
            0x09 => Some(MessageKind::PeerExchange),
            0x0a => Some(MessageKind::Bye),
            0x0b => Some(MessageKind::Ping),
            0x0c => Some(MessageKind::Pong),
            _ => None,
        }
    }

    /// A name for logs and error contexts.
    pub const fn name(self) -> &'static str {
        match self {
            MessageKind::Hello => "Hello",
            MessageKind::Have => "Have",
            MessageKind::Request => "Request",
            MessageKind::Data => "Data",
            MessageKind::Cancel => "Cancel",
            MessageKind::Reject => "Reject",
            MessageKind::Choke => "Choke",
            MessageKind::Unchoke => "Unchoke",
            MessageKind::PeerExchange => "PeerExchange",
            MessageKind::Bye => "Bye",
            MessageKind::Ping => "Ping",
            MessageKind::Pong => "Pong",
        }
    }
}

impl Message {
    /// The message's kind (its frame type byte).
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Hello(_) => MessageKind::Hello,
            Message::Have(_) => MessageKind::Have,
            Message::Request(_) => MessageKind::Request,
            Message::Data(_) => MessageKind::Data,
            Message::Cancel(_) => MessageKind::Cancel,
            Message::Reject(_) => MessageKind::Reject,
            Message::Choke => MessageKind::Choke,
            Message::Unchoke => MessageKind::Unchoke,
            Message::PeerExchange(_) => MessageKind::PeerExchange,
            Message::Bye(_) => MessageKind::Bye,
            Message::Ping(_) => MessageKind::Ping,
            Message::Pong(_) => MessageKind::Pong,
        }
    }
}

/// Opens a connection (RFC 7574's HANDSHAKE, with Hive's fields).
///
/// Each side sends one `Hello` first; a connection serves the one swarm named by `content`
/// in both. Both sides then speak the highest version listed by both
/// ([`negotiate`](super::negotiate)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The protocol versions the sender speaks (at least one; at most
    /// [`max_versions`](super::WireLimits::max_versions)).
    pub versions: Vec<u8>,
    /// The sender's id (the transport's handshake authenticates it).
    pub peer: PeerId,
    /// The swarm this connection serves.
    pub content: ContentId,
    /// The sender's role.
    pub role: Role,
    /// The upload capacity the sender offers, in kbit/s.
    pub upload_kbps: u32,
    /// Where the sender sits.
    pub locality: Locality,
    /// The registrar's token admitting the sender to the swarm: opaque here, verified by the
    /// registrar's key (at most [`max_token_len`](super::WireLimits::max_token_len) bytes,
    /// possibly empty).
    pub token: Bytes,
}

/// Asks for a fragment, or its tail from `resume_offset` (RFC 7574's REQUEST, plus a deadline
/// and a priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// Chosen by the requester; `Data`, `Reject` and `Cancel` refer to it.
    pub request_id: u64,
    /// The fragment wanted.
    pub fragment: FragmentId,
    /// Time left until the requester's deadline, in milliseconds, counted from when the
    /// message is sent: relative because the two agents' clocks differ.
    pub deadline_ms: u32,
    /// Urgency, 0 (most urgent) to 7 (least), as RFC 9218 §4.1 defines for HTTP; values above 7
    /// are treated as 7.
    pub priority: u8,
    /// Byte offset within the fragment to start from (0: the whole fragment), to resume a
    /// transfer another peer broke off.
    pub resume_offset: u64,
}

impl Request {
    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(u64::from(self.deadline_ms))
    }
}

/// A chunk of a fragment (RFC 7574's DATA, addressed by byte offset within a fragment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    /// The request this answers.
    pub request_id: u64,
    /// The fragment.
    pub fragment: FragmentId,
    /// The whole fragment's length in bytes.
    pub total_len: u64,
    /// Offset of `payload` within the fragment; `offset + payload.len() <= total_len`.
    pub offset: u64,
    /// BLAKE3 hash of the whole fragment: the receiver verifies the reassembled fragment
    /// before caching, serving or delivering it.
    pub hash: ContentHash,
    /// The chunk's bytes (at most [`max_chunk_len`](super::WireLimits::max_chunk_len)).
    /// Decoding slices the input buffer: no copy.
    pub payload: Bytes,
}

/// Withdraws a request (RFC 7574's CANCEL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// The request withdrawn.
    pub request_id: u64,
}

/// Refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    /// The request refused.
    pub request_id: u64,
    /// Why.
    pub reason: RejectReason,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The sender does not hold the fragment (any more). Code 0.
    NotFound,
    /// The sender has choked the requester. Code 1.
    Choked,
    /// The sender has no upload capacity left now. Code 2.
    Overloaded,
    /// The deadline cannot be met. Code 3.
    TooLate,
    /// The request makes no sense (bad range, wrong swarm). Code 4.
    BadRequest,
    /// A code this version does not know, kept as read so it can be logged or relayed.
    Unknown(u8),
}

impl RejectReason {
    /// The code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            RejectReason::NotFound => 0,
            RejectReason::Choked => 1,
            RejectReason::Overloaded => 2,
            RejectReason::TooLate => 3,
            RejectReason::BadRequest => 4,
            RejectReason::Unknown(c) => c,
        }
    }

    /// The reason for a code; unknown codes are preserved in [`RejectReason::Unknown`].
    pub const fn from_code(code: u8) -> RejectReason {
        match code {
            0 => RejectReason::NotFound,
            1 => RejectReason::Choked,
            2 => RejectReason::Overloaded,
            3 => RejectReason::TooLate,
            4 => RejectReason::BadRequest,
            c => RejectReason::Unknown(c),
        }
    }
}

/// Peers the sender knows in the same swarm (RFC 7574's PEX_RESv4 and PEX_RESv6 in one
/// message).
///
/// Only [`PeerAddr::Socket`](crate::PeerAddr::Socket) addresses travel; other variants are
/// local to a process or a rendezvous service and are skipped when encoding. IPv6 flow info
/// and scope id are not sent (they mean nothing on another host) and decode as 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerExchange {
    /// The peers (at most [`max_peers`](super::WireLimits::max_peers)).
    pub peers: Vec<PeerInfo>,
}

/// The sender closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bye {
    /// Why.
    pub reason: ByeReason,
    /// A human-readable detail for logs (possibly empty, at most
    /// [`max_string_len`](super::WireLimits::max_string_len) bytes).
    pub detail: String,
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ByeReason {
    /// The sender leaves the swarm (the viewer stopped watching). Code 0.
    Leaving,
    /// The agent shuts down. Code 1.
    Shutdown,
    /// The receiver broke the protocol. Code 2.
    ProtocolError,
    /// The receiver served bytes that failed hash verification. Code 3.
    BadData,
    /// The receiver was silent too long. Code 4.
    Timeout,
    /// The overlay policy dropped the receiver as a neighbour. Code 5.
    Pruned,
    /// A code this version does not know, kept as read.
    Unknown(u8),
}

impl ByeReason {
    /// The code on the wire.
    pub const fn code(self) -> u8 {
        match self {
            ByeReason::Leaving => 0,
            ByeReason::Shutdown => 1,
            ByeReason::ProtocolError => 2,
            ByeReason::BadData => 3,
            ByeReason::Timeout => 4,
            ByeReason::Pruned => 5,
            ByeReason::Unknown(c) => c,
        }
    }

    /// The reason for a code; unknown codes are preserved in [`ByeReason::Unknown`].
    pub const fn from_code(code: u8) -> ByeReason {
        match code {
            0 => ByeReason::Leaving,
            1 => ByeReason::Shutdown,
            2 => ByeReason::ProtocolError,
            3 => ByeReason::BadData,
            4 => ByeReason::Timeout,
            5 => ByeReason::Pruned,
            c => ByeReason::Unknown(c),
        }
    }
}

/// Asks for a [`Pong`] echoing `nonce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    /// Chosen by the sender.
    pub nonce: u64,
}

/// Answers a [`Ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pong {
    /// The nonce of the `Ping` answered.
    pub nonce: u64,
}

macro_rules! into_message {
    ($($ty:ident),*) => {
        $(impl From<$ty> for Message {
            fn from(m: $ty) -> Message {
                Message::$ty(m)
            }
        })*
    };
}

into_message!(
    Hello,
    Have,
    Request,
    Data,
    Cancel,
    Reject,
    PeerExchange,
    Bye,
    Ping,
    Pong
);
