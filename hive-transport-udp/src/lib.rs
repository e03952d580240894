//! # hive-transport-udp
//!
//! Hive's own reliable, encrypted, congestion-controlled message transport over UDP: one socket
//! per agent, many connections multiplexed on it, implementing [`hive_core::transport`]'s
//! `Transport` / `Connection` contract.
//!
//! - **Handshake**: Noise `XX` (X25519, ChaCha20-Poly1305, BLAKE2s, via `snow`), bound to the
//!   [`PeerId`](hive_core::PeerId)s; forward secret; 1 RTT for the dialler, 2 with a stateless
//!   retry cookie; version negotiation. See [`handshake`].
//! - **Packets**: AES-256-GCM keyed from the Noise split (HKDF-SHA256, see `protection.rs`),
//!   the packet number in the nonce and the header authenticated, a replay window, SACK ranges
//!   with ack delay and one-way delay, RFC 9002 loss detection and probe timeouts, pacing.
//!   See [`wire`].
//! - **Messages**: two length-prefixed streams (control before data), receiver-window flow
//!   control, messages up to 4 MiB by default.
//! - **Congestion control**: any [`hive_cc::Algorithm`] per connection (default DTL at p = 1),
//!   priority changeable live.
//! - **Sans-IO**: [`Endpoint`] and [`Connection`] take `now` and datagrams in and give datagrams
//!   out; [`UdpTransport`] is the thin tokio driver. After every input, drain
//!   [`Endpoint::poll_transmit`] until `None`, then sleep until [`Endpoint::poll_timeout`].
//!   The driver reads `now` from, and sleeps on, a [`hive_core::time::Clock`]
//!   ([`UdpTransportBuilder::clock`]; by default hive-core's `MonotonicClock` on tokio's time,
//!   so a test with tokio's time paused runs the transport on virtual time).
//! - **[`emulator`]**: a loopback UDP relay with rate, buffer, loss, delay, reordering and
//!   duplication, driven by [`hive_cc::link::Bottleneck`] (the CC arena's link model).
//!
//! ## Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use hive_core::transport::{Class, DialTarget, Transport};
//! use hive_transport_udp::{Config, UdpTransport};
//!
//! let loopback = "127.0.0.1:0".parse().unwrap();
//! let alice = UdpTransport::bind(loopback, Config::default()).await?;
//! let bob = UdpTransport::bind(loopback, Config::default()).await?;
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
//!
//! ## The sans-IO loop
//!
//! ```
//! use hive_core::time::{Duration, Instant};
//! use hive_transport_udp::{Config, Endpoint, Keypair};
//!
//! let mut a = Endpoint::new(Config::default(), Keypair::generate().unwrap(), 1);
//! let mut b = Endpoint::new(Config::default(), Keypair::generate().unwrap(), 2);
//! let (a_addr, b_addr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
//! let cid = a.connect(Instant::ZERO, b_addr, b.local_peer_id()).unwrap();
//! let mut now = Instant::ZERO;
//! for _ in 0..10 {
//!     now += Duration::from_millis(1);
//!     while let Some(t) = a.poll_transmit(now) { b.handle_datagram(now, a_addr, &t.contents) }
//!     while let Some(t) = b.poll_transmit(now) { a.handle_datagram(now, b_addr, &t.contents) }
//! }
//! assert!(a.connection(cid).unwrap().is_open());
//! assert_eq!(a.connection(cid).unwrap().remote_peer_id(), Some(b.local_peer_id()));
//! ```

#![forbid(unsafe_code)]

mod config;
mod connection;
mod driver;
pub mod emulator;
mod endpoint;
pub mod flood;
pub mod handshake;
mod limits;
mod packet;
mod protection;
mod ranges;
mod recovery;
mod stream;
pub mod wire;

pub use config::Config;
pub use connection::{Connection, Ended, RecvPoll};
pub use driver::{UdpConnection, UdpTransport, UdpTransportBuilder};
pub use endpoint::{Endpoint, EndpointStats, Event, Transmit};
pub use handshake::{Admission, AdmissionCheck, Keypair};
