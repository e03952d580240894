//! Bounds on what a manifest may make the parser do.
//!
//! Manifests come from origins the agent does not control and may be truncated, huge or hostile
//! (entity expansion, a `SegmentTimeline` repeat count of 10^9, a 100 MB playlist). Every parser
//! checks these bounds before it allocates, and answers an error or a bounded result: never a
//! panic, a hang or an unbounded allocation.

use hive_core::ManifestError;

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
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_manifest_bytes: 16 << 20,
            max_tracks: 256,
            max_fragments_per_track: 200_000,
            max_fragments_total: 2_000_000,
            max_url_bytes: 8 << 10,
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

/// A duration in seconds from a manifest, checked: finite, non-negative, under a day per fragment.
pub(crate) fn seconds(
    format: &'static str,
    url: &str,
    secs: f64,
) -> Result<hive_core::time::Duration, ManifestError> {
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Ok(hive_core::time::Duration::from_secs_f64(secs))
    } else {
        Err(malformed(
            format,
            url,
            format!("duration {secs} s out of range"),
        ))
    }
}

/// `value / timescale` seconds as a duration, without overflow or division by zero.
pub(crate) fn ticks(value: u64, timescale: u64) -> hive_core::time::Duration {
    let ts = timescale.max(1);
    let secs = value / ts;
    let nanos = ((value % ts) as u128 * 1_000_000_000 / ts as u128) as u32;
    hive_core::time::Duration::new(secs, nanos)
}
