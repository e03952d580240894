//! `hive demo`: a synthetic live origin, a tracker and N agents, each with a simulated player,
//! on loopback in one process — the whole system end to end, with the simulator's QoE
//! table at the end.
//!
//! Offload is measured at the origin: `1 − fragment bytes the origin served / fragment bytes
//! the players received`; every fragment a player receives is compared with the origin's bytes.

mod player;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use hive_agent::{Agent, AgentBuilder, AgentConfig, PolicyKind};
use hive_services::origin::{Origin, OriginConfig, OriginStats};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};
use hive_sim::SimReport;
use hive_sim::report::Metrics;
use parking_lot::Mutex;
use serde::Serialize;

/// Settings of a demo run.
#[derive(Clone)]
pub struct DemoConfig {
    /// Viewers (one agent and one player each).
    pub viewers: usize,
    /// How long the run lasts (from the first join).
    pub duration: Duration,
    /// Viewers join evenly over this span.
    pub join_over: Duration,
    /// Overlay policy of every agent.
    pub policy: PolicyKind,
    /// Seed of the agents' random choices.
    pub seed: u64,
    /// Agents to kill (no goodbye, as a crash) and when, counted from the start: `(viewer, at)`.
    /// Their players stop; they are left out of the QoE figures.
    pub kills: Vec<(usize, Duration)>,
    /// Customises the builder of agent `i` (a test wraps one agent's transport, say).
    pub agent_hook: Option<AgentHook>,
    /// Whether the origin publishes signed integrity lists and the agents require them (the
    /// default, as in production); false runs every agent with `--integrity none`.
    pub integrity: bool,
}

/// Customises the builder of one agent: `(viewer index, builder) -> builder`, async because a
/// hook may bind a transport.
pub type AgentHook = Arc<
    dyn Fn(usize, AgentBuilder) -> Pin<Box<dyn Future<Output = AgentBuilder> + Send>> + Send + Sync,
>;

impl std::fmt::Debug for DemoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoConfig")
            .field("viewers", &self.viewers)
            .field("duration", &self.duration)
            .field("join_over", &self.join_over)
            .field("policy", &self.policy)
            .field("seed", &self.seed)
            .field("integrity", &self.integrity)
            .field("kills", &self.kills)
            .field("agent_hook", &self.agent_hook.is_some())
            .finish()
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            viewers: 30,
            duration: Duration::from_secs(60),
            join_over: Duration::from_secs(10),
            policy: PolicyKind::PublicMesh,
            seed: 1,
            kills: Vec::new(),
            agent_hook: None,
            integrity: true,
        }
    }
}

/// What the progress callback sees every two seconds.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Viewers playing.
    pub viewers: usize,
    /// Offload so far.
    pub offload: f64,
    /// Players that stalled at least once, and the stall time in all.
    pub stalled_players: usize,
    /// Seconds of stall in all.
    pub stall_s: f64,
    /// Players per rendition, lowest first.
    pub per_rendition: Vec<usize>,
}

/// The outcome of a demo run: the simulator's report (same keys) and what only a real run has.
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    /// The QoE table's figures, with the keys of DESIGN.md.
    #[serde(flatten)]
    pub report: SimReport,
    /// Fragments a player received that differed from the origin's (must be 0).
    pub corrupt_fragments: u64,
    /// Fragment requests that failed at a player.
    pub player_errors: u64,
    /// Bytes of playlists the origin served (not in `offload`, which counts fragments).
    pub origin_manifest_bytes: u64,
    /// CPU time of the whole process (origin, discovery, agents, players), seconds.
    pub cpu_s: f64,
    /// `cpu_s / wall_s`: CPU cores the whole process used on average.
    pub cpu_cores: f64,
    /// Viewers (indices) that stalled at least once, killed ones excluded.
    pub stalled_viewers: Vec<usize>,
    /// Fragments from peers that failed their hash, over all agents (the peer is dropped).
    pub bad_fragments: u64,
}

