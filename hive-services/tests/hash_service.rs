//! The hash service against the synthetic live origin, mounted on a tracker's port as
//! `hive tracker --hash-key` runs it: lists verify with the service's key, every hash is BLAKE3
//! of the origin's bytes, each fragment is fetched from the origin once per bitrate, and a
//! fragment's hash is served at most 200 ms after the origin lists it (loopback).
//!
//! The latency test runs 30 s (`HASH_SERVICE_SECS` changes it) and prints p50/p95/max.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hive_core::ContentHash;
use hive_core::integrity::{PublisherKey, SignedList, list_url};
use hive_services::integrity::{HashService, HashServiceClient, HashServiceConfig};
use hive_services::origin::{self, LiveConfig, Origin, OriginConfig};
use hive_services::tracker::{self, MemoryStore, Tracker, TrackerConfig};
use reqwest::Url;
use tokio::net::TcpListener;

struct Setup {
    origin: Arc<Origin>,
    origin_url: String,
    service: Arc<HashService>,
    client: HashServiceClient,
    tracker_url: String,
}

async fn setup(fragment: Duration, cfg: HashServiceConfig) -> Setup {
    let origin = Arc::new(Origin::new(OriginConfig {
        live: LiveConfig {
            fragment,
            ..Default::default()
        },
        ..Default::default()
    }));
    let ol = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let oaddr = ol.local_addr().unwrap();
    tokio::spawn(origin::serve(ol, origin.clone(), std::future::pending()));
    let service = HashService::new(
        HashServiceConfig {
            allow_origins: vec![oaddr.to_string()],
            ..cfg
        },
        PublisherKey::from_seed([9; 32]),
    )
    .unwrap();
    let tl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tracker_url = format!("http://{}", tl.local_addr().unwrap());
    let t = Arc::new(Tracker::new(
        TrackerConfig::default(),
        Arc::new(MemoryStore::new()),
    ));
    tokio::spawn(tracker::serve_with(
        tl,
        t,
        service.clone().router(),
        std::future::pending(),
    ));
    let client = HashServiceClient::new(&tracker_url)
        .unwrap()
        .with_wait(Duration::from_secs(2));
    Setup {
        origin,
        origin_url: format!("http://{oaddr}"),
        service,
        client,
        tracker_url,
    }
}

