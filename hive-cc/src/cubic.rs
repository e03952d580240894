//! CUBIC (RFC 9438).

use hive_core::cc::{AckEvent, CongestionController, LossEvent};
use hive_core::time::{Duration, Instant};

/// RFC 9438 §5: "C SHOULD be set to 0.4".
const C: f64 = 0.4;
/// RFC 9438 §4.6: "β_cubic SHOULD be set to 0.7".
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3 (1 − β_cubic) / (1 + β_cubic).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
const MIN_WINDOW_SEGMENTS: f64 = 2.0;

/// The CUBIC congestion controller. Window arithmetic in segments, as in RFC 9438.
#[derive(Clone, Debug)]
pub struct Cubic {
    mss: u64,
    /// Congestion window, in segments.
    cwnd: f64,
    ssthresh: f64,
    /// W_max: the window before the last reduction, in segments.
    w_max: f64,
    /// W_max before that (fast convergence, RFC 9438 §4.7).
    w_last_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch_start: Option<Instant>,
    k: f64,
    /// W_est: the Reno-friendly estimate (RFC 9438 §4.3).
    w_est: f64,
    recovery_start: Option<Instant>,
    srtt: Option<Duration>,
}

impl Cubic {
    /// A controller for segments of `mss` bytes.
    pub fn new(mss: u64) -> Self {
        let iw = (10 * mss).min(14_720u64.max(2 * mss)) as f64 / mss as f64;
        Cubic {
            mss,
            cwnd: iw,
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            w_last_max: 0.0,
            epoch_start: None,
            k: 0.0,
            w_est: iw,
            recovery_start: None,
            srtt: None,
        }
    }

    fn in_recovery(&self, sent_time: Instant) -> bool {
        self.recovery_start.is_some_and(|r| sent_time <= r)
    }

    /// RFC 9438 §4.2, eq. 1: W_cubic(t) = C (t − K)³ + W_max.
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    fn reduce(&mut self, now: Instant) {
        // RFC 9438 §4.7 fast convergence.
        if self.cwnd < self.w_last_max {
            self.w_last_max = self.cwnd;
            self.w_max = self.cwnd * (1.0 + BETA) / 2.0;
        } else {
            self.w_last_max = self.cwnd;
            self.w_max = self.cwnd;
        }
        // RFC 9438 §4.6: ssthresh = cwnd * β_cubic; cwnd = max(ssthresh, 2).
        self.ssthresh = (self.cwnd * BETA).max(MIN_WINDOW_SEGMENTS);
        self.cwnd = self.ssthresh;
        self.recovery_start = Some(now);
        self.epoch_start = None;
    }
}

impl CongestionController for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, _bytes_in_flight: u64) {}

    fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
        self.srtt = Some(match self.srtt {
            None => ack.rtt,
            Some(s) => (s * 7 + ack.rtt) / 8,
        });
        if self.in_recovery(ack.sent_time) || ack.app_limited {
            return;
        }
        let acked = ack.bytes_acked as f64 / self.mss as f64;
        if self.cwnd < self.ssthresh {
            self.cwnd += acked;
            return;
        }
        let epoch = *self.epoch_start.get_or_insert_with(|| {
            // RFC 9438 §4.2: at the start of an epoch without a prior reduction, W_max = cwnd and
            // K = 0; after a reduction K = cbrt(W_max (1 − β) / C).
            if self.w_max <= self.cwnd {
                self.w_max = self.cwnd;
                self.k = 0.0;
            } else {
                self.k = ((self.w_max - self.cwnd) / C).cbrt();
            }
            self.w_est = self.cwnd;
            now
        });
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        let rtt = self.srtt.unwrap_or(ack.rtt).as_secs_f64();
        // RFC 9438 §4.3: W_est += α_cubic · segments_acked / cwnd.
        self.w_est += ALPHA * acked / self.cwnd;
        if self.w_cubic(t) < self.w_est {
            // Reno-friendly region.
            self.cwnd = self.w_est;
        } else {
            // RFC 9438 §4.4: target = W_cubic(t + RTT), clamped to [cwnd, 1.5 cwnd];
            // cwnd += (target − cwnd) / cwnd per segment acked.
            let target = self.w_cubic(t + rtt).clamp(self.cwnd, 1.5 * self.cwnd);
            self.cwnd += (target - self.cwnd) / self.cwnd * acked;
        }
    }

    fn on_loss(&mut self, now: Instant, loss: &LossEvent) {
        if loss.persistent {
            self.reduce(now);
            self.cwnd = MIN_WINDOW_SEGMENTS;
            return;
        }
        if self.in_recovery(loss.sent_time) {
            return;
        }
        self.reduce(now);
    }

    fn on_timeout(&mut self, now: Instant) {
        self.reduce(now);
        // RFC 9438 §4.8: after an RTO, cwnd restarts from one segment.
        self.cwnd = 1.0;
    }

    fn window(&self) -> u64 {
        (self.cwnd * self.mss as f64) as u64
    }

    fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }
}
