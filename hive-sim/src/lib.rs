//! # hive-sim
//!
//! A deterministic discrete-event simulator that runs one Hive swarm engine per viewer on
//! virtual time: a flow-level network ([`flownet`]: links shared max-min fairly, latency per link,
//! access links per viewer, VPN and gateway links for enterprises), simulated players
//! ([`player`]) of live streams or of an on-demand title (start anywhere, seek, leave), a
//! locality-aware tracker, NAT reachability and churn. Same seed, same result — on any number of
//! threads: agents run in parallel within 10 ms windows of virtual time (no message between two
//! agents is faster), on every core by default ([`run`]) or on as many threads as asked
//! ([`run_on_threads`]).
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
//! Policies: `NoPeer`, `RandomMesh`, `PublicMesh`, `PrivateHierarchy`. Every named scenario
//! runs at full size (`tests/full_size.rs`, ignored by default: minutes in release); on demand,
//! `vod-500`. Each report carries the origin's egress and the viewers watching, per second.

#![forbid(unsafe_code)]

pub mod flownet;
pub mod network_file;
mod payloads;
pub mod player;
pub mod report;
pub mod scenario;
mod sim;

pub use hive_overlay::PolicyKind;
pub use report::{DESIGN_KEYS, LinkCopies, OriginFetches, SimReport, Targets};
pub use sim::{run, run_on_threads};
