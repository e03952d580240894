//! Measures goodput of one bulk QUIC transfer, through the link emulator or straight over
//! loopback — the QUIC twin of hive-transport-udp's `goodput` example (same flags, same JSON).
//!
//! Run with:
//! `cargo run --release -p hive-transport-quic --example goodput -- --rate-mbps 20 --rtt-ms 40 --loss 0.01 --cc dtl:1 --secs 20`
//! `cargo run --release -p hive-transport-quic --example goodput -- --loopback --bytes 536870912`
//!
//! The kernel here has no netem: the dialler reaches the acceptor through
//! `hive_transport_udp::emulator::Emulator`, a UDP relay on loopback whose two directions each
//! run hive-cc's bottleneck model (rate, drop-tail buffer of `--buffer-ms` at the rate, random
//! loss) plus a one-way delay of `--rtt-ms / 2`. Goodput is the application bytes the acceptor
//! received between the end of a 2 s warm-up and the end of the run, over that time.
//!
//! Prints one JSON object on stdout; progress goes to stderr.

use std::time::Instant as StdInstant;

use bytes::Bytes;
use clap::Parser;
use hive_core::time::Duration;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_quic::{Config, Congestion, QuicTransport};
use hive_transport_udp::emulator::{Direction, Emulator};

#[derive(Parser, Debug)]
struct Args {
    /// Bottleneck rate, Mbit/s.
    #[arg(long, default_value_t = 20.0)]
    rate_mbps: f64,
    /// Round-trip propagation delay, ms.
    #[arg(long, default_value_t = 40)]
    rtt_ms: u64,
    /// Random loss per direction.
    #[arg(long, default_value_t = 0.01)]
    loss: f64,
    /// Bottleneck buffer, ms at the rate.
    #[arg(long, default_value_t = 100)]
    buffer_ms: u64,
    /// Congestion controller (newreno, cubic, ledbat, ledbat++, dtl:P, or s2n-cubic).
    #[arg(long, default_value = "dtl:1")]
    cc: Congestion,
    /// Measure for this long (emulated runs), after a 2 s warm-up.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Skip the emulator: a plain loopback transfer of `--bytes`.
    #[arg(long)]
    loopback: bool,
    /// Bytes to move in a loopback run.
    #[arg(long, default_value_t = 256 << 20)]
    bytes: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = Config {
        congestion: args.cc,
        // A lossy handshake may take a few retransmissions; a bulk sender never idles.
        dead_peer_timeout: std::time::Duration::from_secs(30),
        ..Config::default()
    };
    let loopback = "127.0.0.1:0".parse()?;
    let server = QuicTransport::bind(loopback, config).await?;
    let client = QuicTransport::bind(loopback, config).await?;
    let rate_bps = (args.rate_mbps * 1e6) as u64;
    let dir = Direction::new(rate_bps, Duration::from_millis(args.rtt_ms / 2))
        .with_buffer(rate_bps / 8 * args.buffer_ms / 1000)
        .with_loss(args.loss);
    let emu = if args.loopback {
        None
    } else {
        Some(Emulator::start(server.local_addr(), dir, dir.with_seed(2)).await?)
    };
    let target = emu.as_ref().map_or(server.local_addr(), |e| e.addr());
    // Both include the exchange of Hive's stream headers after the QUIC handshake.
    let hs_start = StdInstant::now();
    let ms = |t: StdInstant| t.elapsed().as_secs_f64() * 1e3;
    let ((c, handshake_ms), (s, accept_ms)) = tokio::join!(
        async {
            (
                client.dial_addr(target, server.local_peer_id()).await,
                ms(hs_start),
            )
        },
        async { (server.accept().await, ms(hs_start)) }
    );
    let (c, s) = (c?, s?);
    let msg = Bytes::from(vec![0x5a; 64 << 10]);
    let limit = if args.loopback { args.bytes } else { u64::MAX };
    let sender = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut sent = 0;
            while sent < limit && c.send(msg.clone(), Class::Data).await.is_ok() {
                sent += msg.len() as u64;
            }
        })
    };
    let receiver = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut got = 0u64;
            while got < limit {
                match s.recv().await {
                    Ok(Some(m)) => got += m.len() as u64,
                    _ => break,
                }
            }
            got
        })
    };
    let (secs, bytes) = if args.loopback {
        let t = StdInstant::now();
        let got = receiver.await?;
        (t.elapsed().as_secs_f64(), got)
    } else {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let b0 = s.stats().bytes_received;
        let t = StdInstant::now();
        for _ in 0..args.secs * 2 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let st = c.stats();
            eprintln!(
                "cwnd {:?} in flight {:?} srtt {:?} lost {:?}/{:?} received {}",
                st.cwnd,
                st.bytes_in_flight,
                st.rtt,
                st.packets_lost,
                st.packets_sent,
                s.stats().bytes_received
            );
        }
        (t.elapsed().as_secs_f64(), s.stats().bytes_received - b0)
    };
    sender.abort();
    let st = c.stats();
    let mbps = bytes as f64 * 8.0 / secs / 1e6;
    let loss_rate =
        st.packets_lost.unwrap_or(0) as f64 / st.packets_sent.unwrap_or(1).max(1) as f64;
    let es = emu.as_ref().map(|e| e.stats());
    eprintln!("sender stats: {st:?}\nemulator: {es:?}");
    println!(
        "{{\"mode\":\"{}\",\"transport\":\"quic\",\"cc\":\"{}\",\"rate_mbps\":{},\"rtt_ms\":{},\"loss\":{},\"buffer_ms\":{},\"handshake_ms\":{handshake_ms:.1},\"accept_ms\":{accept_ms:.1},\"seconds\":{secs:.2},\"bytes\":{bytes},\"goodput_mbps\":{mbps:.2},\"utilization\":{:.3},\"sender_loss_rate\":{loss_rate:.4},\"srtt_ms\":{:.1}}}",
        if args.loopback {
            "loopback"
        } else {
            "emulated"
        },
        args.cc,
        if args.loopback { 0.0 } else { args.rate_mbps },
        if args.loopback { 0 } else { args.rtt_ms },
        if args.loopback { 0.0 } else { args.loss },
        args.buffer_ms,
        if args.loopback {
            0.0
        } else {
            mbps / args.rate_mbps
        },
        st.rtt.map_or(0.0, |r| r.as_secs_f64() * 1e3),
    );
    Ok(())
}
