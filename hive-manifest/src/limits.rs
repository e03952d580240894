//! Bounds on what a manifest may make the parser do.
//!
//! Manifests come from origins the agent does not control and may be truncated, huge or hostile
//! (entity expansion, a `SegmentTimeline` repeat count of 10^9, a 100 MB playlist). Every parser
//! checks these bounds before it allocates, and answers an error or a bounded result: never a
//! panic, a hang or an unbounded allocation.

use hive_core::ManifestError;
use hive_core::manifest::{Fragment, Track};
use hive_core::time::Duration;

/// Longest fragment a manifest may declare: one day. Longer is an error for that manifest
/// (segments last seconds; a day leaves room for a whole recording addressed as one resource).
/// A DASH `SegmentBase` resource lasting a longer Period is listed as lasting one day (a clamp:
/// its real length is only known once its `sidx` is read).
pub const MAX_FRAGMENT_DURATION: Duration = Duration::from_secs(86_400);

/// Latest media time a fragment may start at: 2^40 s, about 34,800 years. DASH and Smooth
/// timelines often count from the Unix epoch (some 1.8 × 10^9 s); 2^40 s leaves ample room above
/// that while keeping `media_time + duration` far from overflowing a [`Duration`]. Later is an
/// error for that manifest.
pub const MAX_MEDIA_TIME: Duration = Duration::from_secs(1 << 40);

/// Largest sequence number of a media fragment: `i64::MAX`. The numbers above are kept for
/// initialisation segments ([`INIT_SEQUENCE`](crate::INIT_SEQUENCE) and below), so a hostile
/// `EXT-X-MEDIA-SEQUENCE` or `startNumber` near `u64::MAX` can neither collide with an init
/// segment nor saturate into two fragments sharing an id. Larger is an error for that manifest.
pub const MAX_SEQUENCE: u64 = i64::MAX as u64;

/// Longest byte range a manifest may declare: 1 TiB. A byte range must also be non-empty and
/// end within `u64` (`offset + length` without overflow); anything else is an error for that
/// manifest.
pub const MAX_RANGE_BYTES: u64 = 1 << 40;

/// Largest fragment size [`size_estimate`](crate::size_estimate) answers: 256 MiB, the
/// wire protocol's default `max_fragment_len` (no peer can send a larger fragment). Byte-range
/// lengths and bandwidth × duration products above it are clamped to it, so the rates and
/// delays computed from an estimate (bits ÷ rate → `Duration`) stay far from overflowing.
pub const MAX_FRAGMENT_BYTES: u64 = 256 << 20;

/// Bounds applied by every parser of this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestLimits {
    /// Largest manifest body accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Most tracks (variants, renditions, representations, quality levels) in one presentation.
    pub max_tracks: usize,
    /// Most fragments listed for one track. On-demand manifests over the bound are an error; live
    /// manifests keep the newest fragments (a sliding window is bounded by nature).
    pub max_fragments_per_track: usize,
    /// Most fragments over all tracks.
    pub max_fragments_total: usize,
    /// Longest URL accepted after resolution, in bytes.
    pub max_url_bytes: usize,
    /// Most bytes of fragment URLs over a whole presentation. Templates (DASH
    /// `$RepresentationID$`, a long `BaseURL`, a Smooth `StreamIndex@Url`) repeat a few bytes of
    /// manifest into every fragment URL, so without this bound a 16 MB manifest could make
    /// `max_fragments_total` URLs of `max_url_bytes` each (16 GB).
    pub max_url_bytes_total: usize,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_manifest_bytes: 16 << 20,
            max_tracks: 256,
            max_fragments_per_track: 200_000,
            max_fragments_total: 2_000_000,
            max_url_bytes: 8 << 10,
            max_url_bytes_total: 128 << 20,
        }
    }
}

impl ManifestLimits {
    /// Errors if `body` is over [`max_manifest_bytes`](Self::max_manifest_bytes).
    pub fn check_body(
        &self,
        format: &'static str,
        url: &str,
        body: &[u8],
    ) -> Result<(), ManifestError> {
        if body.len() > self.max_manifest_bytes {
            return Err(too_large(
                format,
                url,
                "manifest bytes",
                self.max_manifest_bytes as u64,
            ));
        }
        Ok(())
    }
}

/// What is left of [`ManifestLimits::max_url_bytes_total`] during one parse, charged with every
/// fragment URL as it is made (before the fragments are collected, so the bound holds for the
/// memory too).
#[derive(Debug)]
pub(crate) struct UrlBudget {
    left: std::cell::Cell<usize>,
    max_one: usize,
    total: usize,
}

impl UrlBudget {
    pub(crate) fn new(limits: &ManifestLimits) -> Self {
        UrlBudget {
            left: std::cell::Cell::new(limits.max_url_bytes_total),
            max_one: limits.max_url_bytes,
            total: limits.max_url_bytes_total,
        }
    }

