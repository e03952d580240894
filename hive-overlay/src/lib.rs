//! # hive-overlay
//!
//! The swarm engine and its overlay policies. [`Swarm`] is a sans-IO state machine, one per
//! agent and swarm, in the shape of quinn-proto and str0m: inputs are `handle_*(now, ...)`
//! calls, outputs are drained with [`Swarm::poll_output`], and [`Swarm::poll_timeout`] says
//! when to call [`Swarm::handle_timeout`]. The tokio agent and the simulator are two drivers of
//! the same engine: what the simulator measures is what ships.
//!
//! **The rule:** after every input, drain `poll_output()` until it returns `None`, then sleep
//! until `poll_timeout()` (or the next input). Report every `Data` message the transport has
//! accepted with [`Swarm::handle_sent`]: uploads to a peer pause once
//! [`SwarmConfig::send_window`] bytes are outstanding, so chunks wait in the engine (where a
//! `Cancel` removes them) rather than in a transport queue.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use hive_core::cache::LiveWindowCache;
//! use hive_core::time::{Duration, Instant};
//! use hive_core::{ContentId, FragmentId, KeyKind, PeerAddr, PeerId, PeerInfo, TrackId};
//! use hive_overlay::{FragmentInfo, NoPeer, Output, Swarm, SwarmConfig};
//!
//! let now = Instant::ZERO;
//! let me = PeerInfo::new(PeerId::from_public_key(KeyKind::X25519, b"me"), PeerAddr::Memory(1));
//! let content = ContentId::derive("live/ch1");
//! let mut swarm = Swarm::new(now, me, content, SwarmConfig::default(), Box::new(NoPeer),
//!     Arc::new(LiveWindowCache::default()));
//!
//! // The player asks for a fragment; NoPeer sends the agent to the origin.
//! let info = FragmentInfo {
//!     id: FragmentId::new(content, TrackId(0), 7),
//!     url: "http://origin/ch1/7.ts".into(),
//!     media_time: Duration::from_secs(14),
//!     duration: Duration::from_secs(2),
//!     size_estimate: 250_000,
//!     // The trusted hash, from a signed list (peers' bytes are checked against it).
//!     hash: None,
//! };
//! swarm.handle_player_request(now, info.clone(), None);
//! let mut delivered = None;
//! while let Some(out) = swarm.poll_output() {
//!     match out {
//!         // A driver would fetch over HTTP; here the origin answers at once.
//!         Output::FetchOrigin { fragment, .. } => {
//!             swarm.handle_origin_result(now + Duration::from_millis(80), fragment.id,
//!                 Ok(Bytes::from(vec![7u8; 250_000])));
//!         }
//!         Output::Deliver { data, .. } => delivered = Some(data.len()),
//!         _ => {}
//!     }
//! }
//! assert_eq!(delivered, Some(250_000));
//! assert_eq!(swarm.stats().origin_bytes, 250_000);
//! ```

#![forbid(unsafe_code)]

mod engine;
pub mod policy;
pub mod profile;

pub use engine::{FragmentInfo, Output, Swarm, SwarmConfig, SwarmStats, Verify};
pub use policy::{NoPeer, PrivateHierarchy, PublicMesh, PublicMeshConfig, RandomMesh};
pub use profile::{PolicyKind, RoleProfile, UnknownPolicy};
