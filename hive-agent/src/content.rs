//! What the agent knows of the streams its players watch: presentations parsed from the
//! manifests that passed through the proxy, and the index from request URL to fragment.

use std::collections::HashMap;

use hive_core::manifest::{ManifestFormat, Presentation};
use hive_core::time::{Duration, Instant};
use hive_core::{ByteRange, ContentId, FragmentId, TrackId};
use hive_manifest::{Classifier, Manifests, UrlPolicy};
use hive_overlay::FragmentInfo;

/// One stream.
#[derive(Debug)]
pub(crate) struct Content {
    pub(crate) presentation: Presentation,
    classifier: Classifier,
    /// When a player last used it, on the agent's clock.
    pub(crate) used: Instant,
}

/// What a manifest taught the agent.
#[derive(Debug)]
pub(crate) struct Learned {
    /// The stream it belongs to.
    pub(crate) content: ContentId,
    /// Whether it is live.
    pub(crate) live: bool,
    /// Every fragment it lists (the engine ignores those it knows).
    pub(crate) fragments: Vec<FragmentInfo>,
}

/// The agent's streams.
#[derive(Debug)]
pub(crate) struct Contents {
    manifests: Manifests,
    extra: Vec<std::sync::Arc<dyn ManifestFormat>>,
    policy: UrlPolicy,
    by_content: HashMap<ContentId, Content>,
    /// Canonical media-playlist URL → its stream and track (HLS masters list them).
    playlists: HashMap<String, (ContentId, TrackId)>,
    /// The URL of the manifest that last listed each stream's track (its integrity list is
    /// beside it).
    listed_by: HashMap<(ContentId, TrackId), String>,
    /// When each live manifest (HLS media playlist, or DASH/other manifest) was last fetched,
    /// by the player or by the agent's own refresh ([`Contents::due_refreshes`]).
    refreshed: HashMap<String, Instant>,
}

/// Most manifests of one stream the agent refreshes by itself (the renditions of a ladder).
const MAX_REFRESHED_PER_STREAM: usize = 16;

impl Contents {
    pub(crate) fn new(extra: Vec<std::sync::Arc<dyn ManifestFormat>>) -> Self {
        Contents {
            manifests: Manifests::default(),
            extra,
            policy: UrlPolicy::default(),
            by_content: HashMap::new(),
            playlists: HashMap::new(),
            listed_by: HashMap::new(),
            refreshed: HashMap::new(),
        }
    }

