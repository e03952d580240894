//! Adobe HTTP Dynamic Streaming: f4m manifests (F4M 1.0/2.0) with inline bootstrap info.
//!
//! Each `media` element is a track; its fragments come from the `abst` bootstrap box: the
//! segment run table (`asrt`) says how many fragments each segment holds, the fragment run table
//! (`afrt`) gives fragment numbers, timestamps and durations. Fragment URLs are
//! `<baseURL>/<media@url>Seg<segment>-Frag<fragment>` (F4V spec §F.3 and the HDS URL
//! convention). A bootstrap referenced by `url` (not inline) leaves the track without fragments:
//! fetching it is the agent's job. The sequence number is the fragment number.

mod bootstrap;

use std::collections::HashMap;

use hive_core::manifest::{Fragment, ManifestFormat, Presentation, Track, TrackKind};
use hive_core::time::Duration;
use hive_core::{FragmentId, ManifestError, TrackId};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use url::Url;

use crate::classify::classify_linear;
use crate::identity::{UrlPolicy, resolve};
use crate::limits::{
    MAX_MEDIA_TIME, ManifestLimits, UrlBudget, check_track, malformed, ticks, too_large,
};
use bootstrap::Bootstrap;

const NAME: &str = "hds";

/// The HDS format.
#[derive(Clone, Debug, Default)]
pub struct Hds {
    /// Parser bounds.
    pub limits: ManifestLimits,
    /// Identity policy for content ids and classification.
    pub policy: UrlPolicy,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

struct Media {
    url: String,
    bitrate: u64,
    resolution: Option<(u32, u32)>,
    bootstrap: Option<String>,
}

impl Hds {
    /// An HDS parser with the given bounds and policy.
    pub fn new(limits: ManifestLimits, policy: UrlPolicy) -> Self {
        Hds { limits, policy }
    }

    fn fragments(
        &self,
        url: &str,
        p: &Presentation,
        id: TrackId,
        (base, media_url): (&Url, &str),
        b: &Bootstrap,
        budget: &UrlBudget,
    ) -> Result<Vec<Fragment>, ManifestError> {
        let max = self.limits.max_fragments_per_track as u64;
        // Every fragment URL repeats media@url: refuse a long one before copying it per fragment.
        if media_url.len() > self.limits.max_url_bytes {
            return Err(too_large(
                NAME,
                url,
                "URL bytes",
                self.limits.max_url_bytes as u64,
            ));
        }
        let mut frag_no = u64::from(b.fragment_runs.first().map(|r| r.first).unwrap_or(1));
        // The newest fragment the afrt describes, so an open last segment run stays bounded.
        let last_frag = b
            .fragment_runs
            .iter()
            .rev()
            .find(|r| r.duration > 0)
            .map(|r| {
                let span = b.current_media_time.saturating_sub(r.timestamp);
                u64::from(r.first)
                    .saturating_add(span.div_ceil(u64::from(r.duration)).saturating_sub(1))
            });
        // Plan (segment, fragments in it) arithmetically, then bound before generating. Every
        // planned segment holds at least one fragment, so the plan is at most `max + 1` long:
        // segment runs of zero fragments over huge segment-number gaps once planned billions of
        // empty segments.
        let mut plan: Vec<(u64, u64)> = Vec::new();
        let mut total = 0u64;
        'runs: for (i, (first_seg, per_seg)) in b.segment_runs.iter().enumerate() {
            if *per_seg == 0 {
                continue;
            }
            let segs = match b.segment_runs.get(i + 1) {
                Some((next, _)) => u64::from(next.saturating_sub(*first_seg)),
                None => 1,
            };
            for s in 0..segs {
                let mut n = u64::from(*per_seg);
                if i + 1 == b.segment_runs.len() {
                    if let Some(last) = last_frag {
                        n = n.min(
                            last.saturating_add(1)
                                .saturating_sub(frag_no.saturating_add(total)),
                        );
                    }
                }
                if n == 0 {
                    break 'runs;
                }
                plan.push((u64::from(*first_seg).saturating_add(s), n));
                total = total.saturating_add(n);
                if total > max {
                    break 'runs;
                }
            }
        }
        let mut skip = 0;
        if total > max {
            if !p.live {
                return Err(too_large(NAME, url, "fragments per track", max));
            }
            skip = total - max;
        }
        // The runs that time fragments, by first fragment number, for a bisection per fragment
        // (a backwards scan per fragment was quadratic: 2 × 10^5 runs × 2 × 10^5 fragments). The
        // sort is stable, so of runs with the same first fragment the last listed applies.
        let mut runs: Vec<_> = b
            .fragment_runs
            .iter()
            .filter(|r| r.duration > 0)
            .copied()
            .collect();
        runs.sort_by_key(|r| r.first);
        let ts = u64::from(b.timescale_afrt.max(1));
        let mut out = Vec::with_capacity(total.min(max) as usize);
        for (seg, n) in plan {
            // Skipped fragments (the oldest of a live window over the bound) are jumped over.
            let from = skip.min(n);
            skip -= from;
            frag_no = frag_no.saturating_add(from);
            for _ in from..n {
                let at = runs.partition_point(|r| u64::from(r.first) <= frag_no);
                let (time, dur) = match at.checked_sub(1).and_then(|i| runs.get(i)) {
                    Some(r) => (
                        r.timestamp.saturating_add(
                            (frag_no - u64::from(r.first)).saturating_mul(u64::from(r.duration)),
                        ),
                        u64::from(r.duration),
                    ),
                    None => (0, 0),
                };
                let rel = format!("{media_url}Seg{seg}-Frag{frag_no}");
                let abs = resolve(base, &rel)
                    .ok_or_else(|| malformed(NAME, url, format!("bad fragment URL {rel:?}")))?;
                budget.charge(NAME, url, abs.as_str())?;
                out.push(Fragment {
                    id: FragmentId::new(p.content, id, frag_no),
                    url: abs.into(),
                    byte_range: None,
                    duration: ticks(dur, ts),
                    media_time: ticks(time, ts),
                });
                frag_no = frag_no.saturating_add(1);
            }
        }
        Ok(out)
    }
}

