//! The manifest → fragment arithmetic, end to end: arbitrary bytes through format detection and
//! whichever parser claims them (`Manifests::parse`, as the agent's proxy does), then every
//! fragment walked with what the agent computes for the swarm engine (size estimate, media time
//! and end, duration, bit rate, origin fetch budget, live HLS stable media time), each step
//! checked for overflow, plus every bound of `hive_manifest::limits`.
//!
//! The first input byte picks a format prefix, so the four parsers all get reached.

#![no_main]

use hive_manifest::{Manifests, UrlPolicy};
use libfuzzer_sys::fuzz_target;

#[path = "manifest_common.rs"]
mod common;

const PREFIXES: [&[u8]; 5] = [
    b"",
    b"#EXTM3U\n",
    b"<MPD type=\"static\" mediaPresentationDuration=\"PT10S\"><Period><AdaptationSet><Representation id=\"v\" bandwidth=\"1000\">",
    b"<SmoothStreamingMedia><StreamIndex Type=\"video\" Url=\"q({bitrate})/f({start time})\"><QualityLevel Bitrate=\"1000\"/>",
    b"<manifest xmlns=\"http://ns.adobe.com/f4m/1.0\">",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mut body = PREFIXES[usize::from(which) % PREFIXES.len()].to_vec();
    body.extend_from_slice(rest);
    let limits = common::limits();
    let m = Manifests::new(limits.clone(), UrlPolicy::default());
    if let Ok(p) = m.parse("https://o.example/a/b/manifest?token=1", None, &body) {
        common::check(&p, &limits);
    }
});
