//! # hive-overlay
//!
//! The swarm engine and its overlay policies. [`Swarm`] is a sans-IO state machine, one per
//! agent and swarm, in the shape of quinn-proto and str0m: every input is one [`Input`] given
//! to [`Swarm::handle_input`] with the time it happened (each variant also has its
//! `handle_*(now, ...)` method), outputs are drained with [`Swarm::poll_output`], and
//! [`Swarm::poll_timeout`] says when to give [`Input::Timeout`]. Drivers forward what they
//! learn as an `Input` rather than re-listing the engine's inputs; they configure the engine
//! from [`profile`] (policy names, role profiles, the upload-slot rule), as the simulator does. The tokio agent and the simulator are two drivers of
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
//! use hive_overlay::{FragmentInfo, Input, NoPeer, Output, Swarm, SwarmConfig};
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
//! swarm.handle_input(now, Input::PlayerRequest { info: info.clone(), deadline: None });
//! let mut delivered = None;
//! while let Some(out) = swarm.poll_output() {
//!     match out {
//!         // A driver would fetch over HTTP; here the origin answers at once.
//!         Output::FetchOrigin { fragment, .. } => {
//!             let result = Ok(Bytes::from(vec![7u8; 250_000]));
//!             let input = Input::Origin { fragment: fragment.id, result, hash: None };
//!             swarm.handle_input(now + Duration::from_millis(80), input);
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

pub use engine::{FragmentInfo, Input, Output, Swarm, SwarmConfig, SwarmStats, Verify};
pub use policy::{NoPeer, PrivateHierarchy, PublicMesh, PublicMeshConfig, RandomMesh};
pub use profile::{
    LIVE_REFRESH_TICK, PolicyKind, RoleProfile, UnknownPolicy, live_refresh_interval,
    live_refresh_period,
};
