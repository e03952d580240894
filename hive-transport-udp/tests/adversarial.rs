//! Garbage, truncated, replayed and forged datagrams are dropped without harming the connection
//! and without an amplifying reply; the handshake's round trips, retry cookie and version
//! negotiation.

mod util;

use hive_core::time::{Duration, Instant};
use hive_core::transport::Class;
use hive_transport_udp::{Config, RecvPoll};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use util::Pair;

/// Sends one message a -> b and waits for it.
fn round(p: &mut Pair, ca: u64, cb: u64, msg: &[u8]) -> bool {
    let sent = p.a.connection_mut(ca).expect("a").send(msg, Class::Data);
    assert!(matches!(sent, Ok(true)), "send: {sent:?}");
    p.run_until(Duration::from_secs(20), |p| {
        matches!(
            p.b.connection_mut(cb).expect("b").recv(),
            Ok(RecvPoll::Message(m)) if m == msg
        )
    })
}

#[test]
fn garbage_truncated_replayed_and_forged_packets_are_dropped() {
    let mut p = Pair::new(Config::default(), 3);
    let (ca, cb) = p.connect();
    assert!(round(&mut p, ca, cb, &[1u8; 5000]));
    let real: Vec<Vec<u8>> = p
        .captured
        .iter()
        .filter(|d| d[0] == 0x06)
        .cloned()
        .collect();
    assert!(real.len() >= 4);
    let attacker = "127.0.0.1:6666".parse().expect("addr");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut injected = 0u64;
    let dropped_before = p.b.connection(cb).expect("b").dropped_datagrams();
    let a_addr = p.a_addr;
    let inject = |p: &mut Pair, from, d: &[u8], injected: &mut u64| {
        *injected += d.len() as u64;
        let now = p.now;
        p.b.handle_datagram(now, from, d);
    };
    for i in 0..2000 {
        let len = rng.random_range(0..1500);
        let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 2 == 0 && !d.is_empty() {
            d[0] = rng.random_range(0..8); // hit every packet type
        }
        inject(&mut p, attacker, &d, &mut injected);
    }
    for d in &real {
        // Replayed as is, from the real address and from elsewhere.
        inject(&mut p, a_addr, d, &mut injected);
        inject(&mut p, attacker, d, &mut injected);
        // Truncated.
        for cut in [1, 9, 17, 20, d.len() - 1] {
            inject(&mut p, a_addr, &d[..cut.min(d.len())], &mut injected);
        }
        // Forged: one bit flipped in the packet number, then in the ciphertext.
        for at in [12, d.len() - 5] {
            let mut f = d.clone();
            f[at] ^= 0x20;
            inject(&mut p, a_addr, &f, &mut injected);
        }
        // A right connection id with a random body.
        let mut f = d[..17].to_vec();
        f.extend((0..200).map(|_| rng.random::<u8>()));
        inject(&mut p, attacker, &f, &mut injected);
    }
    let dropped = p.b.connection(cb).expect("b").dropped_datagrams() - dropped_before;
    assert!(dropped >= real.len() as u64 * 4, "dropped {dropped}");
    // Nothing went to the attacker, and the connection still works both ways.
    p.step();
    let to_attacker: u64 = p
        .to_others
        .iter()
        .filter(|t| t.destination == attacker)
        .map(|t| t.contents.len() as u64)
        .sum();
    assert!(
        to_attacker * 3 <= injected,
        "{to_attacker} bytes answered to {injected} injected"
    );
    assert!(p.b.connection(cb).expect("b").ended().is_none());
    assert!(round(&mut p, ca, cb, &[2u8; 70_000]));
}

