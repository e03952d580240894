//! Microsoft Smooth Streaming client manifests ([MS-SSTR] §2.2.2).
//!
//! `SmoothStreamingMedia` → `StreamIndex` (one per stream) → `QualityLevel` (one track each) and
//! the `c` chunk timeline (`t` start, `d` duration, `r` repeat, §2.2.2.6). Fragment URLs come
//! from `StreamIndex@Url` with `{bitrate}`/`{Bitrate}` and `{start time}`/`{start_time}`
//! replaced (§2.2.2.3). Parsed with quick-xml's pull reader, which never expands DTD entities.

use hive_core::manifest::{Fragment, ManifestFormat, Presentation, Track, TrackKind};
use hive_core::{FragmentId, ManifestError, TrackId};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use url::Url;

use crate::classify::classify_linear;
use crate::identity::{UrlPolicy, resolve};
use crate::limits::{ManifestLimits, UrlBudget, check_track, malformed, ticks, too_large};

const NAME: &str = "smooth";

/// The Smooth Streaming format.
#[derive(Clone, Debug, Default)]
pub struct Smooth {
    /// Parser bounds.
    pub limits: ManifestLimits,
    /// Identity policy for content ids and classification.
    pub policy: UrlPolicy,
}

/// A quality level: bitrate, FourCC, (MaxWidth, MaxHeight).
type Level = (u64, Option<String>, Option<(u32, u32)>);

struct Stream {
    kind: TrackKind,
    url: String,
    levels: Vec<Level>,
    /// (start, duration) in the timescale.
    chunks: Vec<(u64, u64)>,
    language: Option<String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref().eq_ignore_ascii_case(name))
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn num(e: &BytesStart<'_>, name: &str) -> Option<u64> {
    attr(e, name).and_then(|v| v.trim().parse().ok())
}

impl Smooth {
    /// A Smooth Streaming parser with the given bounds and policy.
    pub fn new(limits: ManifestLimits, policy: UrlPolicy) -> Self {
        Smooth { limits, policy }
    }
}

