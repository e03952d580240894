//! The scanner and `m3u8-rs` agree: on every fixture, on ffmpeg-style playlists and on
//! generated playlists mixing well-formed and malformed lines.

use proptest::prelude::*;
use url::Url;

use super::media::{self, Listing};
use super::scan::scan;
use crate::limits::ManifestLimits;

fn base() -> Url {
    Url::parse("https://cdn.example.com/v/index.m3u8?token=1").unwrap()
}

/// The listing `m3u8-rs` gives, URIs trimmed as resolution trims them.
fn m3u8rs_listing(text: &str) -> Option<Listing<'static>> {
    let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).ok()?;
    let pl: &'static m3u8_rs::MediaPlaylist = Box::leak(Box::new(pl));
    let mut l = Listing::from_m3u8(pl);
    for s in &mut l.segments {
        s.uri = s.uri.trim();
    }
    Some(l)
}

/// Both paths give the same `Media` (or both fail); returns whether the scanner took it.
fn assert_agree(text: &str) -> bool {
    let limits = ManifestLimits::default();
    let content = hive_core::ContentId::derive("t");
    let (b, u) = (base(), "https://cdn.example.com/v/index.m3u8");
    let fast = media::parse(&limits, content, &b, u, text.as_bytes());
    let slow = media::parse_m3u8(&limits, content, &b, u, text.as_bytes());
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => assert_eq!(f, s, "{text}"),
        (Err(_), Err(_)) => {}
        _ => panic!("fast {fast:?} / m3u8-rs {slow:?} on\n{text}"),
    }
    let scanned = scan(text);
    if let Some(l) = &scanned {
        assert_eq!(Some(l), m3u8rs_listing(text).as_ref(), "{text}");
    }
    scanned.is_some()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn fixtures_agree_and_take_the_fast_path() {
    for name in [
        "hls_vod_ts.m3u8",
        "hls_byterange_fmp4.m3u8",
        "hls_encrypted.m3u8",
        "hls_live_window.m3u8",
        "hls_ll.m3u8",
    ] {
        assert!(assert_agree(&fixture(name)), "{name}: scanner gave up");
    }
    // A master playlist is not a media playlist; both read its URIs alike all the same.
    assert_agree(&fixture("hls_master.m3u8"));
}

#[test]
fn ffmpeg_style_and_crlf_agree() {
    let ffmpeg = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI=\"init_2.mp4\"\n#EXTINF:2.020136,\ns2_000.m4s\n#EXTINF:1.996916,\ns2_001.m4s\n#EXTINF:0.023220,\ns2_002.m4s\n";
    assert!(assert_agree(ffmpeg));
    assert!(assert_agree(&ffmpeg.replace('\n', "\r\n")));
    assert!(assert_agree(
        "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00Z\n#EXTINF:4,title\n  a.ts  \n\n#EXT-X-ENDLIST"
    ));
}

#[test]
fn quirks_go_to_m3u8rs() {
    for text in [
        "#EXTM3U\n#EXT-X-TARGETDURATION:4.5\n#EXTINF:4,\na.ts\n",
        "#EXTM3U\n#EXTINF:4,a,b\na.ts\n",
        "#EXTM3U\n#EXTINF:4,\na.ts\n#EXTINF:4,",
        "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128, URI=\"k\"\n#EXTINF:4,\na.ts\n",
        "#EXTM3U\n#EXT-X-DISCONTINUITY-SEQUENCE:x\n#EXTINF:4,\na.ts\n",
        "#EXTM3U\n#EXT-X-MAP:URI=init.mp4\n#EXTINF:4,\na.ts\n",
        "#EXTM3U \n#EXTINF:4,\na.ts\n",
    ] {
        assert!(!assert_agree(text), "scanner took {text:?}");
    }
    // m3u8-rs drops `METHOD=NONE` without IV; the scanner does the same.
    assert!(assert_agree(
        "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k1\"\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\na.ts\n#EXT-X-KEY:METHOD=NONE,IV=0x1\n#EXTINF:4,\nb.ts\n"
    ));
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("#EXTINF:2.000,".to_string()),
        Just("#EXTINF:2".to_string()),
        Just("#EXTINF:-1,".to_string()),
        Just("#EXTINF:9.009,Title".to_string()),
        Just("#EXTINF:3.5,a,b".to_string()),
        "[a-z0-9_./?=-]{1,10}",
        Just("seg.ts".to_string()),
        Just(" spaced.ts ".to_string()),
        Just("#EXT-X-ENDLIST".to_string()),
        Just("#EXT-X-ENDLISTX".to_string()),
        Just("#EXT-X-PLAYLIST-TYPE:VOD".to_string()),
        Just("#EXT-X-PLAYLIST-TYPE:EVENT".to_string()),
        Just("#EXT-X-PLAYLIST-TYPE:".to_string()),
        (0u64..1000).prop_map(|n| format!("#EXT-X-MEDIA-SEQUENCE:{n}")),
        Just("#EXT-X-MEDIA-SEQUENCE:99999999999999999999999".to_string()),
        (0u64..9).prop_map(|n| format!("#EXT-X-DISCONTINUITY-SEQUENCE:{n}")),
        Just("#EXT-X-DISCONTINUITY".to_string()),
        Just("#EXT-X-TARGETDURATION:4".to_string()),
        Just("#EXT-X-TARGETDURATION:4.5".to_string()),
        (1u64..500, proptest::option::of(0u64..5000)).prop_map(|(n, o)| match o {
            Some(o) => format!("#EXT-X-BYTERANGE:{n}@{o}"),
            None => format!("#EXT-X-BYTERANGE:{n}"),
        }),
        Just("#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x01".to_string()),
        Just("#EXT-X-KEY:METHOD=AES-128,URI=key.bin".to_string()),
        Just("#EXT-X-KEY:METHOD=NONE".to_string()),
        Just("#EXT-X-KEY:METHOD=NONE,IV=0x0".to_string()),
        Just("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\",KEYFORMAT=\"com.apple\"".to_string()),
        Just("#EXT-X-MAP:URI=\"init.mp4\"".to_string()),
        Just("#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"700@0\"".to_string()),
        Just("#EXT-X-MAP:URI=\"init2.mp4\"".to_string()),
        Just("#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.000Z".to_string()),
        Just("#EXT-X-PROGRAM-DATE-TIME:garbage".to_string()),
        Just("#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2024-01-01T00:00:00Z\"".to_string()),
        Just("#EXT-X-PART:DURATION=0.5,URI=\"p.mp4\"".to_string()),
        Just("#EXT-X-CUE-OUT:30".to_string()),
        Just("# a comment".to_string()),
        Just("#EXTINF".to_string()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_playlists_agree(
        lines in proptest::collection::vec(line(), 0..24),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("#EXTM3U{eol}");
        text.push_str(&lines.join(eol));
        if final_newline {
            text.push_str(eol);
        }
        assert_agree(&text);
    }
}
