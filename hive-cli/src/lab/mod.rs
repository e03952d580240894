//! `hive lab`: the simulator's scenario on real agents. Every viewer is a real `hive agent`
//! process in its own network namespace; the namespaces are joined by a user-space router
//! that shapes the scenario's links — access links, VPN links, the gateway — with the
//! simulator's capacities and latencies ([`topology`], [`router`]); the origin and the tracker
//! run in the lab's own namespace behind them; each agent's player is the demo's real-time
//! simulated player, reaching its agent over an unshaped path. The report has `hive sim`'s
//! keys, and [`compare`] sets it beside the simulator's on the same scenario and seed.
//!
//! Measured, not modelled: offload at the origin (its fragment bytes against the players'),
//! playback at the players, and copies per fragment on each gateway and VPN link from the
//! bytes that crossed the shaped link itself ([`LabLink`]).
//!
//! Not modelled yet (the report says so by leaving them out): NAT (issue #21), churn, and
//! on-demand titles; a scenario with any of them is refused rather than run differently.

pub mod netns;
pub mod router;
pub mod topology;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hive_agent::PolicyKind;
use hive_core::time::{Clock, MonotonicClock};
use hive_overlay::SwarmStats;
use hive_services::origin::{LiveConfig, Origin, OriginConfig, Rendition};
use hive_services::tracker::{MemoryStore, Tracker, TrackerConfig};
use hive_sim::player::Player;
use hive_sim::report::Metrics;
use hive_sim::scenario::Scenario;
use hive_sim::{LinkCopies, SimReport};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::demo::player;
use router::{Router, RouterStats};
use topology::{ORIGIN_ADDR, TRACKER_ADDR, Topology};

/// The origin's port.
const ORIGIN_PORT: u16 = 8080;
/// The tracker's port.
const TRACKER_PORT: u16 = 7070;
/// Each agent's proxy port (on its own address).
const AGENT_PORT: u16 = 8081;
/// Each agent's transport port (on its own address).
const UDP_PORT: u16 = 4433;
/// The tracker's TTL: agents re-announce every third of it, 15 s, as the simulator's agents
/// do (`ANNOUNCE_EVERY`).
const TRACKER_TTL: Duration = Duration::from_secs(45);
/// The simulator's viewers join from 4 s on (`hive_sim`'s plan), the lab's too.
const FIRST_JOIN: Duration = Duration::from_secs(4);

/// Settings of a lab run.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// What runs: the simulator's scenario (a named one or a network file).
    pub scenario: Scenario,
    /// Every agent's policy.
    pub policy: PolicyKind,
    /// The `hive` binary the agents run.
    pub exe: PathBuf,
    /// Where each agent's log goes (`agent-<i>.log`).
    pub logs: PathBuf,
    /// The agents' transport (`udp` or `quic`).
    pub transport: String,
    /// Every agent's congestion controller (`hive agent --cc`).
    pub cc: hive_cc::Algorithm,
    /// Every agent's controller priority (`hive agent --priority`: `urgency` or 0 to 1).
    pub priority: hive_agent::PriorityMode,
    /// Whether the agents pace their uploads by their uplink (`hive agent --no-upload-pacing`
    /// when not).
    pub upload_pacing: bool,
    /// Set (by a Ctrl-C handler, say) to end the run early: the agents are stopped and the
    /// namespaces removed as at the end, and the report covers the time run.
    pub interrupt: Arc<std::sync::atomic::AtomicBool>,
}

