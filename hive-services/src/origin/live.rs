//! The origin's live stream: a ladder of renditions cut into fragments of a fixed duration
//! that appear in real time, with HLS playlists and a dynamic DASH MPD describing them. Its
//! fragments are a real, decodable test card ([`Media::TestCard`]) or, for tests that need only
//! sizes, pseudo-random bytes ([`Media::Synthetic`]).

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::testcard::{self, TS_PACKET};

/// The test card's audio bitrate as the MPD states it (48 kbit/s AAC plus its boxes).
const AUDIO_BPS: u64 = 52_000;

/// Which fragments a manifest lists: the live window at a time, or the whole on-demand title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// The live window at this time.
    Live(SystemTime),
    /// The on-demand title ([`LiveConfig::vod_fragments`]).
    Vod,
}

/// What the stream's fragments carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Media {
    /// Real media that any player decodes, H.264 High@3.1 video and AAC-LC audio: a test card
    /// (one committed 2-second GOP per picture size, looped with its timestamps moved on), in
    /// MPEG-TS for HLS (padded with null packets to the rendition's bitrate) and in fragmented
    /// MP4 for DASH (video per rendition, padded inside its `mdat`; audio in an adaptation set
    /// of its own). It needs 2-second fragments; a
    /// stream with fragments of another duration is [`Media::Synthetic`]. A rendition whose
    /// bitrate is below the test card's (about 0.37, 0.73 and 1.4 Mbit/s at 360, 540 and 720
    /// lines) gets the test card's size.
    #[default]
    TestCard,
    /// Pseudo-random bytes in MPEG-TS-shaped packets (sync byte, PID, continuity counter):
    /// exact sizes, nothing a player can decode.
    Synthetic,
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// Average bitrate, bit/s (fragment sizes vary around it).
    pub bandwidth: u64,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

/// Settings of the synthetic live stream.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// The ladder, lowest bitrate first. Default 0.5 / 1 / 2 Mbit/s.
    pub ladder: Vec<Rendition>,
    /// Fragment duration. Default 2 s.
    pub fragment: Duration,
    /// Fragments listed in a playlist (the live window). Default 6.
    pub window: u64,
    /// Fragments still served after they left the window (for slow players). Default 30.
    pub retention: u64,
    /// Size variation of fragments around the mean, as a fraction (VBR). Default 0.2.
    pub size_jitter: f64,
    /// Seed of the fragment bytes: two origins with the same seed serve identical streams.
    pub seed: u64,
    /// What fragments carry. Default: the test card.
    pub media: Media,
    /// Fragments of the on-demand title (under `/vod/`): the same fragments as the live
    /// stream's first ones, all available at once. Default 300 (10 minutes of 2 s).
    pub vod_fragments: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            ladder: vec![
                Rendition {
                    bandwidth: 500_000,
                    width: 640,
                    height: 360,
                },
                Rendition {
                    bandwidth: 1_000_000,
                    width: 960,
                    height: 540,
                },
                Rendition {
                    bandwidth: 2_000_000,
                    width: 1280,
                    height: 720,
                },
            ],
            fragment: Duration::from_secs(2),
            window: 6,
            retention: 30,
            size_jitter: 0.2,
            seed: 0x4849_5645,
            media: Media::default(),
            vod_fragments: 300,
        }
    }
}

/// The live stream's clock and content.
#[derive(Clone, Debug)]
pub struct LiveStream {
    cfg: LiveConfig,
    /// Wall-clock time of the start of fragment 0.
    epoch: SystemTime,
}

impl LiveStream {
    /// A stream that has been running for one window already at `now`, so a playlist is full
    /// from the first request.
    pub fn new(cfg: LiveConfig, now: SystemTime) -> Self {
        let pre_roll = cfg.fragment.saturating_mul(cfg.window as u32 + 1);
        let epoch = now.checked_sub(pre_roll).unwrap_or(now);
        LiveStream { cfg, epoch }
    }

    /// The settings.
    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    /// Wall-clock start of fragment 0.
    pub fn epoch(&self) -> SystemTime {
        self.epoch
    }

    fn frag_secs(&self) -> f64 {
        self.cfg.fragment.as_secs_f64().max(1e-3)
    }

    /// What the fragments carry: the test card needs 2-second fragments.
    pub fn media(&self) -> Media {
        let card = Duration::from_micros(testcard::LOOP_TICKS * 100 / 9);
        match self.cfg.media {
            Media::TestCard if self.cfg.fragment == card => Media::TestCard,
            _ => Media::Synthetic,
        }
    }

