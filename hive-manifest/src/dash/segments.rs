//! Segment addressing: `SegmentTemplate` (with `@duration` or a `SegmentTimeline`),
//! `SegmentList` and `SegmentBase` (ISO/IEC 23009-1:2022 §5.3.9) into fragments.

use super::template::{Vars, expand};
use crate::INIT_SEQUENCE;
use crate::identity::Joiner;
use crate::limits::{UrlBudget, ticks};
use dash_mpd_core::{SegmentBase, SegmentList, SegmentTemplate, SegmentTimeline};
use hive_core::manifest::Fragment;
use hive_core::time::Duration;
use hive_core::{ByteRange, ContentId, FragmentId, TrackId};

/// What a representation's segments are resolved against.
pub(crate) struct Ctx<'a> {
    pub(crate) content: ContentId,
    pub(crate) track: TrackId,
    pub(crate) base: Joiner,
    pub(crate) rep_id: &'a str,
    pub(crate) bandwidth: u64,
    /// Start of the period in presentation time.
    pub(crate) period_start: Duration,
    /// Period duration, if known.
    pub(crate) period_duration: Option<Duration>,
    /// For dynamic MPDs: `now` minus the period's wall-clock start.
    pub(crate) now_in_period: Option<Duration>,
    /// `MPD@timeShiftBufferDepth`, for dynamic MPDs.
    pub(crate) time_shift: Option<Duration>,
    pub(crate) dynamic: bool,
    pub(crate) max_fragments: usize,
    /// Fragment URL bytes left for the whole MPD.
    pub(crate) budget: &'a UrlBudget,
}

/// A failure, as text for [`ManifestError::Malformed`](hive_core::ManifestError) or a bound hit.
pub(crate) enum SegError {
    Malformed(String),
    TooMany,
    /// A [`UrlBudget`] bound: what, and the limit.
    Limit(&'static str, u64),
}

impl From<String> for SegError {
    fn from(s: String) -> Self {
        SegError::Malformed(s)
    }
}

type Out = (Option<Fragment>, Vec<Fragment>);

/// A run of `count` segments of `d` ticks from time `t`, numbered from `number`.
#[derive(Clone, Copy, Debug)]
struct Run {
    t: u64,
    d: u64,
    count: u64,
    number: u64,
}

fn to_ticks(d: Duration, timescale: u64) -> u64 {
    u64::try_from(d.as_nanos().saturating_mul(u128::from(timescale)) / 1_000_000_000)
        .unwrap_or(u64::MAX)
}

/// Parses an `a-b` byte range attribute (inclusive, §5.3.9.2 / RFC 7233 byte-range-spec).
pub(crate) fn range_attr(s: &str) -> Option<ByteRange> {
    let (a, b) = s.trim().split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    // `0-18446744073709551615` is 2^64 bytes: no `ByteRange` holds it, and no resource is that big.
    let len = b.checked_sub(a)?.checked_add(1)?;
    Some(ByteRange { start: a, len })
}

impl Ctx<'_> {
    fn fragment(
        &self,
        sequence: u64,
        url: String,
        byte_range: Option<ByteRange>,
        duration: Duration,
        media_time: Duration,
    ) -> Fragment {
        let mut id = FragmentId::new(self.content, self.track, sequence);
        id.range = byte_range;
        Fragment {
            id,
            url,
            byte_range,
            duration,
            media_time,
        }
    }

    fn resolve(&self, reference: &str) -> Result<String, SegError> {
        // Refused before joining: a long reference that dot segments shorten would otherwise be
        // parsed again for every segment.
        self.budget
            .take_len(reference.len())
            .map_err(|(what, limit)| SegError::Limit(what, limit))?;
        let url = self
            .base
            .join(reference)
            .ok_or_else(|| SegError::Malformed(format!("bad URL {reference:?}")))?;
        self.charged(url)
    }

    /// `url`, once charged to the URL budget.
    fn charged(&self, url: String) -> Result<String, SegError> {
        self.budget
            .take(&url)
            .map_err(|(what, limit)| SegError::Limit(what, limit))?;
        Ok(url)
    }

    /// The representation's own URL (`SegmentBase`, a `SegmentURL` without `@media`), charged.
    fn base_url(&self) -> Result<String, SegError> {
        self.charged(String::from(self.base.base().as_str()))
    }

