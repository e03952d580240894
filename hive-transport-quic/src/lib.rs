//! # hive-transport-quic
//!
//! hive-core's [`Transport`](hive_core::transport::Transport) contract on s2n-quic, with Hive's
//! congestion controllers inside.
//!
//! - [`QuicTransport`]: dial and accept authenticated connections carrying whole messages in two
//!   priority classes; passes hive-core's conformance suite unchanged (`tests/conformance.rs`).
//! - [`identity`]: a self-signed Ed25519 certificate per agent whose key yields its
//!   [`PeerId`](hive_core::PeerId), checked by both sides inside the TLS handshake; no CA.
//! - [`admission`]: an admission token (a registrar's) in each side's certificate, checked by the
//!   other side inside the TLS handshake, so a refused peer never gets a connection
//!   ([`QuicTransportBuilder::admission`], [`QuicTransport::set_admission_token`]).
//! - [`cc`]: any hive-cc controller (NewReno, Cubic, LEDBAT, LEDBAT++, DTL) as s2n-quic's
//!   congestion controller (s2n-quic feature `unstable-congestion-controller`), chosen per
//!   transport with [`Config::congestion`]; DTL's priority changes live through
//!   `Connection::set_cc_priority`.
//! - [`baseline`]: plain s2n-quic bulk transfer with s2n-quic's defaults (the `s2n-quic` column of
//!   `hive bench transport`).
//!
//! ## How messages map onto QUIC
//!
//! **Two long-lived unidirectional streams per direction, one per class, carrying
//! length-prefixed messages** ([`wire`]), not a stream per message:
//!
//! - *Order within a class* is the stream's order for free; streams per message would arrive in
//!   any order and need sequence numbers and a reorder buffer.
//! - *Control overtakes data* because the classes are separate streams: a control message never
//!   waits behind data in a send buffer, and s2n-quic schedules the streams' frames side by side.
//!   Each incoming stream has its own flow-control window and the connection window is twice one
//!   stream's, so a data stream the application is not reading cannot starve the control stream.
//!   The receiver's [`recv`](hive_core::transport::Connection::recv) prefers control.
//! - *Bounded memory and backpressure*: `send` returns when the message is in the stream's
//!   bounded send buffer; each reader task holds at most a few messages; the rest waits behind
//!   QUIC flow control at the sender. A stream per message would let a peer open streams up to the
//!   stream limit, each with its own buffer, and costs stream state and frames per message.
//! - *Lengths are bounded*: a frame longer than the receiver's `max_message_size` closes the
//!   connection before a byte of it is buffered. Each side announces its maximum in its streams'
//!   headers; a sender uses the smaller of the two ([`Connection::max_message_size`](
//!   hive_core::transport::Connection::max_message_size)).
//! - *Graceful close* is a FIN on both streams: the peer reads everything up to it, then `recv`
//!   gives `Ok(None)` and the peer ends the QUIC connection. `abort` and dropping the last handle
//!   close the QUIC connection at once with an error code.
//! - A vanished peer ends the connection through QUIC's idle timeout
//!   ([`Config::dead_peer_timeout`]; keep-alive pings keep a quiet, live connection open).
//!
//! ## Example
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use hive_core::transport::{Class, Connection, DialTarget, Transport};
//! use hive_transport_quic::{Config, QuicTransport};
//!
//! let loopback = "127.0.0.1:0".parse().unwrap();
//! let alice = QuicTransport::bind(loopback, Config::default()).await?;
//! let bob = QuicTransport::bind(loopback, Config::default()).await?;
//! let target = DialTarget::new(bob.local_peer_id(), bob.local_addrs());
//! let (to_bob, from_alice) = tokio::join!(alice.dial(&target), bob.accept());
//! let (to_bob, from_alice) = (to_bob?, from_alice?);
//! assert_eq!(from_alice.remote_peer_id(), alice.local_peer_id());
//! to_bob.send(Bytes::from_static(b"have 1..15"), Class::Control).await?;
//! assert_eq!(from_alice.recv().await?, Some(Bytes::from_static(b"have 1..15")));
//! to_bob.set_cc_priority(0.0)?; // DTL (the default controller) yields like LEDBAT from now on
//! to_bob.close().await;
//! assert_eq!(from_alice.recv().await?, None);
//! # Ok::<(), hive_core::TransportError>(())
//! # }).unwrap();
//! ```
//!
//! ## Congestion controllers
//!
//! | [`Congestion`] | controller |
//! |---|---|
//! | `S2nCubic` | s2n-quic's own Cubic (its default) |
//! | `Hive(Algorithm::Dtl(p))` (default, p = 1) | hive-cc DTL, priority changeable live |
//! | `Hive(Algorithm::Ledbat)`, `LedbatPlusPlus` | background: queuing delay = RTT − min RTT |
//! | `Hive(Algorithm::NewReno)`, `Cubic` | hive-cc's loss-based controllers |

#![forbid(unsafe_code)]

pub mod admission;
pub mod baseline;
pub mod cc;
mod connection;
mod events;
pub mod identity;
mod transport;
pub mod wire;

pub use admission::{Admission, AdmissionCheck};
pub use cc::{Congestion, HiveCc, HiveCcEndpoint};
pub use connection::QuicConnection;
pub use events::Knob;
pub use identity::Identity;
pub use transport::{Config, QuicTransport, QuicTransportBuilder};
