//! Deterministic tests of the sans-IO core on a virtual clock.

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

/// Sends `msgs` from a to b, returns what b received.
fn transfer(p: &mut Pair, ca: u64, cb: u64, msgs: &[Vec<u8>], limit: Duration) -> Vec<Vec<u8>> {
    let mut next = 0;
    let mut got = Vec::new();
    p.run_until(limit, |p| {
        while next < msgs.len() {
            let c = p.a.connection_mut(ca).expect("conn");
            match c.send(&msgs[next], Class::Data) {
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
fn messages_arrive_whole_over_a_clean_link() {
    let mut p = Pair::new(
        Config {
            cc: std::env::var("CC")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(hive_cc::Algorithm::Dtl(1.0)),
            ..Config::default()
        },
        1,
    );
    let (ca, cb) = p.connect();
    let msgs: Vec<Vec<u8>> = [1usize, 1199, 1200, 70_000, 1 << 20]
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(n, i as u64))
        .collect();
    let got = transfer(&mut p, ca, cb, &msgs, Duration::from_secs(60));
    assert_eq!(
        got.len(),
        msgs.len(),
        "stats {:?}",
        p.a.connection(ca).map(|c| c.stats())
    );
    assert!(got == msgs);
}
