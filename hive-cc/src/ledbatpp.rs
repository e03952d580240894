//! LEDBAT++ (draft-irtf-iccrg-ledbat-plus-plus-01).
//!
//! The draft's changes to LEDBAT, each implemented here:
//! - §4.1 a 60 ms target;
//! - §4.2 slow start with the increase multiplied by GAIN, left when the queuing delay exceeds
//!   3/4 of the target — except below the initial window when each ack acknowledges the whole
//!   flight (rounds clocked by the receiver's ack-delay timer, see `slow_start`);
//! - §4.3 "GAIN = 1 / min(16, CEIL(2*TARGET/base))" so flows with a short base delay grow slowly;
//! - §4.4 multiplicative decrease: "W += max((GAIN - Constant * W * (delay/target - 1)), -W/2)"
//!   per RTT when above target (Constant = 1);
//! - §4.5 periodic slowdowns: after the initial slow start, wait 2 RTTs, drop the window to 2
//!   packets for 2 RTTs, slow start back to the previous window, and schedule the next slowdown
//!   9 slowdown-durations later (so a lone flow loses at most ~10%) — the queue drains during a
//!   slowdown, which lets every flow re-measure the base delay (latecomer fairness). A slowdown
//!   that falls due while the flow sees less than a tenth of the target of queue waits until it
//!   sees more (see `SLOWDOWN_MIN_QUEUE`).

use hive_core::cc::{AckEvent, CongestionController, LossEvent};
use hive_core::time::{Duration, Instant};

use crate::delay::DelayEstimator;

/// The draft's target.
pub const TARGET: Duration = Duration::from_millis(60);
const MIN_CWND: u64 = 2;
/// A periodic slowdown that falls due is postponed while the queuing delay is below this share
/// of the target: there is no queue for it to drain.
///
/// The slowdown exists to empty the bottleneck queue so that every flow measures the true base
/// delay. Where the flow cannot build a queue at all — the bottleneck is a CPU or a socket
/// buffer (loopback), or losses hold the window below the path's capacity — it drains nothing
/// and only costs throughput: the window drops to 2 packets and, behind a receiver that acks a
/// flight that small only when its ack timer fires (s2n-quic: 25 ms), the freeze and the ramp
/// back are whole timer rounds at almost no throughput; with the next slowdown 9 durations
/// later, that is a steady 10% of the flow's time (86% of Cubic's bytes in `tests/fast_path.rs`
/// behind an s2n-quic receiver, 96% without). A latecomer that took the queue of earlier flows
/// for base delay still slows down: it reaches this much queue of its own within a few round
/// trips of growing towards the target, and the earlier flows, which see the whole queue, keep
/// their slowdowns. The arena's figures are the same with and without it, but for the lossy
/// link, where a lone LEDBAT++ flow moves 1.42 Mbit/s instead of 1.33.
const SLOWDOWN_MIN_QUEUE: f64 = 0.1;
const INIT_CWND: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Initial slow start.
    InitialSlowStart,
    /// Congestion avoidance; the next slowdown starts at `next_slowdown`.
    Avoidance { next_slowdown: Instant },
    /// Window frozen at the minimum until `until`; `saved` is the window to return to.
    Frozen {
        started: Instant,
        until: Instant,
        saved: f64,
    },
    /// Slow start back to `saved` after a slowdown that started at `started`.
    Recovering { started: Instant, saved: f64 },
}

/// The LEDBAT++ congestion controller.
#[derive(Clone, Debug)]
pub struct LedbatPlusPlus {
    mss: u64,
    cwnd: f64,
    delay: DelayEstimator,
    phase: Phase,
    last_reduction: Option<Instant>,
    srtt: Option<Duration>,
}

impl LedbatPlusPlus {
    /// A controller for segments of `mss` bytes.
    pub fn new(mss: u64) -> Self {
        LedbatPlusPlus {
            mss,
            cwnd: (INIT_CWND * mss) as f64,
            delay: DelayEstimator::new(),
            phase: Phase::InitialSlowStart,
            last_reduction: None,
            srtt: None,
        }
    }

    fn gain(&self) -> f64 {
        // §4.3: GAIN = 1 / min(16, CEIL(2*TARGET/base)).
        let base = self
            .delay
            .base_delay()
            .unwrap_or(TARGET)
            .as_secs_f64()
            .max(1e-4);
        let ratio = (2.0 * TARGET.as_secs_f64() / base).ceil();
        1.0 / ratio.clamp(1.0, 16.0)
    }

    fn rtt(&self) -> Duration {
        self.srtt.unwrap_or(Duration::from_millis(100))
    }

    fn min_cwnd(&self) -> f64 {
        (MIN_CWND * self.mss) as f64
    }

    /// One ack of slow start (the initial one, and the ramp after a slowdown): §4.2's
    /// `GAIN × acked`, or the bytes acked when the round was clocked by the receiver's ack-delay
    /// timer (see [`timer_clocked`](crate::timer_clocked)). Returns the growth RFC 6817's cap
    /// allows beyond the flight: one segment, or one per acked segment in a timer-clocked round.
    ///
    /// §4.3 scales the growth per round so that the window grows at about the same pace in
    /// *time* on every path, a round lasting about one base delay. A timer-clocked round lasts
    /// far longer (25 ms against a 60 µs base delay on loopback QUIC, where GAIN = 1/16 and
    /// ×1.0625 per round took 0.66 s from 2 to 10 packets; LEDBAT++ moved 0.2 Gbit/s there
    /// against Cubic's 2.9). Doubling per such round is still far slower, in time, than the
    /// pace the draft sets for the path, and it stops at the initial window.
    fn slow_start(&mut self, acked: f64, timer_clocked: bool, gain: f64) -> f64 {
        let mss = self.mss as f64;
        if timer_clocked {
            self.cwnd += acked;
            acked.max(mss)
        } else {
            self.cwnd += gain * acked;
            mss
        }
    }
}

