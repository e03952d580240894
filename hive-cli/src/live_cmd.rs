//! `hive demo`, `hive origin` and `hive agent`: the live system on real sockets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hive_cli::demo::{DemoConfig, DemoReport};

use crate::services_cmd::parse_duration;

/// `--policy`: a policy name (`PolicyKind`'s one spelling), and for `private-hierarchy` the
/// gateway site after a colon.
#[derive(Clone, Debug)]
pub(crate) struct PolicyArg {
    kind: hive_agent::PolicyKind,
    gateway_site: Option<String>,
}

fn parse_policy(s: &str) -> Result<PolicyArg, String> {
    let (name, site) = match s.split_once(':') {
        Some((name, site)) => (name, Some(site)),
        None => (s, None),
    };
    let kind: hive_agent::PolicyKind = name.parse().map_err(|e| format!("{e}"))?;
    match site {
        Some(site) if kind != hive_agent::PolicyKind::PrivateHierarchy || site.is_empty() => Err(
            format!("`{s}`: only private-hierarchy takes a gateway site (private-hierarchy:SITE)"),
        ),
        _ => Ok(PolicyArg {
            kind,
            gateway_site: site.map(str::to_string),
        }),
    }
}

/// One `--allow-origin` entry, checked as the agent will read it.
fn parse_allow_origin(s: &str) -> Result<String, String> {
    hive_agent::OriginAllowlist::new(None, &[s.to_string()]).map(|_| s.to_string())
}

/// Arguments of `hive demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Viewers: one agent and one simulated player each.
    #[arg(long, default_value_t = 30)]
    viewers: usize,
    /// How long to run (`120s`, `2m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Viewers join evenly over this span.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    join_over: Duration,
    /// Overlay policy of the agents: public-mesh, random-mesh, no-peer, private-hierarchy[:SITE].
    #[arg(long, default_value = "public-mesh", value_parser = parse_policy)]
    policy: PolicyArg,
    /// Seed of the agents' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where trusted fragment hashes come from: `publisher` (the origin serves lists signed
    /// with the demo's publisher key, agents verify every peer's bytes against them) or `none`
    /// (every peer trusted, as in a closed lab).
    #[arg(long, default_value = "publisher", value_parser = ["publisher", "none"])]
    integrity: String,
    /// Viewers that are consistent liars (spread over the joins): their origin's name resolves
    /// to a server of other bytes, and they serve those to peers with matching hashes. The
    /// figures are the honest viewers'; `corrupt_fragments` must stay 0.
    #[arg(long, default_value_t = 0)]
    liars: usize,
    /// Flood viewer 0's agent with this many handshake INITIALs a second from 1 000 loopback
    /// addresses, once every viewer has joined (the report's `flood` says what it cost).
    #[arg(long, default_value_t = 0, value_name = "RATE")]
    flood: u64,
    /// Print one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
    /// Where to serve the watch page: the first viewer's picture (hls.js through its agent)
    /// beside live charts of the swarm. Its URL is printed at the start.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    watch: SocketAddr,
    /// Serve no watch page.
    #[arg(long)]
    no_watch: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hive: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