#[test]
fn an_unverified_address_gets_less_than_three_times_what_it_sent() {
    let mut p = Pair::new(Config::default(), 4);
    let attacker = "127.0.0.1:6666".parse().expect("addr");
    // Well-formed INITIALs with random ephemeral keys: each may get a RESPONSE, never more than
    // it cost the sender.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut sent = 0;
    for i in 0..50u64 {
        let mut d = vec![0x01];
        d.extend_from_slice(&hive_transport_udp::wire::VERSION.to_be_bytes());
        d.extend_from_slice(&(1000 + i % 10).to_be_bytes());
        d.push(0);
        d.extend_from_slice(&32u16.to_be_bytes());
        d.extend((0..32).map(|_| rng.random::<u8>()));
        d.resize(1200, 0);
        sent += d.len();
        let now = p.now;
        p.b.handle_datagram(now, attacker, &d);
        // Short INITIALs are ignored outright.
        p.b.handle_datagram(now, attacker, &d[..600]);
        sent += 600;
    }
    p.step();
    let answered: usize = p.to_others.iter().map(|t| t.contents.len()).sum();
    assert!(answered > 0, "well-formed INITIALs get a RESPONSE");
    assert!(answered * 3 <= sent, "{answered} bytes answered to {sent}");
}

fn handshake_time(config: Config) -> Duration {
    let mut p = Pair::new(config, 6);
    p.delay = Duration::from_millis(20);
    let start: Instant = p.now;
    let cid =
        p.a.connect(start, p.b_addr, p.b.local_peer_id())
            .expect("connect");
    assert!(p.run_until(Duration::from_secs(5), |p| {
        p.a.connection(cid).is_some_and(|c| c.is_open())
    }));
    p.now - start
}

#[test]
fn handshake_takes_one_round_trip_and_two_with_a_cookie() {
    let one = handshake_time(Config::default());
    let two = handshake_time(Config {
        require_retry: true,
        ..Config::default()
    });
    eprintln!("handshake on a 40 ms RTT path: {one:?} without cookie, {two:?} with cookie");
    assert_eq!(one, Duration::from_millis(40));
    assert_eq!(two, Duration::from_millis(80));
}

#[test]
fn unknown_version_is_negotiated_and_no_common_version_fails_the_dial() {
    let mut p = Pair::new(Config::default(), 7);
    let attacker = "127.0.0.1:6666".parse().expect("addr");
    let mut d = vec![0x01];
    d.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    d.extend_from_slice(&77u64.to_be_bytes());
    d.resize(1200, 0);
    let now = p.now;
    p.b.handle_datagram(now, attacker, &d);
    p.step();
    let vn = p.to_others.pop().expect("a VERSION reply");
    assert_eq!(vn.contents[0], 0x03);
    assert!(vn.contents.len() < d.len());
    assert_eq!(&vn.contents[5..13], &77u64.to_be_bytes());

    // A client told that the server speaks only an unknown version gives up.
    let cid =
        p.a.connect(now, p.b_addr, p.b.local_peer_id())
            .expect("connect");
    let mut v = vec![0x03, 0, 0, 0, 0];
    v.extend_from_slice(&cid.to_be_bytes());
    v.push(1);
    v.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.a.handle_datagram(now, p.b_addr, &v);
    let c = p.a.connection(cid).expect("conn");
    assert!(c.ended().is_some(), "dial should fail: {:?}", c.ended());
}

#[test]
fn wrong_peer_is_refused_before_the_dialler_sends_its_identity() {
    let mut p = Pair::new(Config::default(), 8);
    let other = hive_transport_udp::Keypair::generate()
        .expect("key")
        .peer_id();
    let now = p.now;
    let cid = p.a.connect(now, p.b_addr, other).expect("connect");
    p.run_until(Duration::from_secs(1), |p| {
        p.a.connection(cid).is_some_and(|c| c.ended().is_some())
    });
    let c = p.a.connection(cid).expect("conn");
    assert!(matches!(
        c.ended(),
        Some(hive_transport_udp::Ended::WrongPeer { .. })
    ));
    // No FINISH (which would carry the dialler's static key) went out.
    assert!(!p.captured.iter().any(|d| d[0] == 0x05));
}
