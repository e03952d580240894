//! The UDP transport's loss and delay tests, on the QUIC transport, through the same user-space
//! link emulator (`hive_transport_udp::emulator`): byte-exact transfers under loss, reordering and
//! duplication, and RTT statistics that see the emulated delay.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_quic::{Config, Congestion, QuicConnection, QuicTransport};
use hive_transport_udp::emulator::{Direction, Emulator};

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A server and a client whose connection runs through an emulator with `dir` each way.
async fn through(
    congestion: Congestion,
    forward: Direction,
    backward: Direction,
) -> (
    Arc<QuicTransport>,
    Arc<QuicTransport>,
    Emulator,
    Arc<QuicConnection>,
    Arc<dyn Connection>,
) {
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let config = Config {
        congestion,
        dead_peer_timeout: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let server = QuicTransport::bind(loopback, config).await.expect("bind");
    let client = QuicTransport::bind(loopback, config).await.expect("bind");
    let emu = Emulator::start(server.local_addr(), forward, backward)
        .await
        .expect("emulator");
    let (c, s) = tokio::join!(
        client.dial_addr(emu.addr(), server.local_peer_id()),
        server.accept()
    );
    (server, client, emu, c.expect("dial"), s.expect("accept"))
}

/// Sends `total` bytes in 1 MiB messages through a 5%-loss, reordering, duplicating path and
/// checks every byte.
async fn lossy_transfer(total: usize, congestion: Congestion) {
    let dir = |seed| {
        Direction::new(200_000_000, hive_core::time::Duration::from_millis(1))
            .with_loss(0.05)
            .with_reorder(0.05, hive_core::time::Duration::from_millis(3))
            .with_duplicate(0.02)
            .with_seed(seed)
    };
    let (_server, _client, emu, c, s) = through(congestion, dir(7), dir(8)).await;
    let chunk = 1 << 20;
    let n = total.div_ceil(chunk);
    let sender = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 0..n {
                let len = chunk.min(total - i * chunk);
                c.send(Bytes::from(pattern(len, i as u64)), Class::Data)
                    .await
                    .expect("send");
            }
        })
    };
    let started = std::time::Instant::now();
    for i in 0..n {
        let m = s.recv().await.expect("recv").expect("message");
        let len = chunk.min(total - i * chunk);
        assert!(m == pattern(len, i as u64), "message {i} corrupted");
    }
    sender.await.expect("sender");
    let secs = started.elapsed().as_secs_f64();
    let st = c.stats();
    let es = emu.stats();
    eprintln!(
        "{congestion}: {total} bytes in {secs:.2} s ({:.1} Mbit/s); sender {st:?}; emulator {es:?}",
        total as f64 * 8.0 / secs / 1e6
    );
    assert!(
        es.forward.link.random_drops > 0 && es.forward.reordered > 0 && es.forward.duplicated > 0
    );
    assert!(st.packets_lost.unwrap_or(0) > 0, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_mib_survive_loss_reordering_and_duplication_with_dtl_inside() {
    lossy_transfer(4 << 20, Congestion::Hive(hive_cc::Algorithm::Dtl(1.0))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_mib_survive_loss_reordering_and_duplication_with_ledbat_inside() {
    lossy_transfer(4 << 20, Congestion::Hive(hive_cc::Algorithm::Ledbat)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_mib_survive_loss_reordering_and_duplication_with_s2n_cubic() {
    lossy_transfer(4 << 20, Congestion::S2nCubic).await;
}

/// The 64 MiB case. Run with:
/// `cargo test --release -p hive-transport-quic --test emulated -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "64 MiB at 5% loss: slow in debug builds; run in release"]
async fn sixty_four_mib_survive_loss_reordering_and_duplication() {
    lossy_transfer(64 << 20, Congestion::Hive(hive_cc::Algorithm::Dtl(1.0))).await;
}

/// A 40 ms round trip (20 ms each way): the connection's RTT statistics see it, and a control
/// message still arrives in about one way's delay while data is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_statistics_see_the_emulated_delay() {
    let dir = Direction::new(50_000_000, hive_core::time::Duration::from_millis(20));
    let (_server, _client, _emu, c, s) =
        through(Congestion::Hive(hive_cc::Algorithm::Dtl(1.0)), dir, dir).await;
    for i in 0..20u64 {
        c.send(Bytes::from(pattern(100_000, i)), Class::Data)
            .await
            .expect("send");
    }
    for _ in 0..20 {
        s.recv().await.expect("recv").expect("message");
    }
    let st = c.stats();
    let (rtt, min_rtt) = (st.rtt.expect("rtt"), st.min_rtt.expect("min rtt"));
    assert!(
        min_rtt >= Duration::from_millis(40) && min_rtt < Duration::from_millis(60),
        "min RTT {min_rtt:?} on a 40 ms path"
    );
    assert!(rtt >= min_rtt, "{st:?}");
    assert!(st.cwnd.is_some_and(|w| w > 0) && st.packets_sent.is_some_and(|p| p > 0));
    assert_eq!(st.messages_sent, 20);
    assert_eq!(st.bytes_sent, 2_000_000);
}
