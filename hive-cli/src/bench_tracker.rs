//! `hive bench tracker`: announces per second against a tracker in a second process.
//!
//! This process spawns `hive tracker --listen 127.0.0.1:0` (the same executable; with `--redis`,
//! on that Redis, or on a private `redis-server` it starts for `--redis auto`), reads the bound
//! address from the tracker's stdout, and drives announces over loopback from `--concurrency`
//! tasks sharing one keep-alive connection pool (so about that many connections). Peers are
//! spread over `--contents` swarms, 50 sites and 10 ASes; every peer is announced once first
//! (warm-up, not measured), so each measured announce answers with a full sample of its swarm.
//!
//! Reported: announces/s = measured announces / wall time of the measured phase; latency p50 and
//! p99 (request sent to reply decoded, as `TrackerClient` sees it); CPU seconds of the tracker
//! process (`getrusage(RUSAGE_CHILDREN)` after it exits; with `--redis auto` that includes the
//! private redis-server) and of this load generator
//! (`RUSAGE_SELF`), both for the whole run including warm-up. Client and server share the
//! machine's cores.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hive_core::{ContentId, Locality, PeerAddr, PeerId, PeerInfo, Role};
use hive_services::tracker::{Announce, TrackerClient};
use nix::sys::resource::{UsageWho, getrusage};

use crate::BenchTrackerArgs;

/// The tracker child; killed (by its pid, which we started) and reaped on drop.
struct TrackerProcess {
    child: Child,
    url: String,
}

impl TrackerProcess {
    fn spawn(redis: Option<&str>) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the hive executable")?;
        let mut cmd = Command::new(exe);
        // The load announces 1 in 20 agents as supernodes (their index writes are part of the
        // cost measured): the tracker believes them as a lab's would.
        cmd.args([
            "tracker",
            "--listen",
            "127.0.0.1:0",
            "--ttl",
            "600s",
            "--trust-declared-roles",
        ]);
        if let Some(url) = redis {
            cmd.args(["--redis", url]);
        }
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("spawning hive tracker")?;
        let stdout = child.stdout.take().context("tracker stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("hive tracker: listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut p = TrackerProcess {
            child,
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(50)) {
                p.url = url;
                return Ok(p);
            }
            if let Some(status) = p.child.try_wait()? {
                bail!("hive tracker exited before listening ({status})");
            }
            if Instant::now() > deadline {
                bail!("hive tracker did not report its address within 15 s");
            }
        }
    }

    /// Stops the tracker and waits for it, so its CPU time lands in RUSAGE_CHILDREN.
    fn stop(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for TrackerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu(who: UsageWho) -> Result<Duration> {
    let u = getrusage(who).context("getrusage")?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok(d(u.user_time()) + d(u.system_time()))
}

/// The `i`-th synthetic peer and its swarm.
fn synthetic(i: u64, contents: u64) -> (ContentId, PeerInfo) {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&i.to_be_bytes());
    id[8] = 0xbe;
    let mut p = PeerInfo::new(
        PeerId::from_bytes(id),
        PeerAddr::Socket(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000).into()),
    );
    // Site and AS from a hash of i, so they are independent of the swarm (i % contents).
    let h = i.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
    p.locality = Locality {
        asn: Some(64500 + (h % 10) as u32),
        site: Some(format!("site-{}", (h / 10) % 50)),
        country: Some(*b"FR"),
    };
    p.role = if i % 20 == 0 {
        Role::Supernode
    } else {
        Role::Peer
    };
    p.upload_kbps = 1000 + (i % 7) as u32 * 1500;
    let c = i % contents;
    (ContentId::derive(&format!("bench/{c}")), p)
}

struct Outcome {
    latencies_us: Vec<u32>,
    errors: u64,
    returned: u64,
}

/// Runs `total` announces of peers `peer_of(k)` from `concurrency` tasks.
async fn drive(
    client: &TrackerClient,
    total: u64,
    concurrency: u64,
    want: usize,
    peer_of: Arc<dyn Fn(u64) -> (ContentId, PeerInfo) + Send + Sync>,
) -> Result<Outcome> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, peer_of) = (client.clone(), next.clone(), peer_of.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut errors, mut returned, mut first_error) = (0u64, 0u64, None);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let (content, peer) = peer_of(k);
                let a = Announce {
                    content,
                    peer,
                    token: None,
                    want,
                };
                let t = Instant::now();
                match client.announce(&a).await {
                    Ok(r) => returned += r.peers.len() as u64,
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
                lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            (lat, errors, returned, first_error)
        }));
    }
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(total as usize),
        errors: 0,
        returned: 0,
    };
    for t in tasks {
        let (lat, errors, returned, first_error) = t.await.context("load task")?;
        if let Some(e) = first_error {
            eprintln!("hive bench tracker: announce failed: {e}");
        }
        out.latencies_us.extend(lat);
        out.errors += errors;
        out.returned += returned;
    }
    Ok(out)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(args: &BenchTrackerArgs, url: &str) -> Result<(Outcome, Duration, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency as usize)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = TrackerClient::with_client(url, http)?;
    let contents = args.contents;
    let peers = args.peers;
    eprintln!("hive bench tracker: warm-up, announcing {peers} peers in {contents} swarms ...");
    let t = Instant::now();
    let warm = drive(
        &client,
        peers,
        args.concurrency,
        1,
        Arc::new(move |k| synthetic(k, contents)),
    )
    .await?;
    if warm.errors > 0 {
        bail!("{} of {peers} warm-up announces failed", warm.errors);
    }
    let warm_wall = t.elapsed();
    eprintln!(
        "hive bench tracker: warm-up {:.1} s; measuring {} announces (want {}) ...",
        warm_wall.as_secs_f64(),
        args.announces,
        args.want
    );
    // Measured: peers in a scrambled order (a multiplicative hash of k), as re-announces come.
    let t = Instant::now();
    let out = drive(
        &client,
        args.announces,
        args.concurrency,
        args.want,
        Arc::new(move |k| synthetic(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) % peers, contents)),
    )
    .await?;
    Ok((out, t.elapsed(), warm_wall))
}

