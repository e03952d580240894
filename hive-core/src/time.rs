//! Time that works on virtual clocks.
//!
//! Protocol code (hive-core, hive-cc, hive-overlay) never reads a clock: every entry point takes
//! `now: Instant` as an argument. An [`Instant`] is a count of microseconds since an epoch chosen
//! by the driver: the start of a simulation for `hive-sim`, the start of the process for the tokio
//! agent ([`MonotonicClock`]). Durations are plain [`std::time::Duration`]s.
//!
//! ```
//! use hive_core::time::{Duration, Instant};
//! let t0 = Instant::ZERO;
//! let t1 = t0 + Duration::from_millis(1500);
//! assert_eq!(t1 - t0, Duration::from_millis(1500));
//! assert_eq!(t1.as_micros(), 1_500_000);
//! assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
//! ```

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

pub use std::time::Duration;

/// `secs` seconds as a [`Duration`], saturating: NaN and negative values give zero, values
/// beyond `Duration::MAX` give `Duration::MAX`. For durations computed from numbers that came
/// from outside (a manifest's sizes and bitrates, a peer's claims), where
/// `Duration::from_secs_f64` would panic.
///
/// ```
/// use hive_core::time::{secs_f64, Duration};
/// assert_eq!(secs_f64(1.5), Duration::from_millis(1500));
/// assert_eq!(secs_f64(f64::NAN), Duration::ZERO);
/// assert_eq!(secs_f64(-3.0), Duration::ZERO);
/// assert_eq!(secs_f64(1e300), Duration::MAX);
/// ```
pub fn secs_f64(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// A point in time: microseconds since the driver's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant, used as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1000))
    }

    /// An instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds since the epoch, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_micros())
            .ok()
            .and_then(|m| self.0.checked_add(m))
            .map(Instant)
    }

    /// `self - d`, or `None` before the epoch.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_micros())
            .ok()
            .and_then(|m| self.0.checked_sub(m))
            .map(Instant)
    }
}

fn micros_saturating(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(micros_saturating(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(micros_saturating(d)))
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

/// A source of [`Instant`]s, for drivers. Protocol code takes `now` as an argument instead.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The driver clock of real deployments: monotonic time since the clock was created.
#[derive(Clone, Debug)]
pub struct MonotonicClock {
    start: std::time::Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        MonotonicClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant(micros_saturating(self.start.elapsed()))
    }
}

/// A clock moved by hand, for tests and simulators.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Instant) -> Self {
        ManualClock {
            now: std::sync::atomic::AtomicU64::new(start.0),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now
            .fetch_add(micros_saturating(d), std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the clock; it may not go backwards (earlier values are ignored).
    pub fn set(&self, t: Instant) {
        self.now.fetch_max(t.0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant(self.now.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO.checked_sub(Duration::from_micros(1)), None);
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(
            Instant::from_secs(2) - Instant::from_secs(3),
            Duration::ZERO
        );
    }

    #[test]
    fn manual_clock_never_goes_back() {
        let c = ManualClock::new(Instant::from_secs(10));
        c.set(Instant::from_secs(5));
        assert_eq!(c.now(), Instant::from_secs(10));
        c.advance(Duration::from_millis(250));
        assert_eq!(c.now(), Instant::from_micros(10_250_000));
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let c = MonotonicClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
    }
}
