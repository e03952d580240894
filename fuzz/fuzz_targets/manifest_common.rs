//! Shared by the `manifest_*` targets: the bounds every parsed presentation must keep, and the
//! arithmetic the agent and its swarm engine do on each fragment, replayed with the checks that
//! a `Duration::from_secs_f64` or a `u64` multiplication there would need.

#![allow(dead_code)] // each target uses part of it

use std::collections::HashMap;

use hive_core::manifest::{Fragment, Presentation};
use hive_core::time::Duration;
use hive_manifest::limits::{
    MAX_FRAGMENT_BYTES, MAX_FRAGMENT_DURATION, MAX_MEDIA_TIME, MAX_RANGE_BYTES, MAX_SEQUENCE,
};
use hive_manifest::{Classifier, INIT_SEQUENCE, ManifestLimits, UrlPolicy, size_estimate};

/// Small bounds, so a fuzzer's input reaches them quickly and each run stays fast.
pub fn limits() -> ManifestLimits {
    ManifestLimits {
        max_fragments_per_track: 2_000,
        max_fragments_total: 8_000,
        max_tracks: 32,
        max_url_bytes: 2048,
        max_url_bytes_total: 1 << 20,
        ..ManifestLimits::default()
    }
}

/// The duration the agent gives the engine (hive-agent `content.rs`: zero means 2 s).
fn agent_duration(f: &Fragment) -> Duration {
    if f.duration == Duration::ZERO {
        Duration::from_secs(2)
    } else {
        f.duration
    }
}

/// What the agent and the engine compute from one fragment, each step checked.
pub fn agent_arithmetic(track_bandwidth: u64, f: &Fragment, live_hls: bool) {
    let size = size_estimate(track_bandwidth, f);
    assert!(
        (1..=MAX_FRAGMENT_BYTES).contains(&size),
        "size estimate {size} of {f:?}"
    );
    let duration = agent_duration(f);
    // hive-overlay engine `note_bitrate`: bps = size × 8 / seconds, then `8 * bps`.
    let bps = (size as f64 * 8.0 / duration.as_secs_f64()) as u64;
    assert!(bps.checked_mul(8).is_some(), "bit rate {bps} of {f:?}");
    // hive-overlay `origin_budget`: seconds = size × 8 / origin bps, even at 1 b/s.
    let budget = Duration::try_from_secs_f64(size as f64 * 8.0);
    assert!(budget.is_ok(), "origin budget of {size} bytes");
    assert!(
        budget
            .ok()
            .and_then(|b| b.checked_add(Duration::from_secs(3600)))
            .is_some()
    );
    // Media end (live caches, known-fragment windows).
    assert!(f.media_time.checked_add(duration).is_some(), "{f:?}");
    // hive-agent `stable`: live HLS media time = duration × sequence (saturating, u32).
    if live_hls {
        let _ = duration.saturating_mul(f.id.sequence.min(u64::from(u32::MAX)) as u32);
    }
    // Bit rate from a fragment's declared duration, as the DESIGN's reports compute it.
    if let Some(bits) = size.checked_mul(8) {
        let _ = bits as f64 / duration.as_secs_f64();
    }
}

/// Every bound of `hive_manifest::limits` holds for `p`, and the agent's arithmetic on every
/// fragment is safe.
pub fn check(p: &Presentation, limits: &ManifestLimits) {
    assert!(p.tracks.len() <= limits.max_tracks);
    assert!(p.fragments_total() <= limits.max_fragments_total);
    let live_hls = p.live && p.format == "hls";
    let mut url_bytes = 0usize;
    let mut urls: HashMap<_, &str> = HashMap::new();
    for t in &p.tracks {
        assert!(t.fragments.len() <= limits.max_fragments_per_track);
        for f in t.init.iter().chain(t.fragments.iter()) {
            if let Some(r) = f.byte_range {
                assert!(r.len >= 1 && r.len <= MAX_RANGE_BYTES, "{f:?}");
                assert!(r.start.checked_add(r.len).is_some(), "{f:?}");
            }
            assert_eq!(f.id.range, f.byte_range, "{f:?}");
            assert_eq!(f.id.track, t.id, "{f:?}");
            assert_eq!(f.id.content, p.content);
            assert!(f.duration <= MAX_FRAGMENT_DURATION, "{f:?}");
            assert!(f.media_time <= MAX_MEDIA_TIME, "{f:?}");
            assert!(
                f.url.len() <= limits.max_url_bytes,
                "URL of {} bytes",
                f.url.len()
            );
            url_bytes += f.url.len();
            agent_arithmetic(t.bandwidth, f, live_hls);
        }
        for f in &t.fragments {
            assert!(f.id.sequence <= MAX_SEQUENCE, "{f:?}");
            // One id, one resource: a peer serving one must serve the other's bytes.
            if let Some(other) = urls.insert(f.id, f.url.as_str()) {
                assert_eq!(other, f.url, "two URLs for {}", f.id);
            }
        }
        if let Some(init) = &t.init {
            assert!(init.id.sequence > MAX_SEQUENCE && init.id.sequence <= INIT_SEQUENCE);
        }
        for part in &t.parts {
            if let Some(r) = part.byte_range {
                assert!(
                    r.len >= 1 && r.start.checked_add(r.len).is_some(),
                    "{part:?}"
                );
            }
            assert!(part.duration <= MAX_FRAGMENT_DURATION);
        }
    }
    assert!(url_bytes <= limits.max_url_bytes_total);
    let _ = p.listed_end();
    let _ = hive_manifest::report_json(p);
    // Every listed resource classifies to a fragment of `p` with that URL.
    let c = Classifier::new(p, UrlPolicy::default());
    let policy = UrlPolicy::default();
    for t in &p.tracks {
        for f in t.init.iter().chain(t.fragments.iter()).take(200) {
            if policy.canonical(&f.url).is_none() {
                continue;
            }
            let id = c.classify_range(&f.url, f.byte_range);
            let id = id.unwrap_or_else(|| panic!("{f:?} does not classify"));
            let found = p
                .tracks
                .iter()
                .flat_map(|t| t.init.iter().chain(t.fragments.iter()))
                .find(|g| g.id == id);
            let found = found.unwrap_or_else(|| panic!("{id} is not in the presentation"));
            assert_eq!(policy.canonical(&found.url), policy.canonical(&f.url));
        }
    }
}
