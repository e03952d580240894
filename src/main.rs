//! The `hive` command-line tool: one subcommand per job.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hive: a software CDN for adaptive HTTP video.
#[derive(Debug, Parser)]
#[command(name = "hive", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an origin, a tracker and N agents with simulated players on loopback, end to end.
    Demo,
    /// Run the deterministic swarm simulator on a named scenario.
    Sim,
    /// Run congestion controllers against each other through a modelled bottleneck link.
    CcArena,
    /// Run one agent between a player and an origin.
    Agent,
    /// Run a tracker.
    Tracker,
    /// Run a registrar that signs admission tokens.
    Registrar,
    /// Serve a synthetic live HLS/DASH origin.
    Origin,
    /// Inspect manifests.
    Manifest,
    /// Benchmarks of the transports.
    Bench,
}

impl Command {
    /// The issue that delivers this job.
    fn issue(&self) -> u32 {
        match self {
            Command::Demo
            | Command::Agent
            | Command::Tracker
            | Command::Registrar
            | Command::Origin => 7,
            Command::Sim => 6,
            Command::CcArena => 3,
            Command::Manifest => 5,
            Command::Bench => 4,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let issue = cli.command.issue();
    eprintln!(
        "hive: `{}` is not built yet (tracked by issue #{issue}). What exists today: the hive-core \
         crate (ids, wire protocol, plug-in traits, caches, conformance kits); run \
         ./scripts/test.sh to check it.",
        format!("{:?}", cli.command).to_lowercase()
    );
    ExitCode::from(2)
}