    /// Parses a manifest that passed through the proxy at `now`. `None` when it is not one (or
    /// is malformed: it is passed through untouched all the same).
    pub(crate) fn learn(
        &mut self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> Option<Learned> {
        self.learn_at(url, content_type, body, now, true)
    }

    /// As [`Contents::learn`], for a manifest the agent refreshed by itself: the stream does
    /// not count as used (no player asked), so it still expires when its players leave.
    pub(crate) fn learn_refreshed(
        &mut self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> Option<Learned> {
        self.learn_at(url, content_type, body, now, false)
    }

    fn learn_at(
        &mut self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
        touch: bool,
    ) -> Option<Learned> {
        let key = self.policy.canonical(url);
        // An HLS media playlist of a master we know: fill that track.
        if let Some(&(content, track)) = key.as_ref().and_then(|k| self.playlists.get(k))
            && let Some(c) = self.by_content.get_mut(&content)
        {
            match self
                .manifests
                .hls
                .fill_track(&mut c.presentation, track, url, body)
            {
                Ok(()) => {
                    c.classifier = Classifier::new(&c.presentation, self.policy.clone());
                    if touch {
                        c.used = now;
                    }
                    if let Some(k) = &key {
                        self.refreshed.insert(k.clone(), now);
                    }
                    let fragments = infos(&c.presentation, Some(track));
                    let live = c.presentation.live;
                    self.note_listed(url, content, &fragments);
                    return Some(Learned {
                        content,
                        live,
                        fragments,
                    });
                }
                Err(e) => {
                    tracing::debug!(%url, error = %e, "media playlist not understood");
                    return None;
                }
            }
        }
        let parsed = match self
            .extra
            .iter()
            .find(|f| f.detect(url, content_type, body))
        {
            Some(f) => f.parse(url, body),
            None => self.manifests.parse(url, content_type, body),
        };
        let p = match parsed {
            Ok(p) => p,
            // Not a manifest at all (a segment, a key): nothing to learn, nothing to report.
            Err(hive_core::ManifestError::NotThisFormat { .. }) => return None,
            Err(e) => {
                tracing::debug!(%url, error = %e, "not a manifest the agent understands");
                return None;
            }
        };
        let content = p.content;
        for t in &p.tracks {
            if t.fragments.is_empty()
                && let Some(k) = t
                    .playlist_url
                    .as_deref()
                    .and_then(|u| self.policy.canonical(u))
            {
                self.playlists.insert(k, (content, t.id));
            }
        }
        let fragments = infos(&p, None);
        let live = p.live;
        let classifier = Classifier::new(&p, self.policy.clone());
        let used = match self.by_content.get(&content) {
            Some(c) if !touch => c.used,
            _ => now,
        };
        if let Some(k) = &key {
            self.refreshed.insert(k.clone(), now);
        }
        self.by_content.insert(
            content,
            Content {
                presentation: p,
                classifier,
                used,
            },
        );
        self.note_listed(url, content, &fragments);
        Some(Learned {
            content,
            live,
            fragments,
        })
    }

    /// Remembers that the manifest at `url` lists these fragments' tracks.
    fn note_listed(&mut self, url: &str, content: ContentId, fragments: &[FragmentInfo]) {
        for f in fragments {
            let key = (content, f.id.track);
            if self.listed_by.get(&key).map(String::as_str) != Some(url) {
                self.listed_by.insert(key, url.to_string());
            }
        }
    }

    /// The URL of the manifest that listed `content`'s `track`.
    pub(crate) fn manifest_of(&self, content: ContentId, track: TrackId) -> Option<String> {
        self.listed_by.get(&(content, track)).cloned()
    }

    /// Whether the stream `content` is known (a player used it lately).
    pub(crate) fn knows(&self, content: &ContentId) -> bool {
        self.by_content.contains_key(content)
    }

    /// The fragment a request for `url` (with an optional `Range`) fetches; its stream counts
    /// as used at `now`.
    pub(crate) fn classify(
        &mut self,
        url: &str,
        range: Option<ByteRange>,
        now: Instant,
    ) -> Option<(FragmentInfo, bool)> {
        for c in self.by_content.values_mut() {
            if let Some(id) = c.classifier.classify_range(url, range)
                && let Some(info) = info_of(&c.presentation, &id)
            {
                c.used = now;
                return Some((info, c.presentation.live));
            }
        }
        None
    }

    /// Forgets streams no player used for `idle` before `now`; returns them.
    pub(crate) fn expire(&mut self, now: Instant, idle: Duration) -> Vec<ContentId> {
        let gone: Vec<ContentId> = self
            .by_content
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.used) > idle)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.by_content.remove(id);
        }
        self.playlists.retain(|_, (c, _)| !gone.contains(c));
        self.listed_by.retain(|(c, _), _| !gone.contains(c));
        let policy = &self.policy;
        let by_content = &self.by_content;
        self.refreshed.retain(|url, _| {
            by_content.values().any(|c| {
                policy.canonical(&c.presentation.url).as_deref() == Some(url.as_str())
                    || c.presentation.tracks.iter().any(|t| {
                        t.playlist_url
                            .as_deref()
                            .and_then(|u| policy.canonical(u))
                            .as_deref()
                            == Some(url.as_str())
                    })
            })
        });
        gone
    }

    /// The live manifests to fetch again now, so that the agent learns each new fragment when
    /// it is published rather than when its own player next asks: every rendition's media
    /// playlist (HLS; the player fetches only its own, while neighbours ask this agent for
    /// the others), or the manifest itself (DASH and the others), of each live stream a player
    /// used within `active`, each at most every half fragment duration (0.5 to 5 s). The ones
    /// returned count as refreshed at `now`.
    pub(crate) fn due_refreshes(&mut self, now: Instant, active: Duration) -> Vec<String> {
        let mut due = Vec::new();
        for c in self.by_content.values() {
            let p = &c.presentation;
            if !p.live || now.saturating_duration_since(c.used) > active {
                continue;
            }
            let half = |t: &hive_core::manifest::Track| {
                hive_overlay::live_refresh_period(
                    t.fragments
                        .last()
                        .map_or(Duration::from_secs(2), |f| f.duration),
                )
            };
            let mut urls: Vec<(String, Duration)> = p
                .tracks
                .iter()
                .filter_map(|t| t.playlist_url.clone().map(|u| (u, half(t))))
                .collect();
            if urls.is_empty() {
                let every = p.tracks.first().map_or(Duration::from_secs(1), half);
                urls.push((p.url.clone(), every));
            }
            for (url, every) in urls.into_iter().take(MAX_REFRESHED_PER_STREAM) {
                let Some(key) = self.policy.canonical(&url) else {
                    continue;
                };
                let last = self.refreshed.get(&key).copied();
                if last.is_none_or(|l| now.saturating_duration_since(l) >= every) {
                    self.refreshed.insert(key, now);
                    due.push(url);
                }
            }
        }
        due
    }
}

