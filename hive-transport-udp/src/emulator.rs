//! A user-space link emulator: a UDP relay on loopback between a client and a server, each
//! direction driven by [`hive_cc::link::Bottleneck`] (rate, drop-tail buffer, random loss) — the
//! same model the CC arena uses — plus propagation delay and seeded reordering and duplication.
//! The kernel here has no netem; tests and benchmarks share this one.
//!
//! The client dials [`Emulator::addr`] instead of the server; the server sees one relay socket
//! per client as that client's address. Up to [`MAX_CLIENTS`] client addresses are relayed (each
//! may carry many connections); all of them share the two directions' bottlenecks, so flows of
//! several clients compete for the link as they would behind one access link.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use hive_core::transport::{Class, Transport};
//! use hive_transport_udp::emulator::{Direction, Emulator};
//! use hive_transport_udp::{Config, UdpTransport};
//!
//! let loopback = "127.0.0.1:0".parse().unwrap();
//! let server = UdpTransport::bind(loopback, Config::default()).await?;
//! let client = UdpTransport::bind(loopback, Config::default()).await?;
//! let dir = Direction::new(20_000_000, hive_core::time::Duration::from_millis(20)).with_loss(0.01);
//! let emu = Emulator::start(server.local_addr(), dir, dir).await.unwrap();
//! let (c, s) = tokio::join!(client.dial_addr(emu.addr(), server.local_peer_id()), server.accept());
//! let (c, s) = (c?, s?);
//! hive_core::transport::Connection::send(&*c, bytes::Bytes::from_static(b"hi"), Class::Data).await?;
//! assert_eq!(s.recv().await?.as_deref(), Some(&b"hi"[..]));
//! # Ok::<(), hive_core::TransportError>(())
//! # }).unwrap();
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hive_cc::link::{Bottleneck, BufferLimit, LinkConfig, LinkStats};
use hive_core::time::{Duration, Instant};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// One direction of the emulated path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Direction {
    /// The bottleneck (rate, buffer, random loss, seed).
    pub link: LinkConfig,
    /// One-way propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Probability that a datagram is held back by up to `reorder_by` extra.
    pub reorder: f64,
    /// The most a reordered datagram is held back.
    pub reorder_by: Duration,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
}

impl Direction {
    /// A lossless direction of `rate_bps` with one-way `delay` and a buffer of 100 ms at the
    /// rate (at least 64 KiB).
    pub fn new(rate_bps: u64, delay: Duration) -> Self {
        let buffer = (rate_bps / 80).max(64 << 10);
        Direction {
            link: LinkConfig {
                rate_bps,
                buffer: BufferLimit::Bytes(buffer),
                loss: 0.0,
                seed: 1,
            },
            delay,
            reorder: 0.0,
            reorder_by: Duration::ZERO,
            duplicate: 0.0,
        }
    }

    /// With random loss.
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.link.loss = loss;
        self
    }

    /// With a drop-tail buffer of `bytes`.
    pub fn with_buffer(mut self, bytes: u64) -> Self {
        self.link.buffer = BufferLimit::Bytes(bytes);
        self
    }

    /// With reordering: probability and the most a datagram is held back.
    pub fn with_reorder(mut self, p: f64, by: Duration) -> Self {
        self.reorder = p;
        self.reorder_by = by;
        self
    }

    /// With duplication.
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// With a seed for loss, reordering and duplication.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.link.seed = seed;
        self
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// The bottleneck's counters (accepted, overflow and random drops).
    pub link: LinkStats,
    /// Datagrams delivered (duplicates included).
    pub delivered: u64,
    /// Datagrams held back for reordering.
    pub reordered: u64,
    /// Datagrams duplicated.
    pub duplicated: u64,
}

/// Counters of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Client to server.
    pub forward: DirectionStats,
    /// Server to client.
    pub backward: DirectionStats,
}

struct Path {
    spec: Direction,
    link: Bottleneck,
    rng: ChaCha8Rng,
}

/// A running relay. Dropping it stops it.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    stats: Arc<Mutex<EmulatorStats>>,
    task: JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Emulator {
    /// Starts a relay in front of `server` (which must be a loopback address).
    pub async fn start(
        server: SocketAddr,
        forward: Direction,
        backward: Direction,
    ) -> io::Result<Self> {
        if !server.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the emulator relays to loopback addresses only",
            ));
        }
        let front = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = front.local_addr()?;
        let stats = Arc::new(Mutex::new(EmulatorStats::default()));
        let task = tokio::spawn(relay(front, server, forward, backward, stats.clone()));
        Ok(Emulator { addr, stats, task })
    }

    /// The address clients dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters so far.
    pub fn stats(&self) -> EmulatorStats {
        *self.stats.lock()
    }
}

