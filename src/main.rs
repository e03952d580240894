//! The `hive` command-line tool: one subcommand per job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[cfg(all(feature = "udp", feature = "quic"))]
mod bench;
mod cc_arena;
mod live_cmd;
mod manifest_cmd;
mod sim_cmd;

/// Hive: a software CDN for adaptive HTTP video.
#[derive(Debug, Parser)]
#[command(name = "hive", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an origin, peer discovery and N agents with simulated players on loopback, end to
    /// end; print the QoE table (or --json).
    Demo(live_cmd::DemoArgs),
    /// Run the deterministic swarm simulator on a named scenario.
    Sim(SimArgs),
    /// Race congestion controllers through a modelled bottleneck link.
    CcArena(CcArenaArgs),
    /// Run one agent between a player and an origin.
    Agent(live_cmd::AgentArgs),
    /// Run a tracker.
    Tracker,
    /// Run a registrar that signs admission tokens.
    Registrar,
    /// Serve a synthetic live HLS/DASH origin (and optionally a folder of real media).
    Origin(live_cmd::OriginArgs),
    /// Inspect manifests (HLS, DASH, Smooth Streaming, HDS).
    Manifest(ManifestArgs),
    /// Benchmarks (needs the `udp` and `quic` features, both default).
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
    /// Move N bytes over loopback with Hive's UDP transport, kernel TCP and s2n-quic; report
    /// Gbit/s, CPU seconds per GiB (whole process, both ends) and handshake time of each.
    Transport(BenchTransportArgs),
}

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
}

#[cfg(all(feature = "udp", feature = "quic"))]
use bench::parse_bytes;

#[cfg(not(all(feature = "udp", feature = "quic")))]
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
pub(crate) struct SimArgs {
    /// A named scenario (`--list` shows them).
    #[arg(long, short, default_value = "corporate-130")]
    pub(crate) scenario: String,
    /// The policy every agent runs: public-mesh, hierarchy, randommesh or nopeer. The baselines NoPeer and
    /// RandomMesh always run beside it on the same seed.
    #[arg(long, default_value = "hierarchy")]
    pub(crate) policy: String,
    /// Shrink viewers and capacities by this factor (1 = full size).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) scale: f64,
    /// Simulated seconds.
    #[arg(long, default_value_t = 120.0)]
    pub(crate) duration: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
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

fn not_built(name: &str, issue: u32) -> ExitCode {
    eprintln!(
        "hive: `{name}` is not built yet (tracked by issue #{issue}). What exists today: hive-core \
         (ids, wire protocol, plug-in traits, caches, conformance kits), hive-cc with \
         `hive cc-arena`, hive-manifest with `hive manifest inspect`, the UDP transport with \
         `hive bench transport`, and the swarm engine with `hive sim`; run ./scripts/test.sh \
         to check them."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CcArena(args) => cc_arena::run(&args),
        Command::Demo(args) => live_cmd::demo(&args),
        Command::Agent(args) => live_cmd::agent(&args),
        Command::Tracker => not_built("tracker", 7),
        Command::Registrar => not_built("registrar", 7),
        Command::Origin(args) => live_cmd::origin(&args),
        Command::Sim(args) => sim_cmd::run(&args),
        Command::Manifest(args) => manifest_cmd::run(&args),
        #[cfg(all(feature = "udp", feature = "quic"))]
        Command::Bench(BenchArgs {
            command: BenchCommand::Transport(args),
        }) => bench::transport(&args),
        #[cfg(not(all(feature = "udp", feature = "quic")))]
        Command::Bench(_) => {
            eprintln!("hive bench: this binary was built without the `udp` and `quic` features");
            ExitCode::from(2)
        }
    }
}
