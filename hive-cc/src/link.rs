//! A packet-level bottleneck link: rate, drop-tail buffer, random loss. Sans-IO, seeded,
//! deterministic.
//!
//! [`Bottleneck::enqueue`] answers, for a packet offered at `now`, when its last bit leaves the
//! link — or that it was dropped (buffer full, or random loss). Propagation delays are added by
//! whoever uses it: the CC arena ([`crate::arena`]) per flow, and the UDP transport's link
//! emulator per direction — the same model for both.
//!
//! ```
//! use hive_cc::link::{Bottleneck, BufferLimit, LinkConfig};
//! use hive_core::time::{Duration, Instant};
//! let mut link = Bottleneck::new(LinkConfig {
//!     rate_bps: 8_000_000, // 1 MB/s: a 1000-byte packet takes 1 ms
//!     buffer: BufferLimit::Bytes(2_000),
//!     loss: 0.0,
//!     seed: 1,
//! });
//! let t = Instant::ZERO;
//! assert_eq!(link.enqueue(t, 1000).unwrap().departure, t + Duration::from_millis(1));
//! assert_eq!(link.enqueue(t, 1000).unwrap().departure, t + Duration::from_millis(2));
//! assert_eq!(link.enqueue(t, 1000).unwrap().departure, t + Duration::from_millis(3));
//! assert!(link.enqueue(t, 1000).is_err(), "fourth packet overflows the 2000-byte buffer");
//! ```

use std::collections::VecDeque;

use hive_core::time::{Duration, Instant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How much the drop-tail buffer holds (not counting the packet being transmitted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BufferLimit {
    /// At most this many bytes queued.
    Bytes(u64),
    /// At most this much queuing delay at the link rate.
    Time(Duration),
}

/// A bottleneck's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Link rate, bits per second.
    pub rate_bps: u64,
    /// Drop-tail buffer size.
    pub buffer: BufferLimit,
    /// Probability that a packet is lost at random (before the queue).
    pub loss: f64,
    /// Seed of the loss process.
    pub seed: u64,
}

impl LinkConfig {
    /// The buffer in bytes.
    pub fn buffer_bytes(&self) -> u64 {
        match self.buffer {
            BufferLimit::Bytes(b) => b,
            BufferLimit::Time(d) => (d.as_secs_f64() * self.rate_bps as f64 / 8.0) as u64,
        }
    }
}

/// Why a packet did not make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The buffer was full.
    Overflow,
    /// Random loss.
    Random,
}

/// A packet accepted by the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Departure {
    /// When its last bit leaves the link.
    pub departure: Instant,
    /// Time it waited behind other packets (excluding its own transmission).
    pub queuing: Duration,
}

/// The link's state.
#[derive(Clone, Debug)]
pub struct Bottleneck {
    cfg: LinkConfig,
    buffer_bytes: u64,
    /// (departure time, size) of packets not yet fully transmitted, oldest first.
    queue: VecDeque<(Instant, u64)>,
    queued_bytes: u64,
    rng: ChaCha8Rng,
    /// Counters.
    pub stats: LinkStats,
}

/// Link counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets accepted.
    pub accepted: u64,
    /// Bytes accepted.
    pub accepted_bytes: u64,
    /// Packets dropped by the full buffer.
    pub overflow_drops: u64,
    /// Packets dropped at random.
    pub random_drops: u64,
}

impl Bottleneck {
    /// An idle link.
    pub fn new(cfg: LinkConfig) -> Self {
        Bottleneck {
            cfg,
            buffer_bytes: cfg.buffer_bytes(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            stats: LinkStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    fn tx_time(&self, bytes: u64) -> Duration {
        Duration::from_nanos((bytes as f64 * 8.0 * 1e9 / self.cfg.rate_bps.max(1) as f64) as u64)
    }

    fn drain(&mut self, now: Instant) {
        while let Some(&(dep, size)) = self.queue.front() {
            if dep > now {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= size;
        }
    }

    /// Bytes waiting at `now`, excluding the packet in transmission.
    pub fn backlog(&mut self, now: Instant) -> u64 {
        self.drain(now);
        self.queue.iter().skip(1).map(|(_, s)| s).sum()
    }

    /// Offers a packet of `bytes` at `now` (times must not go backwards).
    pub fn enqueue(&mut self, now: Instant, bytes: u64) -> Result<Departure, Drop> {
        if self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss {
            self.stats.random_drops += 1;
            return Err(Drop::Random);
        }
        self.drain(now);
        // The packet in transmission (the front) does not occupy the buffer.
        let waiting = self.queued_bytes - self.queue.front().map_or(0, |&(_, s)| s);
        if !self.queue.is_empty() && waiting + bytes > self.buffer_bytes {
            self.stats.overflow_drops += 1;
            return Err(Drop::Overflow);
        }
        let start = self.queue.back().map_or(now, |&(d, _)| d.max(now));
        let departure = start + self.tx_time(bytes);
        self.queue.push_back((departure, bytes));
        self.queued_bytes += bytes;
        self.stats.accepted += 1;
        self.stats.accepted_bytes += bytes;
        Ok(Departure {
            departure,
            queuing: start.saturating_duration_since(now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_buffer_converts_at_link_rate() {
        let cfg = LinkConfig {
            rate_bps: 10_000_000,
            buffer: BufferLimit::Time(Duration::from_millis(250)),
            loss: 0.0,
            seed: 0,
        };
        assert_eq!(cfg.buffer_bytes(), 312_500);
    }

    #[test]
    fn queue_drains_at_rate_and_reports_queuing_delay() {
        let mut l = Bottleneck::new(LinkConfig {
            rate_bps: 8_000,
            buffer: BufferLimit::Bytes(10_000),
            loss: 0.0,
            seed: 0,
        });
        let a = l.enqueue(Instant::ZERO, 1000).unwrap();
        assert_eq!(a.departure, Instant::from_secs(1));
        let b = l.enqueue(Instant::ZERO, 1000).unwrap();
        assert_eq!(b.queuing, Duration::from_secs(1));
        // After both left, a new packet waits for nothing.
        let c = l.enqueue(Instant::from_secs(5), 1000).unwrap();
        assert_eq!(c.queuing, Duration::ZERO);
        assert_eq!(l.backlog(Instant::from_secs(5)), 0);
    }

    #[test]
    fn random_loss_is_seeded_and_close_to_rate() {
        let run = |seed| {
            let mut l = Bottleneck::new(LinkConfig {
                rate_bps: 1_000_000_000,
                buffer: BufferLimit::Bytes(u64::MAX / 4),
                loss: 0.01,
                seed,
            });
            (0..100_000u64)
                .filter(|i| l.enqueue(Instant::from_micros(*i * 100), 100).is_err())
                .count()
        };
        assert_eq!(run(7), run(7));
        let lost = run(7);
        assert!((800..1200).contains(&lost), "lost {lost} of 100000 at 1%");
    }
}
