//! `hive demo`: a synthetic live origin, peer discovery and N agents, each with a simulated
//! player, on loopback in one process — the whole system end to end, with the simulator's QoE
//! table at the end.
//!
//! Offload is measured at the origin: `1 − fragment bytes the origin served / fragment bytes
//! the players received`; every fragment a player receives is compared with the origin's bytes.

mod player;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use hive_agent::{Agent, AgentConfig, Discovery, MemoryDiscovery, PolicyKind};
use hive_services::origin::{Origin, OriginConfig, OriginStats};
use hive_sim::SimReport;
use hive_sim::report::Metrics;
use parking_lot::Mutex;
use serde::Serialize;

/// Settings of a demo run.
#[derive(Clone, Debug)]
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
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            viewers: 30,
            duration: Duration::from_secs(60),
            join_over: Duration::from_secs(10),
            policy: PolicyKind::RandomMesh,
            seed: 1,
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
    agent: Agent,
    viewer: Arc<Mutex<Option<player::Viewer>>>,
}

/// Runs the demo; `progress` is called every two seconds.
pub async fn run(cfg: DemoConfig, mut progress: impl FnMut(&Progress)) -> Result<DemoReport> {
    anyhow::ensure!(cfg.viewers > 0, "at least one viewer");
    let wall0 = std::time::Instant::now();
    let cpu0 = cpu_s();
    let origin = Arc::new(Origin::new(OriginConfig::default()));
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
    let discovery: Arc<dyn Discovery> = Arc::new(MemoryDiscovery::default());
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
            let agent = Agent::builder()
                .config(AgentConfig {
                    origin: Some(origin_url.clone()),
                    policy: cfg.policy.clone(),
                    seed: cfg.seed,
                    ..AgentConfig::default()
                })
                .discovery(discovery.clone())
                .build()
                .await
                .context("starting an agent")?;
            let viewer = Arc::new(Mutex::new(None));
            players.push(tokio::spawn(player::play(
                client.clone(),
                agent.proxy_url(),
                origin.clone(),
                epoch,
                counters.clone(),
                stop_rx.clone(),
                viewer.clone(),
            )));
            seats.push(Seat { agent, viewer });
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
    // Playback is judged up to the end of the run: from then on players ask for nothing more,
    // so their buffers drain while the last requests in flight finish — not a stall.
    let now = hive_core::time::Instant::from_micros(epoch.elapsed().as_micros() as u64);
    let live_edge_s = std::time::SystemTime::now()
        .duration_since(origin.live().epoch())
        .unwrap_or_default()
        .as_secs_f64();
    let _ = stop_tx.send(true);
    for p in players {
        let _ = tokio::time::timeout(Duration::from_secs(20), p).await;
    }
    let wall = wall0.elapsed();
    let mut m = Metrics::default();
    let frag_s = origin.live().config().fragment.as_secs_f64();
    for s in &seats {
        let stats = s.agent.stats().swarm;
        if let Some(v) = s.viewer.lock().as_ref() {
            let mut p = v.player.lock();
            p.update(now);
            m.absorb(&stats, &p, now);
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
        s.agent.shutdown().await;
    }
    Ok(DemoReport {
        report,
        corrupt_fragments: counters.corrupt.load(Ordering::Relaxed),
        player_errors: counters.errors.load(Ordering::Relaxed),
        origin_manifest_bytes: os.manifest_bytes,
        cpu_s: cpu,
        cpu_cores: cpu / wall.as_secs_f64().max(1e-9),
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
