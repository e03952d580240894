//! `hive sign` (publisher-signed integrity lists beside a packager's playlists) and
//! `hive hash-service` (the same lists for origins that cannot be changed); see
//! `hive_services::integrity`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::parse_duration;

/// Arguments of `hive sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The publisher's secret key: a file holding 64 hex digits (as --new-key writes it).
    #[arg(long, value_name = "FILE", requires = "dir")]
    pub(crate) key: Option<PathBuf>,
    /// Sign every HLS media playlist (.m3u8) and DASH MPD (.mpd) under this folder
    /// (recursively): `<playlist>.hive-integrity` is written beside each.
    #[arg(long, value_name = "DIR", requires = "key")]
    pub(crate) dir: Option<PathBuf>,
    /// Keep watching the folder (a live packager rewrites its playlists every segment).
    #[arg(long)]
    pub(crate) watch: bool,
    /// With --watch: how often the folder is looked at.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub(crate) interval: Duration,
    /// Write a fresh secret key to FILE (mode 0600; an existing file is never overwritten) and
    /// print its public key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "dir", "print_key"])]
    pub(crate) new_key: Option<PathBuf>,
    /// Print the public key of the secret key in FILE (what agents are configured with).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["key", "dir"])]
    pub(crate) print_key: Option<PathBuf>,
}

/// Arguments of `hive hash-service`.
#[derive(Debug, Args)]
pub(crate) struct HashServiceArgs {
    /// The service's secret key: a file holding 64 hex digits (`hive sign --new-key FILE`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// An origin (`host:port`) whose manifests and fragments may be fetched; repeat for more.
    #[arg(long = "allow-origin", value_name = "HOST:PORT", required = true)]
    pub(crate) allow_origin: Vec<String>,
    /// Address to listen on (port 0: any free port; the chosen address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:7072")]
    pub(crate) listen: String,
    /// How often each watched manifest is fetched.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub(crate) poll: Duration,
    /// Most manifests watched at once.
    #[arg(long, default_value_t = 256)]
    pub(crate) max_manifests: usize,
}

/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Reads a secret key file (64 hex digits).
pub(crate) fn read_key(path: &Path) -> anyhow::Result<hive_core::integrity::PublisherKey> {
    use std::io::Read;

    use anyhow::Context;
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    if let Ok(m) = f.metadata() {
        use std::os::unix::fs::PermissionsExt;
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "hive: warning: {} is readable by others (chmod 600 it)",
                path.display()
            );
        }
    }
    let mut text = String::new();
    f.take(MAX_KEY_FILE)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    hive_core::integrity::PublisherKey::from_hex(&text)
        .with_context(|| format!("{} must hold 64 hex digits", path.display()))
}

fn new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;

    use anyhow::Context;
    let key = hive_services::integrity::generate_key().context("the OS random source")?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten)",
            path.display()
        )
    })?;
    writeln!(f, "{}", key.to_hex())?;
    f.sync_all()?;
    println!("{}", key.public().to_hex());
    Ok(())
}

fn sign_dir(args: &SignArgs, key: &Path, dir: &Path) -> anyhow::Result<bool> {
    use hive_services::integrity::Signer;
    let mut signer = Signer::new(read_key(key)?, dir)?;
    eprintln!(
        "hive sign: signing {} with public key {}",
        signer.dir().display(),
        signer.public_key().to_hex()
    );
    if !args.watch {
        let r = signer.pass()?;
        eprintln!(
            "hive sign: {} playlists, {} lists written, {} fragments hashed, {} missing, {} failed",
            r.playlists, r.lists_written, r.fragments_hashed, r.missing, r.failed
        );
        return Ok(r.failed == 0);
    }
    let interval = args.interval.max(Duration::from_millis(10));
    let mut missing = 0;
    hive_services::integrity::watch(
        &mut signer,
        interval,
        || false,
        |r| {
            if r.lists_written > 0 || r.fragments_hashed > 0 || r.missing != missing {
                eprintln!(
                    "hive sign: {} lists written, {} fragments hashed, {} missing, {} failed",
                    r.lists_written, r.fragments_hashed, r.missing, r.failed
                );
            }
            missing = r.missing;
        },
    )?;
    Ok(true)
}

/// Runs `hive sign`.
pub(crate) fn sign(args: &SignArgs) -> ExitCode {
    let result = match (&args.new_key, &args.print_key, &args.key, &args.dir) {
        (Some(path), ..) => new_key(path).map(|()| true),
        (None, Some(path), ..) => read_key(path).map(|k| {
            println!("{}", k.public().to_hex());
            true
        }),
        (None, None, Some(key), Some(dir)) => sign_dir(args, key, dir),
        _ => Err(anyhow::anyhow!(
            "say --key FILE --dir DIR [--watch], --new-key FILE or --print-key FILE"
        )),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hive sign: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `hive hash-service`.
pub(crate) fn hash_service(args: &HashServiceArgs) -> ExitCode {
    crate::services_cmd::run_service("hash-service", run_hash_service(args))
}

/// The hash service of `hive hash-service` and `hive tracker --hash-key`.
pub(crate) fn build_hash_service(
    key: &Path,
    allow: &[String],
    poll: Duration,
    max_manifests: usize,
) -> anyhow::Result<std::sync::Arc<hive_services::integrity::HashService>> {
    use hive_services::integrity::{HashService, HashServiceConfig};
    if allow.is_empty() {
        anyhow::bail!("the hash service needs at least one allowed origin (HOST:PORT)");
    }
    let cfg = HashServiceConfig {
        allow_origins: allow.to_vec(),
        poll: poll.max(Duration::from_millis(10)),
        max_manifests: max_manifests.max(1),
        ..Default::default()
    };
    let svc = HashService::new(cfg, read_key(key)?)?;
    tracing::info!(
        public_key = %svc.public_key().to_hex(),
        origins = ?allow,
        "hash service: one extra origin copy per fragment per bitrate"
    );
    Ok(svc)
}

async fn run_hash_service(args: &HashServiceArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let svc = build_hash_service(&args.key, &args.allow_origin, args.poll, args.max_manifests)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    crate::services_cmd::announce_listening(
        "hash-service",
        addr,
        &format!(" public_key={}", svc.public_key().to_hex()),
    );
    hive_services::integrity::serve(listener, svc, crate::services_cmd::shutdown_signal()).await?;
    Ok(())
}