    /// Charges `url`; the bound it breaks, as [`ManifestError::TooLarge`]'s `what` and `limit`.
    pub(crate) fn take(&self, url: &str) -> Result<(), (&'static str, u64)> {
        self.take_len(url.len())?;
        match self.left.get().checked_sub(url.len()) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(("URL bytes in total", self.total as u64)),
        }
    }

    /// Checks a length against `max_url_bytes` without charging it.
    pub(crate) fn take_len(&self, len: usize) -> Result<(), (&'static str, u64)> {
        if len > self.max_one {
            return Err(("URL bytes", self.max_one as u64));
        }
        Ok(())
    }

    /// [`take`](Self::take), as a [`ManifestError`] of `format` at `url`.
    pub(crate) fn charge(
        &self,
        format: &'static str,
        manifest: &str,
        url: &str,
    ) -> Result<(), ManifestError> {
        self.take(url)
            .map_err(|(what, limit)| too_large(format, manifest, what, limit))
    }
}

/// A [`ManifestError::Malformed`].
pub(crate) fn malformed(
    format: &'static str,
    url: &str,
    reason: impl Into<String>,
) -> ManifestError {
    ManifestError::Malformed {
        format,
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// A [`ManifestError::TooLarge`].
pub(crate) fn too_large(
    format: &'static str,
    url: &str,
    what: &'static str,
    limit: u64,
) -> ManifestError {
    ManifestError::TooLarge {
        format,
        url: url.to_string(),
        what,
        limit,
    }
}

/// A duration in seconds from a manifest, checked: finite, non-negative, at most
/// [`MAX_FRAGMENT_DURATION`]. Never `Duration::from_secs_f64` on parsed input: it panics on
/// NaN, negative and huge values.
pub(crate) fn seconds(
    format: &'static str,
    url: &str,
    secs: f64,
) -> Result<Duration, ManifestError> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d <= MAX_FRAGMENT_DURATION => Ok(d),
        _ => Err(malformed(
            format,
            url,
            format!("duration {secs} s out of range"),
        )),
    }
}

/// `value / timescale` seconds as a duration, without overflow or division by zero (a zero
/// timescale counts as 1).
pub(crate) fn ticks(value: u64, timescale: u64) -> Duration {
    let ts = timescale.max(1);
    let secs = value / ts;
    let nanos = ((value % ts) as u128 * 1_000_000_000 / ts as u128) as u32;
    Duration::new(secs, nanos)
}

/// Checks what a parser produced for one track against the bounds above: every byte range
/// non-empty, at most [`MAX_RANGE_BYTES`] and ending within `u64`; every duration at most
/// [`MAX_FRAGMENT_DURATION`]; every media time at most [`MAX_MEDIA_TIME`]; every media
/// fragment's sequence number at most [`MAX_SEQUENCE`]. Each parser calls it on every track it
/// returns, so the agent's arithmetic on fragments (`media_time + duration`, byte-range ends,
/// size estimates) cannot overflow.
pub(crate) fn check_track(
    format: &'static str,
    url: &str,
    track: &Track,
) -> Result<(), ManifestError> {
    check_fragments(format, url, track.init.as_ref(), &track.fragments)
}

/// [`check_track`] on an init segment and a fragment list.
pub(crate) fn check_fragments(
    format: &'static str,
    url: &str,
    init: Option<&Fragment>,
    fragments: &[Fragment],
) -> Result<(), ManifestError> {
    for f in init.into_iter().chain(fragments.iter()) {
        if let Some(r) = f.byte_range {
            if r.len == 0 || r.len > MAX_RANGE_BYTES || r.start.checked_add(r.len).is_none() {
                return Err(malformed(
                    format,
                    url,
                    format!(
                        "fragment {}: byte range {}+{} out of range",
                        f.id.sequence, r.start, r.len
                    ),
                ));
            }
        }
        if f.duration > MAX_FRAGMENT_DURATION {
            return Err(malformed(
                format,
                url,
                format!(
                    "fragment {}: duration {:?} over {MAX_FRAGMENT_DURATION:?}",
                    f.id.sequence, f.duration
                ),
            ));
        }
        if f.media_time > MAX_MEDIA_TIME {
            return Err(malformed(
                format,
                url,
                format!(
                    "fragment {}: media time {:?} over {MAX_MEDIA_TIME:?}",
                    f.id.sequence, f.media_time
                ),
            ));
        }
    }
    if let Some(f) = fragments.iter().find(|f| f.id.sequence > MAX_SEQUENCE) {
        return Err(malformed(
            format,
            url,
            format!(
                "fragment sequence number {} over {MAX_SEQUENCE}",
                f.id.sequence
            ),
        ));
    }
    Ok(())
}
