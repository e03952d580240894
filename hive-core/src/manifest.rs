//! The `ManifestFormat` contract and the `Presentation` model every format is parsed into.
//!
//! A format (HLS, DASH, Smooth Streaming, HDS — in `hive-manifest`) detects its manifests, parses
//! the bytes fetched from a URL into a [`Presentation`], and maps a player's request URL back to a
//! [`FragmentId`]. Anything a format does not understand passes through to the origin untouched.
//!
//! ## Example: a toy format, one fragment URL per line
//!
//! ```
//! use hive_core::manifest::{Fragment, ManifestFormat, Presentation, Track, TrackKind};
//! use hive_core::time::Duration;
//! use hive_core::{ContentId, FragmentId, ManifestError, TrackId};
//!
//! #[derive(Debug)]
//! struct Lines;
//!
//! impl ManifestFormat for Lines {
//!     fn name(&self) -> &'static str { "lines" }
//!     fn detect(&self, _url: &str, _content_type: Option<&str>, body: &[u8]) -> bool {
//!         body.starts_with(b"#LINES")
//!     }
//!     fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError> {
//!         let text = std::str::from_utf8(body).map_err(|e| ManifestError::Malformed {
//!             format: "lines", url: url.into(), reason: e.to_string() })?;
//!         let content = ContentId::derive(url);
//!         let mut track = Track::new(TrackId(0), TrackKind::Video, 1_000_000);
//!         for (seq, line) in text.lines().skip(1).enumerate() {
//!             let seq = seq as u64;
//!             track.fragments.push(Fragment {
//!                 id: FragmentId::new(content, TrackId(0), seq),
//!                 url: line.to_string(),
//!                 byte_range: None,
//!                 duration: Duration::from_secs(2),
//!                 media_time: Duration::from_secs(2 * seq),
//!             });
//!         }
//!         let mut p = Presentation::new(content, "lines", url);
//!         p.tracks.push(track);
//!         Ok(p)
//!     }
//! }
//!
//! let body = b"#LINES\nhttp://o/a.ts\nhttp://o/b.ts\n";
//! assert!(Lines.detect("http://o/x.lines", None, body));
//! let p = Lines.parse("http://o/x.lines", body).unwrap();
//! assert_eq!(p.fragments_total(), 2);
//! assert_eq!(p.classify("http://o/b.ts").map(|f| f.sequence), Some(1));
//! assert_eq!(p.classify("http://o/elsewhere.ts"), None);
//! ```

use std::fmt;

use crate::error::ManifestError;
use crate::ids::{ByteRange, ContentId, FragmentId, TrackId};
use crate::time::Duration;

/// What a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrackKind {
    /// Video (possibly muxed with audio, as in most HLS TS ladders).
    Video,
    /// Audio only.
    Audio,
    /// Subtitles or captions.
    Subtitles,
    /// Anything else the format declares.
    Other,
}

impl TrackKind {
    /// Lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
            TrackKind::Subtitles => "subtitles",
            TrackKind::Other => "other",
        }
    }
}

/// One fragment of a track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Its identity in the swarm.
    pub id: FragmentId,
    /// The absolute URL to fetch it from the origin.
    pub url: String,
    /// The byte range within `url`, where the format addresses fragments by range.
    pub byte_range: Option<ByteRange>,
    /// Playback duration.
    pub duration: Duration,
    /// Media time of its start within the track.
    pub media_time: Duration,
}

/// A part of a segment still being produced (LL-HLS `EXT-X-PART`, RFC 8216bis §4.4.4.9) or a
/// resource the server announces before it exists (`EXT-X-PRELOAD-HINT`, §4.4.5.3).
///
/// Parts are passed through to the origin, not shared in the swarm: they are superseded by their
/// full segment within seconds, which is what peers exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Media sequence number of the segment the part belongs to.
    pub segment: u64,
    /// The absolute URL.
    pub url: String,
    /// The byte range within `url`, if any.
    pub byte_range: Option<ByteRange>,
    /// Playback duration (zero for a preload hint).
    pub duration: Duration,
    /// Whether the part starts with an independent frame (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Whether this is a preload hint rather than a listed part.
    pub preload_hint: bool,
}

