//! The lab's router: one thread that reads every IP packet the lab's hosts send (each host's
//! TUN device is its only route to the others), walks it along its path through the shaped
//! links — each a `hive_cc::link::Bottleneck` (rate, drop-tail buffer) plus its propagation
//! delay, the model the CC arena and the UDP transport's emulator use — and writes it into the
//! receiver's TUN device when it has crossed them all. The kernel here has no netem: this is
//! the shaping, in user space.
//!
//! It counts, per link, the packets and bytes that crossed it (IP bytes, and the UDP or TCP
//! payload in them) and those its buffer dropped: the lab's copies per fragment come from
//! these counts, measured on the shaped links themselves.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hive_cc::link::{Bottleneck, BufferLimit, LinkConfig};
use hive_core::time::{Duration, Instant};
use parking_lot::Mutex;
use serde::Serialize;

use super::topology::{Host, Topology};

/// Packets in flight through the links, at most: beyond, new packets are dropped (and
/// counted). The links' buffers bound them long before this, which only guards memory.
const MAX_IN_FLIGHT: usize = 1 << 20;
/// Largest packet read (the devices' MTU is 1500).
const MAX_PACKET: usize = 65_535;

/// What crossed one link.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LinkCounters {
    /// The link's name.
    pub link: String,
    /// Packets it carried.
    pub packets: u64,
    /// Their IP bytes (headers included).
    pub ip_bytes: u64,
    /// The UDP payload bytes in them (peers' traffic: Hive's transport).
    pub udp_payload_bytes: u64,
    /// The TCP payload bytes in them (HTTP: the origin and the tracker).
    pub tcp_payload_bytes: u64,
    /// Packets its buffer dropped.
    pub dropped: u64,
}

/// The router's counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouterStats {
    /// Per link, in the topology's order.
    pub links: Vec<LinkCounters>,
    /// Packets delivered to their host.
    pub delivered: u64,
    /// Packets no host was found for, or not IPv4.
    pub unroutable: u64,
    /// Packets dropped because too many were in flight, or the receiver's device was full.
    pub overflow: u64,
}

/// One device the router reads and writes, and who sits behind it.
pub struct Port {
    /// The TUN device.
    pub dev: tun_rs::SyncDevice,
    /// The host behind it; `None` for the lab's own namespace, where the source address says
    /// which (origin, tracker or players).
    pub host: Option<Host>,
}

