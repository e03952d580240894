//! Smooth Streaming and HDS fixtures; every fragment classifies back.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use hive_core::time::Duration;
use hive_manifest::hds::Hds;
use hive_manifest::smooth::Smooth;
use hive_manifest::{Classifier, ManifestFormat, Presentation, TrackKind, UrlPolicy};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn assert_round_trip(p: &Presentation) {
    let c = Classifier::new(p, UrlPolicy::default());
    for t in &p.tracks {
        for f in &t.fragments {
            assert_eq!(c.classify(&f.url), Some(f.id), "{}", f.url);
        }
    }
}

#[test]
fn smooth_quality_levels_and_chunk_timeline() {
    let s = Smooth::default();
    let url = "https://ss.example.com/vod/movie.ism/Manifest";
    assert!(s.detect(url, None, b""));
    let p = s.parse(url, &fixture("smooth_vod.ismc")).unwrap();
    assert_eq!(p.duration, Some(Duration::from_secs(6)));
    assert_eq!(p.tracks.len(), 3);
    let v = &p.tracks[1];
    assert_eq!(
        (v.kind, v.bandwidth, v.resolution, v.codecs.as_deref()),
        (TrackKind::Video, 500_000, Some((640, 360)), Some("AVC1"))
    );
    let starts: Vec<u64> = v.fragments.iter().map(|f| f.id.sequence).collect();
    // MS-SSTR §2.2.2.6: r is the number of chunks the c element stands for (default 1).
    assert_eq!(starts, vec![0, 20_000_000, 40_000_000]);
    assert_eq!(
        v.fragments[1].url,
        "https://ss.example.com/vod/movie.ism/QualityLevels(500000)/Fragments(video=20000000)"
    );
    assert_eq!(v.fragments[2].media_time, Duration::from_secs(4));
    let a = &p.tracks[2];
    assert_eq!(
        (a.kind, a.language.as_deref()),
        (TrackKind::Audio, Some("en"))
    );
    assert_eq!(
        a.fragments[1].url,
        "https://ss.example.com/vod/movie.ism/QualityLevels(128000)/Fragments(audio=30000000)"
    );
    assert_round_trip(&p);
    assert!(s.parse(url, b"<SmoothStreamingMedia><StreamIndex Type=\"video\"><c d=\"1\" r=\"999999999999\"/></StreamIndex></SmoothStreamingMedia>").is_err());
}

#[test]
fn hds_bootstrap_seg_frag_numbering() {
    let h = Hds::default();
    let url = "https://hds.example.com/vod/movie.f4m";
    let body = fixture("hds_vod.f4m");
    assert!(h.detect("x", None, &body));
    let p = h.parse(url, &body).unwrap();
    assert!(!p.live);
    assert_eq!(p.duration, Some(Duration::from_secs(18)));
    assert_eq!(p.tracks.len(), 2);
    let t = &p.tracks[0];
    assert_eq!((t.bandwidth, t.resolution), (1_500_000, Some((1280, 720))));
    let urls: Vec<&str> = t.fragments.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(
        urls[0],
        "https://hds.example.com/vod/movie/movie_1500Seg1-Frag1"
    );
    assert_eq!(urls.len(), 5);
    assert_eq!(
        urls[4],
        "https://hds.example.com/vod/movie/movie_1500Seg1-Frag5"
    );
    assert_eq!(t.fragments[3].media_time, Duration::from_secs(12));
    assert_eq!(t.fragments[4].duration, Duration::from_secs(2));
    assert_eq!(t.fragments[4].media_time, Duration::from_secs(16));
    assert_round_trip(&p);
    assert!(h.parse(url, b"<manifest xmlns=\"http://ns.adobe.com/f4m/1.0\"><bootstrapInfo id=\"b\">AAAA</bootstrapInfo><media url=\"m\"/></manifest>").is_err());
}