    /// The test card template of `track`, when the stream carries the test card.
    fn card(&self, track: usize) -> Option<&'static [u8]> {
        let r = self.cfg.ladder.get(track)?;
        (self.media() == Media::TestCard).then(|| testcard::template(r.height))
    }

    /// The newest complete fragment at `now` (fragments are published once whole).
    pub fn live_edge(&self, now: SystemTime) -> u64 {
        let elapsed = now.duration_since(self.epoch).unwrap_or_default();
        let done = (elapsed.as_secs_f64() / self.frag_secs()).floor() as u64;
        done.saturating_sub(1)
    }

    /// The fragments `span` lists: `first..end`.
    pub fn range(&self, span: Span) -> std::ops::Range<u64> {
        match span {
            Span::Live(now) => {
                let edge = self.live_edge(now);
                (edge + 1).saturating_sub(self.cfg.window)..edge + 1
            }
            Span::Vod => 0..self.cfg.vod_fragments,
        }
    }

    /// Whether fragment `seq` can be served in `span`: live, published and not older than
    /// the retention; on demand, within the title.
    pub fn available_in(&self, seq: u64, span: Span) -> bool {
        match span {
            Span::Live(now) => self.available(seq, now),
            Span::Vod => seq < self.cfg.vod_fragments,
        }
    }

    /// Whether fragment `seq` can be served at `now`: published, and not older than the
    /// retention.
    pub fn available(&self, seq: u64, now: SystemTime) -> bool {
        let edge = self.live_edge(now);
        seq <= edge && edge - seq < self.cfg.window + self.cfg.retention
    }

    /// Size of fragment `seq` of `track`, bytes (deterministic, whole TS packets).
    pub fn fragment_len(&self, track: usize, seq: u64) -> usize {
        let Some(r) = self.cfg.ladder.get(track) else {
            return 0;
        };
        let mean = r.bandwidth as f64 * self.frag_secs() / 8.0;
        let h = blake3::hash(&self.key(track, seq, b"size"));
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.as_bytes()[..8]);
        let u = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        let f = 1.0 + self.cfg.size_jitter.clamp(0.0, 0.9) * (2.0 * u - 1.0);
        let packets = ((mean * f) / TS_PACKET as f64).round().max(1.0) as usize;
        let card = self.card(track).map_or(0, <[u8]>::len);
        (packets * TS_PACKET).max(card)
    }

    fn key(&self, track: usize, seq: u64, what: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        k.extend_from_slice(b"hive-origin/v1");
        k.extend_from_slice(&self.cfg.seed.to_le_bytes());
        k.extend_from_slice(&(track as u64).to_le_bytes());
        k.extend_from_slice(&seq.to_le_bytes());
        k.extend_from_slice(what);
        k
    }

    /// The bytes of fragment `seq` of `track`, the same for every request and every origin
    /// with the same seed: the test card ([`Media::TestCard`]; its null packets' payload comes
    /// from the seed), or MPEG-TS-shaped packets (sync byte 0x47, the
    /// rendition's PID, a continuity counter) with pseudo-random payload.
    pub fn fragment(&self, track: usize, seq: u64) -> Bytes {
        let len = self.fragment_len(track, seq);
        if let Some(card) = self.card(track) {
            // Fragment n starts at n × 2 s (plus the template's own start), in every
            // rendition and packaging, live and on demand alike.
            let key = self.key(track, seq, b"data");
            return testcard::fragment(card, seq, 0, len, |pad| {
                blake3::Hasher::new().update(&key).finalize_xof().fill(pad)
            });
        }
        let mut payload = vec![0u8; len];
        let mut xof = blake3::Hasher::new()
            .update(&self.key(track, seq, b"data"))
            .finalize_xof();
        xof.fill(&mut payload);
        let pid = 0x100 + track as u16;
        let mut out = BytesMut::with_capacity(len);
        for (i, chunk) in payload.chunks(TS_PACKET).enumerate() {
            out.put_u8(0x47);
            out.put_u16(pid & 0x1fff | if i == 0 { 0x4000 } else { 0 });
            out.put_u8(0x10 | (i as u8 & 0x0f));
            out.put_slice(&chunk[4.min(chunk.len())..]);
        }
        out.freeze()
    }

    /// Fragment `seq` of `track` for DASH: the test card in fragmented MP4 (video only; the
    /// audio is [`LiveStream::audio_fragment`]), padded to the same size as the MPEG-TS one;
    /// or, for a synthetic stream, the same bytes as [`LiveStream::fragment`].
    pub fn fmp4_fragment(&self, track: usize, seq: u64) -> Bytes {
        let card = self
            .cfg
            .ladder
            .get(track)
            .filter(|_| self.media() == Media::TestCard);
        match card.and_then(|r| testcard::fmp4_video(r.height)) {
            Some(f) => {
                let key = self.key(track, seq, b"fmp4");
                f.fragment(seq, self.fragment_len(track, seq), |pad| {
                    blake3::Hasher::new().update(&key).finalize_xof().fill(pad)
                })
            }
            None => self.fragment(track, seq),
        }
    }

    /// The test card's audio (AAC-LC, 64 kHz mono) for DASH: its init segment, when the
    /// stream carries the test card.
    pub fn audio_init(&self) -> Option<Bytes> {
        (self.media() == Media::TestCard)
            .then(testcard::fmp4_audio)
            .flatten()
            .map(|a| Bytes::from_static(a.init()))
    }

    /// The test card's audio fragment `seq` (2 s, the same for every rendition).
    pub fn audio_fragment(&self, seq: u64) -> Option<Bytes> {
        (self.media() == Media::TestCard)
            .then(testcard::fmp4_audio)
            .flatten()
            .map(|a| a.fragment(seq, 0, |_| {}))
    }

    /// A track's initialisation segment for DASH: the test card's (`ftyp` + `moov`), or for a
    /// synthetic stream a small constant one.
    pub fn init_segment(&self, track: usize) -> Bytes {
        let card = self
            .cfg
            .ladder
            .get(track)
            .filter(|_| self.media() == Media::TestCard);
        if let Some(f) = card.and_then(|r| testcard::fmp4_video(r.height)) {
            return Bytes::from_static(f.init());
        }
        let mut b = BytesMut::new();
        b.put_u32(24);
        b.put_slice(b"ftyp");
        b.put_slice(b"iso6");
        b.put_u32(0);
        b.put_slice(b"iso6dash");
        let mut rest = vec![0u8; 512];
        blake3::Hasher::new()
            .update(&self.key(track, u64::MAX, b"init"))
            .finalize_xof()
            .fill(&mut rest);
        b.put_u32(8 + rest.len() as u32);
        b.put_slice(b"free");
        b.put_slice(&rest);
        b.freeze()
    }

    /// The HLS master playlist (variants at `<track>/index.m3u8`).
    pub fn hls_master(&self) -> String {
        let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
        for (i, r) in self.cfg.ladder.iter().enumerate() {
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"avc1.64001f,mp4a.40.2\"\n{i}/index.m3u8",
                r.bandwidth * 11 / 10,
                r.bandwidth,
                r.width,
                r.height
            );
        }
        s
    }

    /// The live media playlist of `track` at `now`: the newest `window` fragments.
    pub fn hls_media(&self, track: usize, now: SystemTime) -> Option<String> {
        self.hls_media_in(track, Span::Live(now))
    }

    /// The MPEG-TS media playlist of `track` for `span`.
    pub fn hls_media_in(&self, track: usize, span: Span) -> Option<String> {
        self.cfg.ladder.get(track)?;
        Some(self.media_playlist(span, 3, None, "ts"))
    }

    /// A media playlist: its fragments named `<seq>.<ext>`, after `map` (`EXT-X-MAP`) if any;
    /// on demand, a `VOD` playlist with its end.
    fn media_playlist(&self, span: Span, version: u8, map: Option<&str>, ext: &str) -> String {
        let range = self.range(span);
        let target = self.frag_secs().ceil() as u64;
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            range.start
        );
        if span == Span::Vod {
            s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
        }
        if let Some(m) = map {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{m}\"");
        }
        for seq in range {
            let _ = writeln!(s, "#EXTINF:{:.3},\n{seq}.{ext}", self.frag_secs());
        }
        if span == Span::Vod {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    /// The HLS master playlist of the fragmented-MP4 (CMAF) packaging: video variants at
    /// `<track>/index-fmp4.m3u8` and, with the test card, an audio rendition group at
    /// `audio/index-fmp4.m3u8`. The same fragments as DASH's.
    pub fn hls_master_fmp4(&self) -> String {
        let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        let audio = self.audio_init().is_some();
        if audio {
            s.push_str("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"tone\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"audio/index-fmp4.m3u8\"\n");
        }
        for (i, r) in self.cfg.ladder.iter().enumerate() {
            let bw = r.bandwidth + if audio { AUDIO_BPS } else { 0 };
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={bw},RESOLUTION={}x{},CODECS=\"avc1.64001f{}\"{}\n{i}/index-fmp4.m3u8",
                bw * 11 / 10,
                r.width,
                r.height,
                if audio { ",mp4a.40.2" } else { "" },
                if audio { ",AUDIO=\"audio\"" } else { "" },
            );
        }
        s
    }

    /// The live fragmented-MP4 media playlist of `track` (`None`: the test card's audio) at
    /// `now`: its init segment (`EXT-X-MAP`) and the newest `window` fragments.
    pub fn hls_media_fmp4(&self, track: Option<usize>, now: SystemTime) -> Option<String> {
        self.hls_media_fmp4_in(track, Span::Live(now))
    }

    /// The fragmented-MP4 media playlist of `track` (`None`: the audio) for `span`.
    pub fn hls_media_fmp4_in(&self, track: Option<usize>, span: Span) -> Option<String> {
        match track {
            Some(t) => {
                self.cfg.ladder.get(t)?;
            }
            None => {
                self.audio_init()?;
            }
        }
        Some(self.media_playlist(span, 7, Some("init.mp4"), "m4s"))
    }

    /// The dynamic DASH MPD: one video adaptation set, and with the test card one audio
    /// adaptation set (representation `audio`), `SegmentTemplate` with `$Number$`.
    pub fn dash_mpd(&self, now: SystemTime) -> String {
        self.dash_mpd_in(Span::Live(now))
    }

    /// The DASH MPD for `span`: dynamic for the live stream, static for the on-demand title.
    pub fn dash_mpd_in(&self, span: Span) -> String {
        let ms = self.cfg.fragment.as_millis().max(1);
        let head = match span {
            Span::Live(now) => {
                let ast = rfc3339(self.epoch);
                let published = rfc3339(now);
                let depth = self.frag_secs() * self.cfg.window as f64;
                format!(
                    "type=\"dynamic\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" availabilityStartTime=\"{ast}\" publishTime=\"{published}\" minimumUpdatePeriod=\"PT{:.3}S\" minBufferTime=\"PT{:.3}S\" timeShiftBufferDepth=\"PT{depth:.3}S\" suggestedPresentationDelay=\"PT{:.3}S\"",
                    self.frag_secs(),
                    self.frag_secs(),
                    self.frag_secs() * 3.0
                )
            }
            Span::Vod => format!(
                "type=\"static\" profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011,urn:mpeg:dash:profile:isoff-live:2011\" mediaPresentationDuration=\"PT{:.3}S\" minBufferTime=\"PT{:.3}S\"",
                self.frag_secs() * self.cfg.vod_fragments as f64,
                self.frag_secs()
            ),
        };
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" {head}>\n  <Period id=\"0\" start=\"PT0S\">\n    <AdaptationSet mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">\n      <SegmentTemplate timescale=\"1000\" duration=\"{ms}\" startNumber=\"0\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/$Number$.m4s\"/>\n"
        );
        for (i, r) in self.cfg.ladder.iter().enumerate() {
            let _ = writeln!(
                s,
                "      <Representation id=\"{i}\" bandwidth=\"{}\" width=\"{}\" height=\"{}\" codecs=\"avc1.64001f\"/>",
                r.bandwidth, r.width, r.height
            );
        }
        s.push_str("    </AdaptationSet>\n");
        if self.audio_init().is_some() {
            let _ = writeln!(
                s,
                "    <AdaptationSet mimeType=\"audio/mp4\" lang=\"und\" segmentAlignment=\"true\" startWithSAP=\"1\">\n      <SegmentTemplate timescale=\"1000\" duration=\"{ms}\" startNumber=\"0\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/$Number$.m4s\"/>\n      <Representation id=\"audio\" bandwidth=\"{AUDIO_BPS}\" audioSamplingRate=\"64000\" codecs=\"mp4a.40.2\"/>\n    </AdaptationSet>"
            );
        }
        s.push_str("  </Period>\n</MPD>\n");
        s
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a wall-clock time (proleptic Gregorian, UTC).
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> (LiveStream, SystemTime) {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        (LiveStream::new(LiveConfig::default(), now), now)
    }

    #[test]
    fn fragments_are_deterministic_ts_of_about_the_bitrate() {
        let (s, _) = stream();
        let a = s.fragment(1, 42);
        assert_eq!(a, s.fragment(1, 42));
        assert_ne!(a, s.fragment(1, 43));
        assert_eq!(a.len() % TS_PACKET, 0);
        assert!(a.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        let mean = 1_000_000.0 * 2.0 / 8.0;
        assert!((a.len() as f64 - mean).abs() <= mean * 0.21, "{}", a.len());
        assert_eq!(a.len(), s.fragment_len(1, 42));
    }

    #[test]
    fn the_window_is_full_at_start_and_moves_in_real_time() {
        let (s, now) = stream();
        let edge = s.live_edge(now);
        let media = s.hls_media(0, now).expect("track 0");
        assert_eq!(media.matches("#EXTINF").count(), 6);
        assert!(media.contains(&format!("{edge}.ts")));
        assert!(!s.available(edge + 1, now));
        assert!(s.available(edge + 1, now + Duration::from_secs(2)));
        assert_eq!(s.live_edge(now + Duration::from_secs(20)), edge + 10);
        assert!(s.hls_media(3, now).is_none());
    }

    #[test]
    fn manifests_parse_with_hive_manifest_rules() {
        let (s, now) = stream();
        let m = hive_manifest::Manifests::default();
        let base = "http://o/live/";
        let master = m
            .parse(
                &format!("{base}master.m3u8"),
                None,
                s.hls_master().as_bytes(),
            )
            .expect("master parses");
        assert_eq!(master.tracks.len(), 3);
        assert_eq!(master.tracks[2].bandwidth, 2_200_000);
        let media = m
            .parse(
                &format!("{base}1/index.m3u8"),
                None,
                s.hls_media(1, now).expect("1").as_bytes(),
            )
            .expect("media parses");
        assert!(media.live);
        let edge = s.live_edge(now);
        let frags = &media.tracks[0].fragments;
        assert_eq!(frags.len(), 6);
        assert_eq!(
            frags.last().map(|f| (f.id.sequence, f.url.as_str())),
            Some((edge, format!("{base}1/{edge}.ts").as_str()))
        );
        // The fragmented-MP4 playlists: three variants (and the audio group), fragments
        // named as DASH's.
        let master = m
            .parse(
                &format!("{base}master-fmp4.m3u8"),
                None,
                s.hls_master_fmp4().as_bytes(),
            )
            .expect("fMP4 master parses");
        assert!(master.tracks.len() >= 3, "{master:?}");
        for track in [Some(2), None] {
            let dir = track.map_or("audio".to_string(), |t| t.to_string());
            let media = m
                .parse(
                    &format!("{base}{dir}/index-fmp4.m3u8"),
                    None,
                    s.hls_media_fmp4(track, now).expect("playlist").as_bytes(),
                )
                .expect("fMP4 media parses");
            assert_eq!(
                media.tracks[0].fragments.last().map(|f| f.url.clone()),
                Some(format!("{base}{dir}/{edge}.m4s"))
            );
        }
        // The on-demand title: every fragment listed, with its end.
        let vod = m
            .parse(
                &format!("{base}vod/0/index.m3u8"),
                None,
                s.hls_media_in(0, Span::Vod).expect("vod").as_bytes(),
            )
            .expect("vod playlist parses");
        assert!(!vod.live);
        assert_eq!(vod.tracks[0].fragments.len(), 300);
        let vod = m
            .parse(
                &format!("{base}vod/manifest.mpd"),
                None,
                s.dash_mpd_in(Span::Vod).as_bytes(),
            )
            .expect("vod mpd parses");
        assert!(!vod.live);
        assert_eq!(vod.tracks.len(), 4);
        assert!(vod.tracks.iter().all(|t| t.fragments.len() == 300));
        let mpd = s.dash_mpd(now);
        assert!(
            mpd.contains("availabilityStartTime=\"2023-11-14T22:13:06.000Z\""),
            "{mpd}"
        );
        let dash = m
            .parse(&format!("{base}manifest.mpd"), None, mpd.as_bytes())
            .expect("mpd parses");
        // Three video representations and the test card's audio.
        assert_eq!(
            (dash.format, dash.live, dash.tracks.len()),
            ("dash", true, 4)
        );
        assert!(
            dash.tracks.iter().any(|t| t
                .fragments
                .last()
                .is_some_and(|f| f.url == format!("{base}audio/{edge}.m4s"))),
            "{mpd}"
        );
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_827_696_789)),
            "2000-02-29T12:34:56.789Z"
        );
    }
}