/// (track, seq) of a fragment URL `.../live/<track>/<seq>.ts`.
fn track_seq(url: &str) -> (usize, u64) {
    let mut parts = url.rsplit('/');
    let seq = parts.next().unwrap().split('.').next().unwrap();
    let track = parts.next().unwrap();
    (track.parse().unwrap(), seq.parse().unwrap())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_arrive_within_200ms_and_each_fragment_is_fetched_once() {
    let secs: u64 = std::env::var("HASH_SERVICE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // Not a multiple of the 100 ms poll: the origin's fragment boundaries fall at every phase
    // of the service's poll ticks, as with a real origin (at 500 ms every boundary would land
    // at the same point of a tick, and the figure would flatter).
    let fragment = Duration::from_millis(530);
    let s = setup(fragment, HashServiceConfig::default()).await;
    let key = s.service.public_key();
    let live = s.origin.live().clone();
    let tracks = live.config().ladder.len();

    // Asking for the master playlist watches its media playlists; its own list is empty.
    let master = format!("{}/live/master.m3u8", s.origin_url);
    let body = s.client.poll(&master, None).await.unwrap().expect("a list");
    assert!(SignedList::verify(&body, &key).unwrap().entries.is_empty());
    assert_eq!(s.service.stats().watched, 1 + tracks);

    let started = SystemTime::now();
    let mut tasks = Vec::new();
    for track in 0..tracks {
        let client = s.client.clone();
        let manifest = format!("{}/live/{track}/index.m3u8", s.origin_url);
        let live = live.clone();
        tasks.push(tokio::spawn(async move {
            let mut since = None;
            // (track, seq) -> (hash, latency in ms for fragments published after the start)
            let mut seen: BTreeMap<(usize, u64), (ContentHash, Option<f64>)> = BTreeMap::new();
            let base = Url::parse(&list_url(&manifest)).unwrap();
            let mut lists = 0;
            while started.elapsed().unwrap() < Duration::from_secs(secs) {
                let Some(body) = client.poll(&manifest, since).await.unwrap() else {
                    continue;
                };
                let now = SystemTime::now();
                let list = SignedList::verify(&body, &key).expect("verifies with the service key");
                assert!(since.is_none_or(|s| list.seq > s), "#SEQ grows");
                since = Some(list.seq);
                lists += 1;
                assert!(list.entries.len() <= live.config().window as usize);
                for e in &list.entries {
                    let url = base.join(&e.uri).unwrap();
                    let (t, seq) = track_seq(url.as_str());
                    assert_eq!(t, track);
                    seen.entry((t, seq)).or_insert_with(|| {
                        // The origin lists `seq` once `live_edge` reaches it.
                        let listed = live.epoch() + fragment * (seq as u32 + 1);
                        let late = (listed > started + Duration::from_secs(1)).then(|| {
                            now.duration_since(listed).unwrap_or_default().as_secs_f64() * 1e3
                        });
                        (e.hash, late)
                    });
                }
            }
            (seen, lists)
        }));
    }
    let mut seen = BTreeMap::new();
    let mut lists = 0;
    for t in tasks {
        let (s, n) = t.await.unwrap();
        seen.extend(s);
        lists += n;
    }
    let svc = s.service.stats();
    let origin = s.origin.stats();

    // Every hash is BLAKE3 of the origin's bytes.
    for ((track, seq), (hash, _)) in &seen {
        assert_eq!(
            *hash,
            ContentHash::of(&live.fragment(*track, *seq)),
            "{track}/{seq}"
        );
    }
    let mut lat: Vec<f64> = seen.values().filter_map(|(_, l)| *l).collect();
    lat.sort_by(f64::total_cmp);
    assert!(
        lat.len() as u64 >= (secs - 2) * 2 * tracks as u64,
        "{} measured",
        lat.len()
    );
    let (p50, p95, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.95),
        *lat.last().unwrap(),
    );
    let distinct: BTreeSet<_> = seen.keys().collect();
    eprintln!(
        "hash service, {secs} s, {} ms fragments, {tracks} bitrates: {} lists received, {} fragments \
         hashed ({} measured); latency from origin listing to hash served: p50 {p50:.1} ms, \
         p95 {p95:.1} ms, max {max:.1} ms; origin fragment requests {} (404s {}), service \
         fetches {}, distinct fragments listed {}",
        fragment.as_millis(),
        lists,
        svc.fragments_hashed,
        lat.len(),
        origin.fragments,
        origin.not_found,
        svc.fragments_hashed,
        distinct.len(),
    );
    assert!(max <= 200.0, "max latency {max:.1} ms");
    // One fetch per fragment per bitrate: the service is the origin's only fragment client;
    // at most one fetch per track may be under way when the counters are read.
    assert!(origin.fragments >= svc.fragments_hashed);
    assert!(origin.fragments <= svc.fragments_hashed + tracks as u64);
    assert!(
        svc.fragments_hashed <= distinct.len() as u64 + tracks as u64,
        "{} fetched for {} distinct fragments",
        svc.fragments_hashed,
        distinct.len()
    );
    assert_eq!(svc.fetch_failures, 0);
    let _ = s.tracker_url;
}

#[tokio::test]
async fn long_poll_allowlist_bounds_and_dash() {
    let s = setup(
        Duration::from_millis(300),
        HashServiceConfig {
            max_manifests: 5,
            ..Default::default()
        },
    )
    .await;
    let key = s.service.public_key();
    let http = reqwest::Client::new();
    let ask = |manifest: String, extra: &'static str| {
        let http = http.clone();
        let url = format!("{}/v1/integrity", s.tracker_url);
        async move {
            http.get(url)
                .query(&[("manifest", manifest.as_str())])
                .query(&pairs(extra))
                .send()
                .await
                .unwrap()
        }
    };
    // Not in the allowlist: 403 with a message that says so.
    let r = ask("http://127.0.0.1:1/live/master.m3u8".into(), "").await;
    assert_eq!(r.status(), 403);
    let msg = r.text().await.unwrap();
    assert!(msg.contains("allowlist"), "{msg}");
    let r = ask("not a url".into(), "").await;
    assert_eq!(r.status(), 400);

    // DASH: init segments and media segments of every representation, hashes of the origin's
    // bytes.
    let mpd = format!("{}/live/manifest.mpd", s.origin_url);
    let body = s.client.poll(&mpd, None).await.unwrap().expect("a list");
    let mut list = SignedList::verify(&body, &key).unwrap();
    // The first list may be published part-way through the first catch-up.
    while list.entries.len() < 3 * 5 {
        let body = s
            .client
            .poll(&mpd, Some(list.seq))
            .await
            .unwrap()
            .expect("newer");
        list = SignedList::verify(&body, &key).unwrap();
    }
    let base = Url::parse(&list_url(&mpd)).unwrap();
    let live = s.origin.live();
    let mut inits = 0;
    for e in &list.entries {
        let u = base.join(&e.uri).unwrap();
        let mut parts = u.path().rsplit('/');
        let file = parts.next().unwrap();
        let track = parts.next().unwrap();
        let seq = || file.trim_end_matches(".m4s").parse().unwrap();
        let bytes = match (track, file) {
            ("audio", "init.mp4") => live.audio_init().unwrap(),
            ("audio", _) => live.audio_fragment(seq()).unwrap(),
            (track, "init.mp4") => {
                inits += 1;
                live.init_segment(track.parse().unwrap())
            }
            (track, _) => live.fmp4_fragment(track.parse().unwrap(), seq()),
        };
        assert_eq!(e.hash, ContentHash::of(&bytes), "{u}");
    }
    assert_eq!(inits, 3);

    // Long-poll: since = current waits for the next list (a fragment later), and a short wait
    // with nothing new is a 304 carrying the current seq.
    let t = std::time::Instant::now();
    let next = s
        .client
        .poll(&mpd, Some(list.seq))
        .await
        .unwrap()
        .expect("newer");
    assert!(SignedList::verify(&next, &key).unwrap().seq > list.seq);
    assert!(t.elapsed() < Duration::from_secs(2));
    let r = ask(mpd.clone(), "since=18446744073709551614&wait=0.2").await;
    assert_eq!(r.status(), 304);
    assert!(r.headers().get("x-hive-seq").is_some());

    // The bound on watched manifests: the MPD, the master and three media playlists fill it.
    let master = format!("{}/live/master.m3u8", s.origin_url);
    assert!(s.client.poll(&master, None).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.service.stats().watched, 5);
    let r = ask(format!("{}/live/other.m3u8", s.origin_url), "wait=0").await;
    assert_eq!(r.status(), 503);
}

/// `a=1&b=2` as query pairs.
fn pairs(s: &'static str) -> Vec<(&'static str, &'static str)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .collect()
}