impl CongestionController for LedbatPlusPlus {
    fn name(&self) -> &'static str {
        "ledbat++"
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, _bytes_in_flight: u64) {}

    fn on_ack(&mut self, now: Instant, ack: &AckEvent) {
        self.srtt = Some(match self.srtt {
            None => ack.rtt,
            Some(s) => (s * 7 + ack.rtt) / 8,
        });
        self.delay.on_ack(now, ack);
        let Some(qd) = self.delay.queuing_delay() else {
            return;
        };
        let target = TARGET.as_secs_f64();
        let qd = qd.as_secs_f64();
        let acked = ack.bytes_acked as f64;
        let mss = self.mss as f64;
        let gain = self.gain();
        let before = self.cwnd;
        let timer_clocked = crate::timer_clocked(ack, self.cwnd, self.mss);
        let mut allowed = mss;
        match self.phase {
            Phase::InitialSlowStart => {
                if qd > 0.75 * target {
                    // §4.5: "the first slowdown [...] 2 RTTs after the end of the initial slow start".
                    self.phase = Phase::Avoidance {
                        next_slowdown: now + self.rtt() * 2,
                    };
                } else {
                    allowed = self.slow_start(acked, timer_clocked, gain);
                }
            }
            Phase::Avoidance { next_slowdown } => {
                if now >= next_slowdown && qd >= SLOWDOWN_MIN_QUEUE * target {
                    let saved = self.cwnd;
                    self.cwnd = self.min_cwnd();
                    self.phase = Phase::Frozen {
                        started: now,
                        until: now + self.rtt() * 2,
                        saved,
                    };
                    return;
                }
                let w = self.cwnd / mss;
                let per_rtt = if qd <= target {
                    gain
                } else {
                    // §4.4, bounded so a window never loses more than half per RTT.
                    (gain - w * (qd / target - 1.0)).max(-w / 2.0)
                };
                self.cwnd += per_rtt * mss * acked / self.cwnd;
            }
            Phase::Frozen {
                started,
                until,
                saved,
            } => {
                self.cwnd = self.min_cwnd();
                if now >= until {
                    self.phase = Phase::Recovering { started, saved };
                }
                return;
            }
            Phase::Recovering { started, saved } => {
                if qd > 0.75 * target || self.cwnd >= saved {
                    // §4.5: "the next slowdown [...] at 9 times the duration of the slowdown".
                    let took = now.saturating_duration_since(started);
                    self.phase = Phase::Avoidance {
                        next_slowdown: now + took * 9,
                    };
                } else {
                    allowed = self.slow_start(acked, timer_clocked, gain);
                }
            }
        }
        // RFC 6817's cap, kept by the draft, on growth only (see `cap_growth`); one segment per
        // acked segment when the receiver's timer acked a whole flight at once.
        let flightsize = (ack.bytes_in_flight + ack.bytes_acked) as f64;
        self.cwnd = crate::cap_growth(before, self.cwnd, flightsize, allowed).max(self.min_cwnd());
    }

    fn on_loss(&mut self, now: Instant, loss: &LossEvent) {
        if !loss.persistent && self.last_reduction.is_some_and(|t| loss.sent_time <= t) {
            return;
        }
        self.last_reduction = Some(now);
        self.cwnd = (self.cwnd / 2.0).max(self.min_cwnd());
        match self.phase {
            Phase::InitialSlowStart => {
                self.phase = Phase::Avoidance {
                    next_slowdown: now + self.rtt() * 2,
                };
            }
            Phase::Recovering { started, .. } => {
                let took = now.saturating_duration_since(started);
                self.phase = Phase::Avoidance {
                    next_slowdown: now + took * 9,
                };
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.on_loss(
            now,
            &LossEvent {
                bytes_lost: 0,
                bytes_in_flight: 0,
                sent_time: now,
                persistent: true,
            },
        );
    }

    fn window(&self) -> u64 {
        self.cwnd as u64
    }

    fn in_slow_start(&self) -> bool {
        matches!(
            self.phase,
            Phase::InitialSlowStart | Phase::Recovering { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u64 = 1472;

    /// A flow on a 40 ms path whose initial slow start a loss ended (the first slowdown falls
    /// due 2 RTTs later), then acked every 10 ms for 400 ms with `queue` of queuing delay:
    /// whether it froze its window for a slowdown.
    fn slows_down_with(queue: Duration) -> bool {
        let base = Duration::from_millis(40);
        let ack = |now: Instant, rtt: Duration| AckEvent {
            bytes_acked: 10 * MSS,
            bytes_in_flight: 50 * MSS,
            rtt,
            min_rtt: base,
            one_way_delay: None,
            sent_time: now - rtt,
            app_limited: false,
        };
        let mut l = LedbatPlusPlus::new(MSS);
        let mut now = Instant::from_secs(1);
        l.on_ack(now, &ack(now, base));
        let loss = LossEvent {
            bytes_lost: MSS,
            bytes_in_flight: 50 * MSS,
            sent_time: now,
            persistent: false,
        };
        l.on_loss(now, &loss);
        for _ in 0..40 {
            now += Duration::from_millis(10);
            l.on_ack(now, &ack(now, base + queue));
            if matches!(l.phase, Phase::Frozen { .. }) {
                return true;
            }
        }
        false
    }

    #[test]
    fn a_slowdown_waits_until_there_is_a_queue_to_drain() {
        assert!(!slows_down_with(Duration::from_millis(1)), "1 ms of queue");
        assert!(slows_down_with(Duration::from_millis(30)), "30 ms of queue");
    }
}
