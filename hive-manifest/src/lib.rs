//! # hive-manifest
//!
//! HLS, DASH, Smooth Streaming and HDS manifests parsed into one [`Presentation`] model, a format
//! detector, a constant-time request [`Classifier`], manifest rewriting, and the report behind
//! `hive manifest inspect`.
//!
//! ```
//! use hive_manifest::{Classifier, Manifests, UrlPolicy};
//!
//! let body = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n#EXTINF:4,\nseg1.ts\n#EXT-X-ENDLIST\n";
//! let manifests = Manifests::default();
//! let p = manifests.parse("https://cdn.example/v/index.m3u8?token=viewer1", None, body).unwrap();
//! assert_eq!((p.format, p.live, p.fragments_total()), ("hls", false, 2));
//! let index = Classifier::new(&p, UrlPolicy::default());
//! let id = index.classify("https://cdn.example/v/seg1.ts?token=viewer2").unwrap();
//! assert_eq!(id.sequence, 1);
//! ```
//!
//! | format | module | parser |
//! |---|---|---|
//! | HLS (RFC 8216, LL-HLS parts passed through) | [`hls`] | `m3u8-rs` for masters; a strict line scanner for media playlists, `m3u8-rs` for anything it does not recognise; a line scan for LL-HLS tags |
//! | DASH (ISO/IEC 23009-1) | [`dash`] | `dash-mpd-core`, with long `SegmentTimeline`s read by a strict scanner |
//! | Smooth Streaming (MS-SSTR) | [`smooth`] | `quick-xml` |
//! | HDS (Adobe f4m 1.0/2.0, F4V bootstrap) | [`hds`] | `quick-xml` + a bounded box reader |
//!
//! Every parser honours [`ManifestLimits`]: malformed, truncated, huge or hostile input gives an
//! error or a bounded result, never a panic, a hang or an unbounded allocation.

#![forbid(unsafe_code)]

pub mod classify;
pub mod dash;
pub mod estimate;
pub mod hds;
pub mod hls;
pub mod identity;
pub mod inspect;
pub mod limits;
pub mod rewrite;
pub mod smooth;

pub use classify::{Classifier, parse_range_header};
pub use estimate::size_estimate;
pub use hive_core::manifest::{Fragment, ManifestFormat, Part, Presentation, Track, TrackKind};
pub use identity::{QueryPolicy, UrlPolicy};
pub use inspect::{Manifests, report_json};
pub use limits::ManifestLimits;

/// Sequence number given to a track's initialisation segment (HLS `EXT-X-MAP`, DASH
/// `Initialization`), so it never collides with a media fragment.
pub const INIT_SEQUENCE: u64 = u64::MAX;
