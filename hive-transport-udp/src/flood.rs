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
    let due = |n: u64| n as f64 / rate as f64;
    // The sources in turn, each sending its next INITIAL when the rate allows it.
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // Ahead of the rate: wait (in slices, so that `stop` is seen within 50 ms).
        let ahead = due(n) - start.elapsed().as_secs_f64();
        if ahead > 0.0 {
            sent.store(n, Ordering::Relaxed);
            std::thread::sleep(Duration::from_secs_f64(ahead.min(0.05)));
            continue;
        }
        let s = &socks[i % socks.len()];
        let cid = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
        i = i.wrapping_add(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_to_its_rate_and_stops_at_once() {
        let sink = UdpSocket::bind("127.0.0.1:0").expect("bind a sink");
        let to = sink.local_addr().expect("its address");
        let started = Instant::now();
        // A slow rate: the sources must not send in bursts, nor oversleep a stop.
        let f = Flood::start(to, 20, 1000).expect("start");
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let sent = f.stop();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "stop took {:?}",
            t.elapsed()
        );
        let allowed = 20.0 * started.elapsed().as_secs_f64() + 1.0;
        assert!(
            sent >= 1 && sent as f64 <= allowed,
            "{sent} sent, {allowed} allowed"
        );
        sink.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 2048];
        let (len, from) = sink.recv_from(&mut buf).expect("an INITIAL arrived");
        assert_eq!(len, wire::MIN_INITIAL_SIZE);
        assert_eq!(buf[0], wire::T_INITIAL);
        assert!(from.ip().is_loopback());
    }
}