fn info(track_bps: u64, f: &hive_core::manifest::Fragment) -> FragmentInfo {
    FragmentInfo {
        id: f.id,
        url: f.url.clone(),
        media_time: f.media_time,
        duration: if f.duration == Duration::ZERO {
            Duration::from_secs(2)
        } else {
            f.duration
        },
        // Clamped to hive_manifest::limits::MAX_FRAGMENT_BYTES: the engine turns it into
        // durations (a 2^64-byte range once panicked `Duration::from_secs_f64`).
        size_estimate: hive_manifest::size_estimate(track_bps, f),
        hash: None,
    }
}

/// A live HLS playlist gives media times relative to its first listed segment (HLS has no
/// clock without `EXT-X-PROGRAM-DATE-TIME`), so the same fragment's media time shifts with each
/// refresh — and a cache that keeps "the newest 30 s" by media time would never evict. Live
/// HLS fragments get a stable media time instead: sequence × their duration, the same on every
/// refresh and every agent. An init segment takes the media time of the newest fragment listed
/// with it, so it stays in the live window while its track plays.
fn stable(
    p: &Presentation,
    t: &hive_core::manifest::Track,
    mut info: FragmentInfo,
) -> FragmentInfo {
    if !(p.live && p.format == "hls") {
        return info;
    }
    let seq = if info.id.sequence == hive_manifest::INIT_SEQUENCE {
        t.fragments.last().map_or(0, |f| f.id.sequence)
    } else {
        info.id.sequence
    };
    info.media_time = info
        .duration
        .saturating_mul(seq.min(u32::MAX as u64) as u32);
    info
}

fn infos(p: &Presentation, only: Option<TrackId>) -> Vec<FragmentInfo> {
    p.tracks
        .iter()
        .filter(|t| only.is_none_or(|o| o == t.id))
        .flat_map(|t| {
            t.init
                .iter()
                .chain(t.fragments.iter())
                .map(move |f| stable(p, t, info(t.bandwidth, f)))
        })
        .collect()
}