/// One track (a bitrate of the ladder, or a rendition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// Its id within the presentation.
    pub id: TrackId,
    /// What it carries.
    pub kind: TrackKind,
    /// Declared peak bandwidth in bits per second.
    pub bandwidth: u64,
    /// Codecs string as declared (RFC 6381), if any.
    pub codecs: Option<String>,
    /// Width and height in pixels, if declared.
    pub resolution: Option<(u32, u32)>,
    /// Language, if declared.
    pub language: Option<String>,
    /// The initialisation segment (fMP4 `EXT-X-MAP`, DASH `Initialization`), if any.
    pub init: Option<Fragment>,
    /// The fragments currently listed, in sequence order.
    pub fragments: Vec<Fragment>,
    /// Where the track's own fragment list is fetched, when it is separate from the manifest
    /// (an HLS media playlist named by a master playlist). Its fragments are then filled in from
    /// that playlist.
    pub playlist_url: Option<String>,
    /// Decryption key URIs (HLS `EXT-X-KEY`). Encrypted fragments are shared as opaque bytes, but
    /// keys are never shared or cached: the agent passes these requests through to the origin.
    pub keys: Vec<String>,
    /// Discontinuity sequence number of the first listed fragment (HLS
    /// `EXT-X-DISCONTINUITY-SEQUENCE`), for live windows.
    pub discontinuity_sequence: u64,
    /// Low-latency parts and preload hints, passed through (see [`Part`]).
    pub parts: Vec<Part>,
}

impl Track {
    /// An empty track.
    pub fn new(id: TrackId, kind: TrackKind, bandwidth: u64) -> Self {
        Track {
            id,
            kind,
            bandwidth,
            codecs: None,
            resolution: None,
            language: None,
            init: None,
            fragments: Vec::new(),
            playlist_url: None,
            keys: Vec::new(),
            discontinuity_sequence: 0,
            parts: Vec::new(),
        }
    }
}

/// A stream as the agent understands it: tracks and their fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// The swarm this presentation belongs to (derived from the manifest).
    pub content: ContentId,
    /// The format's name ("hls", "dash", "smooth", "hds").
    pub format: &'static str,
    /// The manifest's URL.
    pub url: String,
    /// Whether the stream is live (the fragment list slides).
    pub live: bool,
    /// The tracks.
    pub tracks: Vec<Track>,
    /// Media time of the live edge (end of the newest listed fragment), for live streams.
    pub live_edge: Option<Duration>,
    /// Total duration, for on-demand streams.
    pub duration: Option<Duration>,
    /// For live streams: how far behind the live edge fragments stay available (DASH
    /// `timeShiftBufferDepth`, or the span of an HLS sliding window).
    pub window: Option<Duration>,
}

impl Presentation {
    /// An empty, on-demand presentation.
    pub fn new(content: ContentId, format: &'static str, url: &str) -> Self {
        Presentation {
            content,
            format,
            url: url.to_string(),
            live: false,
            tracks: Vec::new(),
            live_edge: None,
            duration: None,
            window: None,
        }
    }

    /// The number of fragments over all tracks.
    pub fn fragments_total(&self) -> usize {
        self.tracks.iter().map(|t| t.fragments.len()).sum()
    }

    /// The media time where the newest listed fragment of any track ends (a live stream's edge).
    pub fn listed_end(&self) -> Option<Duration> {
        self.tracks
            .iter()
            .filter_map(|t| t.fragments.last())
            .map(|f| f.media_time.saturating_add(f.duration))
            .max()
    }

    /// The track with the given id.
    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    /// The fragment with the given id.
    pub fn fragment(&self, id: &FragmentId) -> Option<&Fragment> {
        self.track(id.track)?.fragments.iter().find(|f| f.id == *id)
    }

    /// Maps a request URL (already normalised by the format) back to a listed fragment or init
    /// segment, by exact URL match. Formats with templates or per-viewer tokens override
    /// [`ManifestFormat::classify`] instead of relying on this.
    pub fn classify(&self, url: &str) -> Option<FragmentId> {
        self.tracks.iter().find_map(|t| {
            t.fragments
                .iter()
                .chain(t.init.iter())
                .find(|f| f.url == url)
                .map(|f| f.id)
        })
    }
}

/// A manifest format.
pub trait ManifestFormat: Send + Sync + fmt::Debug {
    /// The format's name ("hls", "dash", ...).
    fn name(&self) -> &'static str;

    /// Whether `body` fetched from `url` (with its `Content-Type`, if any) is a manifest of this
    /// format. Cheap: looks at the first bytes and the URL only.
    fn detect(&self, url: &str, content_type: Option<&str>, body: &[u8]) -> bool;

    /// Parses a manifest. Errors on malformed or over-limit input; never panics.
    fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError>;

    /// Maps a player's request URL back to a fragment of `presentation`, or `None` to pass the
    /// request through to the origin.
    fn classify(&self, presentation: &Presentation, url: &str) -> Option<FragmentId> {
        presentation.classify(url)
    }
}
