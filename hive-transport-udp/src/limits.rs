//! Handshake rate limits per source: token buckets for each IP address and each IPv4 /24 or
//! IPv6 /64, in a table of bounded size that forgets the least recently used source first.
//!
//! As s2n-quic's endpoint `Limiter` (which throttles by remote port and answers with Retry past
//! `max_inflight_handshake_limit`) and quinn's `ServerConfig::max_incoming`, the table is the
//! only per-source state an endpoint keeps before a peer's address is validated, and it has a
//! fixed ceiling: a flood from many (spoofed) sources evicts old entries, it never grows it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use hive_core::time::Instant;

/// What a bucket is keyed by.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Source {
    Addr(IpAddr),
    /// IPv4 /24 (first three bytes) or IPv6 /64 (first eight).
    Prefix([u8; 8], bool),
}

/// An address's IPv4 /24 or IPv6 /64, as a key.
pub(crate) fn prefix_key(ip: IpAddr) -> ([u8; 8], bool) {
    match prefix(ip) {
        Source::Prefix(p, v6) => (p, v6),
        Source::Addr(_) => ([0; 8], false),
    }
}

fn prefix(ip: IpAddr) -> Source {
    let mut p = [0u8; 8];
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            p[..3].copy_from_slice(&v4.octets()[..3]);
            Source::Prefix(p, false)
        }
        IpAddr::V6(v6) => {
            p.copy_from_slice(&v6.octets()[..8]);
            Source::Prefix(p, true)
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// Stamp of its newest entry in the recency queue.
    stamp: u64,
}

/// Rate limits of one endpoint.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    addr: (f64, f64),
    prefix: (f64, f64),
    cap: usize,
    buckets: HashMap<Source, Bucket>,
    /// Recency queue with lazy deletion: (source, stamp); an entry whose stamp is not the
    /// bucket's is stale. Compacted when it grows past twice the table.
    recency: VecDeque<(Source, u64)>,
    next_stamp: u64,
    evicted: u64,
}

impl RateLimiter {
    pub(crate) fn new(
        addr_rate: f64,
        addr_burst: u32,
        prefix_rate: f64,
        prefix_burst: u32,
        cap: usize,
    ) -> Self {
        let cap = cap.max(2);
        RateLimiter {
            addr: (addr_rate, addr_burst.max(1) as f64),
            prefix: (prefix_rate, prefix_burst.max(1) as f64),
            cap,
            // Grows with the sources seen (most endpoints see a few dozen), up to `cap`.
            buckets: HashMap::new(),
            recency: VecDeque::new(),
            next_stamp: 0,
            evicted: 0,
        }
    }

    /// Sources remembered now (never above the configured size).
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Sources forgotten to make room so far.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Takes one handshake from `ip`'s buckets (its address and its prefix); `false` when either
    /// is empty (nothing is taken then).
    pub(crate) fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        // On a dual-stack socket IPv4 clients arrive as ::ffff:a.b.c.d: count them as IPv4 (as
        // one /64 they would all share one bucket).
        let ip = ip.to_canonical();
        let keys = [(Source::Addr(ip), self.addr), (prefix(ip), self.prefix)];
        let mut ok = true;
        for &(k, (rate, burst)) in &keys {
            if rate <= 0.0 {
                continue;
            }
            let b = self.touch(now, k, burst);
            let dt = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens = (b.tokens + dt * rate).min(burst);
            b.updated = now;
            ok &= b.tokens >= 1.0;
        }
        if ok {
            for &(k, (rate, _)) in &keys {
                if rate > 0.0
                    && let Some(b) = self.buckets.get_mut(&k)
                {
                    b.tokens -= 1.0;
                }
            }
        }
        ok
    }

    /// The bucket of `k`, created full (evicting the least recently used one when the table is
    /// full) and marked most recently used.
    fn touch(&mut self, now: Instant, k: Source, burst: f64) -> &mut Bucket {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if !self.buckets.contains_key(&k) {
            while self.buckets.len() >= self.cap {
                let Some((old, s)) = self.recency.pop_front() else {
                    break;
                };
                if self.buckets.get(&old).is_some_and(|b| b.stamp == s) {
                    self.buckets.remove(&old);
                    self.evicted += 1;
                }
            }
        }
        self.recency.push_back((k, stamp));
        if self.recency.len() > 2 * self.cap + 16 {
            let buckets = &self.buckets;
            self.recency
                .retain(|(k, s)| buckets.get(k).is_some_and(|b| b.stamp == *s) || *s == stamp);
        }
        let b = self.buckets.entry(k).or_insert(Bucket {
            tokens: burst,
            updated: now,
            stamp,
        });
        b.stamp = stamp;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::time::Duration;

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut r = RateLimiter::new(10.0, 5, 1000.0, 1000, 64);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let t = Instant::from_secs(1);
        assert_eq!((0..20).filter(|_| r.allow(t, ip)).count(), 5);
        let t = t + Duration::from_millis(500);
        assert_eq!((0..20).filter(|_| r.allow(t, ip)).count(), 5);
        // Another address is not affected.
        assert!(r.allow(t, "10.0.0.2".parse().expect("ip")));
    }

    #[test]
    fn a_prefix_is_limited_as_a_whole() {
        let mut r = RateLimiter::new(100.0, 100, 1.0, 10, 1024);
        let t = Instant::from_secs(1);
        let ok = (0..50u8)
            .filter(|i| r.allow(t, IpAddr::from([10, 0, 0, *i])))
            .count();
        assert_eq!(ok, 10);
        assert!(r.allow(t, IpAddr::from([10, 0, 1, 1])));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        // A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d: each /24 is its own prefix,
        // not one /64 for all of IPv4.
        let mut r = RateLimiter::new(100.0, 100, 1.0, 10, 1024);
        let t = Instant::from_secs(1);
        let mapped = |a: [u8; 4]| IpAddr::from(std::net::Ipv4Addr::from(a).to_ipv6_mapped());
        let ok = (0..50u8)
            .filter(|i| r.allow(t, mapped([10, 0, 0, *i])))
            .count();
        assert_eq!(ok, 10);
        assert!(r.allow(t, mapped([10, 0, 1, 1])));
        assert!(
            !r.allow(t, IpAddr::from([10, 0, 0, 99])),
            "the same /24 as IPv4"
        );
        assert_eq!(
            prefix_key(mapped([10, 0, 0, 1])),
            prefix_key(IpAddr::from([10, 0, 0, 2]))
        );
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_the_least_recently_used() {
        let mut r = RateLimiter::new(1.0, 1, 0.0, 1, 100);
        let t = Instant::from_secs(1);
        let hot: IpAddr = "192.168.7.7".parse().expect("ip");
        assert!(r.allow(t, hot));
        for i in 0..100_000u32 {
            let ip = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            r.allow(t, ip);
            // The hot source stays recent, so it is never evicted: still limited.
            if i % 10 == 0 {
                assert!(!r.allow(t, hot));
            }
            assert!(r.len() <= 100);
            assert!(r.recency.len() <= 2 * 100 + 17);
        }
        assert!(r.evicted() > 99_000);
    }
}