fn cpu_s() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

struct Seat {
    agent: Option<Agent>,
    stop: tokio::sync::watch::Sender<bool>,
    viewer: Arc<Mutex<Option<player::Viewer>>>,
}

/// Runs the demo; `progress` is called every two seconds.
pub async fn run(cfg: DemoConfig, mut progress: impl FnMut(&Progress)) -> Result<DemoReport> {
    anyhow::ensure!(cfg.viewers > 0, "at least one viewer");
    let wall0 = std::time::Instant::now();
    let cpu0 = cpu_s();
    // The publisher's key (as `hive sign` holds it beside a packager): the origin serves the
    // signed lists, every agent trusts its public half.
    let publisher = hive_core::integrity::PublisherKey::from_seed(
        hive_core::ContentHash::of(format!("hive demo publisher {}", cfg.seed).as_bytes()).0,
    );
    let integrity = if cfg.integrity {
        hive_core::integrity::IntegritySource::Signed {
            publisher: Some(publisher.public()),
            service: None,
        }
    } else {
        hive_core::integrity::IntegritySource::None
    };
    let origin = Arc::new(Origin::new(OriginConfig {
        sign_key: cfg.integrity.then_some(publisher),
        ..OriginConfig::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the origin")?;
    let origin_url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut origin_stop = stop_rx.clone();
    tokio::spawn(hive_services::origin::serve(
        listener,
        origin.clone(),
        async move {
            let _ = origin_stop.changed().await;
        },
    ));
    // The tracker, over HTTP on loopback like the origin; its TTL keeps announces every 5 s so
    // early joiners hear of later ones quickly.
    let tracker_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the tracker")?;
    let tracker_url = format!("http://{}", tracker_listener.local_addr()?);
    let tracker = Arc::new(Tracker::new(
        TrackerConfig {
            ttl: Duration::from_secs(15),
            ..TrackerConfig::default()
        },
        Arc::new(MemoryStore::new()),
    ));
    let mut tracker_stop = stop_rx.clone();
    tokio::spawn(hive_services::tracker::serve(
        tracker_listener,
        tracker,
        async move {
            let _ = tracker_stop.changed().await;
        },
    ));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4)
        .build()
        .context("HTTP client")?;
    let counters = Arc::new(player::Shared::default());
    let epoch = std::time::Instant::now();
    let mut seats: Vec<Seat> = Vec::with_capacity(cfg.viewers);
    let mut players = Vec::with_capacity(cfg.viewers);
    let gap = cfg.join_over.as_secs_f64() / cfg.viewers as f64;
    let mut next_report = 2.0;
    let end = cfg.duration.as_secs_f64();
    loop {
        let t = wall0.elapsed().as_secs_f64();
        // Join whoever is due.
        while seats.len() < cfg.viewers && seats.len() as f64 * gap <= t {
            let mut builder = Agent::builder().config(AgentConfig {
                origin: Some(origin_url.clone()),
                tracker: Some(tracker_url.clone()),
                policy: cfg.policy.clone(),
                seed: cfg.seed,
                integrity: integrity.clone(),
                ..AgentConfig::default()
            });
            if let Some(hook) = &cfg.agent_hook {
                builder = hook(seats.len(), builder).await;
            }
            let agent = builder.build().await.context("starting an agent")?;
            let viewer = Arc::new(Mutex::new(None));
            let (own_stop, own_stop_rx) = tokio::sync::watch::channel(false);
            players.push(tokio::spawn(player::play(
                client.clone(),
                agent.proxy_url(),
                origin.clone(),
                epoch,
                counters.clone(),
                own_stop_rx,
                viewer.clone(),
            )));
            seats.push(Seat {
                agent: Some(agent),
                stop: own_stop,
                viewer,
            });
        }
        for &(i, at) in &cfg.kills {
            if at.as_secs_f64() <= t
                && let Some(seat) = seats.get_mut(i)
                && let Some(agent) = seat.agent.take()
            {
                let _ = seat.stop.send(true);
                agent.kill();
            }
        }
        if t >= end {
            break;
        }
        if t >= next_report {
            next_report += 2.0;
            progress(&snapshot(t, &seats, &origin, &counters));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The run ends now: playback is accounted up to this instant, not while players wind down.
    let now = hive_core::time::Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let live_edge_s = std::time::SystemTime::now()
        .duration_since(origin.live().epoch())
        .unwrap_or_default()
        .as_secs_f64();
    let _ = stop_tx.send(true);
    for s in &seats {
        let _ = s.stop.send(true);
    }
    for p in players {
        let _ = tokio::time::timeout(Duration::from_secs(20), p).await;
    }
    let wall = wall0.elapsed();
    let mut m = Metrics::default();
    let frag_s = origin.live().config().fragment.as_secs_f64();
    let mut stalled_viewers = Vec::new();
    let mut bad_fragments = 0;
    for (i, s) in seats.iter().enumerate() {
        let Some(agent) = &s.agent else {
            continue;
        };
        let stats = agent.stats().swarm;
        bad_fragments += stats.bad_fragments;
        if let Some(v) = s.viewer.lock().as_ref() {
            let mut p = v.player.lock();
            p.update(now);
            m.absorb(&stats, &p, now);
            if !p.stalled.is_zero() {
                stalled_viewers.push(i);
            }
            if p.started.is_some() {
                let media = (p.playhead_seq + 1) as f64 * frag_s - p.buffer();
                m.live_delays.push((live_edge_s - media).max(0.0));
            }
        }
    }
    let os: OriginStats = origin.stats();
    m.origin_bytes = os.fragment_bytes;
    m.player_bytes = counters.player_bytes.load(Ordering::Relaxed);
    let policy = match &cfg.policy {
        PolicyKind::NoPeer => "no-peer",
        PolicyKind::RandomMesh => "random-mesh",
        PolicyKind::PublicMesh => "public-mesh",
        PolicyKind::PrivateHierarchy(_) => "private-hierarchy",
    };
    let report = SimReport::from_metrics(
        "demo",
        policy,
        cfg.viewers,
        cfg.duration.as_secs_f64(),
        &m,
        0.0,
        wall,
    );
    let cpu = cpu_s() - cpu0;
    for s in seats {
        if let Some(a) = s.agent {
            a.shutdown().await;
        }
    }
    Ok(DemoReport {
        report,
        corrupt_fragments: counters.corrupt.load(Ordering::Relaxed),
        player_errors: counters.errors.load(Ordering::Relaxed),
        origin_manifest_bytes: os.manifest_bytes,
        cpu_s: cpu,
        cpu_cores: cpu / wall.as_secs_f64().max(1e-9),
        stalled_viewers,
        bad_fragments,
    })
}

fn snapshot(t: f64, seats: &[Seat], origin: &Origin, counters: &player::Shared) -> Progress {
    let player_bytes = counters.player_bytes.load(Ordering::Relaxed);
    let origin_bytes = origin.stats().fragment_bytes;
    let mut viewers = 0;
    let mut stalled_players = 0;
    let mut stall_s = 0.0;
    let mut per_rendition = vec![0; origin.live().config().ladder.len()];
    for s in seats {
        if let Some(v) = s.viewer.lock().as_ref() {
            let p = v.player.lock();
            if p.started.is_some() {
                viewers += 1;
            }
            if !p.stalled.is_zero() {
                stalled_players += 1;
                stall_s += p.stalled.as_secs_f64();
            }
            if let Some(n) = per_rendition.get_mut(p.track) {
                *n += 1;
            }
            let _ = &v.ladder;
        }
    }
    Progress {
        elapsed_s: t,
        viewers,
        offload: if player_bytes == 0 {
            0.0
        } else {
            1.0 - origin_bytes as f64 / player_bytes as f64
        },
        stalled_players,
        stall_s,
        per_rendition,
    }
}
