//! The driver on tokio's paused time: the transport's clock is hive-core's production clock on
//! tokio's time, so its timers (keep-alives, the dead-peer bound) run on virtual time — minutes
//! pass in milliseconds of wall time.

use std::time::Duration;

use bytes::Bytes;
use hive_core::TransportError;
use hive_core::transport::{Class, DialTarget, Transport};
use hive_transport_udp::{Config, UdpTransport};

#[tokio::test(start_paused = true)]
async fn keep_alives_and_the_dead_peer_bound_run_on_virtual_time() {
    let wall = std::time::Instant::now();
    let bound = Duration::from_secs(60);
    let config = Config {
        dead_peer_timeout: bound,
        ..Config::default()
    };
    let loopback = "127.0.0.1:0".parse().expect("address");
    let a = UdpTransport::bind(loopback, config).await.expect("bind a");
    let b = UdpTransport::bind(loopback, config).await.expect("bind b");
    let target = DialTarget::new(b.local_peer_id(), b.local_addrs());
    let (ab, ba) = tokio::join!(a.dial(&target), b.accept());
    let (ab, ba) = (ab.expect("dial"), ba.expect("accept"));

    // Five idle minutes, five times the bound: keep-alives (every quarter of it) keep both
    // ends alive.
    let idle_from = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(idle_from.elapsed() >= Duration::from_secs(300));
    ab.send(Bytes::from_static(b"still there?"), Class::Control)
        .await
        .expect("a sends after the idle minutes");
    assert_eq!(
        ba.recv().await.expect("b receives").as_deref(),
        Some(&b"still there?"[..])
    );
    ba.send(Bytes::from_static(b"yes"), Class::Control)
        .await
        .expect("b answers");
    assert_eq!(
        ab.recv().await.expect("a receives").as_deref(),
        Some(&b"yes"[..])
    );

    // b vanishes without a word; a last heard of it just now, and reports it gone when it has
    // been silent for the bound — not before, and not much after.
    let heard = tokio::time::Instant::now();
    b.halt();
    let r = ab.recv().await;
    let waited = heard.elapsed();
    let Err(TransportError::PeerGone { silent_for, .. }) = r else {
        panic!("expected PeerGone, got {r:?}");
    };
    assert!(
        silent_for >= bound && silent_for < bound + Duration::from_millis(50),
        "silent for {silent_for:?}"
    );
    assert!(
        waited >= bound && waited < bound + Duration::from_millis(50),
        "reported after {waited:?}"
    );
    // Six minutes of the transport's time took well under the bound's second of wall time.
    assert!(
        wall.elapsed() < Duration::from_secs(10),
        "wall time {:?}",
        wall.elapsed()
    );
}