pub(crate) fn demo(args: &DemoArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    let watch = if args.no_watch {
        None
    } else {
        let w = hive_cli::demo::watch::Watch::new();
        let listener = match rt.block_on(tokio::net::TcpListener::bind(args.watch)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "hive demo: cannot serve the watch page at {}: {e}",
                    args.watch
                );
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(a) => eprintln!("hive demo: watch one viewer at http://{a}/"),
            Err(e) => eprintln!("hive demo: the watch page's address: {e}"),
        }
        rt.spawn(hive_cli::demo::watch::serve(
            listener,
            w.clone(),
            std::future::pending(),
        ));
        Some(w)
    };
    let cfg = DemoConfig {
        watch,
        viewers: args.viewers,
        duration: args.duration,
        join_over: args.join_over.min(args.duration),
        policy: args.policy.kind,
        seed: args.seed,
        integrity: args.integrity != "none",
        liars: (0..args.liars.min(args.viewers))
            .map(|k| k * args.viewers / args.liars.max(1))
            .collect(),
        flood_rate: args.flood,
        ..DemoConfig::default()
    };
    eprintln!(
        "hive demo: origin, tracker and {} agents with simulated players on loopback for {:.0} s ({} policy)",
        cfg.viewers,
        cfg.duration.as_secs_f64(),
        args.policy.kind
    );
    let r = rt.block_on(hive_cli::demo::run(cfg, |p| {
        let mix: Vec<String> = p.per_rendition.iter().map(|n| n.to_string()).collect();
        eprintln!(
            "  t={:>4.0}s  viewers {:>4}  offload {:>6.2}%  stalled players {:>3} ({:.1} s)  renditions lo→hi {}",
            p.elapsed_s,
            p.viewers,
            p.offload * 100.0,
            p.stalled_players,
            p.stall_s,
            mix.join("/")
        );
    }));
    let report = match r {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hive demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("hive demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_report(&report);
    }
    if report.corrupt_fragments > 0 {
        eprintln!(
            "hive demo: {} fragments differed from the origin's bytes",
            report.corrupt_fragments
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_report(r: &DemoReport) {
    print!("{}", hive_sim::SimReport::table_header());
    print!("{}", r.report.table_row());
    println!(
        "origin: {} fragment bytes, {} playlist bytes; players: {} bytes; from peers: {} bytes",
        r.report.origin_bytes, r.origin_manifest_bytes, r.report.player_bytes, r.report.peer_bytes
    );
    println!(
        "corrupt fragments: {}; failed player requests: {}; CPU: {:.1} s = {:.2} cores for the whole process (origin, agents, players)",
        r.corrupt_fragments, r.player_errors, r.cpu_s, r.cpu_cores
    );
    if let Some(f) = &r.flood {
        println!(
            "flood at viewer 0: {} datagrams in {:.0} s ({:.0}/s); its player stalled {:.1} s over {} fragments; process memory {:.0} -> peak {:.0} MiB (+{:.0}); CPU {:.2} cores",
            f.sent,
            f.seconds,
            f.rate,
            f.victim_stall_s,
            f.victim_fragments,
            f.rss_before_mib,
            f.rss_peak_mib,
            f.rss_peak_mib - f.rss_before_mib,
            f.cpu_cores
        );
    }
    if r.liars > 0 || r.bad_fragments > 0 {
        println!(
            "liars: {}; bad fragments refused: {}; peers refused: {}; worst bad fragments per liar at one agent: {:.1}",
            r.liars, r.bad_fragments, r.bad_peers, r.bad_fragments_per_liar_max
        );
    }
}

/// Arguments of `hive origin`.
#[derive(Debug, Args)]
pub(crate) struct OriginArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Also serve this folder under /media/ (e.g. an HLS ladder made by ffmpeg).
    #[arg(long)]
    folder: Option<PathBuf>,
    /// Fragment duration of the live stream. The test card (real H.264/AAC) needs 2 s; any
    /// other duration serves synthetic, undecodable bytes of the right sizes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    fragment: Duration,
    /// The publisher's secret key (a file of 64 hex digits, as `hive sign --new-key` writes
    /// it): the live stream's manifests get signed integrity lists beside them.
    #[arg(long)]
    sign_key: Option<PathBuf>,
}

pub(crate) fn origin(args: &OriginArgs) -> ExitCode {
    use hive_services::origin::{LiveConfig, Origin, OriginConfig, serve};
    if let Some(f) = &args.folder
        && !f.is_dir()
    {
        eprintln!("hive origin: {} is not a folder", f.display());
        return ExitCode::from(2);
    }
    if args.fragment < Duration::from_millis(100) {
        eprintln!("hive origin: --fragment must be at least 100ms");
        return ExitCode::from(2);
    }
    let sign_key = match args.sign_key.as_deref().map(read_secret_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("hive origin: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    rt.block_on(async {
        let origin = Arc::new(Origin::new(OriginConfig {
            live: LiveConfig {
                fragment: args.fragment,
                ..LiveConfig::default()
            },
            folder: args.folder.clone(),
            sign_key,
        }));
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hive origin: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().unwrap_or(args.listen);
        eprintln!("hive origin: live HLS at http://{addr}/live/master.m3u8, DASH at http://{addr}/live/manifest.mpd");
        if args.folder.is_some() {
            eprintln!("hive origin: folder at http://{addr}/media/");
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match serve(listener, origin, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hive origin: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Arguments of `hive agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// Where the player-facing proxy listens.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Origin base URL (reverse-proxy mode); without it players ask for /<full origin URL>.
    /// Its host:port is the first allowed origin.
    #[arg(long)]
    origin: Option<String>,
    /// Another origin the agent may fetch from (repeatable): HOST (port 80 for http, 443 for
    /// https) or HOST:PORT. Manifests, the fragments they list and redirects may lead only to
    /// allowed origins; without --origin and --allow-origin the agent fetches nothing.
    #[arg(long = "allow-origin", value_name = "HOST[:PORT]", value_parser = parse_allow_origin)]
    allow_origin: Vec<String>,
    /// A host name the player reaches the proxy by (repeatable), beside its IP address and
    /// localhost: requests for any other name are refused (DNS-rebinding defence).
    #[arg(long = "proxy-name", value_name = "NAME")]
    proxy_name: Vec<String>,
    /// The registrar's public key (64 hex digits), pinned: required with a plain-HTTP
    /// --registrar (the key is not fetched in clear).
    #[arg(long)]
    registrar_key: Option<String>,
    /// A file whose first line is the registrar's enrollment secret.
    #[arg(long)]
    registrar_secret_file: Option<PathBuf>,
    /// Tracker base URL (e.g. http://127.0.0.1:7070): how the agent finds peers.
    #[arg(long)]
    tracker: Option<String>,
    /// Registrar base URL: the agent presents its tokens and refuses peers without one.
    #[arg(long)]
    registrar: Option<String>,
    /// Where the transport binds, UDP for both (use 0.0.0.0:PORT to share beyond this machine).
    #[arg(long, default_value = "127.0.0.1:0")]
    udp: SocketAddr,
    /// The transport peers are reached over: udp (Hive's) or quic (s2n-quic).
    #[arg(long, default_value = "udp")]
    transport: hive_agent::TransportKind,
    /// The congestion controller of every peer connection: newreno, cubic, ledbat, ledbat++ or
    /// dtl (DTL at p = 1, its priority then following each upload's urgency; dtl:P starts at P).
    #[arg(long, default_value = "dtl")]
    cc: hive_cc::Algorithm,
    /// The controller's priority (DTL's knob): `urgency` (the engine's: 1 while an upload is
    /// urgent, 0 ahead of need) or a fixed number from 0 (scavenger) to 1 (TCP-fair). Changed
    /// at run time with `PUT /hive/priority` on the proxy port.
    #[arg(long, default_value = "urgency")]
    priority: hive_agent::PriorityMode,
    /// Overlay policy: public-mesh, random-mesh, no-peer, private-hierarchy[:SITE].
    #[arg(long, default_value = "public-mesh", value_parser = parse_policy)]
    policy: PolicyArg,
    /// This agent's site (network segment), as the operator names it.
    #[arg(long)]
    site: Option<String>,
    /// This agent's AS number.
    #[arg(long)]
    asn: Option<u32>,
    /// Never upload to peers.
    #[arg(long)]
    consume_only: bool,
    /// This viewer's uplink, kbit/s: told to the tracker and to peers, it sizes the upload
    /// slots, and a viewer paces its uploads at 90% of it (so that they never fill the uplink's
    /// buffer and delay everything else it sends). Without it: 10 000 is advertised, and
    /// uploads are not paced.
    #[arg(long)]
    upload_kbps: Option<u32>,
    /// Do not pace uploads by `--upload-kbps` (it still sizes the upload slots and is told to
    /// peers): for a figure that is a share to offer rather than the uplink itself.
    #[arg(long)]
    no_upload_pacing: bool,
    /// The publisher's public key (64 hex digits, or @FILE): the agent fetches the signed
    /// integrity list beside each manifest and uses a peer's bytes only when they match it.
    #[arg(long)]
    publisher_key: Option<String>,
    /// `signed` (default): peers' bytes need a hash signed by the publisher key (without a
    /// key, every fragment comes from the origin); `none`: every peer is trusted, for a
    /// closed lab only.
    #[arg(long, default_value = "signed", value_parser = ["signed", "none"])]
    integrity: String,
    /// Threads that run the agent [default: one per core]; 1 runs it on one thread with no
    /// hand-offs between threads (the least CPU per agent: `hive lab` runs many on one host).
    #[arg(long)]
    threads: Option<usize>,
}

/// Reads a secret key file (64 hex digits).
pub(crate) fn read_secret_key(
    path: &std::path::Path,
) -> Result<hive_core::integrity::PublisherKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    hive_core::integrity::PublisherKey::from_hex(&text)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A public key given as 64 hex digits or `@FILE`.
pub(crate) fn read_public_key(arg: &str) -> Result<hive_core::integrity::PublicKey, String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key file {path}: {e}"))?,
        None => arg.to_string(),
    };
    hive_core::integrity::PublicKey::from_hex(&text).map_err(|e| format!("{arg}: {e}"))
}

pub(crate) fn agent(args: &AgentArgs) -> ExitCode {
    let registrar_secret = match &args.registrar_secret_file {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => Some(t.lines().next().unwrap_or("").trim().to_string()),
            Err(e) => {
                eprintln!("hive agent: cannot read {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let integrity = if args.integrity == "none" {
        hive_core::integrity::IntegritySource::None
    } else {
        match args
            .publisher_key
            .as_deref()
            .map(read_public_key)
            .transpose()
        {
            Ok(publisher) => hive_core::integrity::IntegritySource::Signed {
                publisher,
                service: None,
            },
            Err(e) => {
                eprintln!("hive agent: --publisher-key {e}");
                return ExitCode::from(2);
            }
        }
    };
    let rt = match args.threads {
        Some(0) => {
            eprintln!("hive agent: --threads must be at least 1");
            return ExitCode::from(2);
        }
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                eprintln!("hive: cannot start the runtime: {e}");
                ExitCode::FAILURE
            }),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .map_err(|e| {
                eprintln!("hive: cannot start the runtime: {e}");
                ExitCode::FAILURE
            }),
        None => runtime(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(c) => return c,
    };
    rt.block_on(async {
        let cfg = hive_agent::AgentConfig {
            listen: args.listen,
            origin: args.origin.clone(),
            allow_origins: args.allow_origin.clone(),
            proxy_names: args.proxy_name.clone(),
            registrar_key: args.registrar_key.clone(),
            registrar_secret,
            tracker: args.tracker.clone(),
            registrar: args.registrar.clone(),
            udp_listen: args.udp,
            transport: args.transport,
            cc: Some(args.cc),
            priority: args.priority,
            policy: args.policy.kind,
            gateway_site: args.policy.gateway_site.clone(),
            locality: hive_core::Locality {
                site: args.site.clone(),
                asn: args.asn,
                country: None,
            },
            role: if args.consume_only {
                hive_core::Role::ConsumeOnly
            } else {
                hive_core::Role::Peer
            },
            upload_kbps: args.upload_kbps.unwrap_or(10_000),
            integrity,
            swarm: hive_overlay::SwarmConfig {
                uplink_known: args.upload_kbps.is_some() && !args.no_upload_pacing,
                ..hive_agent::AgentConfig::default().swarm
            },
            ..hive_agent::AgentConfig::default()
        };
        let agent = match hive_agent::Agent::builder().config(cfg).build().await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("hive agent: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "hive agent {}: proxy at {} (metrics at /metrics, status at /status); Ctrl-C stops",
            agent.peer_id().short(),
            agent.proxy_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        agent.shutdown().await;
        ExitCode::SUCCESS
    })
}
