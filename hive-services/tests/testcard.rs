//! The origin's test card is real media: ffmpeg decodes every rendition, fragment by fragment
//! and as one stream across fragments (timestamps and continuity counters follow on), with no
//! error and no warning. Needs Debian's `ffmpeg` (scripts/test.sh installs it).

use std::process::{Command, Stdio};
use std::time::SystemTime;

use hive_services::origin::{LiveConfig, LiveStream, Media};

fn tool(name: &str) -> String {
    std::env::var(name.to_uppercase()).unwrap_or_else(|_| name.into())
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            panic!("{cmd:?} did not start ({e}): this test needs Debian's `ffmpeg` (scripts/test.sh installs it)")
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// ffmpeg decodes the file at `path` without an error or a warning; what it said if not.
fn decodes(path: &std::path::Path) -> Result<(), String> {
    let (ok, _, err) = run(Command::new(tool("ffmpeg"))
        .args(["-hide_banner", "-nostdin", "-v", "warning", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]));
    if ok && err.trim().is_empty() {
        Ok(())
    } else {
        Err(err)
    }
}

#[test]
fn every_rendition_decodes_fragment_by_fragment_and_across_fragments() {
    let live = LiveStream::new(LiveConfig::default(), SystemTime::now());
    assert_eq!(live.media(), Media::TestCard);
    let dir = std::env::temp_dir().join(format!("hive-testcard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let first = 1_000_000; // far from the start: timestamps well past the first loops
    for (track, r) in live.config().ladder.iter().enumerate() {
        let mut joined = Vec::new();
        for seq in first..first + 3 {
            let f = live.fragment(track, seq);
            let path = dir.join(format!("{track}-{seq}.ts"));
            std::fs::write(&path, &f).expect("write");
            joined.extend_from_slice(&f);
            if let Err(e) = decodes(&path) {
                panic!("track {track} fragment {seq}: {e}");
            }
        }
        let path = dir.join(format!("{track}-joined.ts"));
        std::fs::write(&path, &joined).expect("write");
        if let Err(e) = decodes(&path) {
            panic!("track {track}, 3 fragments: {e}");
        }
        // Video at the rendition's size and audio; 6 s of video across the three fragments.
        let (ok, out, err) = run(Command::new(tool("ffprobe"))
            .args(["-v", "error", "-show_entries"])
            .args(["stream=codec_name,width,height,duration", "-of", "compact"])
            .arg(&path));
        assert!(ok, "{err}");
        assert!(out.contains("codec_name=aac"), "{out}");
        let video = out
            .lines()
            .find(|l| l.contains("codec_name=h264"))
            .unwrap_or_else(|| panic!("no video: {out}"));
        assert!(
            video.contains(&format!("width={}|height={}", r.width, r.height)),
            "{video}"
        );
        let secs: f64 = video
            .rsplit("duration=")
            .next()
            .and_then(|d| d.trim().parse().ok())
            .unwrap_or_else(|| panic!("{video}"));
        assert!((secs - 6.0).abs() < 0.05, "{secs} s of video: {video}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The DASH packaging: each rendition's init segment followed by consecutive fragments (their
/// `tfdt` and `mfhd` moved on, their padding inside the `mdat`) decodes as one stream, video and
/// audio alike, with no error and no warning.
#[test]
fn the_fragmented_mp4_renditions_and_audio_decode_across_fragments() {
    let live = LiveStream::new(LiveConfig::default(), SystemTime::now());
    let dir = std::env::temp_dir().join(format!("hive-testcard-fmp4-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let first = 1_000_000;
    let mut streams: Vec<(String, Vec<u8>, &str)> = Vec::new();
    for (track, r) in live.config().ladder.iter().enumerate() {
        let mut joined = live.init_segment(track).to_vec();
        for seq in first..first + 3 {
            let f = live.fmp4_fragment(track, seq);
            assert!(
                f.len() >= live.fragment_len(track, seq) - 188,
                "padded like the TS"
            );
            joined.extend_from_slice(&f);
        }
        streams.push((format!("{}x{}", r.width, r.height), joined, "h264"));
    }
    let mut audio = live.audio_init().expect("the test card has audio").to_vec();
    for seq in first..first + 3 {
        audio.extend_from_slice(&live.audio_fragment(seq).expect("audio"));
    }
    streams.push(("audio".into(), audio, "aac"));
    for (name, bytes, codec) in streams {
        let path = dir.join(format!("{name}.mp4"));
        std::fs::write(&path, &bytes).expect("write");
        if let Err(e) = decodes(&path) {
            panic!("{name}: {e}");
        }
        let (ok, out, err) = run(Command::new(tool("ffprobe"))
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(&path));
        assert!(ok, "{err}");
        let pts: Vec<f64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let span = pts.last().copied().unwrap_or(0.0) - pts.first().copied().unwrap_or(0.0);
        assert!(
            pts.windows(2).all(|w| w[1] > w[0]),
            "{name}: timestamps rise across fragments"
        );
        assert!((span - 6.0).abs() < 0.1, "{name} ({codec}): {span} s");
    }
    let _ = std::fs::remove_dir_all(dir);
}
