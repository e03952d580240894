//! HLS fixtures: every feature parsed, and every fragment mapped back by `classify`.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use hive_core::{ByteRange, TrackId};
use hive_manifest::hls::Hls;
use hive_manifest::{Classifier, INIT_SEQUENCE, ManifestFormat, TrackKind, UrlPolicy};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Every listed fragment and init segment classifies back to itself.
fn assert_round_trip(p: &hive_manifest::Presentation) {
    let c = Classifier::new(p, UrlPolicy::default());
    for t in &p.tracks {
        for f in t.init.iter().chain(&t.fragments) {
            assert_eq!(
                c.classify_range(&f.url, f.byte_range),
                Some(f.id),
                "{}",
                f.url
            );
            assert_eq!(
                Hls::default().classify(p, &f.url).is_some(),
                f.byte_range.is_none() || c.classify(&f.url).is_some()
            );
        }
        for k in &t.keys {
            assert_eq!(c.classify(k), None, "key {k} must pass through");
        }
        for part in &t.parts {
            assert_eq!(
                c.classify(&part.url),
                None,
                "part {} must pass through",
                part.url
            );
        }
    }
}

#[test]
fn master_playlist_variants_and_renditions() {
    let url = "https://cdn.example.com/vod/master.m3u8?token=viewer1";
    let p = Hls::default()
        .parse(url, &fixture("hls_master.m3u8"))
        .unwrap();
    assert_eq!(p.format, "hls");
    let urls: Vec<_> = p
        .tracks
        .iter()
        .map(|t| t.playlist_url.clone().unwrap())
        .collect();
    assert_eq!(
        urls,
        vec![
            "https://cdn.example.com/vod/360p/index.m3u8",
            "https://cdn2.example.com/vod/720p/index.m3u8?token=abc",
            "https://cdn.example.com/vod/audio-only/index.m3u8",
            "https://cdn.example.com/vod/360p/iframes.m3u8",
            "https://cdn.example.com/vod/audio/en/index.m3u8",
            "https://cdn.example.com/vod/audio/fr/index.m3u8",
            "https://cdn.example.com/vod/subs/en/index.m3u8",
        ]
    );
    let kinds: Vec<_> = p.tracks.iter().map(|t| t.kind).collect();
    use TrackKind::*;
    assert_eq!(
        kinds,
        vec![Video, Video, Audio, Other, Audio, Audio, Subtitles]
    );
    assert_eq!(p.tracks[1].bandwidth, 2_500_000);
    assert_eq!(p.tracks[1].resolution, Some((1280, 720)));
    assert_eq!(p.tracks[0].codecs.as_deref(), Some("avc1.4d401e,mp4a.40.2"));
    assert_eq!(p.tracks[5].language.as_deref(), Some("fr"));
    assert_eq!(
        p.tracks[0].keys,
        vec!["https://keys.example.com/session.key"]
    );
    // Same stream, another viewer's token: same swarm.
    let q = Hls::default()
        .parse(
            "https://cdn.example.com/vod/master.m3u8?token=viewer2",
            &fixture("hls_master.m3u8"),
        )
        .unwrap();
    assert_eq!(p.content, q.content);
    // A strict operator policy keeps the token in the identity.
    let strict = Hls {
        policy: UrlPolicy::strict(),
        ..Hls::default()
    };
    assert_ne!(
        strict
            .parse(url, &fixture("hls_master.m3u8"))
            .unwrap()
            .content,
        p.content
    );
}

#[test]
fn master_then_media_playlists_fill_tracks() {
    let hls = Hls::default();
    let mut p = hls
        .parse(
            "https://cdn.example.com/vod/master.m3u8",
            &fixture("hls_master.m3u8"),
        )
        .unwrap();
    let media_url = p.tracks[0].playlist_url.clone().unwrap();
    hls.fill_track(&mut p, TrackId(0), &media_url, &fixture("hls_vod_ts.m3u8"))
        .unwrap();
    hls.fill_track(
        &mut p,
        TrackId(4),
        "https://cdn.example.com/vod/audio/en/index.m3u8",
        &fixture("hls_encrypted.m3u8"),
    )
    .unwrap();
    assert_eq!(p.fragments_total(), 7);
    let f = &p.tracks[4].fragments[1];
    assert_eq!(
        (f.id.track, f.id.sequence, f.id.content),
        (TrackId(4), 8, p.content)
    );
    assert_eq!(f.url, "https://cdn.example.com/vod/audio/en/enc8.ts");
    assert_eq!(
        p.tracks[4].keys.len(),
        3,
        "session key + two EXT-X-KEY URIs"
    );
    assert_round_trip(&p);
    assert!(
        hls.fill_track(&mut p, TrackId(99), &media_url, &fixture("hls_vod_ts.m3u8"))
            .is_err()
    );
}

#[test]
fn vod_ts_playlist() {
    let p = Hls::default()
        .parse(
            "https://o.example.com/a/index.m3u8",
            &fixture("hls_vod_ts.m3u8"),
        )
        .unwrap();
    assert!(!p.live);
    let t = &p.tracks[0];
    assert_eq!(t.fragments.len(), 3);
    assert_eq!(t.fragments[2].url, "https://other.example.com/abs/seg2.ts");
    assert_eq!(t.fragments[1].media_time.as_millis(), 9009);
    assert_eq!(p.duration.map(|d| d.as_millis()), Some(21021));
    assert_round_trip(&p);
}

