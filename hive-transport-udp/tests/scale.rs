//! 200 simultaneous connections on one server socket, and a live priority change.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bytes::Bytes;
use hive_core::time::Duration;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::emulator::{Direction, Emulator};
use hive_transport_udp::{Config, UdpTransport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_share_one_socket() {
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let server = UdpTransport::bind(loopback, Config::default())
        .await
        .expect("bind");
    let echo = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..200 {
                let c = server.accept().await.expect("accept");
                held.push(c.clone());
                tokio::spawn(async move {
                    while let Ok(Some(m)) = c.recv().await {
                        if c.send(m, Class::Data).await.is_err() {
                            break;
                        }
                    }
                });
            }
            held
        })
    };
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(
            UdpTransport::bind(loopback, Config::default())
                .await
                .expect("bind"),
        );
    }
    let mut tasks = Vec::new();
    for (k, client) in clients.iter().enumerate() {
        for j in 0..20u8 {
            let client = client.clone();
            let (addr, id) = (server.local_addr(), server.local_peer_id());
            tasks.push(tokio::spawn(async move {
                let c: Arc<dyn Connection> = client.dial_addr(addr, id).await.expect("dial");
                let msg = Bytes::from(vec![k as u8 ^ j; 10_000 + j as usize]);
                c.send(msg.clone(), Class::Data).await.expect("send");
                let back = c.recv().await.expect("recv").expect("echo");
                assert_eq!(back, msg);
                c
            }));
        }
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(
            tokio::time::timeout(StdDuration::from_secs(60), t)
                .await
                .expect("in time")
                .expect("task"),
        );
    }
    let held = echo.await.expect("echo");
    assert_eq!(conns.len(), 200);
    assert_eq!(held.len(), 200);
    let mut ids: Vec<_> = held.iter().map(|c| c.remote_peer_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "one id per client endpoint");
}

/// Bytes received on `conns` during `d`.
async fn received_during(conns: &[Arc<dyn Connection>], d: StdDuration) -> Vec<u64> {
    let before: Vec<u64> = conns.iter().map(|c| c.stats().bytes_received).collect();
    tokio::time::sleep(d).await;
    conns
        .iter()
        .zip(before)
        .map(|(c, b)| c.stats().bytes_received - b)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_change_mid_transfer_takes_effect() {
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let server = UdpTransport::bind(loopback, Config::default())
        .await
        .expect("bind");
    let client = UdpTransport::bind(loopback, Config::default())
        .await
        .expect("bind");
    // 10 Mbit/s, 40 ms RTT, 300 ms of buffer: room for DTL at p = 0 to see queuing delay.
    let dir = Direction::new(10_000_000, Duration::from_millis(20)).with_buffer(375_000);
    let emu = Emulator::start(server.local_addr(), dir, dir)
        .await
        .expect("emulator");
    let mut senders = Vec::new();
    let mut receivers: Vec<Arc<dyn Connection>> = Vec::new();
    for _ in 0..2 {
        let (c, s) = tokio::join!(
            client.dial_addr(emu.addr(), server.local_peer_id()),
            server.accept()
        );
        let (c, s): (Arc<dyn Connection>, _) = (c.expect("dial"), s.expect("accept"));
        senders.push(c.clone());
        receivers.push(s.clone());
        tokio::spawn(async move {
            let m = Bytes::from(vec![0u8; 64 << 10]);
            while c.send(m.clone(), Class::Data).await.is_ok() {}
        });
        tokio::spawn(async move { while let Ok(Some(_)) = s.recv().await {} });
    }
    assert_eq!(senders[0].stats().cc_priority, Some(1.0));
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let equal = received_during(&receivers, StdDuration::from_secs(4)).await;
    senders[0].set_cc_priority(0.0).expect("DTL has a priority");
    assert_eq!(senders[0].stats().cc_priority, Some(0.0));
    assert_eq!(senders[1].stats().cc_priority, Some(1.0));
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let yielded = received_during(&receivers, StdDuration::from_secs(4)).await;
    let share = |v: &[u64]| v[0] as f64 / (v[0] + v[1]).max(1) as f64;
    eprintln!(
        "share of flow 0: {:.2} at p = 1 vs 1, {:.2} at p = 0 vs 1 (bytes {equal:?} then {yielded:?}); emulator {:?}",
        share(&equal),
        share(&yielded),
        emu.stats()
    );
    assert!(
        share(&yielded) < share(&equal),
        "lowering the priority did not lower the share"
    );
    assert!(senders[0].set_cc_priority(3.0).is_err());
}
