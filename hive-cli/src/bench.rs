//! `hive bench transport`: moves N bytes over loopback with Hive's UDP transport, kernel TCP,
//! s2n-quic, and Hive's QUIC transport (hive-transport-quic) with s2n-quic's Cubic and with each
//! hive-cc controller inside, one after the other in this process, and reports goodput and CPU
//! cost side by side.
//!
//! The `s2n-quic` row is plain s2n-quic (default TLS and limits, one bulk stream); the `quic-*`
//! rows go through the `Transport` contract (`CHUNK`-byte Data messages on framed streams, rustls
//! with certificate-bound peer ids) — `quic-s2n-cubic` with s2n-quic's Cubic, `quic-<algo>` with
//! that hive-cc controller inside s2n-quic. With `--cc`, the listed controllers each get a
//! `udp-<algo>` row (Hive's UDP transport with that controller) and a `quic-<algo>` row, one
//! after the other, so scavengers and Cubic are compared over both transports in one run.
//!
//! How each transport is measured:
//!
//! - **Handshake** (reported, not counted in goodput): from the start of dial/connect until both
//!   the dialling and the accepting side hold the connection (sockets bound, keys and certificates
//!   made beforehand).
//! - **Goodput** = bytes × 8 / wall time of the transfer: from the first send until the receiver
//!   has counted the last byte (graceful close and teardown excluded).
//! - **CPU** = user + system time of the whole process from `getrusage(RUSAGE_SELF)`, read just
//!   before and just after the transfer. Both ends run in this process, so it is the cost of
//!   sending *and* receiving, divided by GiB moved.
//!
//! All three run on one tokio runtime with two worker threads; the receiver fails the run if it
//! counts a byte more or less than was sent.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hive_cc::Algorithm;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_quic::{Config as QuicConfig, Congestion, QuicTransport};
use hive_transport_udp::{Config, UdpTransport};
use nix::sys::resource::{UsageWho, getrusage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::BenchTransportArgs;

/// Message size for Hive's UDP transport and write size for TCP; chunk size for s2n-quic.
const CHUNK: usize = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;

/// One transport's figures.
struct Row {
    name: String,
    handshake: Duration,
    transfer: Duration,
    cpu_user: Duration,
    cpu_sys: Duration,
}

impl Row {
    fn gbit_s(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.transfer.as_secs_f64() / 1e9
    }

    fn cpu_s_per_gib(&self, bytes: u64) -> f64 {
        (self.cpu_user + self.cpu_sys).as_secs_f64() / (bytes as f64 / GIB)
    }
}

/// Process CPU time so far: (user, system), from `getrusage(RUSAGE_SELF)`.
fn cpu_times() -> Result<(Duration, Duration)> {
    let u = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    Ok((d(u.user_time()), d(u.system_time())))
}

/// Times `transfer` (wall and CPU) and checks it reports `bytes` received.
async fn measure<F>(name: &str, bytes: u64, handshake: Duration, transfer: F) -> Result<Row>
where
    F: Future<Output = Result<u64>>,
{
    let (u0, s0) = cpu_times()?;
    let t0 = Instant::now();
    let received = transfer.await.with_context(|| format!("{name} transfer"))?;
    let elapsed = t0.elapsed();
    let (u1, s1) = cpu_times()?;
    if received != bytes {
        bail!("{name}: the receiver counted {received} bytes, {bytes} were sent");
    }
    Ok(Row {
        name: name.to_string(),
        handshake,
        transfer: elapsed,
        cpu_user: u1.saturating_sub(u0),
        cpu_sys: s1.saturating_sub(s0),
    })
}

/// `CHUNK`-byte Data messages from `c` to `s` over any `Transport`'s connection.
async fn messages(
    name: &str,
    bytes: u64,
    handshake: Duration,
    c: Arc<dyn Connection>,
    s: Arc<dyn Connection>,
) -> Result<Row> {
    measure(name, bytes, handshake, async {
        let msg = Bytes::from(vec![0x5a; CHUNK]);
        let sender = {
            let c = c.clone();
            tokio::spawn(async move {
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    c.send(msg.slice(..n), Class::Data).await?;
                    left -= n as u64;
                }
                Ok::<_, hive_core::TransportError>(())
            })
        };
        let mut got = 0u64;
        while got < bytes {
            match s.recv().await? {
                Some(m) => got += m.len() as u64,
                None => break,
            }
        }
        sender.await??;
        Ok(got)
    })
    .await
}

