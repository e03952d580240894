//! # hive-core
//!
//! The vocabulary and the contracts of Hive, a software CDN for adaptive HTTP video.
//!
//! Every other Hive crate builds on these types: identifiers ([`PeerId`], [`ContentId`],
//! [`FragmentId`], ...), virtual [`time`], the binary [`wire`] protocol agents speak to each
//! other, the plug-in traits — [`Transport`](transport::Transport),
//! [`CongestionController`](cc::CongestionController),
//! [`ManifestFormat`](manifest::ManifestFormat), [`FragmentCache`](cache::FragmentCache),
//! [`OverlayPolicy`](overlay::OverlayPolicy) — and the two standard caches.
//!
//! Protocol code never reads a clock: time is an argument (`now: Instant`), so everything here runs
//! unchanged in the deterministic simulator.
//!
//! ## Features
//!
//! | feature   | what it adds |
//! |-----------|--------------|
//! | `testkit` | conformance suites for `Transport` and `FragmentCache` implementations, and [`testkit::memory`], an in-process reference transport |

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
pub mod cc;
pub mod discovery;
pub mod error;
pub mod hash;
pub mod have;
pub mod ids;
pub mod integrity;
pub mod manifest;
pub mod overlay;
pub mod ranking;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub mod time;
pub mod transport;
pub mod wire;

pub use error::{CcError, IdError, ManifestError, TransportError};
pub use hash::ContentHash;
pub use have::SeqSet;
pub use ids::{
    ByteRange, ContentId, FragmentId, KeyKind, Locality, PeerAddr, PeerId, PeerInfo, Role, TrackId,
};
pub use wire::WireError;
