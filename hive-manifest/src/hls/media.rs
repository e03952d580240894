//! Media playlists (RFC 8216 §4.3.2, §4.3.3) into a track's fragments.

use hive_core::manifest::{Fragment, Part, Track};
use hive_core::time::Duration;
use hive_core::{ByteRange, ContentId, FragmentId, ManifestError, TrackId};
use m3u8_rs::{KeyMethod, MediaPlaylist, MediaPlaylistType};
use url::Url;

use super::NAME;
use super::{low_latency, scan};
use crate::INIT_SEQUENCE;
use crate::identity::Joiner;
use crate::limits::{ManifestLimits, UrlBudget, check_track, malformed, seconds, too_large};

/// A parsed media playlist, ready to be applied to a track.
#[derive(Debug, PartialEq)]
pub(super) struct Media {
    pub(super) track: Track,
    pub(super) live: bool,
    pub(super) live_edge: Option<Duration>,
    pub(super) window: Option<Duration>,
    pub(super) duration: Option<Duration>,
}

impl Media {
    /// Moves the fragments, init, keys, parts and discontinuity sequence into `t`, renumbering
    /// fragment ids to `t`'s id.
    pub(super) fn apply(self, t: &mut Track) {
        let id = t.id;
        let fix = |mut f: Fragment| {
            f.id.track = id;
            f
        };
        t.fragments = self.track.fragments.into_iter().map(fix).collect();
        t.init = self.track.init.map(fix);
        for k in self.track.keys {
            if !t.keys.contains(&k) {
                t.keys.push(k);
            }
        }
        t.parts = self.track.parts;
        t.discontinuity_sequence = self.track.discontinuity_sequence;
    }
}

/// `EXT-X-BYTERANGE` / `EXT-X-MAP:BYTERANGE`: length and optional offset.
pub(super) type RangeTag = (u64, Option<u64>);

/// One media segment as [`build`] needs it, borrowed from the playlist (the scanner) or from
/// `m3u8-rs`'s [`MediaPlaylist`].
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Segment<'a> {
    /// The URI line, unresolved.
    pub(super) uri: &'a str,
    /// `EXTINF` duration, as `m3u8-rs` reads it (`f32`).
    pub(super) duration: f32,
    /// `EXT-X-BYTERANGE`: length and optional offset.
    pub(super) byte_range: Option<RangeTag>,
    /// URI of an `EXT-X-KEY` (other than `METHOD=NONE`) given just before this segment.
    pub(super) key: Option<&'a str>,
    /// `EXT-X-MAP` given just before this segment: URI and byte range.
    pub(super) map: Option<(&'a str, Option<RangeTag>)>,
}

/// What [`build`] reads from a media playlist.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Listing<'a> {
    pub(super) media_sequence: u64,
    pub(super) discontinuity_sequence: u64,
    /// RFC 8216 §6.2.2 / §4.3.3.5: a playlist without EXT-X-ENDLIST is live (an EVENT playlist
    /// grows; a sliding window also drops segments from the front), unless its type is VOD.
    pub(super) live: bool,
    pub(super) segments: Vec<Segment<'a>>,
}

impl<'a> Listing<'a> {
    /// The listing of a playlist parsed by `m3u8-rs`.
    pub(super) fn from_m3u8(pl: &'a MediaPlaylist) -> Self {
        let range = |r: &m3u8_rs::ByteRange| (r.length, r.offset);
        Listing {
            media_sequence: pl.media_sequence,
            discontinuity_sequence: pl.discontinuity_sequence,
            live: !pl.end_list && pl.playlist_type != Some(MediaPlaylistType::Vod),
            segments: pl
                .segments
                .iter()
                .map(|s| Segment {
                    uri: &s.uri,
                    duration: s.duration,
                    byte_range: s.byte_range.as_ref().map(range),
                    key: s
                        .key
                        .as_ref()
                        .filter(|k| k.method != KeyMethod::None)
                        .and_then(|k| k.uri.as_deref()),
                    map: s
                        .map
                        .as_ref()
                        .map(|m| (m.uri.as_str(), m.byte_range.as_ref().map(range))),
                })
                .collect(),
        }
    }
}

/// Parses the media playlist `text` fetched from `url`: with the scanner when it recognises
/// every line, else with `m3u8-rs`.
pub(super) fn parse(
    limits: &ManifestLimits,
    content: ContentId,
    base: &Url,
    url: &str,
    text: &[u8],
) -> Result<Media, ManifestError> {
    if let Some(listing) = std::str::from_utf8(text).ok().and_then(scan::scan) {
        return build(limits, content, base, url, text, listing);
    }
    parse_m3u8(limits, content, base, url, text)
}

/// [`parse`] with `m3u8-rs` only.
pub(super) fn parse_m3u8(
    limits: &ManifestLimits,
    content: ContentId,
    base: &Url,
    url: &str,
    text: &[u8],
) -> Result<Media, ManifestError> {
    let pl: MediaPlaylist = m3u8_rs::parse_media_playlist_res(text).map_err(|e| {
        malformed(
            NAME,
            url,
            format!("media playlist: {:?}", e.map(|e| e.code)),
        )
    })?;
    build(limits, content, base, url, text, Listing::from_m3u8(&pl))
}

