//! `hive tracker` and `hive registrar`: the services of hive-services as processes, logging to
//! stderr, stopping gracefully on Ctrl-C (or SIGTERM). Each prints one line on stdout once it
//! listens — `hive tracker: listening on http://ADDR` — so scripts (and `hive bench tracker`)
//! can start them on port 0 and read the address.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hive_services::registrar::{self, Registrar, TokenVerifier, parse_hex32, parse_verifying_key};
use hive_services::tracker::{
    self, LocalityTable, MemoryStore, Tracker, TrackerConfig, TrackerStore,
};

use crate::{RegistrarArgs, TrackerArgs};

/// Parses `500ms`, `60s`, `5m`, `1h` (a bare number is seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 60s, 5m, 1h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

pub(crate) fn announce_listening(what: &str, addr: std::net::SocketAddr, extra: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "hive {what}: listening on http://{addr}{extra}");
    let _ = out.flush();
}

async fn run_tracker(args: &TrackerArgs) -> Result<()> {
    let mut cfg = TrackerConfig {
        ttl: args.ttl,
        max_reply: args.max_reply,
        ..Default::default()
    };
    if cfg.ttl < Duration::from_millis(100) {
        bail!("--ttl must be at least 100ms");
    }
    if let Some(path) = &args.localities {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        cfg.locality_table =
            LocalityTable::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
        tracing::info!(ranges = cfg.locality_table.len(), "locality table loaded");
    }
    if args.supernodes_per_site.is_some() || args.gateway_site.is_some() {
        let plan = tracker::SupernodePlan {
            per_site: args.supernodes_per_site.unwrap_or(2),
            gateway_site: args.gateway_site.clone(),
            at_gateway: args.supernodes_at_gateway,
            peers_per_supernode: args.peers_per_supernode,
        };
        tracing::info!(?plan, "promoting supernodes per site");
        cfg.supernodes = Some(plan);
    }
    if args.trust_declared_roles {
        tracing::warn!("--trust-declared-roles: any agent may make itself a supernode");
        cfg.trusted_roles = tracker::RoleTrust::Everyone;
    } else if !args.trust_role.is_empty() {
        let ids = args
            .trust_role
            .iter()
            .map(|h| {
                h.parse::<hive_core::PeerId>()
                    .map_err(|e| anyhow::anyhow!("--trust-role {h}: {e}"))
            })
            .collect::<Result<_>>()?;
        cfg.trusted_roles = tracker::RoleTrust::Listed(ids);
    }
    if let Some(hex) = &args.registrar_key {
        let key = parse_verifying_key(hex)
            .map_err(anyhow::Error::msg)
            .context("--registrar-key")?;
        cfg.verifier = Some(TokenVerifier::new(key));
        tracing::info!("announces need a registrar token");
    }
    let store: Arc<dyn TrackerStore> = match &args.redis {
        Some(url) => {
            #[cfg(feature = "redis")]
            {
                let s = tracker::RedisStore::connect(url)
                    .await
                    .with_context(|| format!("connecting to Redis at {url}"))?;
                tracing::info!(%url, "Redis store");
                Arc::new(s.with_key_lifetime(cfg.ttl * 2))
            }
            #[cfg(not(feature = "redis"))]
            bail!("--redis {url}: this binary was built without the `redis` feature")
        }
        None => Arc::new(MemoryStore::new()),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = store.name(), ttl = ?cfg.ttl, "tracker listening");
    announce_listening("tracker", addr, "");
    let t = Arc::new(Tracker::new(cfg, store));
    match &args.hash_key {
        Some(key) => {
            let svc = crate::sign_cmd::build_hash_service(
                key,
                &args.hash_allow_origin,
                Duration::from_millis(100),
                256,
            )
            .context("--hash-key")?;
            tracing::info!(public_key = %svc.public_key().to_hex(), "hash service at /v1/integrity");
            tracker::serve_with(listener, t, svc.router(), shutdown_signal()).await?;
        }
        None => tracker::serve(listener, t, shutdown_signal()).await?,
    }
    Ok(())
}

/// Runs a service's future on a fresh runtime with logs on stderr; an error is printed as
/// `hive NAME: ...`.
pub(crate) fn run_service(
    name: &str,
    fut: impl std::future::Future<Output = Result<()>>,
) -> ExitCode {
    init_logs();
    match runtime().and_then(|rt| rt.block_on(fut)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hive {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `hive tracker`.
pub(crate) fn tracker(args: &TrackerArgs) -> ExitCode {
    init_logs();
    match runtime().and_then(|rt| rt.block_on(run_tracker(args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hive tracker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the registrar's secret from `path` (64 hex digits), or makes one and writes it there
/// (owner-only permissions) when the file does not exist.
fn load_or_create_secret(path: &Path) -> Result<Registrar> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = parse_hex32(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{} must hold 64 hex digits", path.display()))?;
            Ok(Registrar::from_secret(secret))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let r = Registrar::generate();
            let hex: String = r.secret().iter().map(|b| format!("{b:02x}")).collect();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{hex}")?;
            tracing::info!(path = %path.display(), "new registrar secret written");
            Ok(r)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

async fn run_registrar(args: &RegistrarArgs) -> Result<()> {
    let r = match &args.secret_file {
        Some(p) => load_or_create_secret(p)?,
        None => {
            tracing::warn!("no --secret-file: a fresh key for this run only");
            Registrar::generate()
        }
    };
    let mut policies = Vec::new();
    if let Some(p) = &args.enroll_secret_file {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let secret = text.lines().next().unwrap_or("").trim().to_string();
        anyhow::ensure!(!secret.is_empty(), "{} holds no secret", p.display());
        policies.push(registrar::EnrollPolicy::Secret(secret));
    }
    if !args.enroll_ranges.is_empty() {
        tracing::info!(ranges = ?args.enroll_ranges, "enrolling only these address ranges");
        policies.push(registrar::EnrollPolicy::Ranges(args.enroll_ranges.clone()));
    }
    let r = if policies.is_empty() {
        tracing::warn!("no --enroll-secret-file or --enroll-range: anyone may enroll");
        r
    } else {
        r.with_enroll(registrar::EnrollPolicy::All(policies))
    };
    let key: String = r
        .verifying_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, public_key = %key, validity = ?args.validity, "registrar listening");
    announce_listening("registrar", addr, &format!(" public_key={key}"));
    registrar::serve_registrar(listener, Arc::new(r), args.validity, shutdown_signal()).await?;
    Ok(())
}

/// Runs `hive registrar`.
pub(crate) fn registrar(args: &RegistrarArgs) -> ExitCode {
    init_logs();
    match runtime().and_then(|rt| rt.block_on(run_registrar(args))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hive registrar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