/// The most client addresses one emulator relays (datagrams from more are dropped).
pub const MAX_CLIENTS: usize = 16;

/// (delivery time, sequence, forward?, client index, datagram)
type Queue = BinaryHeap<Reverse<(Instant, u64, bool, usize, Vec<u8>)>>;

fn offer(
    path: &mut Path,
    stats: &mut DirectionStats,
    now: Instant,
    (fwd, client): (bool, usize),
    d: Vec<u8>,
    q: &mut Queue,
    seq: &mut u64,
) {
    let dep = path.link.enqueue(now, d.len() as u64);
    stats.link = path.link.stats;
    let Ok(dep) = dep else { return };
    let mut at = dep.departure + path.spec.delay;
    if path.spec.reorder > 0.0 && path.rng.random::<f64>() < path.spec.reorder {
        let max = path.spec.reorder_by.as_micros().max(1) as u64;
        at += Duration::from_micros(path.rng.random_range(0..max));
        stats.reordered += 1;
    }
    if path.spec.duplicate > 0.0 && path.rng.random::<f64>() < path.spec.duplicate {
        stats.duplicated += 1;
        *seq += 1;
        q.push(Reverse((
            at + Duration::from_micros(100),
            *seq,
            fwd,
            client,
            d.clone(),
        )));
    }
    *seq += 1;
    q.push(Reverse((at, *seq, fwd, client, d)));
}

async fn relay(
    front: UdpSocket,
    server: SocketAddr,
    forward: Direction,
    backward: Direction,
    stats: Arc<Mutex<EmulatorStats>>,
) {
    // The relay's own clock (epoch: now), on tokio's time like the transports it sits between.
    let clock = crate::driver::tokio_clock();
    let now = || clock.now();
    let mk = |spec: Direction, salt: u64| Path {
        spec,
        link: Bottleneck::new(spec.link),
        rng: ChaCha8Rng::seed_from_u64(spec.link.seed ^ salt),
    };
    let (mut fwd, mut bwd) = (mk(forward, 0xF0), mk(backward, 0xB0));
    // One socket towards the server per client address; their readers feed `from_server`, and
    // dropping the set (when the relay is aborted) stops them.
    let mut clients: Vec<(SocketAddr, Arc<UdpSocket>)> = Vec::new();
    let mut readers = JoinSet::new();
    let (to_relay, mut from_server) = mpsc::channel::<(usize, SocketAddr, Vec<u8>)>(1024);
    let mut queue = Queue::new();
    let mut seq = 0u64;
    let mut b1 = vec![0u8; 65_536];
    loop {
        let next = queue.peek().map(|Reverse((t, ..))| *t);
        let sleep = async {
            match next {
                Some(t) => crate::driver::sleep_until(&*clock, t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = front.recv_from(&mut b1) => {
                let Ok((n, from)) = r else { continue };
                let client = match clients.iter().position(|(a, _)| *a == from) {
                    Some(i) => i,
                    None if clients.len() < MAX_CLIENTS => {
                        let Ok(back) = UdpSocket::bind("127.0.0.1:0").await else { continue };
                        let back = Arc::new(back);
                        let i = clients.len();
                        readers.spawn(read_back(back.clone(), i, to_relay.clone()));
                        clients.push((from, back));
                        i
                    }
                    None => continue,
                };
                let mut s = stats.lock();
                offer(&mut fwd, &mut s.forward, now(), (true, client), b1[..n].to_vec(), &mut queue, &mut seq);
            }
            Some((client, from, d)) = from_server.recv() => {
                if from == server {
                    let mut s = stats.lock();
                    offer(&mut bwd, &mut s.backward, now(), (false, client), d, &mut queue, &mut seq);
                }
            }
            _ = sleep => {}
        }
        let t = now();
        while queue.peek().is_some_and(|Reverse((at, ..))| *at <= t) {
            let Some(Reverse((_, _, is_fwd, client, d))) = queue.pop() else {
                break;
            };
            let Some((addr, back)) = clients.get(client) else {
                continue;
            };
            if is_fwd {
                let _ = back.send_to(&d, server).await;
                stats.lock().forward.delivered += 1;
            } else {
                let _ = front.send_to(&d, *addr).await;
                stats.lock().backward.delivered += 1;
            }
        }
    }
}

/// Reads what the server sends to one client's relay socket.
async fn read_back(
    back: Arc<UdpSocket>,
    client: usize,
    to_relay: mpsc::Sender<(usize, SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = back.recv_from(&mut buf).await else {
            continue;
        };
        if to_relay
            .send((client, from, buf[..n].to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
}
