//! The `CongestionController` contract: sans-IO, object-safe, time passed in.
//!
//! A transport tells the controller what happens to its packets; the controller answers how many
//! bytes may be in flight ([`CongestionController::window`]) and how fast to pace
//! ([`CongestionController::pacing_rate`]). The transport keeps the bookkeeping of what is in
//! flight and passes the result in every event, so a controller holds only its own state — and an
//! adapter can plug it into another stack (s2n-quic's `CongestionController` provider) without
//! duplicating loss detection.
//!
//! Delay-based controllers (LEDBAT, LEDBAT++, DTL) use [`AckEvent::one_way_delay`] when the
//! transport measures it, and RTT − min RTT otherwise (as rLEDBAT, RFC 9840, does).
//!
//! ## Example: a fixed-window controller, driven by hand
//!
//! ```
//! use hive_core::cc::{AckEvent, CongestionController, LossEvent};
//! use hive_core::time::{Duration, Instant};
//!
//! #[derive(Debug)]
//! struct Fixed { window: u64 }
//!
//! impl CongestionController for Fixed {
//!     fn name(&self) -> &'static str { "fixed" }
//!     fn on_sent(&mut self, _now: Instant, _bytes: u64, _in_flight: u64) {}
//!     fn on_ack(&mut self, _now: Instant, _ack: &AckEvent) {}
//!     fn on_loss(&mut self, _now: Instant, _loss: &LossEvent) {}
//!     fn on_timeout(&mut self, _now: Instant) {}
//!     fn window(&self) -> u64 { self.window }
//! }
//!
//! let mut cc: Box<dyn CongestionController> = Box::new(Fixed { window: 10 * 1200 });
//! let t0 = Instant::ZERO;
//! cc.on_sent(t0, 1200, 1200);
//! cc.on_ack(t0 + Duration::from_millis(40), &AckEvent {
//!     bytes_acked: 1200,
//!     bytes_in_flight: 0,
//!     rtt: Duration::from_millis(40),
//!     min_rtt: Duration::from_millis(40),
//!     one_way_delay: None,
//!     sent_time: t0,
//!     app_limited: false,
//! });
//! assert_eq!(cc.window(), 12_000);
//! assert!(cc.set_priority(1.0).is_err(), "no priority knob on this one");
//! ```

use std::fmt;

use crate::error::CcError;
use crate::time::{Duration, Instant};

/// The default maximum segment (datagram payload) size Hive's controllers assume.
pub const DEFAULT_MSS: u64 = 1200;

/// An acknowledgement of newly acked bytes, with the samples it carried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AckEvent {
    /// Bytes newly acknowledged by this ack.
    pub bytes_acked: u64,
    /// Bytes still in flight after removing the acked ones.
    pub bytes_in_flight: u64,
    /// The RTT sample of the newest acked packet.
    pub rtt: Duration,
    /// The minimum RTT the transport has seen on this path.
    pub min_rtt: Duration,
    /// The one-way delay (receiver clock − sender timestamp) of the newest acked packet, when
    /// the transport measures it. Offsets between clocks cancel out in base-delay filters.
    pub one_way_delay: Option<Duration>,
    /// When the newest acked packet was sent (for once-per-RTT decisions).
    pub sent_time: Instant,
    /// Whether the sender was application-limited when that packet was sent (window growth should
    /// not follow an ack of application-limited data).
    pub app_limited: bool,
}

/// A loss of one or more packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossEvent {
    /// Bytes declared lost.
    pub bytes_lost: u64,
    /// Bytes still in flight after removing the lost ones.
    pub bytes_in_flight: u64,
    /// When the newest lost packet was sent: losses of packets sent before the last reduction
    /// belong to the same congestion event (at most one reduction per RTT).
    pub sent_time: Instant,
    /// Persistent congestion (RFC 9002 §7.6): collapse the window.
    pub persistent: bool,
}

/// A congestion controller. Object-safe and sans-IO: every input carries `now`.
pub trait CongestionController: Send + fmt::Debug {
    /// The algorithm's name, as reports print it ("newreno", "cubic", "ledbat", ...).
    fn name(&self) -> &'static str;

    /// A packet of `bytes` was sent; `bytes_in_flight` includes it.
    fn on_sent(&mut self, now: Instant, bytes: u64, bytes_in_flight: u64);

    /// Newly acknowledged bytes.
    fn on_ack(&mut self, now: Instant, ack: &AckEvent);

    /// Packets declared lost.
    fn on_loss(&mut self, now: Instant, loss: &LossEvent);

    /// A retransmission / probe timeout fired with nothing acknowledged.
    fn on_timeout(&mut self, now: Instant);

    /// The congestion window: bytes allowed in flight.
    fn window(&self) -> u64;

    /// The pacing rate in bytes per second, or `None` to send as the window allows.
    fn pacing_rate(&self) -> Option<u64> {
        None
    }

    /// Whether the controller is in slow start.
    fn in_slow_start(&self) -> bool {
        false
    }

    /// The run-time priority, for controllers that have one (DTL).
    fn priority(&self) -> Option<f64> {
        None
    }

    /// Changes the run-time priority on a live flow. Controllers without the knob return
    /// [`CcError::NoPriority`].
    fn set_priority(&mut self, priority: f64) -> Result<(), CcError> {
        let _ = priority;
        Err(CcError::NoPriority { algo: self.name() })
    }
}

/// Builds a fresh controller per connection or flow (transports and the arena take one).
pub trait CongestionControllerFactory: Send + Sync + fmt::Debug {
    /// The algorithm's name.
    fn name(&self) -> &'static str;
    /// A new controller for a path with the given maximum segment size.
    fn build(&self, now: Instant, mss: u64) -> Box<dyn CongestionController>;
}
