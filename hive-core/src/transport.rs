//! The `Transport` and `Connection` contracts: authenticated, message-oriented links between agents.
//!
//! Three implementations fit this one contract: Hive's own reliable UDP transport, s2n-quic and
//! WebRTC data channels. The shape follows from what all three can do:
//!
//! - **Messages, not streams.** A connection carries whole messages ([`Bytes`]) up to
//!   [`Connection::max_message_size`], the value *after* negotiation (WebRTC's SCTP defaults to
//!   64 KiB; QUIC and UDP are bounded by configuration). The swarm engine chunks fragments below it.
//! - **Two priority classes.** [`Class::Control`] messages (Have, Request, Cancel, ...) overtake
//!   queued [`Class::Data`]. QUIC maps the classes onto two long-lived streams, WebRTC onto two
//!   pre-negotiated data channels, UDP onto two send queues. Messages of one class arrive in order;
//!   there is no order between classes.
//! - **One merged receive.** [`Connection::recv`] yields messages of both classes: reading per class
//!   could stall control behind unread data (WebRTC stops draining every channel when one is full).
//! - **Backpressure.** `send` returns once the message is queued in a bounded send buffer — never
//!   "acknowledged". A slow peer makes `send` wait; it does not grow memory.
//! - **Authenticated identity.** [`Connection::remote_peer_id`] is the id *proved* by the handshake
//!   (a key the remote holds), checked against the dialled id before `dial` returns
//!   ([`TransportError::WrongPeer`]).
//! - **`&self` everywhere**, so one task can `recv` while others `send`; connections are shared as
//!   `Arc<dyn Connection>`.
//! - **Close.** [`Connection::close`] is graceful: messages already queued are delivered, then the
//!   peer's `recv` returns `Ok(None)`. Dropping the last handle, or [`Connection::abort`], ends it at
//!   once. A peer that vanishes is reported by `recv` as [`TransportError::PeerGone`] within the
//!   transport's dead-peer bound.
//!
//! ## Rendezvous (WebRTC and relays)
//!
//! A [`DialTarget`] names the peer by id and lists the addresses known for it. Socket transports
//! use [`PeerAddr::Socket`]. A WebRTC transport is built with an `Arc<dyn` [`Signaling`]`>` — a
//! rendezvous channel (the tracker's relay, a WebSocket service, ...) that carries opaque blobs to a
//! peer id. `dial` sends the SDP offer (and trickled ICE candidates) through it and waits for the
//! answer; the transport's `accept` consumes offers that arrive through it. The trait itself needs
//! no WebRTC-specific method: the rendezvous is a constructor argument, and a target with
//! [`PeerAddr::Rendezvous`] (or no address at all) tells the transport to use it.
//!
//! ## Example
//!
//! Any transport is used the same way; here the in-memory reference transport (feature `testkit`):
//!
//! ```
//! # #[cfg(feature = "testkit")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use hive_core::testkit::memory::MemoryNetwork;
//! use hive_core::transport::{Class, DialTarget, Transport};
//!
//! let net = MemoryNetwork::new();
//! let alice = net.endpoint();
//! let bob = net.endpoint();
//! let target = DialTarget::new(bob.local_peer_id(), bob.local_addrs());
//! let (to_bob, from_alice) = tokio::join!(alice.dial(&target), bob.accept());
//! let (to_bob, from_alice) = (to_bob?, from_alice?);
//! assert_eq!(from_alice.remote_peer_id(), alice.local_peer_id());
//! to_bob.send(Bytes::from_static(b"have 1..15"), Class::Control).await?;
//! assert_eq!(from_alice.recv().await?, Some(Bytes::from_static(b"have 1..15")));
//! to_bob.close().await;
//! assert_eq!(from_alice.recv().await?, None);
//! # Ok::<(), hive_core::TransportError>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::TransportError;
use crate::ids::{PeerAddr, PeerId};
use crate::time::Duration;

/// The priority class of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Small, urgent messages (Hello, Have, Request, Cancel, Choke, ...): sent before queued data.
    Control,
    /// Bulk fragment data.
    Data,
}

/// Whom to dial: the peer's id (which the handshake must prove) and the addresses known for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialTarget {
    /// The id the remote must prove.
    pub peer: PeerId,
    /// Known addresses; a transport uses the kinds it understands. May be empty for transports
    /// that reach peers through a rendezvous.
    pub addrs: Vec<PeerAddr>,
}

impl DialTarget {
    /// A target with the given addresses.
    pub fn new(peer: PeerId, addrs: Vec<PeerAddr>) -> Self {
        DialTarget { peer, addrs }
    }

    /// The first socket address, for transports that dial IP addresses; `Unreachable` when the
    /// target has none.
    pub fn socket_addr(&self) -> Result<SocketAddr, TransportError> {
        self.addrs
            .iter()
            .find_map(|a| match a {
                PeerAddr::Socket(s) => Some(*s),
                _ => None,
            })
            .ok_or_else(|| TransportError::Unreachable {
                peer: self.peer,
                reason: "no socket address".into(),
            })
    }
}

/// Per-connection statistics. Fields a transport cannot know are `None` (WebRTC exposes an RTT
/// but no congestion window, for instance).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConnectionStats {
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// Minimum round-trip time seen.
    pub min_rtt: Option<Duration>,
    /// Congestion window in bytes.
    pub cwnd: Option<u64>,
    /// Bytes in flight (sent, not yet acknowledged or declared lost).
    pub bytes_in_flight: Option<u64>,
    /// Payload bytes handed to `send` and queued.
    pub bytes_sent: u64,
    /// Payload bytes acknowledged by the peer, where known.
    pub bytes_acked: Option<u64>,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Packets declared lost, where known.
    pub packets_lost: Option<u64>,
    /// Packets sent, where known (with `packets_lost`, the loss rate).
    pub packets_sent: Option<u64>,
    /// The congestion controller's run-time priority, where it has one.
    pub cc_priority: Option<f64>,
}

