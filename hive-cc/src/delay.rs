//! Delay estimation shared by the LEDBAT family: base delay history and current delay filter.
//!
//! RFC 6817 §3.4.2: "The base delay is the minimum delay seen in the last BASE_HISTORY minutes
//! [...] kept as a list of minima, one per minute". RFC 6817 §3.4.1: the current delay is a
//! filtered view of the most recent samples; we use the minimum of the last `CURRENT_FILTER`
//! samples, the filter RFC 6817 suggests to resist delay spikes.
//!
//! Samples are one-way delays when the transport measures them. Otherwise we use the RTT, as
//! rLEDBAT (RFC 9840 §4.1) does: "the rLEDBAT receiver [...] uses the RTT [...]"; since both the
//! base and the current value are RTTs, their difference is still the queuing delay (plus any
//! reverse-path queuing, which then also slows the flow down — the safe direction).

use std::collections::VecDeque;

use hive_core::cc::AckEvent;
use hive_core::time::{Duration, Instant};

/// Number of one-minute minima in the base delay history (RFC 6817 BASE_HISTORY).
pub const BASE_HISTORY: usize = 10;
/// Number of recent samples the current delay filter keeps (RFC 6817 CURRENT_FILTER).
pub const CURRENT_FILTER: usize = 4;
const BUCKET: Duration = Duration::from_secs(60);

/// Base-delay history and current-delay filter of one kind of sample.
#[derive(Clone, Debug, Default)]
struct Filter {
    /// (bucket start, minimum in that bucket), oldest first.
    base: VecDeque<(Instant, Duration)>,
    current: VecDeque<Duration>,
}

impl Filter {
    fn on_sample(&mut self, now: Instant, delay: Duration) {
        match self.base.back_mut() {
            Some((start, min)) if now.saturating_duration_since(*start) < BUCKET => {
                *min = (*min).min(delay);
            }
            _ => {
                self.base.push_back((now, delay));
                while self.base.len() > BASE_HISTORY {
                    self.base.pop_front();
                }
            }
        }
        self.current.push_back(delay);
        while self.current.len() > CURRENT_FILTER {
            self.current.pop_front();
        }
    }

    fn base_delay(&self) -> Option<Duration> {
        self.base.iter().map(|(_, d)| *d).min()
    }

    fn current_delay(&self) -> Option<Duration> {
        self.current.iter().min().copied()
    }
}

/// Tracks base delay and current delay; yields the queuing delay estimate.
///
/// One-way-delay samples and RTT samples are kept apart (a transport may give a one-way delay
/// on some acks and not on others): mixing them would read the difference between an RTT and
/// a one-way delay as queuing. The estimate uses the kind of the latest sample.
#[derive(Clone, Debug, Default)]
pub struct DelayEstimator {
    owd: Filter,
    rtt: Filter,
    latest_is_rtt: bool,
}

impl DelayEstimator {
    /// An empty estimator.
    pub fn new() -> Self {
        DelayEstimator::default()
    }

    /// The delay sample an ack carries: one-way delay when known, else the RTT.
    pub fn sample_of(ack: &AckEvent) -> Duration {
        ack.one_way_delay.unwrap_or(ack.rtt)
    }

    /// Adds the sample an ack carries (one-way delay when known, else the RTT).
    pub fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
        match ack.one_way_delay {
            Some(owd) => {
                self.owd.on_sample(now, owd);
                self.latest_is_rtt = false;
            }
            None => {
                self.rtt.on_sample(now, ack.rtt);
                self.latest_is_rtt = true;
            }
        }
    }

    /// Adds a one-way-delay sample taken at `now`.
    pub fn on_sample(&mut self, now: Instant, delay: Duration) {
        self.owd.on_sample(now, delay);
        self.latest_is_rtt = false;
    }

    fn filter(&self) -> &Filter {
        if self.latest_is_rtt {
            &self.rtt
        } else {
            &self.owd
        }
    }

    /// The base delay: minimum over the history.
    pub fn base_delay(&self) -> Option<Duration> {
        self.filter().base_delay()
    }

    /// The filtered current delay.
    pub fn current_delay(&self) -> Option<Duration> {
        self.filter().current_delay()
    }

    /// Current minus base delay.
    pub fn queuing_delay(&self) -> Option<Duration> {
        Some(self.current_delay()?.saturating_sub(self.base_delay()?))
    }

    /// Forgets the current-delay samples (after a slowdown, so stale samples do not linger).
    pub fn reset_current(&mut self) {
        self.owd.current.clear();
        self.rtt.current.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_min_of_ten_minutes_and_forgets_older() {
        let mut d = DelayEstimator::new();
        d.on_sample(Instant::ZERO, Duration::from_millis(20));
        for m in 1..=10u64 {
            d.on_sample(Instant::from_secs(60 * m), Duration::from_millis(50));
        }
        // 11 buckets were opened; the first (20 ms) fell out of the 10-bucket history.
        assert_eq!(d.base_delay(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn rtt_and_one_way_samples_are_not_mixed() {
        let ack = |owd: Option<u64>, rtt: u64| AckEvent {
            bytes_acked: 1200,
            bytes_in_flight: 0,
            rtt: Duration::from_millis(rtt),
            min_rtt: Duration::from_millis(40),
            one_way_delay: owd.map(Duration::from_millis),
            sent_time: Instant::ZERO,
            app_limited: false,
        };
        let mut d = DelayEstimator::new();
        for _ in 0..4 {
            d.on_ack(Instant::ZERO, &ack(Some(20), 40));
        }
        // Acks without a one-way delay (RTT 42 ms): 2 ms of queue, not 22 ms.
        for _ in 0..4 {
            d.on_ack(Instant::ZERO, &ack(None, 42));
        }
        assert_eq!(
            d.queuing_delay(),
            Some(Duration::ZERO),
            "RTT base is its own minimum"
        );
        d.on_ack(Instant::ZERO, &ack(None, 40));
        d.on_ack(Instant::ZERO, &ack(Some(22), 44));
        assert_eq!(d.queuing_delay(), Some(Duration::from_millis(0)));
    }

    #[test]
    fn current_is_min_of_last_samples() {
        let mut d = DelayEstimator::new();
        for ms in [100, 30, 90, 95, 80, 85] {
            d.on_sample(Instant::ZERO, Duration::from_millis(ms));
        }
        assert_eq!(d.current_delay(), Some(Duration::from_millis(80)));
        assert_eq!(d.queuing_delay(), Some(Duration::from_millis(50)));
    }
}
