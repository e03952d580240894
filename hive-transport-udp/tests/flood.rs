//! Floods: handshake INITIALs from 1 000 source addresses while a legitimate connection
//! transfers (tables stay bounded, refusals are counted, the transfer completes byte-exact), and
//! a peer that sends stream data far out of order (held bytes stay within the window).

mod util;

use std::net::SocketAddr;

use bytes::Bytes;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::{Config, UdpTransport};
use util::Pair;

#[test]
fn out_of_order_stream_flood_holds_at_most_the_window() {
    let config = Config {
        recv_window: 1 << 20,
        max_message_size: 64 << 10,
        ..Config::default()
    };
    let window = 1u64 << 20;
    let mut p = Pair::new(config, 41);
    let (ca, cb) = p.connect();
    let data = vec![9u8; 1100];
    let mut d = Vec::new();
    // Overlapping segments at every offset of the window, then tiny ones: what the ~9 GB attack
    // did.
    let big = (1..window - 1100).step_by(7).map(|o| (o, 1100));
    let tiny = (1..window).step_by(3).map(|o| (o, 1));
    for (off, len) in big.chain(tiny) {
        let now = p.now;
        assert!(p.a.connection_mut(ca).expect("a").forge_stream_packet(
            now,
            1,
            off,
            &data[..len],
            &mut d
        ));
        p.b.handle_datagram(now, p.a_addr, &d);
        if off % 4096 < 7 {
            let b = p.b.connection(cb).expect("b");
            assert!(
                b.reassembly_buffered()[1] <= window,
                "{:?}",
                b.reassembly_buffered()
            );
        }
    }
    let b = p.b.connection(cb).expect("b");
    let held = b.reassembly_buffered();
    eprintln!(
        "held {held:?} bytes, {} segments dropped",
        b.reassembly_dropped()
    );
    assert!(held[1] <= window && held[1] > 0);
    assert!(b.reassembly_dropped() > 0);
    assert!(b.ended().is_none());
    // Data past the advertised window (a huge offset) is a protocol violation: closed.
    let now = p.now;
    assert!(
        p.a.connection_mut(ca)
            .expect("a")
            .forge_stream_packet(now, 1, 1 << 40, &data, &mut d)
    );
    p.b.handle_datagram(now, p.a_addr, &d);
    let b = p.b.connection(cb).expect("b");
    assert!(b.ended().is_some());
    assert_eq!(b.reassembly_buffered(), [0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_from_a_thousand_sources_leaves_tables_bounded() {
    let config = Config {
        max_connections: 64,
        max_handshakes: 32,
        retry_threshold: 8,
        rate_table_size: 256,
        ..Config::default()
    };
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let server = UdpTransport::bind(loopback, config).await.expect("bind");
    let client = UdpTransport::bind(loopback, Config::default())
        .await
        .expect("bind");
    let (c, s) = tokio::join!(
        client.dial_addr(server.local_addr(), server.local_peer_id()),
        server.accept()
    );
    let (c, s) = (c.expect("dial"), s.expect("accept"));
    // 1 000 sockets on 127.0.1.1 .. 127.0.4.250, each RETRY answered with its cookie (real,
    // non-spoofed addresses: the strongest kind, since a spoofed one never gets past the cookie).
    let flooder =
        hive_transport_udp::flood::Flood::start(server.local_addr(), 20_000, 1000).expect("flood");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The legitimate transfer, during the flood.
    let msgs: Vec<Bytes> = (0..64u32)
        .map(|i| Bytes::from(vec![i as u8; 64 << 10]))
        .collect();
    let send = {
        let (c, msgs) = (c.clone(), msgs.clone());
        tokio::spawn(async move {
            for m in msgs {
                c.send(m, Class::Data).await.expect("send");
            }
        })
    };
    let mut worst = server.endpoint_stats();
    for m in &msgs {
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), s.recv())
            .await
            .expect("transfer stalled")
            .expect("recv")
            .expect("message");
        assert_eq!(&got, m);
        let st = server.endpoint_stats();
        worst.connections = worst.connections.max(st.connections);
        worst.handshakes = worst.handshakes.max(st.handshakes);
        worst.rate_table = worst.rate_table.max(st.rate_table);
    }
    send.await.expect("sender");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sent = flooder.stop();
    let st = server.endpoint_stats();
    eprintln!("flood: {sent} INITIALs sent; stats {st:?}; worst {worst:?}");
    assert!(worst.connections <= 64 && st.connections <= 64);
    assert!(worst.handshakes <= 32 && st.handshakes <= 32);
    assert!(worst.rate_table <= 256 && st.rate_table <= 256);
    assert!(st.retries_sent > 0);
    assert!(
        st.refused_connection_limit
            + st.refused_handshake_limit
            + st.refused_prefix_limit
            + st.refused_rate_limit
            > 0,
        "{st:?}"
    );
    assert!(st.initials > 1000);
    assert!(c.stats().bytes_acked.unwrap_or(0) >= 64 * (64 << 10));
}
