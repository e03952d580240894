//! Byte-exact transfers through the link emulator with loss, reordering and duplication.

use std::sync::Arc;

use bytes::Bytes;
use hive_core::time::Duration;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::emulator::{Direction, Emulator};
use hive_transport_udp::{Config, UdpTransport};

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

/// Sends `total` bytes in 1 MiB messages through a 5%-loss, reordering, duplicating path and
/// checks every byte.
async fn lossy_transfer(total: usize) {
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let config = Config {
        dead_peer_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let server = UdpTransport::bind(loopback, config).await.expect("bind");
    let client = UdpTransport::bind(loopback, config).await.expect("bind");
    let dir = |seed| {
        Direction::new(200_000_000, Duration::from_millis(1))
            .with_loss(0.05)
            .with_reorder(0.05, Duration::from_millis(3))
            .with_duplicate(0.02)
            .with_seed(seed)
    };
    let emu = Emulator::start(server.local_addr(), dir(7), dir(8))
        .await
        .expect("emulator");
    let (c, s) = tokio::join!(
        client.dial_addr(emu.addr(), server.local_peer_id()),
        server.accept()
    );
    let (c, s): (Arc<dyn Connection>, _) = (c.expect("dial"), s.expect("accept"));
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
        "{total} bytes in {secs:.2} s ({:.1} Mbit/s); sender {st:?}; emulator {es:?}",
        total as f64 * 8.0 / secs / 1e6
    );
    assert!(
        es.forward.link.random_drops > 0 && es.forward.reordered > 0 && es.forward.duplicated > 0
    );
    assert!(st.packets_lost.unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_mib_survive_loss_reordering_and_duplication() {
    lossy_transfer(4 << 20).await;
}

/// The 64 MiB case. Run with:
/// `cargo test --release -p hive-transport-udp --test emulated -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "64 MiB at 5% loss: slow in debug builds; run in release"]
async fn sixty_four_mib_survive_loss_reordering_and_duplication() {
    lossy_transfer(64 << 20).await;
}
