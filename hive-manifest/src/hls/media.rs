//! Media playlists (RFC 8216 §4.3.2, §4.3.3) into a track's fragments.

use hive_core::manifest::{Fragment, Part, Track};
use hive_core::time::Duration;
use hive_core::{ByteRange, ContentId, FragmentId, ManifestError, TrackId};
use m3u8_rs::{KeyMethod, MediaPlaylist, MediaPlaylistType};
use url::Url;

use super::NAME;
use super::low_latency;
use crate::INIT_SEQUENCE;
use crate::identity::resolve;
use crate::limits::{ManifestLimits, malformed, seconds, too_large};

/// A parsed media playlist, ready to be applied to a track.
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

/// Parses the media playlist `text` fetched from `url`.
pub(super) fn parse(
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
    build(limits, content, base, url, text, pl)
}

fn build(
    limits: &ManifestLimits,
    content: ContentId,
    base: &Url,
    url: &str,
    text: &[u8],
    pl: MediaPlaylist,
) -> Result<Media, ManifestError> {
    let track_id = TrackId(0);
    // RFC 8216 §6.2.2 / §4.3.3.5: a playlist without EXT-X-ENDLIST is live (an EVENT playlist
    // grows; a sliding window also drops segments from the front).
    let live = !pl.end_list && pl.playlist_type != Some(MediaPlaylistType::Vod);
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
    let mut prev: Option<(Url, u64)> = None;
    for (i, seg) in pl.segments.into_iter().enumerate() {
        // RFC 8216 §4.3.3.2: "The first Media Segment in the Playlist has the sequence number of
        // the EXT-X-MEDIA-SEQUENCE tag; each subsequent one has the previous' number plus one."
        let sequence = pl.media_sequence.saturating_add(i as u64);
        // RFC 8216 §4.3.2.4: "EXT-X-KEY ... applies to every Media Segment ... between it and
        // the next EXT-X-KEY tag". m3u8-rs attaches the tag to the next segment only; the key
        // URIs are collected for pass-through. METHOD=NONE ends encryption. Encrypted segments
        // are ordinary fragments: peers share their opaque bytes, never the key.
        if let Some(k) = &seg.key {
            let key_uri = match k.method {
                KeyMethod::None => None,
                _ => k
                    .uri
                    .as_deref()
                    .and_then(|u| resolve(base, u))
                    .map(String::from),
            };
            if let Some(u) = &key_uri {
                if !track.keys.contains(u) {
                    track.keys.push(u.clone());
                }
            }
        }
        let abs = resolve(base, &seg.uri)
            .ok_or_else(|| malformed(NAME, url, format!("segment {sequence}: bad URI")))?;
        if abs.as_str().len() > limits.max_url_bytes {
            return Err(too_large(
                NAME,
                url,
                "URL bytes",
                limits.max_url_bytes as u64,
            ));
        }
        // RFC 8216 §4.3.2.5: "EXT-X-MAP ... applies to every Media Segment that appears after it
        // in the Playlist until the next EXT-X-MAP tag". The first one is the track's init; each
        // later one gets the next lower init sequence number.
        if let Some(m) = &seg.map {
            let murl =
                resolve(base, &m.uri).ok_or_else(|| malformed(NAME, url, "EXT-X-MAP: bad URI"))?;
            let range = m.byte_range.as_ref().map(|r| ByteRange {
                start: r.offset.unwrap_or(0),
                len: r.length,
            });
            let key = (String::from(murl), range);
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
        let byte_range = match &seg.byte_range {
            Some(r) => {
                let start = match (r.offset, &prev) {
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
                let r = ByteRange {
                    start,
                    len: r.length,
                };
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
                url: abs.into(),
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
    Ok(Media {
        track,
        live,
        live_edge: live.then_some(media_time),
        window: live.then_some(media_time),
        duration: (!live).then_some(media_time),
    })
}