/// The running router; dropping it stops it.
pub struct Router {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<RouterStats>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Router {
    /// Starts routing among `ports` (port 0: the lab's namespace; port `i + 1`: viewer `i`).
    pub fn start(topology: Topology, ports: Vec<Port>, seed: u64) -> std::io::Result<Self> {
        for p in &ports {
            p.dev.set_nonblocking(true)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(RouterStats {
            links: topology
                .links
                .iter()
                .map(|l| LinkCounters {
                    link: l.name.clone(),
                    ..LinkCounters::default()
                })
                .collect(),
            ..RouterStats::default()
        }));
        let mut core = Core::new(topology, seed);
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("hive-lab-router".into())
            .spawn(move || core.run(&ports, &s, &st))?;
        Ok(Router {
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> RouterStats {
        self.stats.lock().clone()
    }

    /// Stops the thread and gives the final counters.
    pub fn stop(mut self) -> RouterStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A packet on its way: its bytes, where it goes, how far it got.
struct InFlight {
    data: Vec<u8>,
    path: Vec<usize>,
    hop: usize,
    to_port: usize,
    /// Its UDP payload bytes (0 unless UDP) and TCP payload bytes (0 unless TCP).
    udp: u64,
    tcp: u64,
}

/// What [`parse`] reads off an IPv4 packet.
#[derive(Debug, PartialEq)]
struct Header {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    /// UDP or TCP payload bytes (0 for other protocols).
    payload: u64,
    /// Whether it is UDP.
    udp: bool,
}

/// The addresses and transport payload of an IPv4 packet; `None` if it is not one.
fn parse(p: &[u8]) -> Option<Header> {
    let first = *p.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || p.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?])).min(p.len());
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let body = total.saturating_sub(ihl);
    let payload = match p[9] {
        17 => body.saturating_sub(8),
        6 => {
            let doff = p.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4);
            body.saturating_sub(doff)
        }
        _ => 0,
    };
    Some(Header {
        src,
        dst,
        payload: payload as u64,
        udp: p[9] == 17,
    })
}

struct Core {
    topology: Topology,
    links: Vec<Option<Bottleneck>>,
    counters: Vec<LinkCounters>,
    flight: Vec<Option<InFlight>>,
    free: Vec<usize>,
    events: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    seq: u64,
    delivered: u64,
    unroutable: u64,
    overflow: u64,
    epoch: std::time::Instant,
}

impl Core {
    fn new(topology: Topology, seed: u64) -> Self {
        let links = topology
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.rate_bps.map(|rate_bps| {
                    Bottleneck::new(LinkConfig {
                        rate_bps,
                        buffer: BufferLimit::Time(l.buffer),
                        loss: 0.0,
                        seed: seed ^ i as u64,
                    })
                })
            })
            .collect();
        let counters = topology
            .links
            .iter()
            .map(|l| LinkCounters {
                link: l.name.clone(),
                ..LinkCounters::default()
            })
            .collect();
        Core {
            topology,
            links,
            counters,
            flight: Vec::new(),
            free: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            delivered: 0,
            unroutable: 0,
            overflow: 0,
            epoch: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        Instant::ZERO + Duration::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn run(&mut self, ports: &[Port], stop: &AtomicBool, stats: &Mutex<RouterStats>) {
        use nix::poll::{PollFd, PollFlags, ppoll};
        let mut buf = vec![0u8; MAX_PACKET];
        let mut last_publish = std::time::Instant::now();
        while !stop.load(Ordering::Acquire) {
            let now = self.now();
            self.due(now, ports);
            let wait = self
                .events
                .peek()
                .map_or(Duration::from_millis(50), |Reverse((t, _, _))| {
                    t.saturating_duration_since(now)
                })
                .min(Duration::from_millis(50));
            let mut fds: Vec<PollFd<'_>> = ports
                .iter()
                .map(|p| PollFd::new(p.dev.as_fd(), PollFlags::POLLIN))
                .collect();
            let ts = nix::sys::time::TimeSpec::from_duration(wait);
            if ppoll(&mut fds, Some(ts), None).is_err() {
                continue;
            }
            let ready: Vec<usize> = fds
                .iter()
                .enumerate()
                .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            // Packets read now enter at `now`: after every event due by then.
            let now = self.now();
            self.due(now, ports);
            for i in ready {
                // A bounded batch per device per round, so that one busy host cannot starve
                // the timers.
                for _ in 0..64 {
                    match ports[i].dev.recv(&mut buf) {
                        Ok(n) => self.arrive(i, ports, &buf[..n], now),
                        Err(_) => break,
                    }
                }
            }
            if last_publish.elapsed() >= std::time::Duration::from_millis(200) {
                last_publish = std::time::Instant::now();
                self.publish(stats);
            }
        }
        self.publish(stats);
    }

    fn publish(&self, stats: &Mutex<RouterStats>) {
        let mut s = stats.lock();
        s.links.clone_from(&self.counters);
        s.delivered = self.delivered;
        s.unroutable = self.unroutable;
        s.overflow = self.overflow;
    }

    /// A packet read from port `from`.
    fn arrive(&mut self, from: usize, ports: &[Port], data: &[u8], now: Instant) {
        let Some(h) = parse(data) else {
            self.unroutable += 1;
            return;
        };
        let src = match ports[from].host {
            Some(host) => Some(host),
            None => self.topology.host_of(h.src),
        };
        let dst = self.topology.host_of(h.dst);
        let (Some(src), Some(dst)) = (src, dst) else {
            self.unroutable += 1;
            return;
        };
        let to_port = match dst {
            Host::Viewer(i) => i + 1,
            Host::Internet | Host::Control => 0,
        };
        if to_port == from || to_port >= ports.len() {
            self.unroutable += 1;
            return;
        }
        if self.flight.len() - self.free.len() >= MAX_IN_FLIGHT {
            self.overflow += 1;
            return;
        }
        let p = InFlight {
            data: data.to_vec(),
            path: self.topology.path(src, dst),
            hop: 0,
            to_port,
            udp: if h.udp { h.payload } else { 0 },
            tcp: if h.udp { 0 } else { h.payload },
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.flight[s] = Some(p);
                s
            }
            None => {
                self.flight.push(Some(p));
                self.flight.len() - 1
            }
        };
        self.advance(slot, now, now, ports);
    }

