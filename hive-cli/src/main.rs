//! The `hive` command-line tool: one subcommand per job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// mimalloc: the simulator allocates per message on every core, and glibc's malloc cost it
// 12-40% (wan-6000@0.25, side by side); the agent and services are allocation-heavy too.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "quic")]
mod bench;
mod bench_tracker;
mod cc_arena;
#[cfg(target_os = "linux")]
mod lab_cmd;
mod live_cmd;
mod manifest_cmd;
mod services_cmd;
mod sign_cmd;
mod sim_cmd;
mod sim_plot;

/// Hive: a software CDN for adaptive HTTP video.
#[derive(Debug, Parser)]
#[command(name = "hive", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an origin, a tracker and N agents with simulated players on loopback, end to end;
    /// print the QoE table (or --json).
    Demo(live_cmd::DemoArgs),
    /// Run the deterministic swarm simulator on a named scenario or on your own network
    /// (--network FILE).
    Sim(SimArgs),
    /// Run a scenario on real agents: one `hive agent` per viewer in its own network
    /// namespace, the scenario's links shaped in user space, beside `hive sim`'s prediction
    /// (needs root).
    #[cfg(target_os = "linux")]
    Lab(lab_cmd::LabArgs),
    /// Race congestion controllers through a modelled bottleneck link.
    CcArena(CcArenaArgs),
    /// Run one agent between a player and an origin.
    Agent(live_cmd::AgentArgs),
    /// Run a tracker: HTTP/JSON announces, nearest peers first.
    Tracker(TrackerArgs),
    /// Run a registrar that signs admission tokens.
    Registrar(RegistrarArgs),
    /// Serve a live origin: a test card (real H.264/AAC MPEG-TS) over HLS and DASH (and
    /// optionally a folder of real media).
    Origin(live_cmd::OriginArgs),
    /// Inspect manifests (HLS, DASH, Smooth Streaming, HDS).
    Manifest(ManifestArgs),
    /// Sign the fragments' hashes of the playlists in a folder (`<playlist>.hive-integrity`
    /// beside each), once or --watch; make or print keys.
    Sign(sign_cmd::SignArgs),
    /// Run a hash service: signed hash lists for origins that cannot be changed.
    HashService(sign_cmd::HashServiceArgs),
    /// Benchmarks: transports (needs the `quic` feature) and the tracker.
    Bench(BenchArgs),
}

/// Arguments of `hive bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) command: BenchCommand,
}

/// `hive bench` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Move N bytes over loopback with Hive's UDP transport, kernel TCP, s2n-quic and Hive's QUIC
    /// transport (s2n-quic's Cubic and each hive-cc controller inside); report Gbit/s, CPU
    /// seconds per GiB (whole process, both ends) and handshake time of each.
    Transport(BenchTransportArgs),
    /// Announces per second (and latency) against `hive tracker` started in a second process,
    /// in memory or on Redis.
    Tracker(BenchTrackerArgs),
}

