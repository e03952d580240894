//! Arbitrary bytes as an HLS playlist (master or media, through the line scanner and m3u8-rs),
//! then, for a master, the same bytes as the media playlist of its first track. Whatever parses
//! must keep every bound of `hive_manifest::limits` (see `manifest_common.rs`).

#![no_main]

use hive_manifest::ManifestFormat;
use hive_manifest::UrlPolicy;
use hive_manifest::hls::Hls;
use libfuzzer_sys::fuzz_target;

#[path = "manifest_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let limits = common::limits();
    let hls = Hls::new(limits.clone(), UrlPolicy::default());
    let url = "https://o.example/live/index.m3u8?token=1";
    let Ok(mut p) = hls.parse(url, data) else {
        return;
    };
    common::check(&p, &limits);
    if let Some(t) = p.tracks.first().filter(|t| t.fragments.is_empty()) {
        let (id, media) = (t.id, t.playlist_url.clone().unwrap_or_default());
        if hls.fill_track(&mut p, id, &media, data).is_ok() {
            common::check(&p, &limits);
        }
    }
});
