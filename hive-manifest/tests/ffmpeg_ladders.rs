//! Ladders generated at test time by ffmpeg (Debian's `ffmpeg` package; `scripts/test.sh`
//! installs it): HLS with TS segments, HLS with fMP4 segments and DASH, on demand and live.
//! Every listed fragment and init segment must exist on disk, be mapped back by `classify` to its
//! own fragment id, and the fragment count must match the files ffmpeg wrote.
//!
//! The sources are lavfi's `testsrc2` and `sine`, 12 s at 160x90 and 96x54 with 2 s segments, so
//! the whole ladder set is generated once per test binary ([`OnceLock`]) in about two seconds.
//!
//! Live variants:
//! * HLS TS: ffmpeg's own sliding window (`-hls_list_size 3 -hls_flags omit_endlist`).
//! * HLS fMP4: ffmpeg's own EVENT playlist without `EXT-X-ENDLIST`
//!   (`-hls_playlist_type event -hls_flags omit_endlist`).
//! * DASH: ffmpeg's final MPD is always `type="static"` (it rewrites it on exit, even with
//!   `-streaming 1 -window_size N`), so the live MPDs are ffmpeg's on-demand MPDs rewritten to
//!   `type="dynamic"` with `availabilityStartTime`, `publishTime` and `timeShiftBufferDepth`:
//!   one with ffmpeg's `SegmentTimeline`, one with its `SegmentTemplate@duration` (`$Number$`)
//!   addressing where the window comes from `publishTime` and `timeShiftBufferDepth`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hive_core::manifest::Presentation;
use hive_manifest::{Classifier, INIT_SEQUENCE, Manifests, UrlPolicy};
use url::Url;

const SECONDS: u32 = 12;
const SEGMENT: u32 = 2;

/// Input and encoding options shared by every ladder: two video renditions and one audio.
fn encode_args(duration: u32) -> Vec<String> {
    format!(
        "-hide_banner -loglevel error -nostdin -y \
         -f lavfi -i testsrc2=size=160x90:rate=25:duration={duration} \
         -f lavfi -i sine=frequency=440:sample_rate=48000:duration={duration} \
         -c:v libx264 -preset ultrafast -g 50 -keyint_min 50 -sc_threshold 0 \
         -filter:v:1 scale=96:54 -b:v:0 200k -b:v:1 100k -c:a aac -b:a 32k -threads 1"
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The ffmpeg outputs: (directory, arguments after the encoding options).
fn ladders() -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("hls_ts", hls_ts("hls_ts", &["-hls_playlist_type", "vod"])),
        (
            "hls_ts_live",
            hls_ts(
                "hls_ts_live",
                &["-hls_list_size", "3", "-hls_flags", "omit_endlist"],
            ),
        ),
        ("hls_fmp4", hls_fmp4("hls_fmp4", "vod")),
        ("hls_fmp4_live", hls_fmp4("hls_fmp4_live", "event")),
        ("dash", dash("dash", "1")),
        ("dash_number", dash("dash_number", "0")),
    ]
}

/// TS HLS with two variants muxing video and audio.
fn hls_ts(dir: &str, mode: &[&str]) -> Vec<String> {
    let mut v = strings(&[
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_segment_type",
        "mpegts",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,a:0 v:1,a:1",
    ]);
    v.extend(strings(mode));
    v.extend(["-hls_segment_filename".into(), format!("{dir}/s%v_%03d.ts")]);
    v.push(format!("{dir}/p%v.m3u8"));
    v
}

/// fMP4 HLS with a separate audio rendition (`EXT-X-MEDIA`), as `-hls_playlist_type kind`;
/// `event` also omits `EXT-X-ENDLIST`, so the playlist is live.
fn hls_fmp4(dir: &str, kind: &str) -> Vec<String> {
    let mut v = strings(&[
        "-map",
        "0:v",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        kind,
        "-hls_segment_type",
        "fmp4",
        "-hls_fmp4_init_filename",
        "init_%v.mp4",
        "-master_pl_name",
        "master.m3u8",
        "-var_stream_map",
        "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud",
    ]);
    if kind == "event" {
        v.extend(strings(&["-hls_flags", "omit_endlist"]));
    }
    v.extend([
        "-hls_segment_filename".into(),
        format!("{dir}/s%v_%03d.m4s"),
    ]);
    v.push(format!("{dir}/p%v.m3u8"));
    v
}