/// Arguments of `hive bench tracker`.
#[derive(Debug, Args)]
pub(crate) struct BenchTrackerArgs {
    /// Run the tracker on Redis at this URL (`redis://127.0.0.1:6379/`), or `auto` to start a
    /// private redis-server on a free port for the run. Without it: the in-memory store.
    #[arg(long)]
    pub(crate) redis: Option<String>,
    /// Measured announces (after a warm-up that announces every peer once).
    #[arg(long, default_value_t = 200_000)]
    pub(crate) announces: u64,
    /// Concurrent requests (about as many keep-alive connections).
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: u64,
    /// Distinct peers.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) peers: u64,
    /// Distinct contents (swarms); peers are spread evenly over them.
    #[arg(long, default_value_t = 500)]
    pub(crate) contents: u64,
    /// Peers asked for per announce.
    #[arg(long, default_value_t = 30)]
    pub(crate) want: usize,
    /// Worker threads of this load generator.
    #[arg(long, default_value_t = 2)]
    pub(crate) client_threads: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Arguments of `hive tracker`.
#[derive(Debug, Args)]
pub(crate) struct TrackerArgs {
    /// Address to listen on (port 0: any free port; the chosen address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub(crate) listen: String,
    /// Keep swarms in Redis at this URL (`redis://host:port/db`) instead of in memory.
    #[arg(long)]
    pub(crate) redis: Option<String>,
    /// How long an announce keeps a peer listed (agents re-announce every third of it).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(crate) ttl: std::time::Duration,
    /// The most peers in one reply.
    #[arg(long, default_value_t = 50)]
    pub(crate) max_reply: usize,
    /// Address ranges to sites and ASes: lines `10.1.0.0/16 site=paris asn=64500`, or JSON.
    #[arg(long)]
    pub(crate) localities: Option<PathBuf>,
    /// Require registrar tokens signed by this Ed25519 public key (64 hex digits, as `hive
    /// registrar` prints it).
    #[arg(long)]
    pub(crate) registrar_key: Option<String>,
    /// Promote agents to supernodes, at least this many per site (what the `hierarchy` policy
    /// needs: sites come from --localities or the agents' own). Off unless this or
    /// --gateway-site is given: agents then keep the role they announce.
    #[arg(long)]
    pub(crate) supernodes_per_site: Option<usize>,
    /// The site holding the internet gateway: it gets --supernodes-at-gateway (turns promotion
    /// on, two per other site unless --supernodes-per-site says otherwise).
    #[arg(long)]
    pub(crate) gateway_site: Option<String>,
    /// With promotion: supernodes at the gateway site, at least.
    #[arg(long, default_value_t = 4)]
    pub(crate) supernodes_at_gateway: usize,
    /// With promotion: one more supernode per this many live agents of a site (0: none).
    #[arg(long, default_value_t = 20)]
    pub(crate) peers_per_supernode: usize,
    /// Believe this agent (its peer id, 64 hex digits) when it announces itself a supernode or
    /// seeder (the operator's own boxes); repeat for more. Others are listed as ordinary peers
    /// unless the tracker promoted them.
    #[arg(long = "trust-role", value_name = "PEER_ID")]
    pub(crate) trust_role: Vec<String>,
    /// Believe every agent's announced role (a closed lab where every agent is yours).
    #[arg(long, conflicts_with = "trust_role")]
    pub(crate) trust_declared_roles: bool,
    /// Run a hash service inside the tracker (`/v1/integrity`), signing with the secret key in
    /// this file (`hive sign --new-key FILE`).
    #[arg(long, value_name = "FILE", requires = "hash_allow_origin")]
    pub(crate) hash_key: Option<PathBuf>,
    /// With --hash-key: an origin (`host:port`) the hash service may fetch from; repeat for more.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) hash_allow_origin: Vec<String>,
}

/// Arguments of `hive registrar`.
#[derive(Debug, Args)]
pub(crate) struct RegistrarArgs {
    /// Address to listen on (port 0: any free port; the chosen address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7071")]
    pub(crate) listen: String,
    /// The signing key: 64 hex digits in this file, made (mode 0600) when the file does not
    /// exist. Without it, a fresh key for this run only.
    #[arg(long)]
    pub(crate) secret_file: Option<PathBuf>,
    /// How long an issued token is valid.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub(crate) validity: std::time::Duration,
    /// Issue tokens only to clients presenting the secret in this file (its first line) in
    /// the `x-hive-enroll` header; without it, anyone may enroll.
    #[arg(long)]
    pub(crate) enroll_secret_file: Option<PathBuf>,
    /// Issue tokens only to clients whose address is in this range (CIDR, e.g. `10.0.0.0/8`;
    /// repeat for several). With `--enroll-secret-file` too, a client needs both.
    #[arg(long = "enroll-range", value_name = "CIDR")]
    pub(crate) enroll_ranges: Vec<ipnet::IpNet>,
}

use services_cmd::parse_duration;

/// Arguments of `hive bench transport`.
#[derive(Debug, Args)]
pub(crate) struct BenchTransportArgs {
    /// Bytes to move per transport: a number, or with a binary unit (`256MiB`, `1GiB`).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    pub(crate) bytes: u64,
    /// Print one JSON object (bytes, transports: [{name, gbit_s, cpu_s_per_gib, handshake_ms}],
    /// wall_s) instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Race these hive-cc controllers (comma-separated: `cubic,ledbat,ledbat++,dtl:0,dtl:1`)
    /// over both of Hive's transports: a `udp-ALGO` and a `quic-ALGO` row each, instead of the
    /// `quic-*` rows of every controller (Hive's UDP transport otherwise runs with its default
    /// controller only).
    #[arg(long, value_delimiter = ',')]
    pub(crate) cc: Vec<String>,
}

#[cfg(feature = "quic")]
use bench::parse_bytes;

#[cfg(not(feature = "quic"))]
fn parse_bytes(s: &str) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

/// Arguments of `hive cc-arena`.
#[derive(Debug, Args)]
pub(crate) struct CcArenaArgs {
    /// A named scenario (`--list` shows them), or `all`.
    #[arg(long, short, default_value = "solo")]
    pub(crate) scenario: String,
    /// Describe your own flows instead: `ALGO[/RTT][@START[-STOP]][!AT=P...]`, comma-separated,
    /// e.g. `newreno,ledbat@5s,dtl:0!30s=2`.
    #[arg(long)]
    pub(crate) flows: Option<String>,
    /// Link parameters: `rate=10mbit,rtt=40ms,buffer=250ms,loss=0.01,seed=1` (any subset).
    #[arg(long)]
    pub(crate) link: Option<String>,
    /// Simulated seconds per run.
    #[arg(long, default_value_t = 120.0)]
    pub(crate) duration: f64,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Draw throughput and queuing delay over time to this SVG file.
    #[arg(long)]
    pub(crate) plot: Option<PathBuf>,
    /// List the named scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
}

/// Arguments of `hive sim`.
#[derive(Debug, Args)]
#[command(after_help = sim_cmd::NETWORK_HELP)]
pub(crate) struct SimArgs {
    /// A named scenario (`--list` shows them).
    #[arg(long, short, default_value = "corporate-130")]
    pub(crate) scenario: String,
    /// Your own network and event instead of a named scenario: a JSON file with `//` comment
    /// lines (see below, and docs/sim/network-example.json).
    #[arg(long, value_name = "FILE", conflicts_with = "scenario")]
    pub(crate) network: Option<PathBuf>,
    /// The policy every agent runs: private-hierarchy, public-mesh, random-mesh or no-peer. The
    /// baselines no-peer and random-mesh always run beside it on the same seed.
    #[arg(long, default_value = "private-hierarchy")]
    pub(crate) policy: hive_sim::PolicyKind,
    /// Shrink viewers and capacities by this factor (1 = full size, the default; 0.1 runs a
    /// tenth of the viewers on a tenth of the capacities).
    #[arg(long)]
    pub(crate) scale: Option<f64>,
    /// Simulated seconds [default: 120 for a live scenario, the scenario's own for vod-500
    /// (5400: an hour of arrivals and a 30-min title) and the file's duration_s for --network].
    #[arg(long)]
    pub(crate) duration: Option<f64>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Threads that run the agents [default: one per core]. The result depends on the seed
    /// only, not on this.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Draw the origin's egress over time (bit/s per second) for the policy and both baselines,
    /// and the viewers watching, to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
    /// List the named scenarios and exit.
    #[arg(long)]
    pub(crate) list: bool,
}

/// Arguments of `hive manifest`.
#[derive(Debug, Args)]
pub(crate) struct ManifestArgs {
    #[command(subcommand)]
    pub(crate) command: ManifestCommand,
}

/// `hive manifest` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ManifestCommand {
    /// Detect and parse a manifest file or http(s) URL; print its tracks and fragments.
    Inspect {
        /// A local file or an http(s) URL.
        source: String,
        /// Print one JSON object (format, live, tracks, fragments_total, duration_s).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CcArena(args) => cc_arena::run(&args),
        Command::Demo(args) => live_cmd::demo(&args),
        Command::Agent(args) => live_cmd::agent(&args),
        Command::Tracker(args) => services_cmd::tracker(&args),
        Command::Registrar(args) => services_cmd::registrar(&args),
        Command::Origin(args) => live_cmd::origin(&args),
        Command::Sim(args) => sim_cmd::run(&args),
        #[cfg(target_os = "linux")]
        Command::Lab(args) => lab_cmd::run(&args),
        Command::Manifest(args) => manifest_cmd::run(&args),
        Command::Sign(args) => sign_cmd::sign(&args),
        Command::HashService(args) => sign_cmd::hash_service(&args),
        Command::Bench(BenchArgs { command }) => match command {
            #[cfg(feature = "quic")]
            BenchCommand::Transport(args) => bench::transport(&args),
            #[cfg(not(feature = "quic"))]
            BenchCommand::Transport(_) => without("quic"),
            BenchCommand::Tracker(args) => bench_tracker::tracker(&args),
        },
    }
}

#[cfg(not(feature = "quic"))]
fn without(features: &str) -> ExitCode {
    eprintln!("hive: this binary was built without the `{features}` feature(s)");
    ExitCode::from(2)
}