fn build(
    limits: &ManifestLimits,
    content: ContentId,
    base: &Url,
    url: &str,
    text: &[u8],
    pl: Listing<'_>,
) -> Result<Media, ManifestError> {
    let track_id = TrackId(0);
    let live = pl.live;
    let joiner = Joiner::new(base);
    let budget = UrlBudget::new(limits);
    let count = pl.segments.len();
    let skip = if count > limits.max_fragments_per_track {
        if !live {
            return Err(too_large(
                NAME,
                url,
                "fragments per track",
                limits.max_fragments_per_track as u64,
            ));
        }
        count - limits.max_fragments_per_track
    } else {
        0
    };
    let mut track = Track::new(track_id, hive_core::manifest::TrackKind::Video, 0);
    track.discontinuity_sequence = pl.discontinuity_sequence;
    track.fragments.reserve(count - skip);
    let mut media_time = Duration::ZERO;
    let mut map_id = INIT_SEQUENCE;
    let mut map_seen: Option<(String, Option<ByteRange>)> = None;
    let mut prev: Option<(String, u64)> = None;
    for (i, seg) in pl.segments.into_iter().enumerate() {
        // RFC 8216 §4.3.3.2: "The first Media Segment in the Playlist has the sequence number of
        // the EXT-X-MEDIA-SEQUENCE tag; each subsequent one has the previous' number plus one."
        let sequence = pl.media_sequence.saturating_add(i as u64);
        // RFC 8216 §4.3.2.4: "EXT-X-KEY ... applies to every Media Segment ... between it and
        // the next EXT-X-KEY tag". m3u8-rs attaches the tag to the next segment only; the key
        // URIs are collected for pass-through. METHOD=NONE ends encryption. Encrypted segments
        // are ordinary fragments: peers share their opaque bytes, never the key.
        if let Some(u) = seg.key.and_then(|k| joiner.join(k)) {
            if !track.keys.contains(&u) {
                track.keys.push(u);
            }
        }
        let abs = joiner
            .join(seg.uri)
            .ok_or_else(|| malformed(NAME, url, format!("segment {sequence}: bad URI")))?;
        budget.charge(NAME, url, &abs)?;
        // RFC 8216 §4.3.2.5: "EXT-X-MAP ... applies to every Media Segment that appears after it
        // in the Playlist until the next EXT-X-MAP tag". The first one is the track's init; each
        // later one gets the next lower init sequence number.
        if let Some((muri, mrange)) = seg.map {
            let murl = joiner
                .join(muri)
                .ok_or_else(|| malformed(NAME, url, "EXT-X-MAP: bad URI"))?;
            let range = mrange.map(|(len, offset)| ByteRange {
                start: offset.unwrap_or(0),
                len,
            });
            let key = (murl, range);
            if map_seen.as_ref() != Some(&key) {
                if map_seen.is_some() {
                    map_id = map_id.saturating_sub(1);
                }
                if track.init.is_none() {
                    let mut id = FragmentId::new(content, track_id, map_id);
                    id.range = range;
                    track.init = Some(Fragment {
                        id,
                        url: key.0.clone(),
                        byte_range: range,
                        duration: Duration::ZERO,
                        media_time,
                    });
                }
                map_seen = Some(key);
            }
        }
        // RFC 8216 §4.3.2.2: "If o is not present, the sub-range begins at the next byte
        // following the sub-range of the previous Media Segment. [...] the previous Media Segment
        // MUST be a sub-range of the same media resource".
        let byte_range = match seg.byte_range {
            Some((length, offset)) => {
                let start = match (offset, &prev) {
                    (Some(o), _) => o,
                    (None, Some((purl, end))) if *purl == abs => *end,
                    (None, _) => {
                        return Err(malformed(
                            NAME,
                            url,
                            format!(
                                "segment {sequence}: EXT-X-BYTERANGE without offset after a different resource"
                            ),
                        ));
                    }
                };
                let r = ByteRange { start, len: length };
                prev = Some((abs.clone(), r.end()));
                Some(r)
            }
            None => {
                prev = None;
                None
            }
        };
        // RFC 8216 §4.3.2.1: "EXTINF is a record marker that describes the Media Segment
        // identified by the URI that follows it ... duration is a decimal-floating-point ... in
        // seconds".
        // m3u8-rs reads the decimal as f32: round to the microsecond so 9.009 stays 9.009 s.
        let duration = seconds(NAME, url, (f64::from(seg.duration) * 1e6).round() / 1e6)?;
        if i >= skip {
            let mut id = FragmentId::new(content, track_id, sequence);
            id.range = byte_range;
            track.fragments.push(Fragment {
                id,
                url: abs,
                byte_range,
                duration,
                media_time,
            });
        }
        media_time = media_time.saturating_add(duration);
    }
    if let Ok(text) = std::str::from_utf8(text) {
        if text.contains("#EXT-X-PART") || text.contains("#EXT-X-PRELOAD-HINT") {
            let parts: Vec<Part> = low_latency::parts(
                text,
                base,
                pl.media_sequence,
                limits.max_fragments_per_track,
            );
            track.parts = parts;
        }
    }
    check_track(NAME, url, &track)?;
    Ok(Media {
        track,
        live,
        live_edge: live.then_some(media_time),
        window: live.then_some(media_time),
        duration: (!live).then_some(media_time),
    })
}