/// Hive's UDP transport, default [`Config`] (Noise-encrypted) but for the congestion controller
/// when one is given, `CHUNK`-byte Data messages over one connection.
async fn hive_udp(name: &str, bytes: u64, cc: Option<Algorithm>) -> Result<Row> {
    let loopback = "127.0.0.1:0".parse()?;
    let config = Config {
        cc: cc.unwrap_or(Config::default().cc),
        ..Config::default()
    };
    let server = UdpTransport::bind(loopback, config).await?;
    let client = UdpTransport::bind(loopback, config).await?;
    let t = Instant::now();
    let (c, s) = tokio::join!(
        client.dial_addr(server.local_addr(), server.local_peer_id()),
        server.accept()
    );
    let (c, s): (Arc<dyn Connection>, Arc<dyn Connection>) = (c?, s?);
    let handshake = t.elapsed();
    let row = messages(name, bytes, handshake, c.clone(), s).await?;
    c.close().await;
    client.shutdown().await;
    server.shutdown().await;
    Ok(row)
}

/// Hive's QUIC transport with `congestion` inside, default config otherwise, `CHUNK`-byte Data
/// messages over one connection.
async fn hive_quic(name: &str, bytes: u64, congestion: Congestion) -> Result<Row> {
    let loopback = "127.0.0.1:0".parse()?;
    let config = QuicConfig {
        congestion,
        ..QuicConfig::default()
    };
    let server = QuicTransport::bind(loopback, config).await?;
    let client = QuicTransport::bind(loopback, config).await?;
    let t = Instant::now();
    let (c, s) = tokio::join!(
        client.dial_addr(server.local_addr(), server.local_peer_id()),
        server.accept()
    );
    let (c, s): (Arc<dyn Connection>, Arc<dyn Connection>) = (c?, s?);
    let handshake = t.elapsed();
    let row = messages(name, bytes, handshake, c.clone(), s).await?;
    c.close().await;
    client.shutdown().await;
    server.shutdown().await;
    Ok(row)
}

/// One row of the run.
#[derive(Clone, Debug)]
enum Bench {
    /// Hive's UDP transport, with this controller instead of its default.
    Udp(Option<Algorithm>),
    Tcp,
    S2nQuic,
    /// Hive's QUIC transport with this controller.
    Quic(Congestion),
}

/// The rows: Hive UDP, TCP, s2n-quic, Hive QUIC with s2n-quic's Cubic, then every hive-cc
/// controller inside Hive QUIC — or, given `cc`, a Hive UDP and a Hive QUIC row per controller.
fn rows(cc: &[Algorithm]) -> Vec<(String, Bench)> {
    let mut rows = vec![
        ("hive-udp".to_string(), Bench::Udp(None)),
        ("tcp".to_string(), Bench::Tcp),
        ("s2n-quic".to_string(), Bench::S2nQuic),
        (
            "quic-s2n-cubic".to_string(),
            Bench::Quic(Congestion::S2nCubic),
        ),
    ];
    if cc.is_empty() {
        for a in Algorithm::ALL {
            rows.push((
                format!("quic-{}", a.name()),
                Bench::Quic(Congestion::Hive(a)),
            ));
        }
    }
    for &a in cc {
        rows.push((format!("udp-{a}"), Bench::Udp(Some(a))));
        rows.push((format!("quic-{a}"), Bench::Quic(Congestion::Hive(a))));
    }
    rows
}

/// Kernel TCP on loopback: `write_all` of `CHUNK`-byte buffers, a read loop into a `CHUNK` buffer.
async fn tcp(bytes: u64) -> Result<Row> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let t = Instant::now();
    let (c, s) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (mut c, (mut s, _)) = (c?, s?);
    let handshake = t.elapsed();
    measure("tcp", bytes, handshake, async move {
        let sender = tokio::spawn(async move {
            let buf = vec![0x5a; CHUNK];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                c.write_all(&buf[..n]).await?;
                left -= n as u64;
            }
            c.shutdown().await
        });
        let mut buf = vec![0; CHUNK];
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        sender.await??;
        Ok(got)
    })
    .await
}

/// s2n-quic with its default configuration: see [`hive_transport_quic::baseline`].
async fn s2n_quic(bytes: u64) -> Result<Row> {
    let endpoints = hive_transport_quic::baseline::start()?;
    let t = Instant::now();
    let pair = endpoints.connect().await?;
    let handshake = t.elapsed();
    measure("s2n-quic", bytes, handshake, async {
        Ok(pair.transfer(bytes, CHUNK).await?)
    })
    .await
}

