//! Run with: `cargo run --release -p hive-transport-udp --example handshake_flood -- [RATE] [SECS]`
//!
//! Measures what a handshake flood costs an endpoint: a child process (this binary with
//! `--serve`) runs a `UdpTransport` with default settings; the parent dials it once and keeps a
//! transfer going, then floods it with RATE (default 50 000) INITIALs per second from 1 000
//! loopback source addresses (127.0.1.1 ..) for SECS (default 10) seconds, answering every
//! RETRY with its cookie (non-spoofed sources: the strongest case). It prints the child's RSS
//! growth and CPU time (from /proc), the endpoint's counters, and the legitimate transfer's
//! goodput before and during the flood, and whether a new client can connect during it.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::{Config, UdpTransport};

fn proc_stat(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (rss_kib / 1024.0, ticks / 100.0)
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let t = UdpTransport::bind("127.0.0.1:0".parse()?, Config::default()).await?;
    println!("{} {}", t.local_addr(), t.local_peer_id());
    let stats_t = t.clone();
    tokio::spawn(async move {
        // Counters to stderr once a second, for the parent to relay.
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            eprintln!("{:?}", stats_t.endpoint_stats());
        }
    });
    loop {
        let c = t.accept().await?;
        tokio::spawn(async move {
            // Echo a 1-byte receipt per message: the parent measures goodput.
            while let Ok(Some(_)) = c.recv().await {
                if c.send(Bytes::from_static(b"k"), Class::Control)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

/// Bytes per second the legitimate connection moves during `dur`.
async fn goodput(c: &Arc<dyn Connection>, dur: Duration) -> f64 {
    let msg = Bytes::from(vec![7u8; 256 << 10]);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        if c.send(msg.clone(), Class::Data).await.is_err() {
            break;
        }
        if !matches!(c.recv().await, Ok(Some(_))) {
            break;
        }
        n += msg.len() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve().await;
    }
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let addr: SocketAddr = parts.next().ok_or("no addr")?.parse()?;
    let id = parts.next().ok_or("no id")?.parse()?;
    let last_stats = Arc::new(parking_lot::Mutex::new(String::new()));
    {
        let (err, last) = (child.stderr.take().ok_or("no stderr")?, last_stats.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                *last.lock() = l;
            }
        });
    }
    let client = UdpTransport::bind("127.0.0.1:0".parse()?, Config::default()).await?;
    let c: Arc<dyn Connection> = client.dial_addr(addr, id).await?;
    let before = goodput(&c, Duration::from_secs(3)).await;
    let (rss0, cpu0) = proc_stat(pid);
    let flooder = hive_transport_udp::flood::Flood::start(addr, rate, 1000)?;
    let t0 = Instant::now();
    let during = goodput(&c, Duration::from_secs(secs)).await;
    let (rss1, cpu1) = proc_stat(pid);
    // A new client (from 127.0.0.1, outside the flood's networks) connects during the flood.
    let newcomer = UdpTransport::bind("127.0.0.1:0".parse()?, Config::default()).await?;
    let t1 = Instant::now();
    let joined = tokio::time::timeout(Duration::from_secs(5), newcomer.dial_addr(addr, id)).await;
    let joined = match joined {
        Ok(Ok(_)) => format!("connected in {:.0} ms", t1.elapsed().as_secs_f64() * 1e3),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(_) => "no connection within 5 s".to_string(),
    };
    let wall = t0.elapsed().as_secs_f64();
    let n = flooder.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "flood: {n} INITIALs in {wall:.1} s ({:.0}/s) from 1000 sources",
        n as f64 / wall
    )?;
    writeln!(
        out,
        "endpoint process: RSS {rss0:.1} -> {rss1:.1} MiB (+{:.1} MiB), CPU {:.2} s over {wall:.1} s ({:.0}% of one core)",
        rss1 - rss0,
        cpu1 - cpu0,
        100.0 * (cpu1 - cpu0) / wall
    )?;
    writeln!(
        out,
        "legitimate connection: {:.1} MB/s before, {:.1} MB/s during the flood",
        before / 1e6,
        during / 1e6
    )?;
    writeln!(out, "a new connection during the flood: {joined}")?;
    writeln!(out, "endpoint stats: {}", last_stats.lock())?;
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
