//! A background flow against a foreground flow, both QUIC, through the emulated home link of the
//! CC arena (10 Mbit/s, 40 ms RTT, 250 ms drop-tail buffer): how much of the bottleneck the
//! background flow takes. The target for LEDBAT against s2n-quic's Cubic is at most 15%.
//!
//! Run with:
//! `cargo run --release -p hive-transport-quic --example share -- --duration 60`
//!
//! Both flows send from their own client transport (each with its own congestion controller)
//! through one `hive_transport_udp::emulator::Emulator` to one server, so they share the
//! forward bottleneck. Throughput counts the bytes the server received per flow between the end
//! of the warm-up and the end of the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_quic::{Config, Congestion, QuicTransport};
use hive_transport_udp::emulator::{Direction, Emulator};

#[derive(Parser, Debug)]
struct Args {
    /// The background flow's controller (`ledbat`, `ledbat++`, `dtl:0`, ...).
    #[arg(long, default_value = "ledbat")]
    background: Congestion,
    /// The foreground flow's controller (`s2n-cubic`, or a hive-cc one).
    #[arg(long, default_value = "s2n-cubic")]
    foreground: Congestion,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds before measuring.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// Bottleneck rate, Mbit/s.
    #[arg(long, default_value_t = 10)]
    rate_mbps: u64,
    /// Round-trip propagation delay, ms.
    #[arg(long, default_value_t = 40)]
    rtt_ms: u64,
    /// Drop-tail buffer, ms at the bottleneck rate.
    #[arg(long, default_value_t = 250)]
    buffer_ms: u64,
    /// One JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let rate_bps = args.rate_mbps * 1_000_000;
    let one_way = hive_core::time::Duration::from_millis(args.rtt_ms / 2);
    let buffer = rate_bps / 8 * args.buffer_ms / 1000;
    let link = Direction::new(rate_bps, one_way).with_buffer(buffer);
    let loopback = "127.0.0.1:0".parse()?;
    let config = |congestion| Config {
        congestion,
        dead_peer_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let server = QuicTransport::bind(loopback, config(Congestion::S2nCubic)).await?;
    let emu = Emulator::start(server.local_addr(), link, link).await?;
    let flows = [
        ("background", args.background),
        ("foreground", args.foreground),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let mut counters = Vec::new();
    let mut clients = Vec::new();
    for (role, congestion) in flows {
        let client = QuicTransport::bind(loopback, config(congestion)).await?;
        let (c, s) = tokio::join!(
            client.dial_addr(emu.addr(), server.local_peer_id()),
            server.accept()
        );
        let (c, s) = (c?, s?);
        let received = Arc::new(AtomicU64::new(0));
        {
            let received = received.clone();
            tokio::spawn(async move {
                while let Ok(Some(m)) = s.recv().await {
                    received.fetch_add(m.len() as u64, Ordering::Relaxed);
                }
            });
        }
        {
            let stop = stop.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let msg = Bytes::from(vec![0x5a; 64 << 10]);
                while !stop.load(Ordering::Relaxed) {
                    if c.send(msg.clone(), Class::Data).await.is_err() {
                        break;
                    }
                }
            });
        }
        eprintln!("share: {role} flow ({congestion}) connected");
        counters.push((role, congestion, received, c));
        clients.push(client);
    }
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let at_start: Vec<u64> = counters
        .iter()
        .map(|c| c.2.load(Ordering::Relaxed))
        .collect();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let secs = t0.elapsed().as_secs_f64();
    let bytes: Vec<u64> = counters
        .iter()
        .zip(&at_start)
        .map(|(c, s)| c.2.load(Ordering::Relaxed).saturating_sub(*s))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let total: u64 = bytes.iter().sum();
    let mbps = |b: u64| b as f64 * 8.0 / secs / 1e6;
    let utilization = mbps(total) / args.rate_mbps as f64;
    let es = emu.stats();
    let rows: Vec<_> = counters
        .iter()
        .zip(&bytes)
        .map(|((role, congestion, _, conn), &b)| {
            let st = conn.stats();
            serde_json::json!({
                "role": role,
                "algo": congestion.label(),
                "throughput_mbps": mbps(b),
                "share": if total > 0 { b as f64 / total as f64 } else { 0.0 },
                "packets_lost": st.packets_lost,
                "rtt_ms": st.rtt.map(|r| r.as_secs_f64() * 1e3),
            })
        })
        .collect();
    let report = serde_json::json!({
        "scenario": format!("{}-vs-{}-over-quic", args.background, args.foreground),
        "link": {
            "rate_mbps": args.rate_mbps,
            "rtt_ms": args.rtt_ms,
            "buffer_ms": args.buffer_ms,
            "loss": 0.0,
        },
        "flows": rows,
        "utilization": utilization,
        "measured_s": secs,
        "bottleneck_overflow_drops": es.forward.link.overflow_drops,
        "wall_s": started.elapsed().as_secs_f64(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "QUIC through {} Mbit/s, {} ms RTT, {} ms buffer; {:.0} s measured after {} s warm-up",
            args.rate_mbps, args.rtt_ms, args.buffer_ms, secs, args.warmup
        );
        for (row, &b) in rows.iter().zip(&bytes) {
            println!(
                "{:<11} {:<10} {:>7.2} Mbit/s  share {:>5.1}%",
                row["role"].as_str().unwrap_or("?"),
                row["algo"].as_str().unwrap_or("?"),
                mbps(b),
                if total > 0 {
                    100.0 * b as f64 / total as f64
                } else {
                    0.0
                }
            );
        }
        println!(
            "utilization {:.1}%; bottleneck overflow drops {}",
            100.0 * utilization,
            es.forward.link.overflow_drops
        );
    }
    Ok(())
}