impl ManifestFormat for Hds {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, url: &str, content_type: Option<&str>, body: &[u8]) -> bool {
        let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_string();
        head.contains("ns.adobe.com/f4m")
            || content_type.is_some_and(|c| c.contains("f4m"))
            || url
                .split(['?', '#'])
                .next()
                .is_some_and(|p| p.ends_with(".f4m"))
    }

    fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError> {
        self.limits.check_body(NAME, url, body)?;
        let manifest_url =
            Url::parse(url).map_err(|e| malformed(NAME, url, format!("manifest URL: {e}")))?;
        let mut reader = Reader::from_reader(body);
        let mut buf = Vec::new();
        let mut p = Presentation::new(self.policy.content_id(NAME, url), NAME, url);
        let mut seen_root = false;
        let mut text_of: Option<String> = None;
        let mut boot_id: Option<String> = None;
        let mut base_url: Option<String> = None;
        let mut boots: HashMap<String, String> = HashMap::new();
        let mut media: Vec<Media> = Vec::new();
        loop {
            let ev = reader
                .read_event_into(&mut buf)
                .map_err(|e| malformed(NAME, url, e.to_string()))?;
            match ev {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.local_name().as_ref().to_string();
                    match name.as_str() {
                        "manifest" => seen_root = true,
                        "bootstrapInfo" => boot_id = Some(attr(&e, "id").unwrap_or_default()),
                        "media" if seen_root => {
                            if media.len() >= self.limits.max_tracks {
                                return Err(too_large(
                                    NAME,
                                    url,
                                    "tracks",
                                    self.limits.max_tracks as u64,
                                ));
                            }
                            let n =
                                |k: &str| attr(&e, k).and_then(|v| v.trim().parse::<u64>().ok());
                            media.push(Media {
                                url: attr(&e, "url").unwrap_or_default(),
                                bitrate: n("bitrate").unwrap_or(0).saturating_mul(1000),
                                resolution: n("width").zip(n("height")).map(|(w, h)| {
                                    (w.min(u32::MAX as u64) as u32, h.min(u32::MAX as u64) as u32)
                                }),
                                bootstrap: attr(&e, "bootstrapInfoId"),
                            });
                        }
                        "streamType" | "duration" | "baseURL" => text_of = Some(name),
                        _ => {}
                    }
                }
                Event::Text(t) => {
                    let text = t.trim().to_string();
                    if let Some(id) = &boot_id {
                        boots.entry(id.clone()).or_default().push_str(&text);
                    } else {
                        match text_of.as_deref() {
                            Some("streamType") => p.live = text == "live",
                            Some("duration") => {
                                p.duration = text
                                    .parse::<f64>()
                                    .ok()
                                    .and_then(|d| Duration::try_from_secs_f64(d).ok())
                                    .filter(|d| *d < MAX_MEDIA_TIME)
                            }
                            Some("baseURL") => base_url = Some(text),
                            _ => {}
                        }
                    }
                }
                Event::End(e) => {
                    if e.local_name().as_ref() == "bootstrapInfo" {
                        boot_id = None;
                    }
                    text_of = None;
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if !seen_root {
            return Err(ManifestError::NotThisFormat { format: NAME });
        }
        let base = match &base_url {
            Some(b) => resolve(&manifest_url, &format!("{}/", b.trim_end_matches('/')))
                .unwrap_or(manifest_url.clone()),
            None => manifest_url.clone(),
        };
        let mut total = 0usize;
        let budget = UrlBudget::new(&self.limits);
        for m in &media {
            let id = TrackId(p.tracks.len() as u16);
            let mut t = Track::new(id, TrackKind::Video, m.bitrate);
            t.resolution = m.resolution;
            let b64 = match &m.bootstrap {
                Some(b) => boots.get(b),
                None => boots.values().next(),
            };
            if let Some(b64) = b64 {
                let bytes = bootstrap::base64(b64)
                    .ok_or_else(|| malformed(NAME, url, "bootstrapInfo is not base64"))?;
                let b = bootstrap::parse(&bytes, self.limits.max_fragments_per_track)
                    .ok_or_else(|| malformed(NAME, url, "bad abst bootstrap box"))?;
                p.live |= b.live;
                t.fragments = self.fragments(url, &p, id, (&base, &m.url), &b, &budget)?;
            }
            check_track(NAME, url, &t)?;
            total = total.saturating_add(t.fragments.len());
            if total > self.limits.max_fragments_total {
                return Err(too_large(
                    NAME,
                    url,
                    "fragments in total",
                    self.limits.max_fragments_total as u64,
                ));
            }
            p.tracks.push(t);
        }
        if p.live {
            p.duration = None;
            p.live_edge = p.listed_end();
        }
        Ok(p)
    }

    fn classify(&self, presentation: &Presentation, url: &str) -> Option<FragmentId> {
        classify_linear(&self.policy, presentation, url)
    }
}
