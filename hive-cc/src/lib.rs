//! # hive-cc
//!
//! Congestion controllers for Hive, a bottleneck-link model, and the arena that races them.
//!
//! Hive's uploads must never hurt the network they live on: peer traffic yields to interactive
//! traffic (LEDBAT, less than best effort), yet a fragment close to its playback deadline must be
//! able to compete like TCP. [`Dtl`] does both with one run-time priority.
//!
//! | controller | spec | in one line |
//! |---|---|---|
//! | [`NewReno`] | RFC 5681, RFC 6582 | the loss-based reference |
//! | [`Cubic`] | RFC 9438 | today's default TCP |
//! | [`Ledbat`] | RFC 6817 | background: keeps queuing delay near a 100 ms target, yields to TCP |
//! | [`LedbatPlusPlus`] | draft-irtf-iccrg-ledbat-plus-plus | 60 ms target, periodic slowdowns, latecomer-fair |
//! | [`Dtl`] | this crate | priority p ∈ [0, 2]: LEDBAT at 0, TCP-fair at 1, MulTCP(2) at 2 |
//!
//! All are sans-IO and implement [`hive_core::cc::CongestionController`]; delay-based ones use
//! one-way delay when the transport measures it, else RTT − min RTT.
//!
//! ```
//! use hive_cc::Algorithm;
//! use hive_cc::arena::{run, Scenario};
//!
//! // Two flows through the default home link (10 Mbit/s, 40 ms, 250 ms buffer), 20 s.
//! let mut s = Scenario::new("ledbat-vs-newreno", &["ledbat".parse().unwrap(), Algorithm::NewReno]);
//! s.duration = hive_core::time::Duration::from_secs(20);
//! let report = run(&s);
//! let ledbat = &report.flows[0];
//! assert!(ledbat.share < 0.1, "LEDBAT yields: share {}", ledbat.share);
//! ```

#![forbid(unsafe_code)]

pub mod arena;
mod cubic;
pub mod delay;
mod dtl;
mod ledbat;
mod ledbatpp;
pub mod link;
mod newreno;

use std::fmt;
use std::str::FromStr;

use hive_core::cc::{AckEvent, CongestionController, CongestionControllerFactory};
use hive_core::time::Instant;

pub use cubic::Cubic;
pub use dtl::{Dtl, DtlConfig, MAX_PRIORITY, MIN_PRIORITY};
pub use ledbat::{Ledbat, LedbatConfig};
pub use ledbatpp::{LedbatPlusPlus, TARGET as LEDBATPP_TARGET};
pub use newreno::NewReno;

/// RFC 9002 §7.2: "kInitialWindow = min(10 * max_datagram_size, max(14720, 2 * max_datagram_size))".
pub(crate) fn initial_window(mss: u64) -> u64 {
    (10 * mss).min(14_720u64.max(2 * mss))
}

/// Whether an ack shows a window clocked by the receiver's ack-delay timer instead of by the
/// path: it acknowledged everything in flight, and the window is below the initial window.
///
/// A receiver may hold its ack until enough packets arrived or its ack-delay timer fires (RFC
/// 9000 §13.2.1; s2n-quic acks every 10th packet, else after 25 ms; Hive's UDP transport every
/// 2nd, else after 5 ms). A flight smaller than that waits for the timer, and its one ack then
/// acknowledges the whole flight. Such rounds last the timer, not the path's round trip — 25 ms
/// on a 60 µs loopback — so growth counted per round, or capped at one segment per ack (RFC
/// 6817's ALLOWED_INCREASE), crawls: LEDBAT's slow start took 8 such rounds (0.2 s) to get from
/// 2 to 10 packets on loopback QUIC, LEDBAT++ (GAIN 1/16 there) 26 (0.66 s), at the start and
/// again after every slowdown. Where acks come per packet or two, a window-limited sender always
/// has packets in flight when an ack arrives, so this never holds (the arena's runs never see
/// it). Below the initial window — what any TCP or QUIC connection sends in its first round trip
/// (RFC 9002 §7.2, RFC 6928) — the LEDBAT family then slow-starts as QUIC does, "the congestion
/// window increases by the number of bytes acknowledged" (RFC 9002 §7.3.1), one segment per
/// acked segment.
pub(crate) fn timer_clocked(ack: &AckEvent, cwnd: f64, mss: u64) -> bool {
    ack.bytes_in_flight == 0 && cwnd < initial_window(mss) as f64
}

