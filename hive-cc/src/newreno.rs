//! NewReno (RFC 5681, RFC 6582), with the window arithmetic of QUIC's NewReno (RFC 9002 §7).

use hive_core::cc::{AckEvent, CongestionController, LossEvent};
use hive_core::time::Instant;

use crate::initial_window;

/// RFC 5681 §3.1 / RFC 9002 §7.2: the minimum window is 2 segments.
const MIN_WINDOW_SEGMENTS: u64 = 2;

/// The NewReno congestion controller.
#[derive(Clone, Debug)]
pub struct NewReno {
    mss: u64,
    cwnd: u64,
    ssthresh: u64,
    /// Bytes acked in congestion avoidance not yet turned into window growth.
    acked_accumulator: u64,
    /// RFC 6582 §3.2: losses of packets sent before this instant belong to the current recovery.
    recovery_start: Option<Instant>,
}

impl NewReno {
    /// A controller for segments of `mss` bytes.
    pub fn new(mss: u64) -> Self {
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u64::MAX,
            acked_accumulator: 0,
            recovery_start: None,
        }
    }

    fn in_recovery(&self, sent_time: Instant) -> bool {
        self.recovery_start.is_some_and(|r| sent_time <= r)
    }
}

impl CongestionController for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, _bytes_in_flight: u64) {}

    fn on_ack(&mut self, _now: Instant, ack: &AckEvent) {
        // RFC 9002 §7.3.2: no growth for acks of packets sent during recovery, nor when
        // application-limited (RFC 9002 §7.8).
        if self.in_recovery(ack.sent_time) || ack.app_limited {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 slow start (with appropriate byte counting, RFC 3465).
            self.cwnd += ack.bytes_acked;
        } else {
            // RFC 5681 §3.1 (eq. 3): "cwnd += SMSS*SMSS/cwnd" per ack, i.e. one SMSS per window.
            self.acked_accumulator += ack.bytes_acked;
            if self.acked_accumulator >= self.cwnd {
                self.acked_accumulator -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }

    fn on_loss(&mut self, now: Instant, loss: &LossEvent) {
        if loss.persistent {
            // RFC 9002 §7.6.2: collapse to the minimum window.
            self.ssthresh = (self.cwnd / 2).max(MIN_WINDOW_SEGMENTS * self.mss);
            self.cwnd = MIN_WINDOW_SEGMENTS * self.mss;
            self.recovery_start = Some(now);
            return;
        }
        if self.in_recovery(loss.sent_time) {
            return;
        }
        // RFC 6582 §3.2 step 2 / RFC 9002 §7.3.2: halve once per congestion event.
        self.recovery_start = Some(now);
        self.ssthresh = (self.cwnd / 2).max(MIN_WINDOW_SEGMENTS * self.mss);
        self.cwnd = self.ssthresh;
        self.acked_accumulator = 0;
    }

    fn on_timeout(&mut self, now: Instant) {
        // RFC 5681 §3.1: after a retransmission timeout, "cwnd MUST be set to no more than the
        // loss window, LW, which equals 1 full-sized segment".
        self.ssthresh = (self.cwnd / 2).max(MIN_WINDOW_SEGMENTS * self.mss);
        self.cwnd = self.mss;
        self.recovery_start = Some(now);
        self.acked_accumulator = 0;
    }

    fn window(&self) -> u64 {
        self.cwnd
    }

    fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }
}
