//! LEDBAT: Low Extra Delay Background Transport (RFC 6817).

use hive_core::cc::{AckEvent, CongestionController, LossEvent};
use hive_core::time::{Duration, Instant};

use crate::delay::DelayEstimator;

/// LEDBAT parameters. The defaults are the RFC's limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LedbatConfig {
    /// RFC 6817 §3.3.2: "TARGET MUST NOT be more than 100 milliseconds".
    pub target: Duration,
    /// RFC 6817 §3.3.2: "GAIN MUST be set to 1 or less".
    pub gain: f64,
    /// RFC 6817 §3.4.1: "ALLOWED_INCREASE SHOULD be 1, and it MUST be greater than 0".
    pub allowed_increase: f64,
    /// RFC 6817 §3.4.1: minimum window in segments ("MIN_CWND SHOULD be 2").
    pub min_cwnd: u64,
    /// Initial window in segments ("INIT_CWND SHOULD be 2").
    pub init_cwnd: u64,
    /// An initial slow start, left at the first loss or when the queuing delay reaches TARGET/2;
    /// on a delay exit the window is halved, because in slow start the window doubles every RTT
    /// and the delay sample that triggered the exit was caused by the window of one RTT earlier
    /// (without this the queue overshoots the target and LEDBAT's additive decrease needs tens of
    /// seconds to bring it back). RFC 6817 gives only the congestion-avoidance law; without slow
    /// start a lone flow needs about one RTT per segment of window to fill the link. Off gives the
    /// RFC's pseudocode.
    pub slow_start: bool,
}

impl Default for LedbatConfig {
    fn default() -> Self {
        LedbatConfig {
            target: Duration::from_millis(100),
            gain: 1.0,
            allowed_increase: 1.0,
            min_cwnd: 2,
            init_cwnd: 2,
            slow_start: true,
        }
    }
}

/// The LEDBAT congestion controller.
#[derive(Clone, Debug)]
pub struct Ledbat {
    cfg: LedbatConfig,
    mss: u64,
    cwnd: f64,
    delay: DelayEstimator,
    slow_start: bool,
    last_reduction: Option<Instant>,
}

impl Ledbat {
    /// A controller with the default (RFC) parameters.
    pub fn new(mss: u64) -> Self {
        Self::with_config(mss, LedbatConfig::default())
    }

    /// A controller with the given parameters, brought within RFC 6817's limits: TARGET at most
    /// 100 ms, GAIN in (0, 1], ALLOWED_INCREASE above 0, MIN_CWND and INIT_CWND at least 1.
    pub fn with_config(mss: u64, cfg: LedbatConfig) -> Self {
        let cfg = LedbatConfig {
            target: cfg
                .target
                .clamp(Duration::from_millis(1), Duration::from_millis(100)),
            gain: if cfg.gain.is_finite() {
                cfg.gain.clamp(1e-3, 1.0)
            } else {
                1.0
            },
            allowed_increase: if cfg.allowed_increase.is_finite() && cfg.allowed_increase > 0.0 {
                cfg.allowed_increase
            } else {
                1.0
            },
            min_cwnd: cfg.min_cwnd.max(1),
            init_cwnd: cfg.init_cwnd.max(cfg.min_cwnd.max(1)),
            slow_start: cfg.slow_start,
        };
        Ledbat {
            cfg,
            mss,
            cwnd: (cfg.init_cwnd * mss) as f64,
            delay: DelayEstimator::new(),
            slow_start: cfg.slow_start,
            last_reduction: None,
        }
    }

    /// The current queuing-delay estimate.
    pub fn queuing_delay(&self) -> Option<Duration> {
        self.delay.queuing_delay()
    }

    fn min_cwnd(&self) -> f64 {
        (self.cfg.min_cwnd * self.mss) as f64
    }

    /// The parameters in force (after clamping to the RFC's limits).
    pub fn config(&self) -> &LedbatConfig {
        &self.cfg
    }
}

impl CongestionController for Ledbat {
    fn name(&self) -> &'static str {
        "ledbat"
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, _bytes_in_flight: u64) {}

    /// RFC 6817 §2.4.2:
    /// ```text
    /// queuing_delay = FILTER(current_delays) - MIN(base_delays)
    /// off_target = (TARGET - queuing_delay) / TARGET
    /// cwnd += GAIN * off_target * bytes_newly_acked * MSS / cwnd
    /// max_allowed_cwnd = flightsize + ALLOWED_INCREASE * MSS
    /// cwnd = min(cwnd, max_allowed_cwnd)
    /// cwnd = max(cwnd, MIN_CWND * MSS)
    /// ```
    /// The `max_allowed_cwnd` cap limits growth and never cuts the window (see `cap_growth` in
    /// lib.rs).
    fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
        self.delay.on_ack(now, ack);
        let Some(qd) = self.delay.queuing_delay() else {
            return;
        };
        let target = self.cfg.target.as_secs_f64();
        let qd = qd.as_secs_f64();
        let acked = ack.bytes_acked as f64;
        let mss = self.mss as f64;
        let before = self.cwnd;
        let mut allowed = self.cfg.allowed_increase * mss;
        if self.slow_start && qd >= target / 2.0 {
            self.slow_start = false;
            self.cwnd /= 2.0;
        } else if self.slow_start {
            self.cwnd += acked;
            if crate::timer_clocked(ack, before, self.mss) {
                // A whole flight acked at once by the receiver's timer: the one segment per ack
                // of RFC 6817's cap would hold slow start to a segment per 25 ms round.
                allowed = allowed.max(acked);
            }
        } else {
            let off_target = (target - qd) / target;
            self.cwnd += self.cfg.gain * off_target * acked * mss / self.cwnd;
        }
        // The RFC's flightsize is taken before the acked bytes are removed.
        let flightsize = (ack.bytes_in_flight + ack.bytes_acked) as f64;
        self.cwnd = crate::cap_growth(before, self.cwnd, flightsize, allowed).max(self.min_cwnd());
    }

    /// RFC 6817 §2.4.2: "cwnd = min (cwnd, max (cwnd/2, MIN_CWND * MSS))" on loss, and §3.4.1:
    /// "LEDBAT \[...\] SHOULD NOT reduce \[cwnd\] more than once per RTT".
    fn on_loss(&mut self, now: Instant, loss: &LossEvent) {
        if !loss.persistent && self.last_reduction.is_some_and(|t| loss.sent_time <= t) {
            return;
        }
        self.slow_start = false;
        self.last_reduction = Some(now);
        self.cwnd = self.cwnd.min((self.cwnd / 2.0).max(self.min_cwnd()));
    }

    /// RFC 6817 §2.4.2: after a timeout, "cwnd = 1 * MSS"... bounded below by MIN_CWND here, as
    /// the window may never fall below it.
    fn on_timeout(&mut self, now: Instant) {
        self.slow_start = false;
        self.last_reduction = Some(now);
        self.cwnd = self.min_cwnd();
    }

    fn window(&self) -> u64 {
        self.cwnd as u64
    }

    fn in_slow_start(&self) -> bool {
        self.slow_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_held_to_the_rfc_limits() {
        let l = Ledbat::with_config(
            1200,
            LedbatConfig {
                target: Duration::from_millis(500),
                gain: 4.0,
                allowed_increase: -1.0,
                ..LedbatConfig::default()
            },
        );
        assert_eq!(l.config().target, Duration::from_millis(100));
        assert_eq!(l.config().gain, 1.0);
        assert_eq!(l.config().allowed_increase, 1.0);
    }
}