fn info_of(p: &Presentation, id: &FragmentId) -> Option<FragmentInfo> {
    let t = p.track(id.track)?;
    t.init
        .iter()
        .chain(t.fragments.iter())
        .find(|f| f.id == *id)
        .map(|f| stable(p, t, info(t.bandwidth, f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlo/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1600000\nhi/index.m3u8\n";
    const T0: Instant = Instant::from_secs(5);
    const MEDIA: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:40\n#EXTINF:2.0,\n40.ts\n#EXTINF:2.0,\n41.ts\n";

    #[test]
    fn master_then_media_playlists_give_one_stream_with_tracks() {
        let mut c = Contents::new(Vec::new());
        let m = c
            .learn(
                "http://o/live/master.m3u8?tok=1",
                None,
                MASTER.as_bytes(),
                T0,
            )
            .expect("master");
        assert!(m.fragments.is_empty());
        let hi = c
            .learn("http://o/live/hi/index.m3u8", None, MEDIA.as_bytes(), T0)
            .expect("media");
        assert_eq!(hi.content, m.content);
        assert!(hi.live);
        assert_eq!(hi.fragments.len(), 2);
        assert_eq!(hi.fragments[1].size_estimate, 400_000);
        // Live HLS media times are stable across refreshes: sequence × duration.
        assert_eq!(hi.fragments[1].media_time, Duration::from_secs(82));
        let later = c
            .learn(
                "http://o/live/hi/index.m3u8",
                None,
                b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:2.0,\n41.ts\n#EXTINF:2.0,\n42.ts\n",
                T0,
            )
            .expect("refresh");
        assert_eq!(later.fragments[0].media_time, Duration::from_secs(82));
        let (info, live) = c
            .classify("http://o/live/hi/41.ts", None, T0)
            .expect("known");
        assert!(live);
        assert_eq!(
            (info.id.content, info.id.track, info.id.sequence),
            (m.content, TrackId(1), 41)
        );
        assert!(c.classify("http://o/live/lo/41.ts", None, T0).is_none());
        assert!(c.classify("http://o/other.ts", None, T0).is_none());
    }

    #[test]
    fn garbage_is_not_a_manifest() {
        let mut c = Contents::new(Vec::new());
        assert!(
            c.learn("http://o/x.bin", None, b"\x00\x01garbage", T0)
                .is_none()
        );
        assert!(
            c.learn("http://o/a.m3u8", None, MASTER.as_bytes(), T0)
                .is_some()
        );
    }

    #[test]
    fn streams_expire_after_idle_time_on_the_agents_clock() {
        let mut c = Contents::new(Vec::new());
        let idle = Duration::from_secs(120);
        let m = c.learn("http://o/live/master.m3u8", None, MASTER.as_bytes(), T0);
        let content = m.expect("master").content;
        c.learn("http://o/live/hi/index.m3u8", None, MEDIA.as_bytes(), T0)
            .expect("media");
        // A player's fragment request 100 s later counts as use.
        let used = T0 + Duration::from_secs(100);
        assert!(c.classify("http://o/live/hi/41.ts", None, used).is_some());
        assert!(c.expire(T0 + Duration::from_secs(200), idle).is_empty());
        assert!(c.expire(used + idle, idle).is_empty());
        assert_eq!(
            c.expire(used + idle + Duration::from_micros(1), idle),
            vec![content]
        );
        assert!(!c.knows(&content));
        assert!(
            c.classify("http://o/live/hi/41.ts", None, used + idle)
                .is_none()
        );
        assert!(c.manifest_of(content, TrackId(1)).is_none());
    }

    /// Every rendition's live playlist is due every half fragment duration while a player
    /// uses the stream; the agent's own refreshes neither count as use nor keep it alive.
    #[test]
    fn live_playlists_are_refreshed_while_a_player_watches() {
        let mut c = Contents::new(Vec::new());
        c.learn("http://o/live/master.m3u8", None, MASTER.as_bytes(), T0);
        // Not live until a media playlist says so.
        assert!(c.due_refreshes(T0, Duration::from_secs(10)).is_empty());
        c.learn("http://o/live/hi/index.m3u8", None, MEDIA.as_bytes(), T0);
        // `hi` was fetched just now (by the player): only `lo` is due.
        assert_eq!(
            c.due_refreshes(T0 + Duration::from_millis(100), Duration::from_secs(10)),
            ["http://o/live/lo/index.m3u8"]
        );
        assert!(
            c.due_refreshes(T0 + Duration::from_millis(600), Duration::from_secs(10))
                .is_empty()
        );
        let mut both = c.due_refreshes(T0 + Duration::from_millis(1200), Duration::from_secs(10));
        both.sort();
        assert_eq!(
            both,
            ["http://o/live/hi/index.m3u8", "http://o/live/lo/index.m3u8"]
        );
        // A refresh teaches the agent the new fragment without counting as the player's use.
        let later = T0 + Duration::from_secs(3);
        let l = c
            .learn_refreshed(
                "http://o/live/lo/index.m3u8",
                None,
                MEDIA.replace("40", "43").replace("41", "44").as_bytes(),
                later,
            )
            .expect("a media playlist");
        assert!(l.live);
        assert_eq!(l.fragments.len(), 2);
        // The player left at T0: after `active`, nothing is refreshed, and the stream expires.
        assert!(
            c.due_refreshes(T0 + Duration::from_secs(11), Duration::from_secs(10))
                .is_empty()
        );
        assert_eq!(
            c.expire(T0 + Duration::from_secs(121), Duration::from_secs(120))
                .len(),
            1
        );
        assert!(c.refreshed.is_empty(), "its refresh times go with it");
    }
}