impl ManifestFormat for Smooth {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, url: &str, content_type: Option<&str>, body: &[u8]) -> bool {
        let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_string();
        head.contains("<SmoothStreamingMedia")
            || content_type.is_some_and(|c| c.contains("vnd.ms-sstr+xml"))
            || url.split(['?', '#']).next().is_some_and(|p| {
                p.to_ascii_lowercase().ends_with("/manifest") && p.contains(".ism")
            })
    }

    fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError> {
        self.limits.check_body(NAME, url, body)?;
        let base =
            Url::parse(url).map_err(|e| malformed(NAME, url, format!("manifest URL: {e}")))?;
        let mut reader = Reader::from_reader(body);
        let mut buf = Vec::new();
        let mut p = Presentation::new(self.policy.content_id(NAME, url), NAME, url);
        let mut timescale = 10_000_000u64;
        let mut seen_root = false;
        let mut streams: Vec<Stream> = Vec::new();
        let mut chunks_all = 0usize;
        loop {
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| malformed(NAME, url, e.to_string()))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                    "SmoothStreamingMedia" => {
                        seen_root = true;
                        timescale = num(&e, "TimeScale").unwrap_or(10_000_000).max(1);
                        p.live = attr(&e, "IsLive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
                        let d = num(&e, "Duration").unwrap_or(0);
                        if !p.live && d > 0 {
                            p.duration = Some(ticks(d, timescale));
                        }
                        if let Some(w) = num(&e, "DVRWindowLength").filter(|w| *w > 0) {
                            p.window = Some(ticks(w, timescale));
                        }
                    }
                    "StreamIndex" if seen_root => {
                        let kind = match attr(&e, "Type").as_deref() {
                            Some("video") => TrackKind::Video,
                            Some("audio") => TrackKind::Audio,
                            Some("text") => TrackKind::Subtitles,
                            _ => TrackKind::Other,
                        };
                        let url = attr(&e, "Url")
                            .ok_or_else(|| malformed(NAME, url, "StreamIndex without Url"))?;
                        streams.push(Stream {
                            kind,
                            url,
                            language: attr(&e, "Language"),
                            levels: Vec::new(),
                            chunks: Vec::new(),
                        });
                    }
                    "QualityLevel" => {
                        let Some(s) = streams.last_mut() else {
                            continue;
                        };
                        let res = num(&e, "MaxWidth").zip(num(&e, "MaxHeight")).map(|(w, h)| {
                            (w.min(u32::MAX as u64) as u32, h.min(u32::MAX as u64) as u32)
                        });
                        s.levels
                            .push((num(&e, "Bitrate").unwrap_or(0), attr(&e, "FourCC"), res));
                    }
                    "c" => {
                        let Some(s) = streams.last_mut() else {
                            continue;
                        };
                        // §2.2.2.6: "t: the time of the fragment ... d: the duration ... r: the
                        // repeat count"; a missing t follows the previous chunk.
                        let next = s
                            .chunks
                            .last()
                            .map(|(t, d)| t.saturating_add(*d))
                            .unwrap_or(0);
                        let t = num(&e, "t").unwrap_or(next);
                        let d = num(&e, "d").unwrap_or(0);
                        let r =
                            usize::try_from(num(&e, "r").unwrap_or(1).max(1)).unwrap_or(usize::MAX);
                        // Counted on the stream the chunks join (the last StreamIndex opened),
                        // not per element: a stray `</StreamIndex>` ends no stream, and chunks
                        // after it still join the last one (fuzz: manifest_smooth).
                        if s.chunks.len().saturating_add(r) > self.limits.max_fragments_per_track {
                            return Err(too_large(
                                NAME,
                                url,
                                "fragments per track",
                                self.limits.max_fragments_per_track as u64,
                            ));
                        }
                        // Every StreamIndex keeps its chunks until the end: bound them all, or
                        // a million StreamIndex without QualityLevel (no track, so no other
                        // bound) would each hold `max_fragments_per_track` chunks.
                        if chunks_all.saturating_add(r) > self.limits.max_fragments_total {
                            return Err(too_large(
                                NAME,
                                url,
                                "fragments in total",
                                self.limits.max_fragments_total as u64,
                            ));
                        }
                        chunks_all += r;
                        for k in 0..r as u64 {
                            s.chunks.push((t.saturating_add(k.saturating_mul(d)), d));
                        }
                    }
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if !seen_root {
            return Err(ManifestError::NotThisFormat { format: NAME });
        }
        let mut total = 0usize;
        let budget = UrlBudget::new(&self.limits);
        for s in &streams {
            for (bitrate, fourcc, res) in &s.levels {
                if p.tracks.len() >= self.limits.max_tracks {
                    return Err(too_large(
                        NAME,
                        url,
                        "tracks",
                        self.limits.max_tracks as u64,
                    ));
                }
                total = total.saturating_add(s.chunks.len());
                if total > self.limits.max_fragments_total {
                    return Err(too_large(
                        NAME,
                        url,
                        "fragments in total",
                        self.limits.max_fragments_total as u64,
                    ));
                }
                let id = TrackId(p.tracks.len() as u16);
                let mut t = Track::new(id, s.kind, *bitrate);
                t.codecs = fourcc.clone();
                t.resolution = *res;
                t.language = s.language.clone();
                let with_rate = s
                    .url
                    .replace("{bitrate}", &bitrate.to_string())
                    .replace("{Bitrate}", &bitrate.to_string());
                // Every chunk URL repeats StreamIndex@Url: refuse a long one before copying it
                // per chunk (a URL that dot segments shorten would pass the budget each time).
                if with_rate.len() > self.limits.max_url_bytes {
                    return Err(too_large(
                        NAME,
                        url,
                        "URL bytes",
                        self.limits.max_url_bytes as u64,
                    ));
                }
                for (start, d) in &s.chunks {
                    let rel = with_rate
                        .replace("{start time}", &start.to_string())
                        .replace("{start_time}", &start.to_string());
                    let abs = resolve(&base, &rel)
                        .ok_or_else(|| malformed(NAME, url, format!("bad fragment URL {rel:?}")))?;
                    budget.charge(NAME, url, abs.as_str())?;
                    // Sequence = start time in the timescale: stable as a live window slides.
                    t.fragments.push(Fragment {
                        id: FragmentId::new(p.content, id, *start),
                        url: abs.into(),
                        byte_range: None,
                        duration: ticks(*d, timescale),
                        media_time: ticks(*start, timescale),
                    });
                }
                check_track(NAME, url, &t)?;
                p.tracks.push(t);
            }
        }
        if p.live {
            p.live_edge = p.listed_end();
        }
        Ok(p)
    }

    fn classify(&self, presentation: &Presentation, url: &str) -> Option<FragmentId> {
        classify_linear(&self.policy, presentation, url)
    }
}
