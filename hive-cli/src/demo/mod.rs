//! `hive demo`: a live origin (the test card), a tracker and N agents, each with a simulated
//! player, on loopback in one process — the whole system end to end, with the simulator's QoE
//! table at the end.
//!
//! Offload is measured at the origin: `1 − fragment bytes the origin served / fragment bytes
//! the players received`; every fragment a player receives is compared with the origin's bytes.

pub(crate) mod player;
pub mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use hive_agent::{Agent, AgentBuilder, AgentConfig, PolicyKind};
use hive_core::time::{Clock, MonotonicClock};
use hive_services::origin::{Origin, OriginConfig, OriginStats};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};
use hive_sim::SimReport;
use hive_sim::player::Player;
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
    /// Viewers that are consistent liars: their agents run with `--integrity none` and their
    /// origin's name resolves to another server, which serves other bytes under the same URLs
    /// (a compromised viewer, or one whose DNS was poisoned). They serve those bytes to peers,
    /// with hashes that match them. They are left out of every figure but `bad_fragments` and
    /// `bad_peers`; `corrupt_fragments` counts what reached the honest players.
    pub liars: Vec<usize>,
    /// The watch page to fill ([`watch::Watch`]): the first honest viewer's agent is the one
    /// it plays through, and every progress sample feeds its charts.
    pub watch: Option<Arc<watch::Watch>>,
    /// A handshake flood at viewer 0's agent, INITIALs a second (0: none), from 1 000
    /// loopback source addresses answering every RETRY (`hive_transport_udp::flood`), from
    /// when every viewer has joined to the end. The report's `flood` says what it cost.
    pub flood_rate: u64,
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
            .field("liars", &self.liars)
            .field("flood_rate", &self.flood_rate)
            .field("kills", &self.kills)
            .field("agent_hook", &self.agent_hook.is_some())
            .field("watch", &self.watch.is_some())
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
            liars: Vec::new(),
            flood_rate: 0,
            watch: None,
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
    /// Fragments from peers that failed their hash, over the honest agents (the peer is
    /// dropped, and refused from then on).
    pub bad_fragments: u64,
    /// Peers the honest agents dropped and refused for bytes that failed verification.
    pub bad_peers: u64,
    /// Liars among the viewers ([`DemoConfig::liars`]).
    pub liars: usize,
    /// The most fragments one honest agent took from liars before it refused them, per liar it
    /// refused (1: each liar was dropped at its first bad fragment).
    pub bad_fragments_per_liar_max: f64,
    /// With [`DemoConfig::flood_rate`]: what the flood at viewer 0's agent cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodReport>,
}

/// What a handshake flood at viewer 0's agent cost ([`DemoConfig::flood_rate`]).
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    /// Datagrams the flood sent (INITIALs and cookie echoes).
    pub sent: u64,
    /// Seconds it lasted.
    pub seconds: f64,
    /// `sent / seconds`.
    pub rate: f64,
    /// The whole process's resident memory when the flood began, MiB.
    pub rss_before_mib: f64,
    /// Its peak during the flood (sampled every second), MiB.
    pub rss_peak_mib: f64,
    /// Seconds the flooded agent's player stalled (0 is the target).
    pub victim_stall_s: f64,
    /// Fragments the flooded agent's player played.
    pub victim_fragments: u64,
    /// The process's CPU during the flood, cores (the flood's own thread included).
    pub cpu_cores: f64,
}