/// Runs `hive bench tracker`.
pub(crate) fn tracker(args: &BenchTrackerArgs) -> ExitCode {
    match tracker_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hive bench tracker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tracker_inner(args: &BenchTrackerArgs) -> Result<ExitCode> {
    if args.announces == 0 || args.concurrency == 0 || args.peers == 0 || args.contents == 0 {
        bail!("--announces, --concurrency, --peers and --contents must be at least 1");
    }
    // `--redis auto`: a private redis-server on a free port, for this run only.
    let mut private_redis = None;
    let redis_url = match args.redis.as_deref() {
        Some("auto") => match hive_services::testkit::RedisServer::start()? {
            Some(s) => {
                let url = s.url();
                private_redis = Some(s);
                Some(url)
            }
            None => bail!(
                "--redis auto: redis-server is not installed (Debian: apt-get install redis-server)"
            ),
        },
        Some(url) => Some(url.to_owned()),
        None => None,
    };
    let store = if redis_url.is_some() {
        "redis"
    } else {
        "memory"
    };
    // RUSAGE_CHILDREN counts every reaped child: the private redis-server too.
    let server_label = if private_redis.is_some() {
        "tracker + redis-server"
    } else {
        "tracker"
    };
    let cpu_self0 = cpu(UsageWho::RUSAGE_SELF)?;
    let cpu_children0 = cpu(UsageWho::RUSAGE_CHILDREN)?;
    let server = TrackerProcess::spawn(redis_url.as_deref()).with_context(|| match &redis_url {
        Some(u) => format!("starting the tracker on Redis at {u} (is Redis running?)"),
        None => "starting the tracker".to_owned(),
    })?;
    eprintln!(
        "hive bench tracker: tracker ({store} store) at {}",
        server.url
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let (mut out, wall, warm_wall) = rt.block_on(run(args, &server.url))?;
    drop(rt);
    server.stop()?;
    drop(private_redis);
    let cpu_server = cpu(UsageWho::RUSAGE_CHILDREN)?.saturating_sub(cpu_children0);
    let cpu_client = cpu(UsageWho::RUSAGE_SELF)?.saturating_sub(cpu_self0);
    out.latencies_us.sort_unstable();
    let rate = args.announces as f64 / wall.as_secs_f64();
    let (p50, p99) = (
        percentile(&out.latencies_us, 0.50),
        percentile(&out.latencies_us, 0.99),
    );
    let avg_peers = out.returned as f64 / args.announces as f64;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "store": store,
                "announces": args.announces,
                "concurrency": args.concurrency,
                "peers": args.peers,
                "contents": args.contents,
                "want": args.want,
                "announces_per_s": rate,
                "latency_ms_p50": p50,
                "latency_ms_p99": p99,
                "avg_peers_returned": avg_peers,
                "errors": out.errors,
                "wall_s": wall.as_secs_f64(),
                "warmup_s": warm_wall.as_secs_f64(),
                "cpu_s_tracker": cpu_server.as_secs_f64(),
                "cpu_s_tracker_scope": server_label,
                "cpu_s_load_generator": cpu_client.as_secs_f64(),
            })
        );
    } else {
        println!(
            "hive bench tracker: {} store, tracker in a second process, {} announces from {} \
             concurrent keep-alive clients over 127.0.0.1; {} peers in {} swarms, want {}",
            store, args.announces, args.concurrency, args.peers, args.contents, args.want
        );
        println!(
            "{rate:.0} announces/s   p50 {p50:.2} ms   p99 {p99:.2} ms   {avg_peers:.1} peers/reply   \
             {} errors   {:.2} s",
            out.errors,
            wall.as_secs_f64()
        );
        println!(
            "CPU (whole run incl. {:.1} s warm-up): {server_label} {:.2} s, load generator {:.2} s",
            warm_wall.as_secs_f64(),
            cpu_server.as_secs_f64(),
            cpu_client.as_secs_f64()
        );
    }
    Ok(if out.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