/// RFC 6817 §2.4.2's cap, `max_allowed_cwnd = flightsize + ALLOWED_INCREASE * MSS;
/// cwnd = min(cwnd, max_allowed_cwnd)`, applied to growth only: a window may not grow past what
/// was in flight (plus `allowed` bytes), but the cap never shrinks it.
///
/// The cap is there so that a sender which does not use its window does not inflate it. Applied
/// on every ack as the pseudocode reads, it also *cuts* the window to the flight of that one ack
/// whenever less than a window happened to be in flight — and on a fast path that is most acks:
/// the sender is CPU- or pacing-limited for a moment, or the receiver acks every tenth packet
/// (s2n-quic) and leaves the tail of a flight to its 25 ms ack-delay timer. Measured on loopback
/// QUIC, LEDBAT's window fell to 11 packets many times a second and LEDBAT++ sat below 12 packets
/// for 17 s. RFC 9002 §7.8 treats an under-used window this way: "When bytes in flight is smaller
/// than the congestion window and sending is not pacing limited, the congestion window is
/// underutilized. [...] the congestion window SHOULD NOT be increased in either slow start or
/// congestion avoidance" — not increased, not cut. Decreases (`after < before`) pass unchanged.
pub(crate) fn cap_growth(before: f64, after: f64, flightsize: f64, allowed: f64) -> f64 {
    if after <= before {
        after
    } else {
        after.min(before.max(flightsize + allowed))
    }
}

/// A controller by name, as the CLI and scenario specs write it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Algorithm {
    /// [`NewReno`].
    NewReno,
    /// [`Cubic`].
    Cubic,
    /// [`Ledbat`].
    Ledbat,
    /// [`LedbatPlusPlus`].
    LedbatPlusPlus,
    /// [`Dtl`] at the given priority.
    Dtl(f64),
}

impl Algorithm {
    /// Every algorithm, DTL at p = 1.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::NewReno,
        Algorithm::Cubic,
        Algorithm::Ledbat,
        Algorithm::LedbatPlusPlus,
        Algorithm::Dtl(1.0),
    ];

    /// A fresh controller.
    pub fn build(self, mss: u64) -> Box<dyn CongestionController> {
        match self {
            Algorithm::NewReno => Box::new(NewReno::new(mss)),
            Algorithm::Cubic => Box::new(Cubic::new(mss)),
            Algorithm::Ledbat => Box::new(Ledbat::new(mss)),
            Algorithm::LedbatPlusPlus => Box::new(LedbatPlusPlus::new(mss)),
            Algorithm::Dtl(p) => Box::new(Dtl::new(mss, p)),
        }
    }

    /// The name without parameters.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
            Algorithm::Ledbat => "ledbat",
            Algorithm::LedbatPlusPlus => "ledbat++",
            Algorithm::Dtl(_) => "dtl",
        }
    }

    /// The priority, for DTL.
    pub fn priority(self) -> Option<f64> {
        match self {
            Algorithm::Dtl(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Dtl(p) => write!(f, "dtl:{p}"),
            a => f.write_str(a.name()),
        }
    }
}

/// An unknown algorithm name or a bad DTL priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown congestion controller {0:?}: use newreno, cubic, ledbat, ledbat++ or dtl:P with P in [0, 2]"
)]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "newreno" | "reno" => Algorithm::NewReno,
            "cubic" => Algorithm::Cubic,
            "ledbat" => Algorithm::Ledbat,
            "ledbat++" | "ledbatpp" | "ledbat-plus-plus" => Algorithm::LedbatPlusPlus,
            "dtl" => Algorithm::Dtl(1.0),
            other => {
                let p = other
                    .strip_prefix("dtl:")
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (MIN_PRIORITY..=MAX_PRIORITY).contains(p))
                    .ok_or_else(|| UnknownAlgorithm(s.to_string()))?;
                Algorithm::Dtl(p)
            }
        })
    }
}

/// A [`CongestionControllerFactory`] for an [`Algorithm`], for transports.
#[derive(Clone, Copy, Debug)]
pub struct Factory(pub Algorithm);

