//! Floods: handshake INITIALs from 1 000 source addresses while a legitimate connection
//! transfers (tables stay bounded, refusals are counted, the transfer completes byte-exact), and
//! a peer that sends stream data far out of order (held bytes stay within the window).

mod util;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use hive_core::transport::{Class, Connection, Transport};
use hive_transport_udp::{Config, UdpTransport, wire};
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

/// An INITIAL with a random ephemeral key (and `cookie`), padded to 1200 bytes.
fn initial(cid: u64, cookie: &[u8], seed: u64) -> Vec<u8> {
    let mut d = vec![0x01];
    d.extend_from_slice(&wire::VERSION.to_be_bytes());
    d.extend_from_slice(&cid.to_be_bytes());
    d.push(cookie.len() as u8);
    d.extend_from_slice(cookie);
    d.extend_from_slice(&32u16.to_be_bytes());
    let mut x = seed | 1;
    for _ in 0..32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.push(x as u8);
    }
    d.resize(1200, 0);
    d
}

/// 1 000 sockets on 127.0.1.1 .. 127.0.4.250, each sending INITIALs to `to` and answering every
/// RETRY with the cookie (a flood from real, non-spoofed addresses: the strongest kind, since a
/// spoofed one never gets past the cookie).
fn flood(to: SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>, per_second: u64) {
    let mut socks = Vec::new();
    'outer: for a in 1..=4u8 {
        for b in 1..=250u8 {
            let Ok(s) = UdpSocket::bind(SocketAddr::from(([127, 0, a, b], 0))) else {
                continue;
            };
            let _ = s.set_nonblocking(true);
            socks.push(s);
            if socks.len() == 1000 {
                break 'outer;
            }
        }
    }
    let start = std::time::Instant::now();
    let mut n = 0u64;
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        for (i, s) in socks.iter().enumerate() {
            let cid = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
            if s.send_to(&initial(cid, &[], n), to).is_ok() {
                n += 1;
            }
            while let Ok((len, _)) = s.recv_from(&mut buf) {
                // RETRY: 0x02 | version | dst_cid | cookie_len | cookie.
                if len > 14 && buf[0] == 0x02 {
                    let cid = u64::from_be_bytes(buf[5..13].try_into().unwrap_or([0; 8]));
                    let cl = (buf[13] as usize).min(len - 14);
                    let _ = s.send_to(&initial(cid, &buf[14..14 + cl], n), to);
                    n += 1;
                }
            }
        }
        sent.store(n, Ordering::Relaxed);
        let due = start.elapsed().as_secs_f64() * per_second as f64;
        if (n as f64) > due {
            std::thread::sleep(std::time::Duration::from_secs_f64(
                (n as f64 - due) / per_second as f64,
            ));
        }
    }
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
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = {
        let (to, stop, sent) = (server.local_addr(), stop.clone(), sent.clone());
        std::thread::spawn(move || flood(to, stop, sent, 20_000))
    };
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
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flooder");
    let st = server.endpoint_stats();
    eprintln!(
        "flood: {} INITIALs sent; stats {st:?}; worst {worst:?}",
        sent.load(Ordering::Relaxed)
    );
    assert!(worst.connections <= 64 && st.connections <= 64);
    assert!(worst.handshakes <= 32 && st.handshakes <= 32);
    assert!(worst.rate_table <= 256 && st.rate_table <= 256);
    assert!(st.retries_sent > 0);
    assert!(
        st.refused_connection_limit + st.refused_handshake_limit + st.refused_rate_limit > 0,
        "{st:?}"
    );
    assert!(st.initials > 1000);
    assert!(c.stats().bytes_acked.unwrap_or(0) >= 64 * (64 << 10));
}