/// This process's resident memory, MiB (0 where /proc is not there).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A flood under way: since when, and the memory and CPU it is measured against.
struct Flooding {
    flood: hive_transport_udp::flood::Flood,
    since: std::time::Instant,
    cpu0: f64,
    rss_before: f64,
    rss_peak: f64,
    next_sample: f64,
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
    let origin_addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // With liars, the origin is reached by name: honest agents resolve it to the origin, liars
    // to a server at another loopback address and the same port that serves other bytes (a
    // different seed) under the same URLs, so that both are one stream, one swarm.
    let lying_origin = if cfg.liars.is_empty() {
        None
    } else {
        let liar = Arc::new(Origin::new(OriginConfig {
            live: hive_services::origin::LiveConfig {
                seed: 0x11a2,
                ..Default::default()
            },
            ..OriginConfig::default()
        }));
        let liar_ip = std::net::IpAddr::from([127, 0, 0, 2]);
        let l = tokio::net::TcpListener::bind((liar_ip, origin_addr.port()))
            .await
            .context("binding the lying origin at 127.0.0.2")?;
        let mut liar_stop = stop_rx.clone();
        tokio::spawn(hive_services::origin::serve(l, liar.clone(), async move {
            let _ = liar_stop.changed().await;
        }));
        Some((liar, liar_ip))
    };
    const ORIGIN_NAME: &str = "origin.hive.test";
    let origin_url = if lying_origin.is_some() {
        format!("http://{ORIGIN_NAME}:{}", origin_addr.port())
    } else {
        format!("http://{origin_addr}")
    };
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
    // The liars' players count apart: their bytes are not the honest viewers'.
    let liar_counters = Arc::new(player::Shared::default());
    // The players' clock: their playback (start-up, stalls) is measured on it.
    let clock = MonotonicClock::new();
    let mut seats: Vec<Seat> = Vec::with_capacity(cfg.viewers);
    let mut players = Vec::with_capacity(cfg.viewers);
    let gap = cfg.join_over.as_secs_f64() / cfg.viewers as f64;
    let mut next_report = 2.0;
    let end = cfg.duration.as_secs_f64();
    let mut flooding: Option<Flooding> = None;
    loop {
        let t = wall0.elapsed().as_secs_f64();
        if cfg.flood_rate > 0 && flooding.is_none() && seats.len() == cfg.viewers {
            let target = seats[0].agent.as_ref().and_then(|a| {
                a.me().addrs.into_iter().find_map(|a| match a {
                    hive_core::PeerAddr::Socket(s) => Some(s),
                    _ => None,
                })
            });
            let target = target.context("viewer 0's agent has no UDP address to flood")?;
            let rss = rss_mib();
            flooding = Some(Flooding {
                flood: hive_transport_udp::flood::Flood::start(target, cfg.flood_rate, 1000)
                    .context("starting the flood")?,
                since: std::time::Instant::now(),
                cpu0: cpu_s(),
                rss_before: rss,
                rss_peak: rss,
                next_sample: t + 1.0,
            });
        }
        if let Some(f) = flooding.as_mut()
            && t >= f.next_sample
        {
            f.next_sample += 1.0;
            f.rss_peak = f.rss_peak.max(rss_mib());
        }
        // Join whoever is due.
        while seats.len() < cfg.viewers && seats.len() as f64 * gap <= t {
            let i = seats.len();
            let liar = lying_origin.as_ref().filter(|_| cfg.liars.contains(&i));
            let mut agent_cfg = AgentConfig {
                origin: Some(origin_url.clone()),
                tracker: Some(tracker_url.clone()),
                policy: cfg.policy,
                seed: cfg.seed,
                integrity: integrity.clone(),
                ..AgentConfig::default()
            };
            if lying_origin.is_some() {
                agent_cfg.resolve = vec![(ORIGIN_NAME.into(), origin_addr.ip())];
            }
            if let Some((_, ip)) = liar {
                agent_cfg.resolve = vec![(ORIGIN_NAME.into(), *ip)];
                agent_cfg.integrity = hive_core::integrity::IntegritySource::None;
            }
            let mut builder = Agent::builder().config(agent_cfg);
            if let Some(hook) = &cfg.agent_hook {
                builder = hook(seats.len(), builder).await;
            }
            let agent = builder.build().await.context("starting an agent")?;
            // The page plays the first honest viewer's agent.
            if let Some(w) = cfg
                .watch
                .as_ref()
                .filter(|w| liar.is_none() && !w.has_viewer())
            {
                let ladder = origin.live().config().ladder.iter();
                w.set_viewer(
                    agent.proxy_url(),
                    ladder.map(|r| r.bandwidth / 1000).collect(),
                );
            }
            let viewer = Arc::new(Mutex::new(None));
            let (own_stop, own_stop_rx) = tokio::sync::watch::channel(false);
            // A liar's player checks against what its origin serves.
            let (its_origin, its_counters) = match liar {
                Some((o, _)) => (o.clone(), liar_counters.clone()),
                None => (origin.clone(), counters.clone()),
            };
            players.push(tokio::spawn(player::play(
                client.clone(),
                agent.proxy_url(),
                its_origin,
                clock,
                its_counters,
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
            let p = snapshot(t, &seats, &origin, &counters);
            if let Some(w) = &cfg.watch {
                w.sample(&p, origin.stats().fragment_bytes);
            }
            progress(&p);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The run ends now: playback is accounted up to this instant, not while players wind down.
    let now = clock.now();
    let flood = flooding.map(|f| {
        let seconds = f.since.elapsed().as_secs_f64();
        let cpu = cpu_s() - f.cpu0;
        let rss_peak = f.rss_peak.max(rss_mib());
        let sent = f.flood.stop();
        (sent, seconds, cpu, f.rss_before, rss_peak)
    });
    let live_edge_s = std::time::SystemTime::now()
        .duration_since(origin.live().epoch())
        .unwrap_or_default()
        .as_secs_f64();
    // Each player as it stands now: a fragment that arrives while the players wind down must
    // not move a playhead (it read as 2 s less live delay) or a stall past the run's end.
    let players_at_end: Vec<Option<Player>> = seats
        .iter()
        .map(|s| {
            s.viewer.lock().as_ref().map(|v| {
                let mut p = v.player.lock();
                p.update(now);
                p.clone()
            })
        })
        .collect();
    // Players first, the origin and tracker once they are done: a player's request in flight
    // when the origin stopped failed, and counted as a player error that was not one.
    for s in &seats {
        let _ = s.stop.send(true);
    }
    for p in players {
        let _ = tokio::time::timeout(Duration::from_secs(20), p).await;
    }
    let _ = stop_tx.send(true);
    let wall = wall0.elapsed();
    let mut m = Metrics::default();
    let frag_s = origin.live().config().fragment.as_secs_f64();
    let mut stalled_viewers = Vec::new();
    let mut bad_fragments = 0;
    let mut bad_peers = 0;
    let mut bad_fragments_per_liar_max: f64 = 0.0;
    for (i, s) in seats.iter().enumerate() {
        let Some(agent) = &s.agent else {
            continue;
        };
        if cfg.liars.contains(&i) {
            continue;
        }
        let stats = agent.stats().swarm;
        bad_fragments += stats.bad_fragments;
        bad_peers += stats.bad_peers;
        if stats.bad_fragments > 0 {
            let per = stats.bad_fragments as f64 / stats.bad_peers.max(1) as f64;
            bad_fragments_per_liar_max = bad_fragments_per_liar_max.max(per);
        }
        if let Some(p) = &players_at_end[i] {
            m.absorb(&stats, p, now);
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
    let policy = cfg.policy.name();
    let report = SimReport::from_metrics(
        "demo",
        policy,
        cfg.viewers - cfg.liars.iter().filter(|&&l| l < cfg.viewers).count(),
        cfg.duration.as_secs_f64(),
        &m,
        0.0,
        wall,
    );
    let cpu = cpu_s() - cpu0;
    let flood = flood.map(|(sent, seconds, cpu, rss_before_mib, rss_peak_mib)| {
        let (victim_stall_s, victim_fragments) = players_at_end
            .first()
            .and_then(Option::as_ref)
            .map_or((0.0, 0), |p| (p.stalled.as_secs_f64(), p.fragments));
        FloodReport {
            sent,
            seconds,
            rate: sent as f64 / seconds.max(1e-9),
            rss_before_mib,
            rss_peak_mib,
            victim_stall_s,
            victim_fragments,
            cpu_cores: cpu / seconds.max(1e-9),
        }
    });
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
        bad_peers,
        liars: cfg.liars.len(),
        bad_fragments_per_liar_max,
        flood,
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
        offload: hive_sim::report::offload(origin_bytes, player_bytes),
        stalled_players,
        stall_s,
        per_rendition,
    }
}