    /// Every event due by `now`, in time order.
    fn due(&mut self, now: Instant, ports: &[Port]) {
        while let Some(&Reverse((t, _, slot))) = self.events.peek() {
            if t > now {
                break;
            }
            self.events.pop();
            self.advance(slot, t, now, ports);
        }
    }

    /// Packet `slot` reaches its next link at `t`: it crosses latency-only links at once, is
    /// offered to a shaped link when its time comes (`t <= now`, so that every link sees its
    /// packets in time order), and is delivered after its last link.
    fn advance(&mut self, slot: usize, mut t: Instant, now: Instant, ports: &[Port]) {
        loop {
            let Some(p) = self.flight[slot].as_mut() else {
                return;
            };
            let Some(&l) = p.path.get(p.hop) else {
                let p = self.flight[slot].take();
                self.free.push(slot);
                if let Some(p) = p {
                    match ports[p.to_port].dev.send(&p.data) {
                        Ok(_) => self.delivered += 1,
                        Err(_) => self.overflow += 1,
                    }
                }
                return;
            };
            if t > now {
                self.seq += 1;
                self.events.push(Reverse((t, self.seq, slot)));
                return;
            }
            let bytes = p.data.len() as u64;
            let latency = self.topology.links[l].latency;
            let depart = match self.links[l].as_mut() {
                None => Some(t),
                Some(b) => b.enqueue(t, bytes).ok().map(|d| d.departure),
            };
            let c = &mut self.counters[l];
            match depart {
                Some(d) => {
                    c.packets += 1;
                    c.ip_bytes += bytes;
                    c.udp_payload_bytes += p.udp;
                    c.tcp_payload_bytes += p.tcp;
                    p.hop += 1;
                    t = d + latency;
                }
                None => {
                    c.dropped += 1;
                    self.flight[slot] = None;
                    self.free.push(slot);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], body: &[u8]) -> Vec<u8> {
        let total = (20 + body.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(body);
        p
    }

    /// UDP and TCP payloads are what follows their headers; other packets and garbage are
    /// read safely.
    #[test]
    fn packets_are_parsed_within_their_bounds() {
        let udp = ipv4(17, [10, 77, 1, 0], [10, 77, 0, 1], &[0u8; 8 + 100]);
        let h = parse(&udp).expect("IPv4");
        assert_eq!(
            h,
            Header {
                src: Ipv4Addr::new(10, 77, 1, 0),
                dst: Ipv4Addr::new(10, 77, 0, 1),
                payload: 100,
                udp: true,
            }
        );
        let mut tcp_body = vec![0u8; 32 + 50];
        tcp_body[12] = 8 << 4; // a 32-byte header (options)
        let tcp = ipv4(6, [10, 77, 1, 0], [10, 77, 0, 1], &tcp_body);
        assert_eq!(parse(&tcp).map(|h| h.payload), Some(50));
        assert_eq!(
            parse(&ipv4(1, [1; 4], [2; 4], &[0; 30])).map(|h| h.payload),
            Some(0)
        );
        // IPv6, truncated headers, a header length past the packet: none is IPv4.
        assert_eq!(parse(&[0x60; 40]), None);
        assert_eq!(parse(&udp[..10]), None);
        assert_eq!(parse(&[0x4f, 0, 0, 20]), None);
        assert_eq!(parse(&[]), None);
        // A total length larger than the packet is cut to the packet.
        let mut liar = udp.clone();
        liar[2..4].copy_from_slice(&60_000u16.to_be_bytes());
        assert_eq!(parse(&liar).map(|h| h.payload), Some(100));
    }
}