/// Copies per fragment on one gateway or VPN link, measured on the shaped link.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LabLink {
    /// The link, as the simulator names it.
    pub link: String,
    /// Distinct fragments the players behind it played (all bitrates).
    pub fragments: u64,
    /// Their bytes.
    pub distinct_bytes: u64,
    /// Fragment bytes that crossed it, as the agents count them: the origin's fragments to
    /// the agents behind it (each one's `origin_bytes`, all of which cross it) plus the
    /// fragment bytes they received from neighbours on the far side of it.
    pub fragment_bytes: u64,
    /// `fragment_bytes / distinct_bytes`: the simulator's `copies`, over all bitrates.
    pub copies: f64,
    /// The same measured on the shaped link: the origin's fragments to the agents behind it
    /// plus every UDP payload byte the link carried (peers' transfers with the transport's
    /// framing, retransmissions and control messages), per distinct fragment byte.
    pub copies_wire: f64,
    /// Every IP byte it carried (playlists, announces, headers, acknowledgements too) per
    /// distinct fragment byte: what the link's owner sees.
    pub copies_raw: f64,
    /// Packets its buffer dropped.
    pub dropped: u64,
}

/// The outcome of a lab run: the simulator's report (same keys) and what only the lab has.
#[derive(Clone, Debug, Serialize)]
pub struct LabReport {
    /// The figures, with the keys of DESIGN.md. `link_copies` holds one row per gateway or VPN
    /// link with `bitrate_kbps: 0`: all bitrates together (an encrypted link does not say
    /// which bitrate a packet carries).
    #[serde(flatten)]
    pub report: SimReport,
    /// Copies on each gateway and VPN link, worst first.
    pub links: Vec<LabLink>,
    /// Fragments a player received that differed from the origin's (must be 0).
    pub corrupt_fragments: u64,
    /// Fragment requests that failed at a player.
    pub player_errors: u64,
    /// Agents started, and those that exited or never answered before the end.
    pub agents: usize,
    /// See `agents`.
    pub agents_failed: usize,
    /// Packets the router delivered, could not route, or dropped for want of room.
    pub packets_delivered: u64,
    /// See `packets_delivered`.
    pub packets_unroutable: u64,
    /// See `packets_delivered`.
    pub packets_overflow: u64,
    /// CPU cores the lab used on average: its own process (origin, tracker, router, players)
    /// and the agents.
    pub cpu_cores: f64,
    /// Where the agents' logs and final `/status` answers are.
    pub logs: String,
    /// Whether the run was interrupted before its end (its figures cover `wall_s`).
    pub interrupted: bool,
}

/// What the progress callback sees every five seconds.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Agents started.
    pub agents: usize,
    /// Players playing.
    pub playing: usize,
    /// Offload so far.
    pub offload: f64,
    /// Players that stalled at least once.
    pub stalled_players: usize,
    /// Mbit/s into the gateway (or from the internet) over the last interval.
    pub gateway_mbps: f64,
}

/// One viewer of the lab.
struct Seat {
    child: tokio::process::Child,
    stop: tokio::sync::watch::Sender<bool>,
    viewer: Arc<Mutex<Option<player::Viewer>>>,
    player: tokio::task::JoinHandle<()>,
}

