//! AES-GCM key updates (RFC 9001 §6): a long transfer crosses many updates byte-exact; a packet
//! under the previous key opens within the grace period and is dropped after it.

mod util;

use hive_core::time::Duration;
use hive_core::transport::Class;
use hive_transport_udp::{Config, RecvPoll};
use util::Pair;

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

fn transfer(p: &mut Pair, ca: u64, cb: u64, msgs: &[Vec<u8>], limit: Duration) -> Vec<Vec<u8>> {
    let mut next = 0;
    let mut got = Vec::new();
    p.run_until(limit, |p| {
        while next < msgs.len() {
            match p
                .a
                .connection_mut(ca)
                .expect("conn")
                .send(&msgs[next], Class::Data)
            {
                Ok(true) => next += 1,
                Ok(false) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        let c = p.b.connection_mut(cb).expect("conn");
        while let Ok(RecvPoll::Message(m)) = c.recv() {
            got.push(m.to_vec());
        }
        got.len() == msgs.len()
    });
    got
}

#[test]
fn a_long_lossy_transfer_crosses_many_key_updates_byte_exact() {
    let config = Config {
        key_update_interval: 256,
        ..Config::default()
    };
    let mut p = Pair::new(config, 31);
    p.loss = 0.01;
    p.reorder = 0.05;
    p.duplicate = 0.01;
    let (ca, cb) = p.connect();
    let msgs: Vec<Vec<u8>> = (0..60)
        .map(|i| pattern(50_000 + i * 997, i as u64))
        .collect();
    let got = transfer(&mut p, ca, cb, &msgs, Duration::from_secs(120));
    assert!(
        got == msgs,
        "{} of {} messages (updates a {} b {})\na {}\nb {}",
        got.len(),
        msgs.len(),
        p.a.connection(ca).expect("a").key_updates(),
        p.b.connection(cb).expect("b").key_updates(),
        p.a.connection(ca).expect("a").debug_summary(),
        p.b.connection(cb).expect("b").debug_summary()
    );
    let (ua, ub) = (
        p.a.connection(ca).expect("a").key_updates(),
        p.b.connection(cb).expect("b").key_updates(),
    );
    eprintln!("key updates: a {ua}, b {ub}");
    assert!(ua >= 5 && ub >= 5, "a {ua}, b {ub}");
    assert!(p.a.connection(ca).expect("a").ended().is_none());
    assert!(p.b.connection(cb).expect("b").ended().is_none());
}

fn pn_of(d: &[u8]) -> Option<u64> {
    (d.first()? & !1 == 0x06).then(|| u64::from_be_bytes(d[9..17].try_into().unwrap_or([0; 8])))
}

#[test]
fn a_reordered_packet_under_the_previous_key_opens_within_the_grace_period() {
    let config = Config {
        key_update_interval: 40,
        ..Config::default()
    };
    let mut p = Pair::new(config, 33);
    let (ca, cb) = p.connect();
    // Send until a is about to update, holding back its last two phase-0 packets.
    p.hold = Some(Box::new(|d: &[u8]| {
        d[0] == 0x06 && matches!(pn_of(d), Some(36 | 37))
    }));
    for i in 0..3 {
        let sent =
            p.a.connection_mut(ca)
                .expect("a")
                .send(&pattern(60_000, i), Class::Data);
        assert!(matches!(sent, Ok(true)));
    }
    // Stop as soon as b has read its first generation-1 packet: its grace period starts.
    assert!(p.run_until(Duration::from_secs(10), |p| {
        p.b.connection(cb).expect("b").key_updates() == 1
    }));
    assert_eq!(p.held.len(), 2, "held {}", p.held.len());
    p.hold = None;
    let b = p.b.connection(cb).expect("b");
    assert_eq!(b.key_updates(), 1, "{}", b.debug_summary());
    // b read its first generation-1 packet during the transfer: the grace period (3 PTO) is
    // running. One held packet right now opens (no new drop)...
    let (early, late) = (p.held[0].clone(), p.held[1].clone());
    let dropped = b.dropped_datagrams();
    let now = p.now;
    p.b.handle_datagram(now, p.a_addr, &early);
    let b = p.b.connection(cb).expect("b");
    assert_eq!(b.dropped_datagrams(), dropped, "{}", b.debug_summary());
    // ... the other, after the grace period, is dropped as under a discarded key.
    p.b.handle_datagram(now + Duration::from_secs(5), p.a_addr, &late);
    let b = p.b.connection(cb).expect("b");
    assert_eq!(b.old_key_dropped(), 1);
    assert_eq!(b.auth_failures(), 0);
}
