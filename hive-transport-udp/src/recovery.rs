//! Loss recovery (RFC 9002): RTT estimation, the record of packets in flight, and pacing.

use std::collections::BTreeMap;
use std::ops::Range;

use hive_core::time::{Duration, Instant};

/// Packet reordering threshold.
///
/// RFC 9002 §6.1.1: "The RECOMMENDED initial value for the packet reordering threshold
/// (kPacketThreshold) is 3".
pub(crate) const PACKET_THRESHOLD: u64 = 3;
/// Timer granularity (RFC 9002 §6.1.2: kGranularity, 1 ms).
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);
/// The most a receiver delays an acknowledgement.
pub(crate) const MAX_ACK_DELAY: Duration = Duration::from_millis(10);

/// What a packet carried that must be repaired if it is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SentFrame {
    Stream { class: u8, range: Range<u64> },
    MaxData { class: u8 },
    Close { code: u8 },
}

/// A packet in flight.
#[derive(Clone, Debug)]
pub(crate) struct SentPacket {
    pub(crate) time: Instant,
    pub(crate) size: u64,
    pub(crate) ack_eliciting: bool,
    pub(crate) app_limited: bool,
    pub(crate) frames: Vec<SentFrame>,
}

/// RTT estimator, RFC 9002 §5.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rtt {
    pub(crate) latest: Duration,
    pub(crate) smoothed: Option<Duration>,
    pub(crate) var: Duration,
    pub(crate) min: Option<Duration>,
    initial: Duration,
}

impl Rtt {
    pub(crate) fn new(initial: Duration) -> Self {
        Rtt {
            latest: initial,
            smoothed: None,
            var: initial / 2,
            min: None,
            initial,
        }
    }

    /// RFC 9002 §5.3: "adjusted_rtt = latest_rtt; if (latest_rtt >= min_rtt + ack_delay):
    /// adjusted_rtt = latest_rtt - ack_delay".
    pub(crate) fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        let min = self.min.map_or(sample, |m| m.min(sample));
        self.min = Some(min);
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.var = sample / 2;
            }
            Some(s) => {
                let ack_delay = ack_delay.min(MAX_ACK_DELAY);
                let adjusted = if sample >= min + ack_delay {
                    sample - ack_delay
                } else {
                    sample
                };
                let diff = s.abs_diff(adjusted);
                self.var = (self.var * 3 + diff) / 4;
                self.smoothed = Some((s * 7 + adjusted) / 8);
            }
        }
    }

    pub(crate) fn get(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    /// RFC 9002 §6.2.1: "PTO = smoothed_rtt + max(4*rttvar, kGranularity) + max_ack_delay".
    pub(crate) fn pto(&self) -> Duration {
        self.get() + (self.var * 4).max(GRANULARITY) + MAX_ACK_DELAY
    }

    /// RFC 9002 §6.1.2: "max(kTimeThreshold * max(smoothed_rtt, latest_rtt), kGranularity)"
    /// with kTimeThreshold = 9/8.
    pub(crate) fn loss_delay(&self) -> Duration {
        (self.get().max(self.latest) * 9 / 8).max(GRANULARITY)
    }
}

/// Packets in flight by number.
pub(crate) type SentMap = BTreeMap<u64, SentPacket>;

/// A token-bucket pacer (RFC 9002 §7.7: pace at a rate derived from the window and the RTT
/// when the controller gives none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacer {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub(crate) fn new(now: Instant) -> Self {
        Pacer {
            tokens: 16.0 * 1200.0,
            last: now,
        }
    }

    fn capacity(rate: f64) -> f64 {
        // Bursts of 2 ms at the rate, at least 10 datagrams: a tokio timer is ~1 ms coarse.
        (rate * 0.002).max(10.0 * 1200.0)
    }

    fn refill(&mut self, now: Instant, rate: f64) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(Self::capacity(rate));
        self.last = self.last.max(now);
    }

    /// When a packet of `size` may leave (`now` if it may leave now).
    pub(crate) fn release_time(&mut self, now: Instant, rate: Option<f64>, size: u64) -> Instant {
        let Some(rate) = rate.filter(|r| *r > 0.0) else {
            return now;
        };
        self.refill(now, rate);
        if self.tokens >= size as f64 {
            return now;
        }
        let wait = (size as f64 - self.tokens) / rate;
        now + Duration::from_secs_f64(wait.min(1.0)).max(Duration::from_micros(200))
    }

    pub(crate) fn on_sent(&mut self, size: u64) {
        self.tokens -= size as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_follows_rfc9002() {
        let mut r = Rtt::new(Duration::from_millis(100));
        assert_eq!(r.pto(), Duration::from_millis(100 + 200 + 10));
        r.update(Duration::from_millis(40), Duration::ZERO);
        assert_eq!(r.get(), Duration::from_millis(40));
        r.update(Duration::from_millis(48), Duration::from_millis(8));
        assert_eq!(r.get(), Duration::from_millis(40));
        assert_eq!(r.min, Some(Duration::from_millis(40)));
    }

    #[test]
    fn pacer_spaces_packets() {
        let t0 = Instant::from_secs(1);
        let mut p = Pacer::new(t0);
        let rate = Some(1_200_000.0); // 1000 packets/s
        let mut sent = 0;
        while p.release_time(t0, rate, 1200) == t0 {
            p.on_sent(1200);
            sent += 1;
        }
        assert_eq!(sent, 10, "a burst of at most 10 datagrams at this rate");
        let next = p.release_time(t0, rate, 1200);
        assert!(next > t0 && next <= t0 + Duration::from_millis(2));
    }
}
