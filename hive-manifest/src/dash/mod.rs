//! MPEG-DASH (ISO/IEC 23009-1:2022) with `dash-mpd-core`.
//!
//! * Static and dynamic MPDs (§5.3.1.2 `MPD@type`).
//! * `SegmentTemplate` with `$Number$`, `$Time$`, `$RepresentationID$`, `$Bandwidth$` and
//!   `%0Nd` widths; `SegmentTimeline` with repeats, including `r = -1`; `SegmentList`;
//!   `SegmentBase` with `indexRange` ([`sidx_fragments`] splits the resource by its `sidx`).
//! * `BaseURL` resolution MPD → Period → AdaptationSet → Representation (§5.6.4) and the
//!   inheritance of segment information and common attributes (§5.3.9.1, §5.3.7), which the
//!   parser leaves to its user.
//! * The live edge of a dynamic MPD from `availabilityStartTime`, `timeShiftBufferDepth` and a
//!   `now` passed in ([`Dash::parse_at`]): no clock is read here.
//!
//! One track per Representation per Period, in document order.
//!
//! Long `SegmentTimeline`s are read by a small scanner before `dash-mpd-core` sees the MPD
//! (`timeline`), which keeps a two-hour timeline within the parse budget of issue #5;
//! `dash-mpd-core` still parses every MPD, and every timeline the scanner is not sure about.

mod inherit;
mod segments;
mod sidx;
mod template;
mod timeline;
#[cfg(test)]
mod timeline_tests;

use dash_mpd_core::MPD;
use hive_core::manifest::{ManifestFormat, Presentation, Track, TrackKind};
use hive_core::time::Duration;
use hive_core::{FragmentId, ManifestError, TrackId};
use url::Url;

pub use sidx::sidx_fragments;

use crate::classify::classify_linear;
use crate::identity::{Joiner, UrlPolicy, resolve};
use crate::limits::{ManifestLimits, UrlBudget, check_track, malformed, too_large};
use segments::{Ctx, SegError};

pub(crate) const NAME: &str = "dash";

/// The DASH format.
#[derive(Clone, Debug, Default)]
pub struct Dash {
    /// Parser bounds.
    pub limits: ManifestLimits,
    /// Identity policy for content ids and classification.
    pub policy: UrlPolicy,
}

fn first_base(base: &Url, list: &[dash_mpd_core::BaseURL]) -> Url {
    list.first()
        .and_then(|b| resolve(base, &b.base))
        .unwrap_or_else(|| base.clone())
}

impl Dash {
    /// A DASH parser with the given bounds and policy.
    pub fn new(limits: ManifestLimits, policy: UrlPolicy) -> Self {
        Dash { limits, policy }
    }

    /// Parses an MPD; `now_unix` is the wall-clock time (since the Unix epoch) at which the live
    /// edge of a dynamic MPD is computed. Without it, `MPD@publishTime` stands in for `now`.
    pub fn parse_at(
        &self,
        url: &str,
        body: &[u8],
        now_unix: Option<Duration>,
    ) -> Result<Presentation, ManifestError> {
        self.limits.check_body(NAME, url, body)?;
        let text = std::str::from_utf8(body).map_err(|e| malformed(NAME, url, e.to_string()))?;
        if !looks_like_mpd(text.as_bytes()) {
            return Err(ManifestError::NotThisFormat { format: NAME });
        }
        let manifest_url =
            Url::parse(url).map_err(|e| malformed(NAME, url, format!("manifest URL: {e}")))?;
        let mpd: MPD = timeline::parse(text).map_err(|e| malformed(NAME, url, e.to_string()))?;
        self.build(url, &manifest_url, &mpd, now_unix)
    }