    /// Expands `runs`, keeping at most `max_fragments`: a static MPD over the bound is an error;
    /// a dynamic one keeps the newest. Skipped runs are jumped over, never iterated. `make`
    /// gives a segment's URL, byte range and sequence number (`None`: its time, for
    /// `$Time$`-addressed templates).
    ///
    /// Counts are summed in `u128`: runs of `r = 2^63` each would overflow a `u64` (and once
    /// overflowed the segment index here).
    fn emit(
        &self,
        runs: &[Run],
        timescale: u64,
        pto: u64,
        mut make: impl FnMut(
            u64,
            &Run,
            u64,
        ) -> Result<(String, Option<ByteRange>, Option<u64>), SegError>,
    ) -> Result<Vec<Fragment>, SegError> {
        let total: u128 = runs.iter().map(|r| u128::from(r.count)).sum();
        let max = self.max_fragments;
        let mut skip = 0u128;
        if total > max as u128 {
            if !self.dynamic {
                return Err(SegError::TooMany);
            }
            skip = total - max as u128;
        }
        let mut out = Vec::with_capacity(max.min(usize::try_from(total).unwrap_or(usize::MAX)));
        let mut index = 0u128;
        for r in runs {
            let count = u128::from(r.count);
            if skip >= count {
                skip -= count;
                index += count;
                continue;
            }
            // `skip < count <= u64::MAX` here.
            let first = u64::try_from(std::mem::take(&mut skip)).unwrap_or(u64::MAX);
            for k in first..r.count {
                if out.len() >= max {
                    break;
                }
                let t = r.t.saturating_add(k.saturating_mul(r.d));
                let number = r.number.saturating_add(k);
                let at = u64::try_from(index + u128::from(k)).unwrap_or(u64::MAX);
                let (url, range, sequence) = make(at, r, number)?;
                let media_time = self
                    .period_start
                    .saturating_add(ticks(t.saturating_sub(pto), timescale));
                out.push(self.fragment(
                    sequence.unwrap_or(t),
                    url,
                    range,
                    ticks(r.d, timescale),
                    media_time,
                ));
            }
            index += count;
        }
        Ok(out)
    }

    /// ISO/IEC 23009-1 §5.3.9.6: "S@r ... A negative value of the @r attribute of the S element
    /// indicates that the duration indicated in @d attribute repeats until the start of the next
    /// S element, the end of the Period or until the next MPD update."
    fn timeline_runs(
        &self,
        tl: &SegmentTimeline,
        timescale: u64,
        pto: u64,
        start_number: u64,
    ) -> Result<Vec<Run>, SegError> {
        let mut runs = Vec::with_capacity(tl.segments.len());
        let mut t = pto;
        let mut number = start_number;
        let end = self
            .period_duration
            .map(|d| pto.saturating_add(to_ticks(d, timescale)))
            .or_else(|| {
                self.now_in_period
                    .map(|n| pto.saturating_add(to_ticks(n, timescale)))
            });
        for (i, s) in tl.segments.iter().enumerate() {
            if s.d == 0 {
                return Err(SegError::Malformed("S@d = 0".into()));
            }
            if let Some(st) = s.t {
                t = st;
            }
            let count = match s.r.unwrap_or(0) {
                r if r >= 0 => (r as u64).saturating_add(1),
                _ => {
                    let until = tl.segments.get(i + 1).and_then(|n| n.t).or(end);
                    match until {
                        Some(u) if u > t => (u - t).div_ceil(s.d),
                        _ => 1,
                    }
                }
            };
            runs.push(Run {
                t,
                d: s.d,
                count,
                number,
            });
            t = t.saturating_add(count.saturating_mul(s.d));
            number = number.saturating_add(count);
        }
        Ok(runs)
    }

