//! Measures goodput of one bulk transfer, through the link emulator or straight over loopback.
//!
//! Run with:
//! `cargo run --release -p hive-transport-udp --example goodput -- --rate-mbps 20 --rtt-ms 40 --loss 0.01 --cc dtl:1 --secs 20`
//! `cargo run --release -p hive-transport-udp --example goodput -- --loopback --bytes 536870912`
//! `cargo run --release -p hive-transport-udp --example goodput -- --loss 0 --secs 2 --cookie` (handshake with a retry cookie)
//!
//! Prints one JSON object on stdout; progress goes to stderr.

use std::sync::Arc;
use std::time::Instant as StdInstant;

use bytes::Bytes;
use clap::Parser;
use hive_core::time::Duration;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::emulator::{Direction, Emulator};
use hive_transport_udp::{Config, UdpTransport};

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
    /// Congestion controller (newreno, cubic, ledbat, ledbat++, dtl:P).
    #[arg(long, default_value = "dtl:1")]
    cc: hive_cc::Algorithm,
    /// Measure for this long (emulated runs), after a 2 s warm-up.
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// Skip the emulator: a plain loopback transfer of `--bytes`.
    #[arg(long)]
    loopback: bool,
    /// The acceptor demands a stateless retry cookie (the handshake then takes 2 RTT).
    #[arg(long)]
    cookie: bool,
    /// Bytes to move in a loopback run.
    #[arg(long, default_value_t = 256 << 20)]
    bytes: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = Config {
        cc: args.cc,
        ..Config::default()
    };
    let loopback = "127.0.0.1:0".parse()?;
    let server_config = Config {
        require_retry: args.cookie,
        ..config
    };
    let server = UdpTransport::bind(loopback, server_config).await?;
    let client = UdpTransport::bind(loopback, config).await?;
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
    // The dialler's view: its connection is open after one round trip (two with a cookie); the
    // acceptor's opens half a round trip later, when the dialler's last handshake packet lands.
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
    let (c, s): (Arc<dyn Connection>, _) = (c?, s?);
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
            if std::env::var_os("GOODPUT_DEBUG").is_some() {
                eprintln!("{}", client.debug_summary());
            }
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
        "{{\"mode\":\"{}\",\"cc\":\"{}\",\"rate_mbps\":{},\"rtt_ms\":{},\"loss\":{},\"buffer_ms\":{},\"handshake_ms\":{handshake_ms:.1},\"accept_ms\":{accept_ms:.1},\"seconds\":{secs:.2},\"bytes\":{bytes},\"goodput_mbps\":{mbps:.2},\"utilization\":{:.3},\"sender_loss_rate\":{loss_rate:.4},\"srtt_ms\":{:.1}}}",
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