fn cpu_s(who: nix::sys::resource::UsageWho) -> f64 {
    nix::sys::resource::getrusage(who)
        .map(|u| {
            let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

/// The policy as `hive agent --policy` takes it (with the gateway site for the hierarchy).
fn policy_arg(s: &Scenario, p: PolicyKind) -> String {
    if p == PolicyKind::PrivateHierarchy && s.enterprise() {
        format!("{}:{}", p.name(), s.sites[0].name)
    } else {
        p.name().to_string()
    }
}

/// An agent's counters, from its `/status`.
fn swarm_stats(status: &serde_json::Value) -> SwarmStats {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let fetches = &status["origin_fetches"];
    SwarmStats {
        origin_bytes: n(&status["origin_bytes"]),
        peer_bytes: n(&status["peer_bytes"]),
        player_bytes: n(&status["player_bytes"]),
        uploaded_bytes: n(&status["uploaded_bytes"]),
        deadline_misses: n(&status["deadline_misses"]),
        peer_fallbacks: n(&status["peer_fallbacks"]),
        origin_by_policy: n(&fetches["policy"]),
        origin_last_call: n(&fetches["last_call"]),
        origin_peer_unusable: n(&fetches["peer_unusable"]),
        bad_fragments: n(&status["bad_fragments"]),
        bad_peers: n(&status["bad_peers"]),
        ..SwarmStats::default()
    }
}

/// Refuses what the lab does not model, rather than running it differently from the
/// simulator.
pub fn check(s: &Scenario) -> Result<()> {
    if s.vod.is_some() {
        bail!("hive lab runs live scenarios; on demand is not in the lab yet");
    }
    if s.nat_fraction > 0.0 {
        bail!(
            "hive lab has no NATs yet (issue #21): the scenario puts {:.0}% of viewers behind one",
            s.nat_fraction * 100.0
        );
    }
    if s.churn_per_min > 0.0 {
        bail!("hive lab has no churn yet: the scenario's churn_per_min must be 0");
    }
    Ok(())
}

/// Runs the lab; `progress` is called every five seconds.
pub async fn run(cfg: LabConfig, mut progress: impl FnMut(&Progress)) -> Result<LabReport> {
    let s = &cfg.scenario;
    check(s)?;
    let wall0 = std::time::Instant::now();
    let cpu0 = cpu_s(nix::sys::resource::UsageWho::RUSAGE_SELF);
    let topo = Topology::new(s)?;
    std::fs::create_dir_all(&cfg.logs)
        .with_context(|| format!("creating {}", cfg.logs.display()))?;
    let t2 = topo.clone();
    let (ports, hosts) = tokio::task::spawn_blocking(move || netns::make(&t2))
        .await
        .context("setting up the namespaces")??;
    let router = Router::start(topo.clone(), ports, s.seed).context("starting the router")?;

    // The origin, serving the scenario's ladder, and signing its fragments' hashes.
    let publisher = hive_core::integrity::PublisherKey::from_seed(
        hive_core::ContentHash::of(format!("hive lab publisher {}", s.seed).as_bytes()).0,
    );
    let publisher_hex = publisher.public().to_hex();
    let ladder = s
        .ladder_bps
        .iter()
        .map(|&b| Rendition {
            bandwidth: b,
            width: 640,
            height: 360,
        })
        .collect();
    let origin = Arc::new(Origin::new(OriginConfig {
        live: LiveConfig {
            ladder,
            fragment: s.fragment,
            ..LiveConfig::default()
        },
        sign_key: Some(publisher),
        ..OriginConfig::default()
    }));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let listener = tokio::net::TcpListener::bind((ORIGIN_ADDR, ORIGIN_PORT))
        .await
        .context("binding the origin")?;
    let mut origin_stop = stop_rx.clone();
    tokio::spawn(hive_services::origin::serve(
        listener,
        origin.clone(),
        async move {
            let _ = origin_stop.changed().await;
        },
    ));
    let tracker = Arc::new(Tracker::new(
        TrackerConfig {
            ttl: TRACKER_TTL,
            supernodes: (cfg.policy == PolicyKind::PrivateHierarchy).then(|| {
                hive_core::overlay::SupernodePlan {
                    gateway_site: s.enterprise().then(|| s.sites[0].name.clone()),
                    ..Default::default()
                }
            }),
            ..TrackerConfig::default()
        },
        Arc::new(MemoryStore::new()),
    ));
    let listener = tokio::net::TcpListener::bind((TRACKER_ADDR, TRACKER_PORT))
        .await
        .context("binding the tracker")?;
    let mut tracker_stop = stop_rx.clone();
    tokio::spawn(hive_services::tracker::serve(
        listener,
        tracker,
        async move {
            let _ = tracker_stop.changed().await;
        },
    ));
    let origin_url = format!("http://{ORIGIN_ADDR}:{ORIGIN_PORT}");
    let tracker_url = format!("http://{TRACKER_ADDR}:{TRACKER_PORT}");
    let policy = policy_arg(s, cfg.policy);

    // Joins: as the simulator's, from 4 s on, uniformly over `join_over`, in a seeded order.
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x1ab70);
    let mut joins: Vec<(f64, usize)> = (0..topo.viewers.len())
        .map(|v| {
            let at = FIRST_JOIN.as_secs_f64() + s.join_over.as_secs_f64() * rng.random::<f64>();
            (at, v)
        })
        .collect();
    joins.sort_by(|a, b| a.0.total_cmp(&b.0));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2)
        .build()
        .context("HTTP client")?;
    let counters = Arc::new(player::Shared::default());
    let clock = MonotonicClock::new();
    let mut seats: HashMap<usize, Seat> = HashMap::new();
    let end = s.duration.as_secs_f64();
    let mut next_join = 0;
    let mut next_report = 5.0;
    let gateway_link = topo
        .links
        .iter()
        .position(|l| l.name == "gateway:down")
        .or_else(|| topo.links.iter().position(|l| l.name == "internet"));
    let mut last_gateway_bytes = 0u64;
    loop {
        let t = wall0.elapsed().as_secs_f64();
        while let Some(&(at, v)) = joins.get(next_join) {
            if at > t {
                break;
            }
            next_join += 1;
            let spec = &topo.viewers[v];
            let site = &s.sites[spec.site];
            let log = std::fs::File::create(cfg.logs.join(format!("agent-{v}.log")))
                .context("creating an agent's log")?;
            let mut cmd = hosts.command(v, &cfg.exe);
            cmd.arg("agent")
                .args(["--listen", &format!("{}:{AGENT_PORT}", spec.addr)])
                .args(["--udp", &format!("{}:{UDP_PORT}", spec.addr)])
                .args(["--origin", &origin_url, "--tracker", &tracker_url])
                .args(["--policy", &policy, "--site", &site.name])
                .args(["--asn", &site.asn.to_string()])
                .args(["--upload-kbps", &(spec.up_bps / 1000).max(1).to_string()])
                .args(["--publisher-key", &publisher_hex])
                .args(["--transport", &cfg.transport])
                .args(["--cc", &cfg.cc.to_string()])
                .args(["--priority", &cfg.priority.to_string()])
                .args((!cfg.upload_pacing).then_some("--no-upload-pacing"))
                // One thread each: many agents share the host's cores, and hand-offs between
                // threads (wake-ups, futexes) cost more than they give an agent.
                .args(["--threads", "1"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log);
            let child = tokio::process::Command::from(cmd)
                .kill_on_drop(true)
                .spawn()
                .context("starting an agent (`ip netns exec`)")?;
            let viewer = Arc::new(Mutex::new(None));
            let (own_stop, own_stop_rx) = tokio::sync::watch::channel(false);
            let proxy = format!("http://{}:{AGENT_PORT}", spec.addr);
            let player = tokio::spawn(play_when_ready(
                client.clone(),
                proxy,
                origin.clone(),
                clock,
                counters.clone(),
                own_stop_rx,
                viewer.clone(),
            ));
            seats.insert(
                v,
                Seat {
                    child,
                    stop: own_stop,
                    viewer,
                    player,
                },
            );
        }
        if t >= end || cfg.interrupt.load(Ordering::Relaxed) {
            break;
        }
        if t >= next_report {
            next_report += 5.0;
            let stats = router.stats();
            let gw = gateway_link
                .and_then(|l| stats.links.get(l))
                .map_or(0, |c| c.ip_bytes);
            let gateway_mbps = (gw - last_gateway_bytes.min(gw)) as f64 * 8.0 / 5.0 / 1e6;
            last_gateway_bytes = gw;
            progress(&snapshot(t, &seats, &origin, &counters, gateway_mbps));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The run ends now: playback is accounted up to this instant.
    let now = clock.now();
    let live_edge_s = std::time::SystemTime::now()
        .duration_since(origin.live().epoch())
        .unwrap_or_default()
        .as_secs_f64();
    // Each player as it stands now: a fragment that arrives while the agents' counters are
    // read and the players wind down must not move a playhead (it read as 2 s less live
    // delay) or a stall past the run's end.
    let players_at_end: HashMap<usize, Player> = seats
        .iter()
        .filter_map(|(&v, seat)| {
            let viewer = seat.viewer.lock();
            let mut p = viewer.as_ref()?.player.lock();
            p.update(now);
            Some((v, p.clone()))
        })
        .collect();
    // Every agent's counters, before anything stops.
    let mut statuses: HashMap<usize, serde_json::Value> = HashMap::new();
    let mut asks = tokio::task::JoinSet::new();
    for &v in seats.keys() {
        let c = client.clone();
        let url = format!("http://{}:{AGENT_PORT}/status", topo.viewers[v].addr);
        asks.spawn(async move {
            let r = c.get(url).timeout(Duration::from_secs(5)).send().await;
            let j = match r {
                Ok(r) => r.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            (v, j)
        });
    }
    while let Some(r) = asks.join_next().await {
        if let Ok((v, Some(j))) = r {
            statuses.insert(v, j);
        }
    }
    // Kept beside the logs, so a run can be read agent by agent afterwards.
    for (v, j) in &statuses {
        let path = cfg.logs.join(format!("agent-{v}.status.json"));
        if let Ok(text) = serde_json::to_string_pretty(j) {
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("hive lab: writing {}: {e}", path.display());
            }
        }
    }
    // Players first, then the agents (a polite interrupt, then a kill), then the services.
    for seat in seats.values() {
        let _ = seat.stop.send(true);
    }
    for seat in seats.values_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut seat.player).await;
    }
    for seat in seats.values() {
        if let Some(pid) = seat.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
    }
    let mut agents_failed = 0;
    for (v, seat) in seats.iter_mut() {
        if !statuses.contains_key(v) {
            agents_failed += 1;
        }
        if tokio::time::timeout(Duration::from_secs(10), seat.child.wait())
            .await
            .is_err()
        {
            let _ = seat.child.kill().await;
        }
    }
    let _ = stop_tx.send(true);
    let router_stats = router.stop();
    drop(hosts);
    let wall = wall0.elapsed();
    let cpu = cpu_s(nix::sys::resource::UsageWho::RUSAGE_SELF) - cpu0
        + cpu_s(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);

    // The figures.
    let mut m = Metrics::default();
    let frag_s = s.fragment.as_secs_f64();
    let mut received: HashMap<usize, Vec<(usize, u64)>> = HashMap::new();
    for (&v, seat) in &seats {
        let stats = statuses.get(&v).map(swarm_stats).unwrap_or_default();
        if let (Some(viewer), Some(p)) = (seat.viewer.lock().as_ref(), players_at_end.get(&v)) {
            m.absorb(&stats, p, now);
            if p.started.is_some() {
                let media = (p.playhead_seq + 1) as f64 * frag_s - p.buffer();
                m.live_delays.push((live_edge_s - media).max(0.0));
            }
            received.insert(v, viewer.received.lock().clone());
        }
    }
    m.origin_bytes = origin.stats().fragment_bytes;
    m.player_bytes = counters.player_bytes.load(Ordering::Relaxed);
    let links = link_copies(&topo, &router_stats, &received, &statuses, &origin);
    let max_link_copies = links.iter().map(|l| l.copies).fold(0.0, f64::max);
    let mut report = SimReport::from_metrics(
        &s.name,
        cfg.policy.name(),
        topo.viewers.len(),
        s.duration.as_secs_f64(),
        &m,
        max_link_copies,
        wall,
    );
    report.link_copies = links
        .iter()
        .map(|l| LinkCopies {
            link: l.link.clone(),
            bitrate_kbps: 0,
            fragments: l.fragments,
            copies: l.copies,
        })
        .collect();
    Ok(LabReport {
        report,
        links,
        corrupt_fragments: counters.corrupt.load(Ordering::Relaxed),
        player_errors: counters.errors.load(Ordering::Relaxed),
        agents: seats.len(),
        agents_failed,
        packets_delivered: router_stats.delivered,
        packets_unroutable: router_stats.unroutable,
        packets_overflow: router_stats.overflow,
        cpu_cores: cpu / wall.as_secs_f64().max(1e-9),
        logs: cfg.logs.display().to_string(),
        interrupted: cfg.interrupt.load(Ordering::Relaxed),
    })
}

/// Waits for the agent's proxy to answer (its process is starting in its namespace), then
/// plays through it until `stop`.
async fn play_when_ready(
    client: reqwest::Client,
    proxy: String,
    origin: Arc<Origin>,
    clock: MonotonicClock,
    counters: Arc<player::Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
    viewer: Arc<Mutex<Option<player::Viewer>>>,
) {
    let status = format!("{proxy}/status");
    for _ in 0..300 {
        if *stop.borrow() {
            return;
        }
        let r = client
            .get(&status)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            player::play(client, proxy, origin, clock, counters, stop, viewer).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    counters.errors.fetch_add(1, Ordering::Relaxed);
}

/// Copies per fragment on each counted link (gateway and VPN, down).
fn link_copies(
    topo: &Topology,
    stats: &RouterStats,
    received: &HashMap<usize, Vec<(usize, u64)>>,
    statuses: &HashMap<usize, serde_json::Value>,
    origin: &Origin,
) -> Vec<LabLink> {
    let origin_by_viewer: HashMap<usize, u64> = statuses
        .iter()
        .map(|(&v, j)| (v, swarm_stats(j).origin_bytes))
        .collect();
    let viewer_of: HashMap<&str, usize> = statuses
        .iter()
        .filter_map(|(&v, j)| j["peer"].as_str().map(|p| (p, v)))
        .collect();
    // Fragment bytes each agent received from each other agent: (from, to) -> bytes.
    let mut pair_bytes: Vec<(usize, usize, u64)> = Vec::new();
    for (&to, j) in statuses {
        for swarm in j["swarms"].as_array().into_iter().flatten() {
            for n in swarm["neighbours"].as_array().into_iter().flatten() {
                if let (Some(&from), Some(b)) = (
                    n["peer"].as_str().and_then(|p| viewer_of.get(p)),
                    n["bytes_from"].as_u64(),
                ) {
                    pair_bytes.push((from, to, b));
                }
            }
        }
    }
    let mut sizes: HashMap<(usize, u64), u64> = HashMap::new();
    let mut out: Vec<LabLink> = topo
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| l.counted)
        .map(|(l, spec)| {
            let behind = topo.viewers_behind(l);
            let distinct: BTreeSet<(usize, u64)> = behind
                .iter()
                .filter_map(|v| received.get(v))
                .flatten()
                .copied()
                .collect();
            let distinct_bytes: u64 = distinct
                .iter()
                .map(|&(track, seq)| {
                    *sizes
                        .entry((track, seq))
                        .or_insert_with(|| origin.live().fragment(track, seq).len() as u64)
                })
                .sum();
            let c = stats.links.get(l).cloned().unwrap_or_default();
            let from_origin: u64 = behind.iter().filter_map(|v| origin_by_viewer.get(v)).sum();
            let inside: BTreeSet<usize> = behind.iter().copied().collect();
            let across: u64 = pair_bytes
                .iter()
                .filter(|(from, to, _)| inside.contains(to) && !inside.contains(from))
                .map(|(_, _, b)| b)
                .sum();
            let fragment_bytes = from_origin + across;
            let per = |b: u64| {
                if distinct_bytes == 0 {
                    0.0
                } else {
                    b as f64 / distinct_bytes as f64
                }
            };
            LabLink {
                link: spec.name.clone(),
                fragments: distinct.len() as u64,
                distinct_bytes,
                fragment_bytes,
                copies: per(fragment_bytes),
                copies_wire: per(from_origin + c.udp_payload_bytes),
                copies_raw: per(c.ip_bytes),
                dropped: c.dropped,
            }
        })
        .collect();
    out.sort_by(|a, b| b.copies.total_cmp(&a.copies).then(a.link.cmp(&b.link)));
    out
}

fn snapshot(
    t: f64,
    seats: &HashMap<usize, Seat>,
    origin: &Origin,
    counters: &player::Shared,
    gateway_mbps: f64,
) -> Progress {
    let player_bytes = counters.player_bytes.load(Ordering::Relaxed);
    let origin_bytes = origin.stats().fragment_bytes;
    let (mut playing, mut stalled_players) = (0, 0);
    for seat in seats.values() {
        if let Some(v) = seat.viewer.lock().as_ref() {
            let p = v.player.lock();
            playing += usize::from(p.started.is_some());
            stalled_players += usize::from(!p.stalled.is_zero());
        }
    }
    Progress {
        elapsed_s: t,
        agents: seats.len(),
        playing,
        offload: hive_sim::report::offload(origin_bytes, player_bytes),
        stalled_players,
        gateway_mbps,
    }
}

/// The lab's figures against the simulator's for the same scenario and seed: the issue's
/// fidelity targets, each with its measured difference.
#[derive(Clone, Debug, Serialize)]
pub struct Fidelity {
    /// Offload difference, percentage points (lab − sim).
    pub offload_pp: f64,
    /// Rebuffer ratio difference, percentage points.
    pub rebuffer_pp: f64,
    /// Start-up p50 difference, ms.
    pub startup_p50_ms: f64,
    /// Per gateway or VPN link: the lab's copies, the simulator's (over all bitrates, weighted
    /// by their bytes), and the difference.
    pub links: Vec<LinkFidelity>,
    /// Whether every target is met: offload within 2 pp, rebuffering within 0.2 pp, start-up
    /// p50 within 200 ms, every link's copies within 0.1.
    pub pass: bool,
}

/// One link's copies in the lab and in the simulator.
#[derive(Clone, Debug, Serialize)]
pub struct LinkFidelity {
    /// The link.
    pub link: String,
    /// The lab's copies.
    pub lab: f64,
    /// The simulator's.
    pub sim: f64,
}

/// The simulator's copies on `link` over all bitrates: each bitrate's copies weighted by the
/// bytes of its distinct fragments (fragments × bitrate).
fn sim_copies(sim: &SimReport, link: &str) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for c in sim.link_copies.iter().filter(|c| c.link == link) {
        let w = c.fragments as f64 * c.bitrate_kbps as f64;
        num += c.copies * w;
        den += w;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// Compares a lab run with the simulator's run of the same scenario.
pub fn compare(lab: &LabReport, sim: &SimReport) -> Fidelity {
    let r = &lab.report;
    let offload_pp = (r.offload - sim.offload) * 100.0;
    let rebuffer_pp = (r.rebuffer_ratio - sim.rebuffer_ratio) * 100.0;
    let startup_p50_ms = (r.startup_s_p50 - sim.startup_s_p50) * 1000.0;
    let links: Vec<LinkFidelity> = lab
        .links
        .iter()
        .map(|l| LinkFidelity {
            link: l.link.clone(),
            lab: l.copies,
            sim: sim_copies(sim, &l.link),
        })
        .collect();
    let pass = offload_pp.abs() <= 2.0
        && rebuffer_pp.abs() <= 0.2
        && startup_p50_ms.abs() <= 200.0
        && links.iter().all(|l| (l.lab - l.sim).abs() <= 0.1);
    Fidelity {
        offload_pp,
        rebuffer_pp,
        startup_p50_ms,
        links,
        pass,
    }
}