    /// `SegmentTemplate` (§5.3.9.4): `$Number$`/`$Time$` addressing with `@duration` or a
    /// `SegmentTimeline`. Sequence numbers are `$Number$`, or the `$Time$` value when the
    /// template only has `$Time$` (stable across live reloads).
    pub(crate) fn template(&self, st: &SegmentTemplate) -> Result<Out, SegError> {
        let timescale = st.timescale.unwrap_or(1).max(1);
        let pto = st.presentationTimeOffset.unwrap_or(0);
        let start_number = st.startNumber.unwrap_or(1);
        let vars = |number, time| Vars {
            representation_id: self.rep_id,
            number,
            bandwidth: self.bandwidth,
            time,
        };
        let init = match st.initialization.as_deref().or(st
            .Initialization
            .as_ref()
            .and_then(|i| i.sourceURL.as_deref()))
        {
            Some(tmpl) => {
                let u = self.resolve(&expand(tmpl, &vars(0, 0))?)?;
                Some(self.fragment(INIT_SEQUENCE, u, None, Duration::ZERO, self.period_start))
            }
            None => None,
        };
        let Some(media) = st.media.as_deref() else {
            return Ok((init, Vec::new()));
        };
        let by_time = media.contains("$Time") && !media.contains("$Number");
        let mut runs = if let Some(tl) = &st.SegmentTimeline {
            self.timeline_runs(tl, timescale, pto, start_number)?
        } else {
            let d = st.duration.unwrap_or(0.0);
            if !(1.0..9.0e15).contains(&d) {
                return Err(SegError::Malformed(format!(
                    "SegmentTemplate@duration {d} unusable"
                )));
            }
            let d = d as u64;
            // §5.3.9.5.3: segment i (from startNumber) covers [(i - startNumber) * d, ...).
            let (first, count) = if let Some(now) = self.now_in_period {
                // A segment is available once complete (§5.3.9.5.3 availability start time).
                let avail = to_ticks(now, timescale) / d;
                let depth = self
                    .time_shift
                    .map(|t| to_ticks(t, timescale).div_ceil(d))
                    .unwrap_or(u64::MAX);
                let first = avail.saturating_sub(depth);
                (first, avail - first)
            } else if let Some(pd) = self.period_duration {
                (0, to_ticks(pd, timescale).div_ceil(d))
            } else {
                return Err(SegError::Malformed(
                    "no period duration for SegmentTemplate@duration".into(),
                ));
            };
            vec![Run {
                t: pto.saturating_add(first.saturating_mul(d)),
                d,
                count,
                number: start_number.saturating_add(first),
            }]
        };
        if let Some(end) = st.endNumber {
            for r in &mut runs {
                r.count = r.count.min(end.saturating_add(1).saturating_sub(r.number));
            }
        }
        let frags = self.emit(&runs, timescale, pto, |_, r, number| {
            let t =
                r.t.saturating_add(number.saturating_sub(r.number).saturating_mul(r.d));
            let u = self.resolve(&expand(media, &vars(number, t))?)?;
            Ok((u, None, (!by_time).then_some(number)))
        })?;
        Ok((init, frags))
    }

    /// `SegmentList` (§5.3.9.3): explicit `SegmentURL`s, with `@mediaRange` byte ranges.
    pub(crate) fn list(&self, sl: &SegmentList) -> Result<Out, SegError> {
        let timescale = sl.timescale.unwrap_or(1).max(1);
        let init = match &sl.Initialization {
            Some(i) => {
                let u = match &i.sourceURL {
                    Some(s) => self.resolve(s)?,
                    None => self.base_url()?,
                };
                let r = i.range.as_deref().and_then(range_attr);
                Some(self.fragment(INIT_SEQUENCE, u, r, Duration::ZERO, self.period_start))
            }
            None => None,
        };
        let n = sl.segment_urls.len() as u64;
        let runs = match (&sl.SegmentTimeline, sl.duration) {
            (Some(tl), _) => self.timeline_runs(tl, timescale, 0, 1)?,
            (None, Some(d)) if d > 0 => vec![Run {
                t: 0,
                d,
                count: n,
                number: 1,
            }],
            _ => vec![Run {
                t: 0,
                d: 0,
                count: n,
                number: 1,
            }],
        };
        let frags = self.emit(&runs, timescale, 0, |index, _, number| {
            let Some(su) = sl.segment_urls.get(index as usize) else {
                return Err(SegError::Malformed(format!(
                    "SegmentList has no SegmentURL {index}"
                )));
            };
            let u = match &su.media {
                Some(m) => self.resolve(m)?,
                None => self.base_url()?,
            };
            let range = match su.mediaRange.as_deref() {
                Some(m) => Some(
                    range_attr(m)
                        .ok_or_else(|| SegError::Malformed(format!("bad mediaRange {m:?}")))?,
                ),
                None => None,
            };
            Ok((u, range, Some(number)))
        })?;
        Ok((init, frags))
    }

    /// `SegmentBase` (§5.3.9.2): one resource; `Initialization@range` is the init segment,
    /// `@indexRange` the `sidx` box. The resource itself is one fragment until its `sidx` is
    /// read ([`crate::dash::sidx_fragments`] splits it into subsegments).
    pub(crate) fn base(&self, sb: Option<&SegmentBase>) -> Result<Out, SegError> {
        let init_range = sb
            .and_then(|b| b.Initialization.as_ref())
            .and_then(|i| i.range.as_deref())
            .and_then(range_attr)
            .or_else(|| {
                sb.and_then(|b| b.indexRange.as_deref())
                    .and_then(range_attr)
                    .map(|r| ByteRange {
                        start: 0,
                        len: r.start,
                    })
            });
        let init = match init_range {
            Some(r) => Some(self.fragment(
                INIT_SEQUENCE,
                self.base_url()?,
                Some(r),
                Duration::ZERO,
                self.period_start,
            )),
            None => None,
        };
        let whole = self.fragment(
            0,
            self.base_url()?,
            None,
            // Clamped (limits::MAX_FRAGMENT_DURATION): its `sidx` gives the real subsegments.
            self.period_duration
                .unwrap_or_default()
                .min(crate::limits::MAX_FRAGMENT_DURATION),
            self.period_start,
        );
        Ok((init, vec![whole]))
    }
}
