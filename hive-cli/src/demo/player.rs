//! A simulated viewer in real time: it plays the live HLS stream through its agent's proxy with
//! the simulator's player model (start-up buffer, throughput ABR, stall accounting), and checks
//! every fragment against the origin's bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hive_core::time::{Clock, Instant, MonotonicClock};
use hive_services::origin::Origin;
use hive_sim::player::Player;
use parking_lot::Mutex;

/// Counters every viewer adds to.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Fragment bytes received by players.
    pub(crate) player_bytes: AtomicU64,
    /// Fragments that differed from the origin's bytes (must stay 0).
    pub(crate) corrupt: AtomicU64,
    /// Fragment requests that failed (HTTP error or time-out).
    pub(crate) errors: AtomicU64,
}

/// One viewer.
pub(crate) struct Viewer {
    pub(crate) player: Arc<Mutex<Player>>,
    pub(crate) ladder: Vec<u64>,
    /// Every fragment played, `(rendition, sequence)`, in order (one per fragment duration
    /// of the run at most): `hive lab` counts the distinct fragments behind each link.
    pub(crate) received: Arc<Mutex<Vec<(usize, u64)>>>,
}

/// Newest and oldest sequence listed in a media playlist.
fn listed(text: &str) -> Option<(u64, u64)> {
    let seqs = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().rsplit('/').next())
        .filter_map(|f| f.strip_suffix(".ts"))
        .filter_map(|n| n.parse::<u64>().ok());
    let (mut lo, mut hi) = (u64::MAX, None);
    for s in seqs {
        lo = lo.min(s);
        hi = Some(hi.map_or(s, |h: u64| h.max(s)));
    }
    hi.map(|h| (lo, h))
}

/// Plays until `stop`; the player state stays readable through `viewer.player`.
pub(crate) async fn play(
    client: reqwest::Client,
    proxy: String,
    origin: Arc<Origin>,
    clock: MonotonicClock,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
    joined: Arc<Mutex<Option<Viewer>>>,
) {
    let ladder: Vec<u64> = origin
        .live()
        .config()
        .ladder
        .iter()
        .map(|r| r.bandwidth)
        .collect();
    let frag_s = origin.live().config().fragment.as_secs_f64();
    // Start-up time counts from here: the manifests are part of it.
    let joined_at = clock.now();
    // The master playlist (the agent learns the stream from it), then the lowest variant.
    let get = |url: String| {
        let c = client.clone();
        async move {
            let r = c.get(&url).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            r.bytes().await.ok()
        }
    };
    let mut tries = 0;
    let start_seq = loop {
        if *stop.borrow() {
            return;
        }
        let master = get(format!("{proxy}/live/master.m3u8")).await;
        let media = get(format!("{proxy}/live/0/index.m3u8")).await;
        if let (Some(_), Some(m)) = (master, media)
            && let Some((_, hi)) = listed(&String::from_utf8_lossy(&m))
        {
            // Three fragments from the live edge (RFC 8216 §6.3.3).
            break hi.saturating_sub(2);
        }
        tries += 1;
        if tries > 50 {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let player = Arc::new(Mutex::new(Player::new(joined_at, start_seq, 0)));
    let received = Arc::new(Mutex::new(Vec::new()));
    *joined.lock() = Some(Viewer {
        player: player.clone(),
        ladder: ladder.clone(),
        received: received.clone(),
    });
    let mut edge = vec![(0u64, 0u64); ladder.len()];
    let mut refreshed = vec![None::<Instant>; ladder.len()];
    while !*stop.borrow() {
        let (want, seq, track, deadline) = {
            let mut p = player.lock();
            p.update(clock.now());
            (p.wants_more(), p.next_seq, p.track, p.fragment_deadline())
        };
        if !want {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        // Is the fragment listed yet? Refresh the variant's playlist at most twice a fragment.
        if seq > edge[track].1 || seq < edge[track].0 {
            let t = clock.now();
            let stale = refreshed[track].is_none_or(|r| (t - r).as_secs_f64() > frag_s / 2.0);
            if stale {
                refreshed[track] = Some(t);
                if let Some(m) = get(format!("{proxy}/live/{track}/index.m3u8")).await
                    && let Some(lh) = listed(&String::from_utf8_lossy(&m))
                {
                    edge[track] = lh;
                }
            }
            if seq < edge[track].0 {
                // Fell out of the window: jump back near the live edge.
                player.lock().next_seq = edge[track].1.saturating_sub(2);
                continue;
            }
            if seq > edge[track].1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        let asked = clock.now();
        player.lock().inflight = Some((seq, track, asked));
        // The simulator's rule, so that the lab's agents see the deadlines `hive sim`'s do.
        let deadline_ms = deadline.as_millis().min(u128::from(u64::MAX)) as u64;
        let r = client
            .get(format!("{proxy}/live/{track}/{seq}.ts"))
            .header(hive_agent::proxy::DEADLINE_HEADER, deadline_ms.to_string())
            .send()
            .await;
        let body = match r {
            Ok(r) if r.status().is_success() => r.bytes().await.ok(),
            _ => None,
        };
        match body {
            Some(b) => {
                if b != origin.live().fragment(track, seq) {
                    shared.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                shared
                    .player_bytes
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                received.lock().push((track, seq));
                player.lock().on_fragment(
                    clock.now(),
                    seq,
                    ladder[track],
                    b.len() as u64,
                    frag_s,
                    &ladder,
                );
            }
            None => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                player.lock().inflight = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_give_their_window() {
        let p = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2,\n7.ts\n#EXTINF:2,\nhttp://o/live/0/8.ts\n";
        assert_eq!(listed(p), Some((7, 8)));
        assert_eq!(listed("#EXTM3U\n"), None);
    }
}
