//! HLS (RFC 8216, and the LL-HLS additions of draft-pantos-hls-rfc8216bis) with `m3u8-rs`.
//!
//! * A **master playlist** (§4.3.4) gives one track per distinct media playlist: variants
//!   (`EXT-X-STREAM-INF`, §4.3.4.2), I-frame variants (§4.3.4.3) and renditions with a URI
//!   (`EXT-X-MEDIA`, §4.3.4.1: audio, subtitles, alternative video). Their fragments come from
//!   the media playlists: [`Hls::fill_track`] parses one into a track of the master's
//!   presentation, so all tracks share the master's [`ContentId`](hive_core::ContentId).
//! * A **media playlist** (§4.3.3) parsed on its own is a one-track presentation.
//!
//! Fragment sequence numbers are media sequence numbers (§4.3.3.2), so a live sliding window
//! keeps ids stable across reloads.
//!
//! **Parsers.** `m3u8-rs` is the HLS parser: it parses every master playlist and every media
//! playlist the fast path declines. Media playlists first go through a strict line scanner
//! (`scan`), which reads the RFC 8216 §4 subset packagers write (EXTINF, BYTERANGE, KEY, MAP,
//! MEDIA-SEQUENCE, ENDLIST, ...) about ten times faster than `m3u8-rs` and yields exactly what
//! `m3u8-rs` would for that text; on any line it is not sure about it gives up and `m3u8-rs`
//! parses the playlist. Both feed one builder, so features and results do not depend on the
//! path taken (tests compare the two on every fixture and on generated playlists). Segment URLs
//! are joined against the playlist URL parsed once (`identity::Joiner`), not one `Url::join`
//! each.

mod attributes;
mod low_latency;
mod media;
mod scan;
#[cfg(test)]
mod scan_tests;

use hive_core::manifest::{ManifestFormat, Presentation, Track, TrackKind};
use hive_core::{FragmentId, ManifestError, TrackId};
use m3u8_rs::{AlternativeMediaType, MasterPlaylist, Playlist};
use url::Url;

use crate::classify::classify_linear;
use crate::identity::{UrlPolicy, resolve};
use crate::limits::{ManifestLimits, malformed, too_large};

pub(crate) const NAME: &str = "hls";

/// The HLS format.
#[derive(Clone, Debug, Default)]
pub struct Hls {
    /// Parser bounds.
    pub limits: ManifestLimits,
    /// Identity policy for content ids and classification.
    pub policy: UrlPolicy,
}

/// The playlist text after an optional UTF-8 byte order mark and leading whitespace.
fn playlist_start(body: &[u8]) -> &[u8] {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let skip = body.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &body[skip..]
}

impl Hls {
    /// An HLS parser with the given bounds and policy.
    pub fn new(limits: ManifestLimits, policy: UrlPolicy) -> Self {
        Hls { limits, policy }
    }

