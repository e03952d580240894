//! Requests per source address: token buckets in a bounded table.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A bucket: tokens left, as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per source address (an IPv6 address counts by its /64, which one host
/// usually holds whole), at most `max` of them: when the table is full, buckets that have
/// refilled (idle addresses) are forgotten — at most once a second — and otherwise an
/// arbitrary one, so a flood of addresses cannot grow the table.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    max: usize,
    table: Mutex<(HashMap<u128, Bucket>, Option<Instant>)>,
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6) & !((1u128 << 64) - 1),
        },
    }
}

impl RateLimiter {
    /// `rate` requests a second sustained, bursts of `burst`, at most `max` addresses tracked.
    pub(crate) fn new(rate: f64, burst: u32, max: usize) -> Self {
        RateLimiter {
            rate: if rate.is_finite() {
                rate.max(0.001)
            } else {
                1e9
            },
            burst: f64::from(burst.max(1)),
            max: max.max(1),
            table: Mutex::new((HashMap::default(), None)),
        }
    }

    /// Takes a token for `ip`; whether there was one.
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let k = key(ip);
        let mut guard = self.table.lock();
        let (table, pruned) = &mut *guard;
        if !table.contains_key(&k) && table.len() >= self.max {
            let due =
                pruned.is_none_or(|p| now.saturating_duration_since(p) >= Duration::from_secs(1));
            if due {
                let refill = Duration::from_secs_f64(self.burst / self.rate);
                table.retain(|_, b| now.saturating_duration_since(b.at) < refill);
                *pruned = Some(now);
            }
            if table.len() >= self.max
                && let Some(&victim) = table.keys().next()
            {
                table.remove(&victim);
            }
        }
        let b = table.entry(k).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Addresses tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_the_rate() {
        let r = RateLimiter::new(10.0, 5, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| r.allow(ip, t0)).count(), 5);
        // 10/s: one more token after 100 ms.
        assert!(r.allow(ip, t0 + Duration::from_millis(100)));
        assert!(!r.allow(ip, t0 + Duration::from_millis(100)));
        // Others are not affected.
        assert!(r.allow("192.0.2.2".parse().unwrap(), t0));
        // An IPv6 /64 is one address.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!((0..5).filter(|_| r.allow(a, t0)).count(), 5);
        assert!(!r.allow(b, t0));
    }

    #[test]
    fn the_table_is_bounded() {
        let r = RateLimiter::new(1.0, 2, 64);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            assert!(r.allow(ip, t0 + Duration::from_millis(u64::from(i))));
            assert!(r.len() <= 64);
        }
    }
}
