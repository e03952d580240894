//! Parse and classify cost of a 2-hour on-demand HLS playlist (3600 × 2 s segments) and a
//! `SegmentTimeline` MPD of the same length (3600 explicit `S` elements).
//!
//! Run with: `cargo bench --bench manifest -- --warm-up-time 1 --measurement-time 3`
//!
//! Targets (issue #5): parse ≤ 2 ms, classify ≤ 1 µs per URL. `classify` uses the
//! [`Classifier`] index the agent keeps per presentation, with a per-viewer token in the query.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hive_core::manifest::ManifestFormat;
use hive_manifest::dash::Dash;
use hive_manifest::hls::Hls;
use hive_manifest::{Classifier, UrlPolicy};

const SEGMENTS: usize = 3600;

fn hls_playlist() -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n",
    );
    for i in 0..SEGMENTS {
        s.push_str(&format!("#EXTINF:2.000,\nsegment_{i:05}.ts\n"));
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

fn timeline_mpd() -> String {
    let mut s = String::from(
        r#"<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2H" minBufferTime="PT2S"><Period><AdaptationSet mimeType="video/mp4"><SegmentTemplate timescale="90000" media="v/$RepresentationID$/$Time$.m4s" initialization="v/$RepresentationID$/init.mp4"><SegmentTimeline>"#,
    );
    // Alternating durations so every S is its own element (no repeat shortcut).
    for i in 0..SEGMENTS {
        let d = if i % 2 == 0 { 179_000 } else { 181_000 };
        s.push_str(&format!(r#"<S d="{d}"/>"#));
    }
    s.push_str(r#"</SegmentTimeline></SegmentTemplate><Representation id="hd" bandwidth="3000000"/></AdaptationSet></Period></MPD>"#);
    s
}

fn bench(c: &mut Criterion) {
    let hls = Hls::default();
    let hls_body = hls_playlist();
    let hls_url = "https://cdn.example.com/vod/movie/index.m3u8?token=viewer1";
    c.bench_function("hls_parse_3600", |b| {
        b.iter(|| {
            hls.parse(black_box(hls_url), black_box(hls_body.as_bytes()))
                .unwrap()
        })
    });
    // m3u8-rs alone, for comparison: media playlists it would parse go through hive-manifest's
    // line scanner (hls/scan.rs); m3u8-rs parses masters and whatever the scanner gives up on.
    c.bench_function("hls_m3u8rs_only_3600", |b| {
        b.iter(|| m3u8_rs::parse_media_playlist_res(black_box(hls_body.as_bytes())).unwrap())
    });
    let p = hls.parse(hls_url, hls_body.as_bytes()).unwrap();
    assert_eq!(p.fragments_total(), SEGMENTS);
    c.bench_function("hls_index_3600", |b| {
        b.iter(|| Classifier::new(black_box(&p), UrlPolicy::default()))
    });
    let index = Classifier::new(&p, UrlPolicy::default());
    let urls: Vec<String> = (0..SEGMENTS)
        .step_by(7)
        .map(|i| format!("https://cdn.example.com/vod/movie/segment_{i:05}.ts?token=viewer2"))
        .collect();
    let mut i = 0;
    c.bench_function("hls_classify_url", |b| {
        b.iter(|| {
            i = (i + 1) % urls.len();
            index.classify(black_box(&urls[i])).unwrap()
        })
    });

    let dash = Dash::default();
    let mpd = timeline_mpd();
    let mpd_url = "https://cdn.example.com/vod/movie/manifest.mpd";
    c.bench_function("dash_timeline_parse_3600", |b| {
        b.iter(|| {
            dash.parse(black_box(mpd_url), black_box(mpd.as_bytes()))
                .unwrap()
        })
    });
    // dash-mpd-core (serde + quick-xml) alone on the whole MPD, for comparison: hive-manifest
    // hands it the MPD with long SegmentTimelines read by its own scanner (dash/timeline.rs).
    c.bench_function("dash_mpdcore_only_3600", |b| {
        b.iter(|| dash_mpd_core::parse(black_box(&mpd)).unwrap())
    });
    let p = dash.parse(mpd_url, mpd.as_bytes()).unwrap();
    assert_eq!(p.fragments_total(), SEGMENTS);
    let index = Classifier::new(&p, UrlPolicy::default());
    let urls: Vec<String> = p.tracks[0]
        .fragments
        .iter()
        .step_by(7)
        .map(|f| f.url.clone())
        .collect();
    let mut i = 0;
    c.bench_function("dash_classify_url", |b| {
        b.iter(|| {
            i = (i + 1) % urls.len();
            index.classify(black_box(&urls[i])).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
