//! `hive sign`'s [`Signer`] on real packager output made by ffmpeg at test time (Debian's
//! `ffmpeg` package; the tests print a note and pass when it is not installed): an on-demand
//! HLS TS ladder, HLS with byte ranges (`single_file`), fMP4 DASH, and a live HLS run signed
//! with `watch` while ffmpeg writes it.
//!
//! Every list must verify with the key, every entry's hash must be BLAKE3 of the file's bytes
//! (its range), and the entries must map as an agent maps them: each URI joined to
//! `list_url(playlist URL)` is a fragment URL the playlist lists, and every fragment is named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hive_core::integrity::{PublisherKey, SignedList, list_url};
use hive_core::{ByteRange, ContentHash};
use hive_manifest::Manifests;
use hive_services::integrity::{Signer, list_path, watch};
use reqwest::Url;

/// The synthetic http base the folder is "served" under, for the agent-style mapping.
const BASE: &str = "http://origin.test/media/";

fn ffmpeg() -> Option<String> {
    let ffmpeg = std::env::var("FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    let found = Command::new(&ffmpeg)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: `{ffmpeg}` not found (Debian package `ffmpeg`)");
        return None;
    }
    Some(ffmpeg)
}

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sign_ffmpeg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_ffmpeg(ffmpeg: &str, dir: &Path, args: &str) {
    let out = Command::new(ffmpeg)
        .current_dir(dir)
        // `~` stands for a space inside one argument.
        .args(args.split_whitespace().map(|a| a.replace('~', " ")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const INPUT: &str = "-hide_banner -loglevel error -nostdin -y \
    -f lavfi -i testsrc2=size=160x90:rate=25:duration=8 \
    -c:v libx264 -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -threads 1";

fn key() -> PublisherKey {
    PublisherKey::from_seed([42; 32])
}

fn hash_of(path: &Path, range: Option<ByteRange>) -> ContentHash {
    let bytes = std::fs::read(path).unwrap();
    match range {
        Some(r) => ContentHash::of(&bytes[r.start as usize..r.end() as usize]),
        None => ContentHash::of(&bytes),
    }
}

/// Checks the list beside `playlist` (under `root`) and returns its entries' count. With
/// `exact`, every fragment the playlist lists now must be named.
fn check_list(root: &Path, playlist: &Path, exact: bool) -> (u64, usize) {
    let text = std::fs::read(list_path(playlist)).unwrap();
    let list = SignedList::verify(&text, &key().public()).expect("list verifies");
    let rel = playlist.strip_prefix(root).unwrap().to_str().unwrap();
    let playlist_url = format!("{BASE}{rel}");
    let list_base = Url::parse(&list_url(&playlist_url)).unwrap();
    let p = Manifests::default()
        .parse(&playlist_url, None, &std::fs::read(playlist).unwrap())
        .unwrap();
    let listed: BTreeSet<(String, Option<ByteRange>)> = p
        .tracks
        .iter()
        .flat_map(|t| t.init.iter().chain(&t.fragments))
        .map(|f| (f.url.clone(), f.byte_range))
        .collect();
    let mut named = BTreeSet::new();
    for e in &list.entries {
        let u = list_base.join(&e.uri).unwrap();
        let rel = u.as_str().strip_prefix(BASE).expect("under the base");
        let file = root.join(rel);
        assert_eq!(e.hash, hash_of(&file, e.range), "{} {:?}", e.uri, e.range);
        if exact {
            assert!(
                listed.contains(&(u.to_string(), e.range)),
                "{u} {:?} is not listed by {playlist_url}",
                e.range
            );
        }
        named.insert((u.to_string(), e.range));
    }
    if exact {
        assert_eq!(named, listed, "{playlist_url}: every fragment named");
    }
    (list.seq, list.entries.len())
}

#[test]
fn vod_hls_ladder_byte_ranges_and_dash() {
    let Some(ff) = ffmpeg() else { return };
    let dir = tmp("vod");
    for d in ["hls", "ranges", "dash"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    // A two-rung TS ladder with a master playlist.
    run_ffmpeg(
        &ff,
        &dir,
        &format!(
            "{INPUT} -map 0:v -map 0:v -filter:v:1 scale=96:54 -f hls -hls_time 1 \
             -hls_playlist_type vod -master_pl_name master.m3u8 -var_stream_map v:0~v:1 \
             -hls_segment_filename hls/s%v_%03d.ts hls/p%v.m3u8"
        ),
    );
    // One file, fragments as EXT-X-BYTERANGE ranges of it; fMP4 with an init (EXT-X-MAP).
    run_ffmpeg(
        &ff,
        &dir,
        &format!(
            "{INPUT} -f hls -hls_time 1 -hls_playlist_type vod -hls_segment_type fmp4 \
             -hls_flags single_file ranges/one.m3u8"
        ),
    );
    run_ffmpeg(
        &ff,
        &dir,
        &format!(
            "{INPUT} -f dash -seg_duration 1 -use_template 1 -use_timeline 1 dash/manifest.mpd"
        ),
    );
    let mut signer = Signer::new(key(), &dir).unwrap();
    let r = signer.pass().unwrap();
    eprintln!("first pass: {r:?}");
    assert_eq!(r.failed, 0);
    assert_eq!(r.missing, 0);
    // p0, p1, one.m3u8, manifest.mpd; the master has no list.
    assert_eq!(r.lists_written, 4);
    assert!(!list_path(&dir.join("hls/master.m3u8")).exists());
    let mut total = 0;
    for p in [
        "hls/p0.m3u8",
        "hls/p1.m3u8",
        "ranges/one.m3u8",
        "dash/manifest.mpd",
    ] {
        let (_, n) = check_list(&dir, &dir.join(p), true);
        assert!(n >= 8, "{p}: {n} entries");
        total += n;
    }
    assert_eq!(r.fragments_hashed, total);
    let ranges = SignedList::verify(
        &std::fs::read(list_path(&dir.join("ranges/one.m3u8"))).unwrap(),
        &key().public(),
    )
    .unwrap();
    assert!(
        ranges
            .entries
            .iter()
            .all(|e| e.range.is_some() && e.uri == "one.m4s"),
        "byte-range entries of one file: {:?}",
        &ranges.entries[..2]
    );
    // Nothing changed: nothing written, nothing hashed.
    let again = signer.pass().unwrap();
    assert_eq!((again.lists_written, again.fragments_hashed), (0, 0));
    // A new signer (a restart) hashes again (its cache is in memory) but writes no list whose
    // content did not change, and continues #SEQ from the list on disk.
    let before = check_list(&dir, &dir.join("hls/p0.m3u8"), true).0;
    let mut restarted = Signer::new(key(), &dir).unwrap();
    let r2 = restarted.pass().unwrap();
    assert_eq!(r2.lists_written, 0, "{r2:?}");
    // A touched playlist whose fragments did not change is not rewritten either; a changed
    // fragment is rehashed and its list rewritten with a larger #SEQ.
    let seg = dir.join("hls/s0_000.ts");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[200] ^= 1;
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&seg, &bytes).unwrap();
    let pl = dir.join("hls/p0.m3u8");
    std::fs::write(&pl, std::fs::read(&pl).unwrap()).unwrap();
    let r3 = restarted.pass().unwrap();
    assert_eq!(r3.lists_written, 1, "{r3:?}");
    let after = check_list(&dir, &pl, true).0;
    assert!(after > before, "#SEQ grows: {before} -> {after}");
}

#[test]
fn live_hls_signed_while_ffmpeg_writes_it() {
    let Some(ff) = ffmpeg() else { return };
    let dir = tmp("live");
    // Real time (-re), 1 s segments, a sliding window of 4, about 10 s.
    let mut child = Command::new(&ff)
        .current_dir(&dir)
        .args(
            "-hide_banner -loglevel error -nostdin -y -re \
             -f lavfi -i testsrc2=size=160x90:rate=25:duration=10 \
             -c:v libx264 -preset ultrafast -g 25 -keyint_min 25 -sc_threshold 0 -threads 1 \
             -f hls -hls_time 1 -hls_list_size 4 -hls_flags omit_endlist \
             -hls_segment_filename seg_%03d.ts live.m3u8"
                .split_whitespace(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let signer_thread = {
        let dir = dir.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut signer = Signer::new(key(), &dir).unwrap();
            let mut hashed = 0;
            let mut written = 0;
            watch(
                &mut signer,
                Duration::from_millis(100),
                || stop.load(Ordering::Relaxed),
                |r| {
                    hashed += r.fragments_hashed;
                    written += r.lists_written;
                },
            )
            .unwrap();
            (hashed, written)
        })
    };
    // Check each new list as it appears while ffmpeg writes.
    let playlist = dir.join("live.m3u8");
    let started = Instant::now();
    let mut seqs = Vec::new();
    let mut names = BTreeSet::new();
    while started.elapsed() < Duration::from_secs(30) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if list_path(&playlist).exists() {
            let text = std::fs::read(list_path(&playlist)).unwrap();
            let list = SignedList::verify(&text, &key().public()).expect("verifies");
            if seqs.last() != Some(&list.seq) {
                assert!(seqs.last().is_none_or(|s| *s < list.seq), "#SEQ grows");
                seqs.push(list.seq);
                assert!(list.entries.len() <= 4, "the list rolls with the window");
                for e in &list.entries {
                    assert_eq!(e.hash, hash_of(&dir.join(&e.uri), None), "{}", e.uri);
                    names.insert(e.uri.clone());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    // ffmpeg's last playlist: one more pass at most, then the list names it exactly.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (hashed, written) = signer_thread.join().unwrap();
    check_list(&dir, &playlist, true);
    let segments = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".ts")
        })
        .count();
    eprintln!(
        "live: {} lists seen, {written} written, {hashed} fragments hashed, {segments} segments on disk, {} named",
        seqs.len(),
        names.len()
    );
    assert!(seqs.len() >= 5, "lists roll as segments come: {seqs:?}");
    // Each segment hashed once (ffmpeg keeps them all on disk: no delete_segments).
    assert_eq!(hashed, segments);
}
