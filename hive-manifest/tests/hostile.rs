//! Hostile and arbitrary input: errors or bounded results, never a panic, a hang or an
//! unbounded allocation. One proptest per parser, plus the cases issue #5 lists.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use hive_core::ManifestError;
use hive_manifest::{ManifestLimits, Manifests, UrlPolicy, report_json};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const FIXTURES: &[(&str, &str)] = &[
    ("hls_master.m3u8", "https://o.example/m.m3u8"),
    ("hls_vod_ts.m3u8", "https://o.example/v.m3u8"),
    ("hls_live_window.m3u8", "https://o.example/l.m3u8"),
    ("hls_byterange_fmp4.m3u8", "https://o.example/b.m3u8"),
    ("hls_encrypted.m3u8", "https://o.example/e.m3u8"),
    ("hls_ll.m3u8", "https://o.example/ll.m3u8"),
    ("dash_static_number.mpd", "https://o.example/a.mpd"),
    ("dash_timeline_time.mpd", "https://o.example/b.mpd"),
    ("dash_live_number.mpd", "https://o.example/c.mpd"),
    ("dash_live_timeline.mpd", "https://o.example/d.mpd"),
    ("dash_segment_list.mpd", "https://o.example/e.mpd"),
    ("dash_segment_base.mpd", "https://o.example/f.mpd"),
    ("smooth_vod.ismc", "https://o.example/s.ism/Manifest"),
    ("hds_vod.f4m", "https://o.example/h.f4m"),
];

fn small_limits() -> Manifests {
    Manifests::new(
        ManifestLimits {
            max_fragments_per_track: 5_000,
            max_fragments_total: 20_000,
            ..ManifestLimits::default()
        },
        UrlPolicy::default(),
    )
}

#[test]
fn every_fixture_detects_parses_and_reports() {
    let m = Manifests::default();
    for (name, url) in FIXTURES {
        let p = m
            .parse(url, None, &fixture(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let json = report_json(&p);
        assert_eq!(json["format"], p.format, "{name}");
        assert_eq!(json["fragments_total"], p.fragments_total(), "{name}");
        assert!(
            json["tracks"].as_array().is_some_and(|t| !t.is_empty()),
            "{name}"
        );
    }
    let p = m
        .parse(
            "https://o.example/a.mpd",
            None,
            &fixture("dash_static_number.mpd"),
        )
        .unwrap();
    let j = report_json(&p);
    assert_eq!(j["tracks"][1]["resolution"], "1280x720");
    assert_eq!(j["tracks"][1]["kind"], "video");
    assert_eq!(j["duration_s"], 30.0);
    assert!(matches!(
        m.parse("https://o/x", None, b"hello"),
        Err(ManifestError::NotThisFormat { .. })
    ));
}

#[test]
fn oversized_playlist_is_refused_before_parsing() {
    // 100 MB of playlist: refused on its size, in well under a second.
    let mut body = b"#EXTM3U\n".to_vec();
    body.resize(100 << 20, b'#');
    let start = std::time::Instant::now();
    let err = Manifests::default()
        .parse("https://o/x.m3u8", None, &body)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ManifestError::TooLarge {
                what: "manifest bytes",
                ..
            }
        ),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 2);
}

#[test]
fn too_many_segments_and_tracks_are_bounded() {
    let m = small_limits();
    let mut vod = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n");
    for i in 0..6000 {
        vod.push_str(&format!("#EXTINF:1,\n{i}.ts\n"));
    }
    let live = vod.clone();
    vod.push_str("#EXT-X-ENDLIST\n");
    assert!(matches!(
        m.parse("https://o/v.m3u8", None, vod.as_bytes()),
        Err(ManifestError::TooLarge { .. })
    ));
    // Live: the newest fragments are kept.
    let p = m.parse("https://o/l.m3u8", None, live.as_bytes()).unwrap();
    assert_eq!(p.tracks[0].fragments.len(), 5_000);
    assert_eq!(p.tracks[0].fragments.last().unwrap().id.sequence, 5_999);
    let mut master = String::from("#EXTM3U\n");
    for i in 0..300 {
        master.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={i}\nv{i}.m3u8\n"));
    }
    assert!(matches!(
        m.parse("https://o/m.m3u8", None, master.as_bytes()),
        Err(ManifestError::TooLarge { what: "tracks", .. })
    ));
}