#[test]
fn live_sliding_window_with_discontinuity_and_tokens() {
    let hls = Hls::default();
    let p = hls
        .parse(
            "https://o.example.com/ch1/index.m3u8?token=viewer-a",
            &fixture("hls_live_window.m3u8"),
        )
        .unwrap();
    assert!(p.live);
    let t = &p.tracks[0];
    assert_eq!(t.discontinuity_sequence, 12);
    let seqs: Vec<u64> = t.fragments.iter().map(|f| f.id.sequence).collect();
    assert_eq!(seqs, vec![2680, 2681, 2682, 2683]);
    assert_eq!(p.live_edge.map(|d| d.as_secs()), Some(22));
    assert_eq!(p.window, p.live_edge);
    assert_round_trip(&p);
    // Viewer B's token classifies to the same fragment.
    let c = Classifier::new(&p, UrlPolicy::default());
    let b = c
        .classify("https://o.example.com/ch1/live/2681.ts?token=viewer-b")
        .unwrap();
    assert_eq!(b, t.fragments[1].id);
    // Reloading the sliding window keeps ids stable.
    let next = String::from_utf8(fixture("hls_live_window.m3u8"))
        .unwrap()
        .replace("MEDIA-SEQUENCE:2680", "MEDIA-SEQUENCE:2681")
        .replace("#EXTINF:6.0,\nlive/2680.ts?token=viewer-a\n", "");
    let q = hls
        .parse(
            "https://o.example.com/ch1/index.m3u8?token=viewer-b",
            next.as_bytes(),
        )
        .unwrap();
    assert_eq!(q.tracks[0].fragments[0].id, t.fragments[1].id);
}

#[test]
fn byte_ranges_and_map() {
    let p = Hls::default()
        .parse(
            "https://o.example.com/v/index.m3u8",
            &fixture("hls_byterange_fmp4.m3u8"),
        )
        .unwrap();
    let t = &p.tracks[0];
    let ranges: Vec<_> = t.fragments.iter().map(|f| f.byte_range.unwrap()).collect();
    assert_eq!(
        ranges,
        vec![
            ByteRange {
                start: 720,
                len: 100_000
            },
            ByteRange {
                start: 100_720,
                len: 90_000
            },
            ByteRange {
                start: 190_720,
                len: 50_000
            },
        ]
    );
    let init = t.init.as_ref().unwrap();
    assert_eq!(
        (init.url.as_str(), init.byte_range, init.id.sequence),
        (
            "https://o.example.com/v/main.mp4",
            Some(ByteRange { start: 0, len: 720 }),
            INIT_SEQUENCE
        )
    );
    assert_round_trip(&p);
    let c = Classifier::new(&p, UrlPolicy::default());
    // One URL, many ranges: the Range header decides.
    assert_eq!(c.classify("https://o.example.com/v/main.mp4"), None);
    let r = hive_manifest::parse_range_header("bytes=100720-190719");
    assert_eq!(
        c.classify_range("https://o.example.com/v/main.mp4", r),
        Some(t.fragments[1].id)
    );
}

#[test]
fn encrypted_segments_are_fragments_keys_are_not() {
    let p = Hls::default()
        .parse(
            "https://o.example.com/e/index.m3u8",
            &fixture("hls_encrypted.m3u8"),
        )
        .unwrap();
    let t = &p.tracks[0];
    assert_eq!(t.fragments.len(), 4);
    assert_eq!(t.fragments[0].id.sequence, 7);
    assert_eq!(
        t.keys,
        vec![
            "https://keys.example.com/k1?viewer=42",
            "https://o.example.com/e/key2.bin"
        ]
    );
    assert_round_trip(&p);
}

#[test]
fn low_latency_parts_and_preload_hint_pass_through() {
    let p = Hls::default()
        .parse(
            "https://o.example.com/ll/index.m3u8",
            &fixture("hls_ll.m3u8"),
        )
        .unwrap();
    assert!(p.live);
    let t = &p.tracks[0];
    assert_eq!(t.fragments.len(), 2);
    assert_eq!(
        t.init.as_ref().unwrap().url,
        "https://o.example.com/ll/init.mp4"
    );
    let parts: Vec<_> = t
        .parts
        .iter()
        .map(|p| {
            (
                p.segment,
                p.url.rsplit('/').next().unwrap(),
                p.independent,
                p.preload_hint,
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            (267, "filePart267.0.mp4", true, false),
            (267, "filePart267.1.mp4", false, false),
            (268, "filePart268.0.mp4", true, false),
            (268, "filePart268.1.mp4", false, false),
            (268, "filePart268.2.mp4", false, true),
        ]
    );
    assert_eq!(
        t.parts[3].byte_range,
        Some(ByteRange {
            start: 0,
            len: 2000
        })
    );
    assert_eq!(
        t.parts[4].byte_range,
        Some(ByteRange {
            start: 0,
            len: 5000
        })
    );
    assert_eq!(t.parts[0].duration.as_micros(), 333_340);
    assert_round_trip(&p);
}

#[test]
fn detect() {
    let hls = Hls::default();
    assert!(hls.detect("x", None, b"\xEF\xBB\xBF#EXTM3U\n"));
    assert!(hls.detect("https://o/x.m3u8?a=b", None, b""));
    assert!(hls.detect("x", Some("application/vnd.apple.mpegURL"), b""));
    assert!(!hls.detect("https://o/x.mpd", None, b"<MPD"));
}
