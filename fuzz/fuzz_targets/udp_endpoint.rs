//! Feeds arbitrary datagrams to the UDP transport's sans-IO core.
//!
//! The input is a mode byte then chunks (`len: u16` big-endian, bytes):
//! - mode even: each chunk is a datagram to a fresh accepting `Endpoint` (from one address) and
//!   to a dialling one (as if from the server). Checks the anti-amplification bound: the
//!   unverified address never gets more than 3x the bytes it sent.
//! - mode odd: a connection is established first (a real in-memory handshake); each chunk is
//!   then processed as the decrypted plaintext of a protected packet (the `fuzzing` hook), so
//!   the frame, ack, stream and close code is reached behind the AEAD. Checks it never panics
//!   and that the connection's stats stay coherent.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use hive_core::time::{Duration, Instant};
use hive_transport_udp::{Config, Endpoint, Event, Keypair, RecvPoll};
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static (Keypair, Keypair) {
    static K: OnceLock<(Keypair, Keypair)> = OnceLock::new();
    K.get_or_init(|| {
        (
            Keypair::generate().expect("key"),
            Keypair::generate().expect("key"),
        )
    })
}

fn chunks(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let n = (u16::from_be_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
        let c = &data[2..2 + n];
        data = &data[2 + n..];
        Some(c)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (ka, kb) = keys();
    let a_addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let b_addr: SocketAddr = "127.0.0.1:2".parse().expect("addr");
    let mut now = Instant::from_secs(1);
    let mut server = Endpoint::new(Config::default(), kb.clone(), 1);
    let mut client = Endpoint::new(Config::default(), ka.clone(), 2);
    if mode % 2 == 0 {
        let cid = client.connect(now, b_addr, kb.peer_id()).expect("connect");
        while client.poll_transmit(now).is_some() {}
        let (mut received, mut answered) = (0usize, 0usize);
        for d in chunks(rest) {
            now += Duration::from_millis(3);
            received += d.len();
            server.handle_datagram(now, a_addr, d);
            server.handle_timeout(now);
            while let Some(t) = server.poll_transmit(now) {
                answered += t.contents.len();
            }
            client.handle_datagram(now, b_addr, d);
            client.handle_timeout(now);
            while client.poll_transmit(now).is_some() {}
            let _ = client.connection(cid).map(|c| c.stats());
        }
        assert!(
            answered <= 3 * received,
            "amplification: {answered} bytes answered to {received}"
        );
        return;
    }
    // Establish a connection, then feed plaintexts to the accepting side.
    let cid = client.connect(now, b_addr, kb.peer_id()).expect("connect");
    let mut accepted = None;
    for _ in 0..8 {
        now += Duration::from_millis(1);
        while let Some(t) = client.poll_transmit(now) {
            server.handle_datagram(now, a_addr, &t.contents);
        }
        while let Some(t) = server.poll_transmit(now) {
            client.handle_datagram(now, b_addr, &t.contents);
        }
        if let Some(Event::Accepted(s)) = server.poll_event() {
            accepted = Some(s);
        }
    }
    let Some(sid) = accepted else {
        panic!("handshake failed: {:?}", client.connection(cid));
    };
    for (pn, d) in chunks(rest).enumerate() {
        now += Duration::from_millis(2);
        let Some(c) = server.connection_mut(sid) else {
            break;
        };
        c.fuzz_plaintext(now, pn as u64, d);
        while let Ok(RecvPoll::Message(_)) = c.recv() {}
        let st = c.stats();
        assert!(st.packets_lost.unwrap_or(0) <= st.packets_sent.unwrap_or(0));
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now) {
            client.handle_datagram(now, b_addr, &t.contents);
        }
        while let Some(t) = client.poll_transmit(now) {
            server.handle_datagram(now, a_addr, &t.contents);
        }
    }
});