impl CongestionControllerFactory for Factory {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn build(&self, _now: Instant, mss: u64) -> Box<dyn CongestionController> {
        self.0.build(mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_core::time::Duration;

    const MSS: u64 = 1472;

    fn ack(bytes_acked: u64, bytes_in_flight: u64, rtt: Duration, sent_time: Instant) -> AckEvent {
        AckEvent {
            bytes_acked,
            bytes_in_flight,
            rtt,
            min_rtt: Duration::from_micros(60),
            one_way_delay: None,
            sent_time,
            app_limited: false,
        }
    }

    #[test]
    fn the_flight_cap_limits_growth_and_never_cuts_the_window() {
        // Growth stops one allowance beyond the flight...
        assert_eq!(cap_growth(10.0, 20.0, 12.0, 1.0), 13.0);
        // ...but a flight below the window does not pull the window down...
        assert_eq!(cap_growth(10.0, 20.0, 3.0, 1.0), 10.0);
        // ...and decreases pass.
        assert_eq!(cap_growth(10.0, 5.0, 30.0, 1.0), 5.0);
    }

    /// A fast path (100 µs round trips, no queue): each scavenger grows a large window, then
    /// the sender pauses (CPU-bound, or between application writes) and the acks that arrive
    /// find little in flight. RFC 6817's cap, applied as written, cut the window to that flight
    /// plus one segment; it must stay.
    #[test]
    fn a_sender_that_pauses_keeps_its_window() {
        let rtt = Duration::from_micros(100);
        for algo in [
            Algorithm::Ledbat,
            Algorithm::LedbatPlusPlus,
            Algorithm::Dtl(0.0),
            Algorithm::Dtl(1.0),
        ] {
            let mut cc = algo.build(MSS);
            let mut now = Instant::from_secs(1);
            for _ in 0..3000 {
                now += Duration::from_micros(10);
                let w = cc.window();
                cc.on_ack(
                    now,
                    &ack(2 * MSS, w.saturating_sub(2 * MSS), rtt, now - rtt),
                );
            }
            let grown = cc.window();
            assert!(grown > 100 * MSS, "{algo}: grew to {grown} only");
            for _ in 0..20 {
                now += Duration::from_micros(10);
                cc.on_ack(now, &ack(2 * MSS, 0, rtt, now - rtt));
            }
            assert!(
                cc.window() >= grown,
                "{algo}: {grown} bytes cut to {} by acks of a paused sender",
                cc.window()
            );
        }
    }

    /// Loopback QUIC: a 60 µs base delay, and an s2n-quic receiver that acks a flight of fewer
    /// than 10 packets only when its 25 ms timer fires, all of it at once. LEDBAT's slow start
    /// needed 8 such rounds to reach 10 packets (one segment per ack), LEDBAT++'s (GAIN 1/16)
    /// 26; both must get there in 3, as QUIC's slow start does.
    #[test]
    fn windows_clocked_by_the_receivers_ack_timer_reach_the_initial_window_in_three_rounds() {
        for algo in [Algorithm::Ledbat, Algorithm::LedbatPlusPlus] {
            let mut cc = algo.build(MSS);
            let mut now = Instant::from_secs(1);
            // A prompt first ack teaches the base delay.
            cc.on_ack(now, &ack(MSS, MSS, Duration::from_micros(60), now));
            let mut rounds = 0;
            while cc.window() < initial_window(MSS) {
                let flight = cc.window() / MSS * MSS;
                let sent = now;
                now += Duration::from_millis(25);
                cc.on_ack(now, &ack(flight, 0, now - sent, sent));
                rounds += 1;
                assert!(
                    rounds <= 3,
                    "{algo}: {} bytes after {rounds} rounds of 25 ms",
                    cc.window()
                );
            }
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!("NewReno".parse::<Algorithm>(), Ok(Algorithm::NewReno));
        assert_eq!(
            "ledbatpp".parse::<Algorithm>(),
            Ok(Algorithm::LedbatPlusPlus)
        );
        assert_eq!("dtl:0.25".parse::<Algorithm>(), Ok(Algorithm::Dtl(0.25)));
        assert!("dtl:3".parse::<Algorithm>().is_err());
        assert!("vegas".parse::<Algorithm>().is_err());
        for a in Algorithm::ALL {
            assert_eq!(a.to_string().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.build(1200).name(), a.name());
        }
    }
}