#[test]
fn hostile_values_do_not_panic() {
    let m = Manifests::default();
    for body in [
        &b"#EXTM3U\n#EXTINF:1e300,\na.ts\n#EXT-X-ENDLIST\n"[..],
        b"#EXTM3U\n#EXTINF:-5,\na.ts\n",
        b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n",
        b"#EXTM3U\n#EXT-X-BYTERANGE:18446744073709551615@18446744073709551615\n#EXTINF:1,\na.ts\n",
        b"#EXTM3U\n#EXT-X-PART:URI=\"\nx\n#EXT-X-PRELOAD-HINT:\n",
        b"<MPD type=\"static\" mediaPresentationDuration=\"P99999999999Y\"><Period><AdaptationSet><SegmentTemplate media=\"$Number$\" duration=\"1\"/><Representation id=\"a\"/></AdaptationSet></Period></MPD>",
        b"<MPD type=\"static\"><Period duration=\"PT10S\"><AdaptationSet><SegmentTemplate media=\"$Number%099999999999d$\" duration=\"1\"/><Representation id=\"a\"/></AdaptationSet></Period></MPD>",
        b"<MPD type=\"dynamic\" availabilityStartTime=\"1970-01-01T00:00:00Z\" publishTime=\"9999-01-01T00:00:00Z\"><Period><AdaptationSet><SegmentTemplate media=\"$Number$\" duration=\"1\"/><Representation id=\"a\"/></AdaptationSet></Period></MPD>",
        b"<SmoothStreamingMedia TimeScale=\"0\"><StreamIndex Url=\"{start time}\"><QualityLevel Bitrate=\"1\"/><c t=\"18446744073709551615\" d=\"18446744073709551615\" r=\"3\"/></StreamIndex></SmoothStreamingMedia>",
        b"<manifest xmlns=\"http://ns.adobe.com/f4m/1.0\"><bootstrapInfo id=\"b\">AAAAAWFic3Q=</bootstrapInfo><media url=\"m\"/></manifest>",
    ] {
        let _ = m.parse("https://o.example/x", None, body);
    }
}

/// Mutates `base` at a few positions (flip, truncate, insert) — a cheap structure-aware fuzzer.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(pos, kind, byte) in edits {
        if b.is_empty() {
            break;
        }
        let at = pos % b.len();
        match kind % 4 {
            0 => b[at] = byte,
            1 => b.truncate(at),
            2 => b.insert(at, byte),
            _ => {
                let digits = b"9999999999";
                b.splice(at..at, digits.iter().copied());
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), which in 0usize..4) {
        let prefix: &[u8] = [&b"#EXTM3U\n"[..], b"<MPD ", b"<SmoothStreamingMedia ", b"<manifest xmlns=\"http://ns.adobe.com/f4m/1.0\">"][which];
        let mut b = prefix.to_vec();
        b.extend_from_slice(&body);
        let _ = small_limits().parse("https://o.example/x", None, &b);
    }

    #[test]
    fn mutated_fixtures_never_panic(i in 0usize..14, edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let (name, url) = FIXTURES[i];
        let b = mutate(&fixture(name), &edits);
        let m = small_limits();
        if let Ok(p) = m.parse(url, None, &b) {
            prop_assert!(p.tracks.iter().all(|t| t.fragments.len() <= 5_000));
            let c = hive_manifest::Classifier::new(&p, UrlPolicy::default());
            for f in p.tracks.iter().flat_map(|t| t.fragments.iter()).take(50) {
                let _ = c.classify(&f.url);
            }
        }
    }
}
