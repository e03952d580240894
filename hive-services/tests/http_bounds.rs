//! Every service's HTTP server is bounded (`hive_services::http::serve_bounded`): slowloris
//! clients that hold connections open with partial request heads (or nothing at all) do not
//! keep a fresh client's `/healthz` waiting, on the tracker, the registrar, the origin and the
//! hash service; bodies are bounded in size and time; the connection cap evicts idle
//! connections for new ones.
//!
//! The default runs are short (500 attackers, ~3 s of probes per server). The full run, 2 000
//! attackers and 15 s of probes per server:
//!
//! ```text
//! cargo test -p hive-services --test http_bounds -- --ignored --nocapture --test-threads 1
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hive_services::http::{HttpLimits, serve_bounded};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Raises the soft open-file limit to `want` (up to the hard limit, or beyond it when allowed);
/// whether the process may now hold `want` descriptors.
fn raise_nofile(want: u64) -> bool {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    if soft >= want {
        return true;
    }
    if hard >= want {
        return setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok();
    }
    setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok()
}

/// What a slowloris run saw.
#[derive(Debug)]
struct Run {
    latencies_ms: Vec<f64>,
    failures: u64,
    attack_connects: u64,
    attack_closed_by_server: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }

    fn max(&self) -> f64 {
        self.latencies_ms.iter().copied().fold(0.0, f64::max)
    }
}

/// One `GET /healthz` on a fresh connection; its latency, or `None` when it failed or took
/// over 2 s.
async fn probe(addr: SocketAddr) -> Option<Duration> {
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(2), async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: hive\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        buf.starts_with(b"HTTP/1.1 200").then_some(())
    })
    .await;
    match r {
        Ok(Some(())) => Some(t0.elapsed()),
        _ => None,
    }
}

