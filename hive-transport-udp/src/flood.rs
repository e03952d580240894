//! A handshake flood, for tests and benchmarks of what one costs an endpoint (the example
//! `handshake_flood`, `hive demo --flood`): INITIALs at a set rate from up to 1 000 loopback
//! source addresses (127.0.1.1 ..), each RETRY answered with its cookie — non-spoofed sources,
//! the strongest case, since every answered cookie passes validation and reaches the
//! handshake limits. Loopback only: it binds 127.0.x.y addresses and sends where it is told.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::wire;

/// An INITIAL of the minimum size from client connection id `cid`, carrying `cookie` and 32
/// bytes of noise derived from `seed` (not a real Noise message: the endpoint's handshake
/// fails on it after the checks a flood is about).
pub fn initial(cid: u64, cookie: &[u8], seed: u64) -> Vec<u8> {
    let mut d = vec![wire::T_INITIAL];
    d.extend_from_slice(&wire::VERSION.to_be_bytes());
    d.extend_from_slice(&cid.to_be_bytes());
    let cookie = &cookie[..cookie.len().min(255)];
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
    d.resize(wire::MIN_INITIAL_SIZE, 0);
    d
}

/// Sends INITIALs to `to` at `rate` a second from up to `sources` (at most 1 000) loopback
/// addresses, answering RETRYs with their cookies, until `stop`; `sent` counts the datagrams.
/// Blocks: run it on a thread of its own.
pub fn run(to: SocketAddr, rate: u64, sources: usize, stop: &AtomicBool, sent: &AtomicU64) {
    let mut socks = Vec::new();
    'outer: for a in 1..=4u8 {
        for b in 1..=250u8 {
            if socks.len() >= sources.min(1000) {
                break 'outer;
            }
            if let Ok(s) = UdpSocket::bind(SocketAddr::from(([127, 0, a, b], 0))) {
                let _ = s.set_nonblocking(true);
                socks.push(s);
            }
        }
    }
    if socks.is_empty() || rate == 0 {
        return;
    }
    let start = Instant::now();
    let (mut n, mut buf) = (0u64, [0u8; 2048]);
    while !stop.load(Ordering::Relaxed) {
        for (i, s) in socks.iter().enumerate() {
            let cid = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
            if s.send_to(&initial(cid, &[], n), to).is_ok() {
                n += 1;
            }
            while let Ok((len, _)) = s.recv_from(&mut buf) {
                // A RETRY: type, version, the client's cid, cookie length, cookie.
                if len > 14 && buf[0] == wire::T_RETRY {
                    let mut c = [0u8; 8];
                    c.copy_from_slice(&buf[5..13]);
                    let cl = (buf[13] as usize).min(len - 14);
                    let _ = s.send_to(&initial(u64::from_be_bytes(c), &buf[14..14 + cl], n), to);
                    n += 1;
                }
            }
        }
        sent.store(n, Ordering::Relaxed);
        let due = start.elapsed().as_secs_f64() * rate as f64;
        if n as f64 > due {
            std::thread::sleep(Duration::from_secs_f64((n as f64 - due) / rate as f64));
        }
    }
    sent.store(n, Ordering::Relaxed);
}

/// A flood running on its own thread; stops when dropped.
pub struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    /// Starts flooding `to` (see [`run`]).
    pub fn start(to: SocketAddr, rate: u64, sources: usize) -> std::io::Result<Flood> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::Builder::new()
                .name("hive-flood".into())
                .spawn(move || run(to, rate, sources, &stop, &sent))?
        };
        Ok(Flood {
            stop,
            sent,
            thread: Some(thread),
        })
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops the flood; returns the datagrams sent.
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.sent()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.halt();
    }
}