/// DASH with `SegmentTemplate`, with a `SegmentTimeline` (`timeline` = "1") or `@duration`.
fn dash(dir: &str, timeline: &str) -> Vec<String> {
    let mut v = strings(&[
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "0:v",
        "-f",
        "dash",
        "-seg_duration",
        "2",
        "-use_template",
        "1",
        "-use_timeline",
        timeline,
        "-adaptation_sets",
        "id=0,streams=v id=1,streams=a",
    ]);
    v.push(format!("{dir}/manifest.mpd"));
    v
}

/// The directory holding every generated ladder, generated on first use.
fn generated() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let ffmpeg = std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
        let found = Command::new(&ffmpeg)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "`{ffmpeg}` not found: these tests need ffmpeg, from the Debian package `ffmpeg` \
             (`apt-get install ffmpeg`; scripts/test.sh installs it)"
        );
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale(tmp);
        let dir = tmp.join(format!("ffmpeg_ladders-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let children: Vec<_> = ladders()
            .into_iter()
            .map(|(name, args)| {
                std::fs::create_dir_all(dir.join(name)).unwrap();
                let child = Command::new(&ffmpeg)
                    .current_dir(&dir)
                    .args(encode_args(SECONDS))
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (name, child)
            })
            .collect();
        for (name, child) in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "ffmpeg ({name}) failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

/// Removes the ladders of earlier runs (older than ten minutes, so a concurrent run keeps its).
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 600);
        if old
            && e.file_name()
                .to_string_lossy()
                .starts_with("ffmpeg_ladders-")
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn file_url(path: &Path) -> String {
    Url::from_file_path(path).unwrap().into()
}

fn path_of(url: &str) -> PathBuf {
    Url::parse(url).unwrap().to_file_path().unwrap()
}

/// Parses the manifest at `path` by detection; for an HLS master, loads every media playlist.
fn load(path: &Path) -> Presentation {
    let manifests = Manifests::default();
    let url = file_url(path);
    let mut p = manifests
        .parse(&url, None, &std::fs::read(path).unwrap())
        .unwrap();
    let playlists: Vec<_> = p
        .tracks
        .iter()
        .filter(|t| p.format == "hls" && t.fragments.is_empty())
        .filter_map(|t| Some((t.id, t.playlist_url.clone()?)))
        .collect();
    for (id, u) in playlists {
        let body = std::fs::read(path_of(&u)).unwrap();
        manifests.hls.fill_track(&mut p, id, &u, &body).unwrap();
    }
    p
}

/// The files in `dir` whose names start with `prefix`.
fn written(dir: &Path, prefix: &str) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

/// The common checks: every fragment and init exists and is sane, classifies back to itself;
/// returns, per track, the listed media files (inits excluded).
fn check(p: &Presentation) -> Vec<BTreeSet<PathBuf>> {
    let index = Classifier::new(p, UrlPolicy::default());
    let mut per_track = Vec::new();
    for t in &p.tracks {
        assert!(!t.fragments.is_empty(), "track {} has no fragments", t.id);
        let mut files = BTreeSet::new();
        let mut end = t.fragments[0].media_time;
        for f in &t.fragments {
            assert_eq!(index.classify(&f.url), Some(f.id), "{}", f.url);
            assert_eq!(f.id.track, t.id);
            assert_ne!(f.id.sequence, INIT_SEQUENCE);
            assert_eq!(f.byte_range, None);
            let path = path_of(&f.url);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", f.url));
            if f.url.ends_with(".ts") {
                assert!(
                    !bytes.is_empty() && bytes.len() % 188 == 0 && bytes[0] == 0x47,
                    "{} is not MPEG-TS ({} bytes)",
                    f.url,
                    bytes.len()
                );
            } else {
                assert!(
                    bytes.len() > 16 && bytes.windows(4).any(|w| w == b"moof"),
                    "{} is not an fMP4 fragment",
                    f.url
                );
            }
            let d = f.duration.as_secs_f64();
            assert!(d > 0.0 && d <= 2.1, "{}: duration {d}", f.url);
            assert!(
                (f.media_time.as_secs_f64() - end.as_secs_f64()).abs() < 0.05,
                "{}: gap before it",
                f.url
            );
            end = f.media_time.saturating_add(f.duration);
            assert!(files.insert(path), "{} listed twice", f.url);
        }
        if let Some(init) = &t.init {
            assert_eq!(index.classify(&init.url), Some(init.id), "{}", init.url);
            assert_eq!(init.id.sequence, INIT_SEQUENCE);
            let bytes = std::fs::read(path_of(&init.url)).unwrap();
            assert!(
                bytes.len() > 16
                    && &bytes[4..8] == b"ftyp"
                    && bytes.windows(4).any(|w| w == b"moov"),
                "{} is not an fMP4 init segment",
                init.url
            );
        }
        per_track.push(files);
    }
    per_track
}

/// The segment file prefix of the track whose media playlist is `p<v>.m3u8`.
fn hls_prefix(t: &hive_manifest::Track) -> String {
    let u = t.playlist_url.as_deref().unwrap();
    let name = u.rsplit('/').next().unwrap();
    format!("s{}_", &name[1..name.len() - ".m3u8".len()])
}

fn total_seconds(t: &hive_manifest::Track) -> f64 {
    t.fragments.iter().map(|f| f.duration.as_secs_f64()).sum()
}

#[test]
fn hls_ts_on_demand() {
    let dir = generated().join("hls_ts");
    let p = load(&dir.join("master.m3u8"));
    assert_eq!((p.format, p.live, p.tracks.len()), ("hls", false, 2));
    for (t, files) in p.tracks.iter().zip(check(&p)) {
        assert!(t.init.is_none());
        assert_eq!(files, written(&dir, &hls_prefix(t)), "track {}", t.id);
        assert_eq!(t.fragments.len(), (SECONDS / SEGMENT) as usize);
        assert!((total_seconds(t) - f64::from(SECONDS)).abs() < 0.1);
    }
    assert_eq!(p.tracks[0].resolution, Some((160, 90)));
}

#[test]
fn hls_ts_live_sliding_window() {
    let dir = generated().join("hls_ts_live");
    let p = load(&dir.join("master.m3u8"));
    assert_eq!((p.format, p.live, p.tracks.len()), ("hls", true, 2));
    for (t, files) in p.tracks.iter().zip(check(&p)) {
        // The window is the newest three of the segments ffmpeg wrote, numbered by media
        // sequence: file s<v>_003.ts is sequence 3.
        let all = written(&dir, &hls_prefix(t));
        assert_eq!(all.len(), (SECONDS / SEGMENT) as usize);
        let newest: BTreeSet<_> = all.iter().skip(all.len() - 3).cloned().collect();
        assert_eq!(files, newest, "track {}", t.id);
        for f in &t.fragments {
            let n: u64 = f.url[f.url.len() - 6..f.url.len() - 3].parse().unwrap();
            assert_eq!(f.id.sequence, n, "{}", f.url);
        }
    }
    assert!(p.live_edge.is_some() && p.duration.is_none());
}

fn check_hls_fmp4(name: &str, live: bool) {
    let dir = generated().join(name);
    let p = load(&dir.join("master.m3u8"));
    // Two video variants, an audio-only variant and the audio rendition share one playlist.
    assert_eq!((p.format, p.live, p.tracks.len()), ("hls", live, 3));
    for (t, files) in p.tracks.iter().zip(check(&p)) {
        assert!(t.init.is_some(), "EXT-X-MAP of track {}", t.id);
        assert_eq!(files, written(&dir, &hls_prefix(t)), "track {}", t.id);
        assert!((total_seconds(t) - f64::from(SECONDS)).abs() < 0.1);
    }
}

#[test]
fn hls_fmp4_on_demand() {
    check_hls_fmp4("hls_fmp4", false);
}

#[test]
fn hls_fmp4_live_event() {
    check_hls_fmp4("hls_fmp4_live", true);
}

/// The DASH representations' file prefixes, in track order (ffmpeg names them by stream index,
/// which is the Representation id).
fn dash_prefixes(p: &Presentation) -> Vec<String> {
    p.tracks
        .iter()
        .map(|t| {
            let name = t.fragments[0].url.rsplit('/').next().unwrap();
            let stream = name.split('-').nth(1).unwrap();
            format!("chunk-{stream}-")
        })
        .collect()
}

#[test]
fn dash_on_demand_timeline() {
    let dir = generated().join("dash");
    let p = load(&dir.join("manifest.mpd"));
    assert_eq!((p.format, p.live, p.tracks.len()), ("dash", false, 3));
    let prefixes = dash_prefixes(&p);
    for ((t, files), prefix) in p.tracks.iter().zip(check(&p)).zip(prefixes) {
        assert!(t.init.is_some(), "Initialization of track {}", t.id);
        assert_eq!(files, written(&dir, &prefix), "track {}", t.id);
        assert!((total_seconds(t) - f64::from(SECONDS)).abs() < 0.1);
    }
    assert!((p.duration.unwrap().as_secs_f64() - f64::from(SECONDS)).abs() < 0.1);
}

/// ffmpeg's on-demand MPD as a live one: `type="dynamic"`, available since 2024-01-01T00:00:00Z,
/// published `SECONDS` later, with a `depth` time-shift buffer.
fn make_dynamic(dir: &Path, depth: &str) -> PathBuf {
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    assert!(mpd.contains("type=\"static\""), "ffmpeg's MPD changed");
    let attr = "mediaPresentationDuration=\"";
    let start = mpd.find(attr).unwrap();
    let end = start + attr.len() + mpd[start + attr.len()..].find('"').unwrap() + 1;
    let live = format!(
        "{}availabilityStartTime=\"2024-01-01T00:00:00Z\" publishTime=\"2024-01-01T00:00:{SECONDS:02}Z\" timeShiftBufferDepth=\"{depth}\"{}",
        &mpd[..start],
        &mpd[end..]
    )
    .replace("type=\"static\"", "type=\"dynamic\"");
    let out = dir.join("live.mpd");
    std::fs::write(&out, live).unwrap();
    out
}

#[test]
fn dash_live_timeline() {
    let dir = generated().join("dash");
    let p = load(&make_dynamic(&dir, "PT30S"));
    assert_eq!((p.format, p.live, p.tracks.len()), ("dash", true, 3));
    let prefixes = dash_prefixes(&p);
    for ((t, files), prefix) in p.tracks.iter().zip(check(&p)).zip(prefixes) {
        assert_eq!(files, written(&dir, &prefix), "track {}", t.id);
    }
    assert!((p.live_edge.unwrap().as_secs_f64() - f64::from(SECONDS)).abs() < 0.1);
}

#[test]
fn dash_live_number_window() {
    let dir = generated().join("dash_number");
    // `publishTime` is 12 s after the start: six 2 s segments are complete; a 6 s buffer keeps
    // the newest three, numbers 4 to 6.
    let p = load(&make_dynamic(&dir, "PT6S"));
    assert_eq!((p.format, p.live, p.tracks.len()), ("dash", true, 3));
    let prefixes = dash_prefixes(&p);
    for ((t, files), prefix) in p.tracks.iter().zip(check(&p)).zip(prefixes) {
        let numbers: Vec<u64> = t.fragments.iter().map(|f| f.id.sequence).collect();
        assert_eq!(numbers, [4, 5, 6], "track {}", t.id);
        let all = written(&dir, &prefix);
        assert!(
            files.is_subset(&all),
            "track {}: {files:?} not in {all:?}",
            t.id
        );
    }
}
