//! A deterministic two-endpoint harness on a virtual clock (quinn's `Pair`): datagrams go
//! through a seeded lossy, reordering, duplicating queue; time jumps to the next wake-up.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use hive_core::time::{Duration, Instant};
use hive_transport_udp::{Config, Endpoint, Keypair};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Decides whether a datagram a -> b is held back.
pub type HoldFn = Box<dyn FnMut(&[u8]) -> bool>;

pub struct Pair {
    pub now: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_addr: SocketAddr,
    pub b_addr: SocketAddr,
    /// (arrival, to_b, datagram)
    in_flight: Vec<(Instant, bool, Vec<u8>)>,
    pub delay: Duration,
    pub loss: f64,
    pub reorder: f64,
    pub duplicate: f64,
    rng: ChaCha8Rng,
    /// Bytes each side sent, for amplification checks.
    pub sent_by_a: u64,
    pub sent_by_b: u64,
    /// Copies of every datagram a sent to b.
    pub captured: Vec<Vec<u8>>,
    /// Datagrams addressed to anyone but the other side (e.g. an attacker's address).
    pub to_others: Vec<hive_transport_udp::Transmit>,
    /// Datagrams a -> b for which this says true are held back in `held` instead of sent.
    pub hold: Option<HoldFn>,
    pub held: Vec<Vec<u8>>,
}

impl Pair {
    pub fn new(config: Config, seed: u64) -> Self {
        Pair {
            now: Instant::from_secs(1),
            a: Endpoint::new(config, Keypair::generate().expect("key"), seed),
            b: Endpoint::new(config, Keypair::generate().expect("key"), seed + 1),
            a_addr: "127.0.0.1:1000".parse().expect("addr"),
            b_addr: "127.0.0.1:2000".parse().expect("addr"),
            in_flight: Vec::new(),
            delay: Duration::from_millis(10),
            loss: 0.0,
            reorder: 0.0,
            duplicate: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            sent_by_a: 0,
            sent_by_b: 0,
            captured: Vec::new(),
            to_others: Vec::new(),
            hold: None,
            held: Vec::new(),
        }
    }

    fn emit(&mut self) {
        while let Some(t) = self.a.poll_transmit(self.now) {
            if t.destination != self.b_addr {
                self.to_others.push(t);
                continue;
            }
            self.sent_by_a += t.contents.len() as u64;
            if let Some(h) = self.hold.as_mut()
                && h(&t.contents)
            {
                self.held.push(t.contents);
                continue;
            }
            self.captured.push(t.contents.clone());
            self.enqueue(true, t.contents);
        }
        while let Some(t) = self.b.poll_transmit(self.now) {
            if t.destination != self.a_addr {
                self.to_others.push(t);
                continue;
            }
            self.sent_by_b += t.contents.len() as u64;
            self.enqueue(false, t.contents);
        }
    }

    fn enqueue(&mut self, to_b: bool, d: Vec<u8>) {
        if self.rng.random::<f64>() < self.loss {
            return;
        }
        let mut at = self.now + self.delay;
        if self.rng.random::<f64>() < self.reorder {
            at += Duration::from_micros(self.rng.random_range(0..20_000));
        }
        if self.rng.random::<f64>() < self.duplicate {
            self.in_flight
                .push((at + Duration::from_millis(1), to_b, d.clone()));
        }
        self.in_flight.push((at, to_b, d));
    }

    /// Advances to the next event (arrival or timer) and processes it.
    pub fn step(&mut self) {
        self.emit();
        let next_arrival = self.in_flight.iter().map(|x| x.0).min();
        let next_timer = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let next = [next_arrival, next_timer].into_iter().flatten().min();
        // Nothing scheduled: let time pass anyway, so `run_until` always ends.
        let next = next.unwrap_or(self.now + Duration::from_millis(10));
        self.now = self.now.max(next);
        let now = self.now;
        let mut i = 0;
        while i < self.in_flight.len() {
            if self.in_flight[i].0 <= now {
                let (_, to_b, d) = self.in_flight.swap_remove(i);
                if to_b {
                    self.b.handle_datagram(now, self.a_addr, &d);
                } else {
                    self.a.handle_datagram(now, self.b_addr, &d);
                }
            } else {
                i += 1;
            }
        }
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
        self.emit();
    }

    /// Steps until `done` or the virtual time limit.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Dials b from a; returns (a's cid, b's cid).
    pub fn connect(&mut self) -> (u64, u64) {
        let cid = self
            .a
            .connect(self.now, self.b_addr, self.b.local_peer_id())
            .expect("connect");
        let mut accepted = None;
        let ok = self.run_until(Duration::from_secs(10), |p| {
            if let Some(hive_transport_udp::Event::Accepted(c)) = p.b.poll_event() {
                accepted = Some(c);
            }
            accepted.is_some() && p.a.connection(cid).is_some_and(|c| c.is_open())
        });
        assert!(ok, "handshake did not finish");
        (cid, accepted.expect("accepted"))
    }
}