/// One authenticated connection to a peer. Shared as `Arc<dyn Connection>`.
#[async_trait]
pub trait Connection: Send + Sync + fmt::Debug {
    /// The remote's id, proved by the handshake.
    fn remote_peer_id(&self) -> PeerId;

    /// The remote's socket address, where the transport knows one.
    fn remote_addr(&self) -> Option<SocketAddr>;

    /// The largest message `send` accepts on this connection, after negotiation.
    fn max_message_size(&self) -> usize;

    /// Queues one message. Returns when it is accepted into the bounded send buffer; waits while
    /// the buffer is full. Messages of one class are delivered in order.
    ///
    /// Errors: [`TransportError::MessageTooLarge`] (nothing was sent), [`TransportError::Closed`]
    /// after `close`, or the error that ended the connection.
    async fn send(&self, message: Bytes, class: Class) -> Result<(), TransportError>;

    /// The next message from the peer (either class; control first when both are waiting).
    /// `Ok(None)` once the peer closed gracefully and everything it sent was received.
    async fn recv(&self) -> Result<Option<Bytes>, TransportError>;

    /// Current statistics.
    fn stats(&self) -> ConnectionStats;

    /// Sets the run-time priority of the connection's congestion controller (DTL: 0 = LEDBAT-like
    /// background, 1 = TCP-fair, up to 2 = more aggressive). Transports whose controller has no such
    /// knob return [`TransportError::Unsupported`].
    fn set_cc_priority(&self, priority: f64) -> Result<(), TransportError> {
        let _ = priority;
        Err(TransportError::Unsupported(
            "run-time congestion-control priority",
        ))
    }

    /// Graceful close: delivers what is queued (bounded by the transport's close timeout), then
    /// ends the connection; the peer's `recv` returns `Ok(None)`.
    async fn close(&self);

    /// Immediate close: queued messages are dropped; the peer sees the connection end.
    fn abort(&self);
}

/// A way to dial and accept authenticated connections. Shared as `Arc<dyn Transport>`.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// A short name for logs and reports ("udp", "quic", "webrtc", "memory").
    fn name(&self) -> &'static str;

    /// This agent's id (the one its handshakes prove).
    fn local_peer_id(&self) -> PeerId;

    /// Addresses other agents can dial this one at (may be empty for rendezvous-only transports).
    fn local_addrs(&self) -> Vec<PeerAddr>;

    /// Opens a connection to `target`; returns once the handshake proved `target.peer`.
    async fn dial(&self, target: &DialTarget) -> Result<Arc<dyn Connection>, TransportError>;

    /// The next inbound connection, after its handshake. [`TransportError::Shutdown`] once the
    /// transport is shut down.
    async fn accept(&self) -> Result<Arc<dyn Connection>, TransportError>;

    /// The bound within which a vanished peer is reported by [`Connection::recv`].
    fn dead_peer_timeout(&self) -> Duration;

    /// Stops accepting and closes every connection gracefully.
    async fn shutdown(&self);
}

/// A rendezvous channel that carries opaque blobs between peers by id — what WebRTC's offer/answer
/// exchange (and relays) need. The tracker, a WebSocket service or a test hub can implement it.
#[async_trait]
pub trait Signaling: Send + Sync + fmt::Debug {
    /// Delivers `blob` to `to` (best effort; the blob is at most 64 KiB).
    async fn send(&self, to: PeerId, blob: Bytes) -> Result<(), TransportError>;

    /// The next blob addressed to this peer, with its sender's *claimed* id: the rendezvous does
    /// not authenticate it, so the transport's own handshake (DTLS certificate bound to the
    /// `PeerId`) must.
    async fn recv(&self) -> Result<(PeerId, Bytes), TransportError>;
}

/// Largest admission token a transport carries in its handshake, bytes (the same for every
/// transport, so a token list made for one fits another).
pub const MAX_ADMISSION_TOKEN: usize = 1024;

/// Decides whether a remote, with the id its handshake proved and its admission token (empty
/// when it sent none), may have a connection.
pub type AdmissionCheck = Arc<dyn Fn(&PeerId, &[u8]) -> bool + Send + Sync>;

/// Admission in a transport's handshake: this side's token and the check of the remote's. The
/// UDP transport carries the token in its Noise handshake, the QUIC transport in its
/// certificate; both run the check before a connection is returned from `dial` or yielded by
/// `accept`. The default sends no token and admits everyone.
#[derive(Clone, Default)]
pub struct Admission {
    /// This side's token (at most [`MAX_ADMISSION_TOKEN`] bytes; a longer one is not sent at
    /// all).
    pub token: Bytes,
    /// Called with the remote's id and token inside the handshake; `false` refuses the
    /// connection. `None` admits everyone.
    pub check: Option<AdmissionCheck>,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("token_len", &self.token.len())
            .field("check", &self.check.is_some())
            .finish()
    }
}

impl Admission {
    /// Whether `peer` with `token` is admitted.
    pub fn admits(&self, peer: &PeerId, token: &[u8]) -> bool {
        self.check.as_ref().is_none_or(|c| c(peer, token))
    }

    /// The token to send: empty when it is over [`MAX_ADMISSION_TOKEN`].
    pub fn sendable_token(&self) -> &[u8] {
        sendable_token(&self.token)
    }
}

/// `token` if it fits a handshake ([`MAX_ADMISSION_TOKEN`]), else empty (not sent at all).
pub fn sendable_token(token: &[u8]) -> &[u8] {
    if token.len() <= MAX_ADMISSION_TOKEN {
        token
    } else {
        &[]
    }
}
