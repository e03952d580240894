//! Format detection and the report behind `hive manifest inspect FILE|URL`.
//!
//! The CLI reads the bytes (from a file or the network) and calls [`Manifests::parse`] with the
//! URL they came from (a `file://` URL for a local file), then prints [`report_json`].

use hive_core::ManifestError;
use hive_core::manifest::{ManifestFormat, Presentation};
use serde_json::{Value, json};

use crate::dash::Dash;
use crate::hds::Hds;
use crate::hls::Hls;
use crate::identity::UrlPolicy;
use crate::limits::ManifestLimits;
use crate::smooth::Smooth;

/// All four formats behind one detector, sharing limits and identity policy.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// HLS.
    pub hls: Hls,
    /// DASH.
    pub dash: Dash,
    /// Smooth Streaming.
    pub smooth: Smooth,
    /// HDS.
    pub hds: Hds,
}

impl Manifests {
    /// The four formats with the given bounds and policy.
    pub fn new(limits: ManifestLimits, policy: UrlPolicy) -> Self {
        Manifests {
            hls: Hls::new(limits.clone(), policy.clone()),
            dash: Dash::new(limits.clone(), policy.clone()),
            smooth: Smooth::new(limits.clone(), policy.clone()),
            hds: Hds::new(limits, policy),
        }
    }

    fn formats(&self) -> [&dyn ManifestFormat; 4] {
        [&self.hls, &self.dash, &self.smooth, &self.hds]
    }

    /// The format of `body` fetched from `url`: the body's first bytes decide; the URL and
    /// `Content-Type` only break ties when the body says nothing (it is empty).
    pub fn detect(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Option<&dyn ManifestFormat> {
        self.formats()
            .into_iter()
            .find(|f| f.detect("", None, body))
            .or_else(|| {
                self.formats()
                    .into_iter()
                    .find(|f| f.detect(url, content_type, body))
            })
    }

    /// Detects the format and parses.
    pub fn parse(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Presentation, ManifestError> {
        match self.detect(url, content_type, body) {
            Some(f) => f.parse(url, body),
            None => Err(ManifestError::NotThisFormat {
                format: "any known",
            }),
        }
    }
}

/// The JSON report of DESIGN.md: `format`, `live`, `tracks: [ { id, bandwidth, codecs,
/// resolution, kind, fragments } ]`, `fragments_total`, `duration_s`.
///
/// `duration_s` is the on-demand duration, or for live streams the span of the listed window.
pub fn report_json(p: &Presentation) -> Value {
    let tracks: Vec<Value> = p
        .tracks
        .iter()
        .map(|t| {
            json!({
                "id": t.id.0,
                "bandwidth": t.bandwidth,
                "codecs": t.codecs,
                "resolution": t.resolution.map(|(w, h)| format!("{w}x{h}")),
                "kind": t.kind.as_str(),
                "fragments": t.fragments.len(),
            })
        })
        .collect();
    let duration = p
        .duration
        .or(p.window)
        .or(p.live_edge)
        .map(|d| d.as_secs_f64());
    json!({
        "format": p.format,
        "live": p.live,
        "tracks": tracks,
        "fragments_total": p.fragments_total(),
        "duration_s": duration,
    })
}
