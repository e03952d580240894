//! Arbitrary bytes as a DASH MPD (through the SegmentTimeline scanner and dash-mpd-core), parsed
//! at `MPD@publishTime` and at a `now` taken from the input's last bytes; and, for inputs
//! starting with `sidx`-ish bytes, as the Segment Index of a `SegmentBase` track. Whatever
//! parses must keep every bound of `hive_manifest::limits` (see `manifest_common.rs`).

#![no_main]

use hive_core::time::Duration;
use hive_manifest::ManifestFormat;
use hive_manifest::UrlPolicy;
use hive_manifest::dash::{Dash, sidx_fragments};
use libfuzzer_sys::fuzz_target;

#[path = "manifest_common.rs"]
mod common;

const SEGMENT_BASE: &[u8] = br#"<MPD type="static" mediaPresentationDuration="PT60S"><Period><AdaptationSet><Representation id="v" bandwidth="800000"><BaseURL>v.mp4</BaseURL><SegmentBase indexRange="800-999"><Initialization range="0-799"/></SegmentBase></Representation></AdaptationSet></Period></MPD>"#;

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let dash = Dash::new(limits.clone(), UrlPolicy::default());
    let url = "https://o.example/v/manifest.mpd";
    if let Some(index) = data.strip_prefix(b"SIDX") {
        let Ok(p) = dash.parse(url, SEGMENT_BASE) else {
            panic!("the SegmentBase MPD parses");
        };
        let start = index.first().map_or(0, |b| u64::from(*b) << 56);
        if let Ok(frags) =
            sidx_fragments(&p.tracks[0], start, index, limits.max_fragments_per_track)
        {
            let mut p = p;
            p.tracks[0].fragments = frags;
            common::check(&p, &limits);
        }
        return;
    }
    if let Ok(p) = dash.parse(url, data) {
        common::check(&p, &limits);
    }
    let now = data
        .rchunks(8)
        .next()
        .map_or(0, |b| b.iter().fold(0u64, |a, x| a << 8 | u64::from(*x)));
    if let Ok(p) = dash.parse_at(url, data, Some(Duration::from_millis(now))) {
        common::check(&p, &limits);
    }
});