    fn checked<'a>(&self, url: &str, body: &'a [u8]) -> Result<(Url, &'a [u8]), ManifestError> {
        self.limits.check_body(NAME, url, body)?;
        let base =
            Url::parse(url).map_err(|e| malformed(NAME, url, format!("manifest URL: {e}")))?;
        let text = playlist_start(body);
        // RFC 8216 §4.3.1.1: "It MUST be the first line of every Media Playlist and every Master
        // Playlist."
        if !text.starts_with(b"#EXTM3U") {
            return Err(ManifestError::NotThisFormat { format: NAME });
        }
        Ok((base, text))
    }

    /// Parses the media playlist fetched from `url` into the fragments of track `track` of
    /// `presentation` (built from its master playlist), keeping the master's content id.
    pub fn fill_track(
        &self,
        presentation: &mut Presentation,
        track: TrackId,
        url: &str,
        body: &[u8],
    ) -> Result<(), ManifestError> {
        let (base, text) = self.checked(url, body)?;
        let content = presentation.content;
        let already: usize = presentation
            .tracks
            .iter()
            .filter(|t| t.id != track)
            .map(|t| t.fragments.len())
            .sum();
        let Some(t) = presentation.tracks.iter_mut().find(|t| t.id == track) else {
            return Err(malformed(
                NAME,
                url,
                format!("no track {track} in the presentation"),
            ));
        };
        let media = media::parse(&self.limits, content, &base, url, text)?;
        if already.saturating_add(media.track.fragments.len()) > self.limits.max_fragments_total {
            return Err(too_large(
                NAME,
                url,
                "fragments in total",
                self.limits.max_fragments_total as u64,
            ));
        }
        let (live, live_edge, window, duration) =
            (media.live, media.live_edge, media.window, media.duration);
        media.apply(t);
        presentation.live = live;
        presentation.live_edge = live_edge;
        presentation.window = window;
        presentation.duration = duration;
        Ok(())
    }

    fn master(
        &self,
        url: &str,
        base: &Url,
        master: MasterPlaylist,
    ) -> Result<Presentation, ManifestError> {
        let mut p = Presentation::new(self.policy.content_id(NAME, url), NAME, url);
        let session_keys: Vec<String> = master
            .session_key
            .iter()
            .filter_map(|k| k.0.uri.as_deref())
            .filter_map(|u| resolve(base, u))
            .map(String::from)
            .collect();
        let push =
            |p: &mut Presentation, uri: &str, kind, bandwidth, codecs, resolution, language| {
                let Some(abs) = resolve(base, uri) else {
                    return Ok(());
                };
                let abs = String::from(abs);
                if p.tracks
                    .iter()
                    .any(|t| t.playlist_url.as_deref() == Some(abs.as_str()))
                {
                    return Ok(());
                }
                if p.tracks.len() >= self.limits.max_tracks {
                    return Err(too_large(
                        NAME,
                        url,
                        "tracks",
                        self.limits.max_tracks as u64,
                    ));
                }
                let mut t = Track::new(TrackId(p.tracks.len() as u16), kind, bandwidth);
                t.codecs = codecs;
                t.resolution = resolution;
                t.language = language;
                t.playlist_url = Some(abs);
                t.keys = session_keys.clone();
                p.tracks.push(t);
                Ok(())
            };
        // RFC 8216 §4.3.4.2: "The EXT-X-STREAM-INF tag specifies a Variant Stream ... The URI
        // line that follows the EXT-X-STREAM-INF tag specifies a Media Playlist".
        for v in &master.variants {
            let kind = match (v.is_i_frame, &v.codecs) {
                (true, _) => TrackKind::Other,
                (false, Some(c)) if c.split(',').all(|c| is_audio_codec(c.trim())) => {
                    TrackKind::Audio
                }
                _ => TrackKind::Video,
            };
            let res = v
                .resolution
                .map(|r| (clamp_u32(r.width), clamp_u32(r.height)));
            push(
                &mut p,
                &v.uri,
                kind,
                v.bandwidth,
                v.codecs.clone(),
                res,
                None,
            )?;
        }
        // RFC 8216 §4.3.4.1: "The EXT-X-MEDIA tag is used to relate Media Playlists that contain
        // alternative Renditions"; CLOSED-CAPTIONS have no URI and ride in the video.
        for m in &master.alternatives {
            let kind = match m.media_type {
                AlternativeMediaType::Audio => TrackKind::Audio,
                AlternativeMediaType::Subtitles => TrackKind::Subtitles,
                AlternativeMediaType::Video => TrackKind::Video,
                _ => continue,
            };
            if let Some(uri) = &m.uri {
                push(&mut p, uri, kind, 0, None, None, m.language.clone())?;
            }
        }
        p.live = false;
        Ok(p)
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn is_audio_codec(c: &str) -> bool {
    [
        "mp4a", "ac-3", "ec-3", "opus", "flac", "fLaC", "mp3", "alac",
    ]
    .iter()
    .any(|a| c.starts_with(a))
}

impl ManifestFormat for Hls {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, url: &str, content_type: Option<&str>, body: &[u8]) -> bool {
        playlist_start(body).starts_with(b"#EXTM3U")
            || content_type.is_some_and(|c| {
                let c = c.to_ascii_lowercase();
                c.contains("mpegurl")
            })
            || url
                .split(['?', '#'])
                .next()
                .is_some_and(|p| p.ends_with(".m3u8") || p.ends_with(".m3u"))
    }

    fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError> {
        let (base, text) = self.checked(url, body)?;
        if m3u8_rs::is_master_playlist(text) {
            let playlist = m3u8_rs::parse_playlist_res(text)
                .map_err(|e| malformed(NAME, url, format!("m3u8: {:?}", e.map(|e| e.code))))?;
            if let Playlist::MasterPlaylist(m) = playlist {
                return self.master(url, &base, m);
            }
        }
        {
            {
                let content = self.policy.content_id(NAME, url);
                let media = media::parse(&self.limits, content, &base, url, text)?;
                let mut p = Presentation::new(content, NAME, url);
                p.live = media.live;
                p.live_edge = media.live_edge;
                p.window = media.window;
                p.duration = media.duration;
                let mut t = Track::new(TrackId(0), TrackKind::Video, 0);
                t.playlist_url = Some(url.to_string());
                media.apply(&mut t);
                p.tracks.push(t);
                Ok(p)
            }
        }
    }

    fn classify(&self, presentation: &Presentation, url: &str) -> Option<FragmentId> {
        classify_linear(&self.policy, presentation, url)
    }
}