/// One attacker until `until`: connects, then sends a partial request head one byte every
/// `every` (or, when `silent`, nothing), and reconnects 500 ms after the server closes it.
async fn attacker(
    addr: SocketAddr,
    silent: bool,
    every: Duration,
    until: Instant,
    connects: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
) {
    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: hive\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    while Instant::now() < until {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        connects.fetch_add(1, Ordering::Relaxed);
        let mut i = 0usize;
        let mut buf = [0u8; 512];
        loop {
            if Instant::now() >= until {
                return;
            }
            let wait =
                tokio::time::sleep(every.min(until.saturating_duration_since(Instant::now())));
            tokio::select! {
                _ = s.read(&mut buf) => {
                    // The server answered (408, 400) or closed: this connection is done.
                    closed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ = wait => {
                    if !silent {
                        let b = HEAD[i % HEAD.len()];
                        i += 1;
                        if s.write_all(&[b]).await.is_err() {
                            closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Opens `conns` slowloris connections to `addr` (a quarter silent, the others dribbling a
/// header byte every 2 s), then probes `/healthz` every 100 ms for `probe_for`.
async fn slowloris(addr: SocketAddr, conns: usize, probe_for: Duration) -> Run {
    let ramp = Duration::from_millis(conns as u64 / 2); // ~2 connects per ms
    let until = Instant::now() + ramp + probe_for + Duration::from_millis(200);
    let connects = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..conns {
        let (c, d) = (connects.clone(), closed.clone());
        tasks.push(tokio::spawn(attacker(
            addr,
            i % 4 == 0,
            Duration::from_secs(2),
            until,
            c,
            d,
        )));
        if i % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Every attacker is connected (or has been) before measuring.
    let ramp_end = Instant::now() + Duration::from_secs(5);
    while connects.load(Ordering::Relaxed) < conns as u64 && Instant::now() < ramp_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut run = Run {
        latencies_ms: Vec::new(),
        failures: 0,
        attack_connects: 0,
        attack_closed_by_server: 0,
    };
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while start.elapsed() < probe_for {
        tick.tick().await;
        match probe(addr).await {
            Some(d) => run.latencies_ms.push(d.as_secs_f64() * 1e3),
            None => run.failures += 1,
        }
    }
    for t in tasks {
        t.abort();
    }
    run.attack_connects = connects.load(Ordering::Relaxed);
    run.attack_closed_by_server = closed.load(Ordering::Relaxed);
    run
}

#[derive(Clone, Copy, Debug)]
enum Server {
    Tracker,
    Registrar,
    Origin,
    HashService,
}

/// Starts `server` with its own `serve` function on loopback; its address.
async fn start(server: Server) -> SocketAddr {
    use hive_services::{origin, registrar, tracker};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let never = std::future::pending();
    match server {
        Server::Tracker => {
            let t = Arc::new(tracker::Tracker::new(
                tracker::TrackerConfig::default(),
                Arc::new(tracker::MemoryStore::new()),
            ));
            tokio::spawn(tracker::serve(listener, t, never));
        }
        Server::Registrar => {
            let r = Arc::new(registrar::Registrar::generate());
            tokio::spawn(registrar::serve_registrar(
                listener,
                r,
                Duration::from_secs(60),
                never,
            ));
        }
        Server::Origin => {
            let o = Arc::new(origin::Origin::new(origin::OriginConfig::default()));
            tokio::spawn(origin::serve(listener, o, never));
        }
        Server::HashService => {
            let svc = hive_services::integrity::HashService::new(
                hive_services::integrity::HashServiceConfig::default(),
                hive_core::integrity::PublisherKey::from_seed([3; 32]),
            )
            .expect("hash service");
            tokio::spawn(hive_services::integrity::serve(listener, svc, never));
        }
    }
    addr
}

fn report(what: &str, conns: usize, run: &Run) {
    eprintln!(
        "{what}: {conns} slowloris connections ({} connects, {} closed by the server): \
         /healthz {} probes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        run.attack_connects,
        run.attack_closed_by_server,
        run.latencies_ms.len(),
        run.percentile(0.5),
        run.percentile(0.99),
        run.max(),
        run.failures
    );
}

fn check(what: &str, conns: usize, run: &Run) {
    report(what, conns, run);
    assert_eq!(run.failures, 0, "{what}: probes failed");
    assert!(
        run.max() <= 100.0,
        "{what}: a /healthz took {:.1} ms",
        run.max()
    );
}

/// One slowloris run at a time: the latency bound is about one server under attack, not four
/// sharing two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn against(server: Server, conns: usize, probe_for: Duration) {
    let _turn = ONE_AT_A_TIME.lock().await;
    // Attackers, the server's side of each, and the probes.
    if !raise_nofile(2 * conns as u64 + 512) {
        eprintln!(
            "SKIPPED: cannot raise the open-file limit to {} (ulimit -n)",
            2 * conns + 512
        );
        return;
    }
    let addr = start(server).await;
    let run = slowloris(addr, conns, probe_for).await;
    check(&format!("{server:?}"), conns, &run);
}

macro_rules! slowloris_tests {
    ($($short:ident, $full:ident => $server:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $short() {
            against($server, 500, Duration::from_secs(3)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "2 000 connections, 15 s: see the file's docs"]
        async fn $full() {
            against($server, 2000, Duration::from_secs(15)).await;
        }
    )*};
}

slowloris_tests! {
    tracker_answers_healthz_under_slowloris, tracker_answers_healthz_under_2000_slowloris => Server::Tracker;
    registrar_answers_healthz_under_slowloris, registrar_answers_healthz_under_2000_slowloris => Server::Registrar;
    origin_answers_healthz_under_slowloris, origin_answers_healthz_under_2000_slowloris => Server::Origin;
    hash_service_answers_healthz_under_slowloris, hash_service_answers_healthz_under_2000_slowloris => Server::HashService;
}

fn healthz_router() -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/echo",
            axum::routing::post(|b: bytes::Bytes| async move { b.len().to_string() }),
        )
}

async fn start_bounded(limits: HttpLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_bounded(
        listener,
        healthz_router(),
        limits,
        std::future::pending(),
    ));
    addr
}

/// At the connection cap, idle slowloris connections are evicted for new ones: 300 attackers
/// against a cap of 100, and `/healthz` is still answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room() {
    if !raise_nofile(1024) {
        eprintln!("SKIPPED: cannot raise the open-file limit to 1024");
        return;
    }
    let limits = HttpLimits::default()
        .with_max_connections(100)
        .with_header_read_timeout(Duration::from_secs(30));
    let addr = start_bounded(limits).await;
    let run = slowloris(addr, 300, Duration::from_secs(3)).await;
    check("serve_bounded, cap 100", 300, &run);
    // Evictions closed attackers although none reached the header timeout.
    assert!(run.attack_closed_by_server > 0);
}

async fn send(addr: SocketAddr, bytes: &[u8], then_wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(then_wait, s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn bodies_are_bounded_in_size_and_time() {
    let limits = HttpLimits::default()
        .with_max_body(1000)
        .with_body_read_timeout(Duration::from_millis(300));
    let addr = start_bounded(limits).await;
    // Within bounds.
    let ok = send(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: h\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
        Duration::from_secs(2),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with('5'), "{ok}");
    // Declared too large: refused before reading.
    let big = send(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: h\r\ncontent-length: 5000\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    // Chunked and too large.
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'a'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    let big = send(addr, &chunked, Duration::from_secs(2)).await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    // Declared, never sent: 408 after the body read timeout.
    let t0 = Instant::now();
    let slow = send(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: h\r\ncontent-length: 100\r\n\r\nabc",
        Duration::from_secs(3),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_partial_head_is_closed_at_the_header_timeout() {
    let limits = HttpLimits::default().with_header_read_timeout(Duration::from_millis(300));
    let addr = start_bounded(limits).await;
    let t0 = Instant::now();
    let r = send(
        addr,
        b"GET /healthz HTTP/1.1\r\nhost:",
        Duration::from_secs(5),
    )
    .await;
    let took = t0.elapsed();
    assert!(!r.contains("200"), "{r}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // Keep-alive: an idle connection after a response is closed at the same timeout.
    let t0 = Instant::now();
    let r = send(
        addr,
        b"GET /healthz HTTP/1.1\r\nhost: h\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        }),
    );
    let server = tokio::spawn(serve_bounded(
        listener,
        router,
        HttpLimits::default(),
        async {
            let _ = rx.await;
        },
    ));
    let req = tokio::spawn(send(
        addr,
        b"GET /slow HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
        Duration::from_secs(3),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tx.send(());
    let r = req.await.expect("join");
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("done"), "{r}");
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("server stops")
        .expect("join")
        .expect("ok");
}