    fn build(
        &self,
        url: &str,
        manifest_url: &Url,
        mpd: &MPD,
        now_unix: Option<Duration>,
    ) -> Result<Presentation, ManifestError> {
        let mut p = Presentation::new(self.policy.content_id(NAME, url), NAME, url);
        // §5.3.1.2: "@type ... 'static' ... 'dynamic'"; absent means static.
        let dynamic = mpd.mpdtype.as_deref() == Some("dynamic");
        p.live = dynamic;
        let unix = |t: &chrono::DateTime<chrono::Utc>| {
            Duration::from_millis(u64::try_from(t.timestamp_millis()).unwrap_or(0))
        };
        let now = now_unix.or_else(|| mpd.publishTime.as_ref().map(unix));
        let ast = mpd.availabilityStartTime.as_ref().map(unix);
        if dynamic && (now.is_none() || ast.is_none()) {
            return Err(malformed(
                NAME,
                url,
                "dynamic MPD needs availabilityStartTime and a `now` (or publishTime)",
            ));
        }
        let mpd_base = first_base(manifest_url, &mpd.base_url);
        let mut total = 0usize;
        let budget = UrlBudget::new(&self.limits);
        let mut edge = Duration::ZERO;
        let mut period_start = Duration::ZERO;
        for (pi, period) in mpd.periods.iter().enumerate() {
            // §5.3.2.1: Period@start, else the previous Period's start plus its duration.
            if let Some(s) = period.start {
                period_start = s;
            }
            let period_duration = period.duration.or_else(|| {
                let next = mpd.periods.get(pi + 1).and_then(|n| n.start);
                next.or(mpd.mediaPresentationDuration)
                    .and_then(|end| end.checked_sub(period_start))
            });
            let now_in_period = match (dynamic, now, ast) {
                (true, Some(now), Some(ast)) => {
                    Some(now.saturating_sub(ast.saturating_add(period_start)))
                }
                _ => None,
            };
            let period_base = first_base(&mpd_base, &period.BaseURL);
            for set in &period.adaptations {
                let set_base = first_base(&period_base, &set.BaseURL);
                for rep in &set.representations {
                    if p.tracks.len() >= self.limits.max_tracks {
                        return Err(too_large(
                            NAME,
                            url,
                            "tracks",
                            self.limits.max_tracks as u64,
                        ));
                    }
                    let id = TrackId(p.tracks.len() as u16);
                    let rep_id = rep.id.clone().unwrap_or_else(|| id.0.to_string());
                    let bandwidth = rep.bandwidth.unwrap_or(0);
                    let ctx = Ctx {
                        content: p.content,
                        track: id,
                        base: Joiner::new(&first_base(&set_base, &rep.BaseURL)),
                        rep_id: &rep_id,
                        bandwidth,
                        period_start,
                        period_duration,
                        now_in_period,
                        time_shift: mpd.timeShiftBufferDepth,
                        dynamic,
                        max_fragments: self.limits.max_fragments_per_track,
                        budget: &budget,
                    };
                    let seg = inherit::segment_info(period, set, rep);
                    let result = match &seg {
                        inherit::SegmentInfo::Template(t) => ctx.template(t),
                        inherit::SegmentInfo::List(l) => ctx.list(l),
                        inherit::SegmentInfo::Base(b) => ctx.base(b.as_ref()),
                    };
                    let (init, fragments) = result.map_err(|e| match e {
                        SegError::Malformed(m) => {
                            malformed(NAME, url, format!("Representation {rep_id}: {m}"))
                        }
                        SegError::Limit(what, limit) => too_large(NAME, url, what, limit),
                        SegError::TooMany => too_large(
                            NAME,
                            url,
                            "fragments per track",
                            self.limits.max_fragments_per_track as u64,
                        ),
                    })?;
                    total = total.saturating_add(fragments.len());
                    if total > self.limits.max_fragments_total {
                        return Err(too_large(
                            NAME,
                            url,
                            "fragments in total",
                            self.limits.max_fragments_total as u64,
                        ));
                    }
                    if let Some(last) = fragments.last() {
                        edge = edge.max(last.media_time.saturating_add(last.duration));
                    }
                    let mut t = Track::new(id, inherit::kind(set, rep), bandwidth);
                    t.codecs = rep.codecs.clone().or_else(|| set.codecs.clone());
                    t.resolution = match (rep.width.or(set.width), rep.height.or(set.height)) {
                        (Some(w), Some(h)) => Some((clamp(w), clamp(h))),
                        _ => None,
                    };
                    t.language = rep.lang.clone().or_else(|| set.lang.clone());
                    t.init = init;
                    t.fragments = fragments;
                    check_track(NAME, url, &t)?;
                    p.tracks.push(t);
                }
            }
            if let Some(d) = period_duration {
                period_start = period_start.saturating_add(d);
            }
        }
        if dynamic {
            p.live_edge = Some(edge);
            p.window = mpd.timeShiftBufferDepth;
        } else {
            p.duration = mpd.mediaPresentationDuration.or(Some(edge));
        }
        Ok(p)
    }
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Whether the first element of `body` is `MPD` (after a prolog, comments and whitespace).
fn looks_like_mpd(body: &[u8]) -> bool {
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("<?") {
            rest = r.split_once("?>").map(|x| x.1).unwrap_or("").trim_start();
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = r.split_once("-->").map(|x| x.1).unwrap_or("").trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<MPD")
        || rest.starts_with("<mpd:MPD")
        || rest.contains(":MPD ") && rest.starts_with('<')
}

impl ManifestFormat for Dash {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, url: &str, content_type: Option<&str>, body: &[u8]) -> bool {
        looks_like_mpd(body)
            || content_type.is_some_and(|c| c.to_ascii_lowercase().contains("dash+xml"))
            || url
                .split(['?', '#'])
                .next()
                .is_some_and(|p| p.ends_with(".mpd"))
    }

    /// Parses with `MPD@publishTime` as `now` for dynamic MPDs; the agent calls
    /// [`Dash::parse_at`] with its clock instead.
    fn parse(&self, url: &str, body: &[u8]) -> Result<Presentation, ManifestError> {
        self.parse_at(url, body, None)
    }

    fn classify(&self, presentation: &Presentation, url: &str) -> Option<FragmentId> {
        classify_linear(&self.policy, presentation, url)
    }
}

/// The kind of a track, re-exported for the inheritance module.
pub(crate) fn kind_of(
    content_type: Option<&str>,
    mime: Option<&str>,
    codecs: Option<&str>,
) -> TrackKind {
    let ct = content_type
        .or_else(|| mime.and_then(|m| m.split('/').next()))
        .unwrap_or("");
    match ct {
        "video" => TrackKind::Video,
        "audio" => TrackKind::Audio,
        "text" => TrackKind::Subtitles,
        "application" if codecs.is_some_and(|c| c.starts_with("stpp") || c.starts_with("wvtt")) => {
            TrackKind::Subtitles
        }
        _ if codecs.is_some_and(|c| {
            c.starts_with("avc")
                || c.starts_with("hvc")
                || c.starts_with("hev")
                || c.starts_with("av01")
                || c.starts_with("vp")
        }) =>
        {
            TrackKind::Video
        }
        _ if codecs.is_some_and(|c| {
            c.starts_with("mp4a")
                || c.starts_with("ec-3")
                || c.starts_with("ac-3")
                || c.starts_with("opus")
        }) =>
        {
            TrackKind::Audio
        }
        _ => TrackKind::Other,
    }
}