async fn run_all(bytes: u64, cc: &[Algorithm]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, bench) in self::rows(cc) {
        eprintln!("hive bench transport: {name}, {bytes} bytes ...");
        let row = match bench {
            Bench::Udp(algo) => hive_udp(&name, bytes, algo).await?,
            Bench::Tcp => tcp(bytes).await?,
            Bench::S2nQuic => s2n_quic(bytes).await?,
            Bench::Quic(congestion) => hive_quic(&name, bytes, congestion).await?,
        };
        eprintln!(
            "hive bench transport: {name}: {:.2} Gbit/s, {:.2} CPU s/GiB",
            row.gbit_s(bytes),
            row.cpu_s_per_gib(bytes)
        );
        rows.push(row);
        // Let the previous transport's background tasks wind down before the next CPU reading.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(rows)
}

fn print_table(bytes: u64, rows: &[Row], wall: Duration) {
    println!(
        "hive bench transport: {bytes} bytes ({:.2} GiB) over 127.0.0.1, sender and receiver in one process",
        bytes as f64 / GIB
    );
    println!(
        "{:<16} {:>8} {:>11} {:>9} {:>9} {:>12} {:>10}",
        "transport", "Gbit/s", "CPU s/GiB", "user s", "sys s", "transfer s", "handshake"
    );
    for r in rows {
        println!(
            "{:<16} {:>8.2} {:>11.2} {:>9.2} {:>9.2} {:>12.2} {:>8.1}ms",
            r.name,
            r.gbit_s(bytes),
            r.cpu_s_per_gib(bytes),
            r.cpu_user.as_secs_f64(),
            r.cpu_sys.as_secs_f64(),
            r.transfer.as_secs_f64(),
            r.handshake.as_secs_f64() * 1e3
        );
    }
    println!(
        "Gbit/s: bytes x 8 / transfer wall time (handshake excluded). CPU: user+sys of the whole \
         process (both ends) by getrusage(RUSAGE_SELF) around each transfer. Total {:.1} s.",
        wall.as_secs_f64()
    );
}

fn json(bytes: u64, rows: &[Row], wall: Duration) -> serde_json::Value {
    let transports: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "gbit_s": r.gbit_s(bytes),
                "cpu_s_per_gib": r.cpu_s_per_gib(bytes),
                "handshake_ms": r.handshake.as_secs_f64() * 1e3,
                "transfer_s": r.transfer.as_secs_f64(),
                "cpu_user_s": r.cpu_user.as_secs_f64(),
                "cpu_sys_s": r.cpu_sys.as_secs_f64(),
            })
        })
        .collect();
    serde_json::json!({
        "bytes": bytes,
        "transports": transports,
        "cpu_scope": "process user+sys (getrusage RUSAGE_SELF), sender and receiver in one process",
        "wall_s": wall.as_secs_f64(),
    })
}

/// Runs `hive bench transport`.
pub(crate) fn transport(args: &BenchTransportArgs) -> ExitCode {
    if args.bytes == 0 {
        eprintln!("hive bench transport: --bytes must be at least 1");
        return ExitCode::from(2);
    }
    let cc = match args
        .cc
        .iter()
        .map(|s| s.parse::<Algorithm>())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(cc) => cc,
        Err(e) => {
            eprintln!("hive bench transport: --cc: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let rows = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")
        .and_then(|rt| rt.block_on(run_all(args.bytes, &cc)));
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hive bench transport: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let wall = started.elapsed();
    if args.json {
        println!("{}", json(args.bytes, &rows, wall));
    } else {
        print_table(args.bytes, &rows, wall);
    }
    ExitCode::SUCCESS
}

/// Parses a byte count: digits with an optional binary suffix (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (e.g. 1073741824, 256MiB, 1GiB)"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use K, M or G: binary units)"
            ));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::{Algorithm, parse_bytes, rows};

    #[test]
    fn cc_rows_race_each_controller_over_both_transports() {
        let names = |cc: &[Algorithm]| rows(cc).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            names(&[]),
            [
                "hive-udp",
                "tcp",
                "s2n-quic",
                "quic-s2n-cubic",
                "quic-newreno",
                "quic-cubic",
                "quic-ledbat",
                "quic-ledbat++",
                "quic-dtl"
            ]
        );
        assert_eq!(
            names(&[Algorithm::Cubic, Algorithm::Dtl(0.0)])[4..],
            ["udp-cubic", "quic-cubic", "udp-dtl:0", "quic-dtl:0"]
        );
    }

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("8M"), Ok(8 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert!(parse_bytes("1T").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }
}
