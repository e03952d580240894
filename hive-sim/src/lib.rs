//! # hive-sim
//!
//! A deterministic discrete-event simulator that runs one Hive swarm engine per viewer on
//! virtual time: a flow-level network ([`net`]: links shared max-min fairly, latency per link,
//! access links per viewer, VPN and gateway links for enterprises), simulated players
//! ([`player`]) of live streams or of an on-demand title (start anywhere, seek, leave), a
//! locality-aware tracker, NAT reachability and churn. Same seed, same result.
//!
//! ```
//! use hive_core::time::Duration;
//! use hive_sim::{PolicyKind, run, scenario};
//!
//! let s = scenario::scaled(scenario::named("corporate-130", 1).unwrap(), 0.1, Duration::from_secs(40));
//! let peer = run(&s, PolicyKind::RandomMesh);
//! let cdn = run(&s, PolicyKind::NoPeer);
//! assert!(peer.offload > cdn.offload);
//! assert_eq!(cdn.offload, 0.0);
//! ```
//!
//! **Status:** runs `NoPeer`, `RandomMesh`, `PublicMesh` and a first `PrivateHierarchy`;
//! scaled-down runs only (too slow and too big for the full-size scenarios yet). On demand:
//! `vod-500`; each report carries the origin's egress and the viewers watching, per second.

#![forbid(unsafe_code)]

pub mod net;
pub mod network;
mod payloads;
pub mod player;
pub mod report;
pub mod scenario;
mod sim;

pub use report::{DESIGN_KEYS, LinkCopies, OriginFetches, SimReport, Targets};
pub use sim::{PolicyKind, run};
