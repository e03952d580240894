//! Time that works on virtual clocks.
//!
//! Protocol code (hive-core, hive-cc, hive-overlay) never reads a clock: every entry point takes
//! `now: Instant` as an argument. An [`Instant`] is a count of microseconds since an epoch chosen
//! by the driver: the start of a simulation for `hive-sim`, the creation of its [`Clock`] for a
//! tokio driver (the agent, the UDP transport). Durations are plain [`std::time::Duration`]s.
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

/// The clock of a driver: where engine [`Instant`]s come from, and how a driver's timer turns
/// one into a wake-up.
///
/// Protocol code never reads a clock (it takes `now` as an argument); drivers do, through this
/// contract, and take it as a parameter so that the same driver runs on real time in
/// production and on virtual time in tests. It is quinn's `Runtime::now` and `new_timer`
/// split the sans-IO way: the driver asks [`Clock::now`] for the `now` it passes in, and
/// sleeps with its runtime's timer until [`Clock::to_std`] of the engine's `poll_timeout`.
/// A tokio driver's loop:
///
/// ```
/// use hive_core::time::{Clock, Duration, MonotonicClock};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// // The production clock on tokio's time (virtual when a test pauses it).
/// let clock = MonotonicClock::with_source(|| tokio::time::Instant::now().into_std());
/// let deadline = clock.now() + Duration::from_millis(5); // an engine's `poll_timeout`
/// tokio::time::sleep_until(tokio::time::Instant::from_std(clock.to_std(deadline))).await;
/// assert!(clock.now() >= deadline); // now `handle_timeout(clock.now())`
/// # });
/// ```
///
/// Implementations:
/// - [`MonotonicClock`], the production clock: time since its creation on a
///   [`TimeSource`] — the system's monotonic clock, or a runtime's (a tokio driver passes
///   `|| tokio::time::Instant::now().into_std()`, so it follows tokio's paused, virtual time
///   in `#[tokio::test(start_paused = true)]` tests and the system's otherwise).
/// - [`ManualClock`], moved by hand, for sans-IO tests and simulators.
///
/// `to_std` and `from_std` are inverse of each other, and monotonic: for instants within about
/// a century of the clock's epoch, `from_std(to_std(t)) == t`. Later instants
/// ([`Instant::MAX`], "never", among them) map to that far point; a driver that has no
/// deadline (`Instant::MAX`) should wait without a timer rather than sleep until it.
/// Instants before the epoch read as [`Instant::ZERO`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Instant;

    /// The [`std::time::Instant`] at which this clock reads `t`: the wake-up a driver's
    /// timer sleeps until (saturating, see the trait's documentation).
    fn to_std(&self, t: Instant) -> std::time::Instant;

    /// What this clock reads at `t` (the inverse of [`Clock::to_std`]); [`Instant::ZERO`] for
    /// a `t` before its epoch.
    // Named as the pair of `to_std` (tokio's `Instant` has `from_std` and `into_std`); it needs
    // the clock's epoch, hence `self`.
    #[allow(clippy::wrong_self_convention)]
    fn from_std(&self, t: std::time::Instant) -> Instant;
}

/// Where a [`MonotonicClock`] reads the time: a function returning the current
/// [`std::time::Instant`] of some monotonic clock.
///
/// `std::time::Instant::now` is the system's. A driver on an async runtime passes the
/// runtime's, so that its engine's time is the runtime's timers' time; for tokio,
/// `|| tokio::time::Instant::now().into_std()`, which is the system's clock until a test pauses
/// tokio's time, and then moves only as tokio advances it. (hive-core itself depends on no
/// runtime: the driver crates make that choice.)
pub type TimeSource = fn() -> std::time::Instant;

/// The engine time drivers never exceed on the std timeline: about a century after the epoch.
const HORIZON: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `base + d`, with `d` capped at [`HORIZON`] and then at what the platform can represent.
fn std_after(base: std::time::Instant, d: Duration) -> std::time::Instant {
    let mut d = d.min(HORIZON);
    loop {
        if let Some(t) = base.checked_add(d) {
            return t;
        }
        d /= 2;
    }
}

/// The driver clock of real deployments: microseconds since the clock was made, read from a
/// [`TimeSource`] (by default the system's monotonic clock).
///
/// Clones share the epoch, so an agent and its transport given clones of one clock agree on
/// every [`Instant`].
///
/// ```
/// use hive_core::time::{Clock, Duration, Instant, MonotonicClock};
///
/// let clock = MonotonicClock::new();
/// let t = clock.now() + Duration::from_millis(250);
/// // The wake-up a driver's timer sleeps until, and back.
/// let wake = clock.to_std(t);
/// assert_eq!(clock.from_std(wake), t);
/// assert_eq!(wake - clock.to_std(Instant::ZERO), Duration::from_micros(t.as_micros()));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    epoch: std::time::Instant,
    source: TimeSource,
}

impl MonotonicClock {
    /// A clock on the system's monotonic clock, whose epoch is now.
    pub fn new() -> Self {
        Self::with_source(std::time::Instant::now)
    }

    /// A clock on `source` (e.g. a runtime's clock, see [`TimeSource`]), whose epoch is what
    /// `source` reads now.
    pub fn with_source(source: TimeSource) -> Self {
        MonotonicClock {
            epoch: source(),
            source,
        }
    }

    /// The [`std::time::Instant`] of this clock's [`Instant::ZERO`].
    pub fn epoch(&self) -> std::time::Instant {
        self.epoch
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        self.from_std((self.source)())
    }

    fn to_std(&self, t: Instant) -> std::time::Instant {
        std_after(self.epoch, Duration::from_micros(t.0))
    }

    fn from_std(&self, t: std::time::Instant) -> Instant {
        Instant(micros_saturating(t.saturating_duration_since(self.epoch)))
    }
}

/// A clock moved by hand, for sans-IO tests and simulators.
///
/// It maps onto the std timeline from the moment it was made (that [`std::time::Instant`]
/// stands for its start), so [`Clock::to_std`] and [`Clock::from_std`] are exact inverses;
/// but it does not advance with that timeline: a tokio driver given a `ManualClock` would
/// sleep until wake-ups that its clock does not reach. Drivers under test take a
/// [`MonotonicClock`] on the runtime's paused time instead.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
    start: Instant,
    anchor: std::time::Instant,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(Instant::ZERO)
    }
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: Instant) -> Self {
        ManualClock {
            now: std::sync::atomic::AtomicU64::new(start.0),
            start,
            anchor: std::time::Instant::now(),
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

    fn to_std(&self, t: Instant) -> std::time::Instant {
        if t >= self.start {
            std_after(self.anchor, t - self.start)
        } else {
            // Before the start: as far back as the platform represents, at most.
            let mut d = self.start - t;
            loop {
                if let Some(s) = self.anchor.checked_sub(d) {
                    return s;
                }
                d /= 2;
            }
        }
    }

    fn from_std(&self, t: std::time::Instant) -> Instant {
        match t.checked_duration_since(self.anchor) {
            Some(after) => self.start + after,
            None => self.start - self.anchor.saturating_duration_since(t),
        }
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
        std::thread::sleep(Duration::from_millis(2));
        let b = c.now();
        assert!(b >= a + Duration::from_millis(2), "{a} then {b}");
        // It reads its source: `now` is where the source's instant maps to.
        let s = std::time::Instant::now();
        let n = c.now();
        assert!(c.from_std(s) <= n && n <= c.from_std(std::time::Instant::now()));
    }

    #[test]
    fn monotonic_clock_round_trips_through_std() {
        let c = MonotonicClock::new();
        for t in [
            Instant::ZERO,
            Instant::from_micros(1),
            c.now(),
            Instant::from_secs(3_600),
            Instant::from_secs(50 * 365 * 86_400),
        ] {
            let s = c.to_std(t);
            assert_eq!(c.from_std(s), t, "{t}");
            assert_eq!(
                s.duration_since(c.epoch()),
                Duration::from_micros(t.as_micros())
            );
        }
        // Order is kept, and the std side is where the system's clock is.
        assert!(c.to_std(Instant::from_secs(1)) < c.to_std(Instant::from_secs(2)));
        let before = std::time::Instant::now();
        let now = c.to_std(c.now());
        assert!(
            now >= before
                .checked_sub(Duration::from_millis(1))
                .unwrap_or(before)
        );
        // "Never" maps to a far point, not a panic; before the epoch reads as the epoch.
        let never = c.to_std(Instant::MAX);
        assert!(never >= c.to_std(Instant::from_secs(99 * 365 * 86_400)));
        assert!(c.from_std(never) < Instant::MAX);
        if let Some(early) = c.epoch().checked_sub(Duration::from_secs(1)) {
            assert_eq!(c.from_std(early), Instant::ZERO);
        }
    }

    #[test]
    fn monotonic_clock_reads_its_source() {
        fn fixed() -> std::time::Instant {
            static AT: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            *AT.get_or_init(std::time::Instant::now)
        }
        let c = MonotonicClock::with_source(fixed);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.now(), Instant::ZERO);
        assert_eq!(c.epoch(), fixed());
        // Clones share the epoch.
        let d = c;
        assert_eq!(
            d.to_std(Instant::from_secs(5)),
            c.to_std(Instant::from_secs(5))
        );
    }

    #[test]
    fn manual_clock_maps_onto_std_from_its_start() {
        let c = ManualClock::new(Instant::from_secs(10));
        let at_start = c.to_std(Instant::from_secs(10));
        for t in [
            Instant::from_secs(10),
            Instant::from_secs(11),
            Instant::from_secs(4_000),
        ] {
            assert_eq!(c.from_std(c.to_std(t)), t);
        }
        assert_eq!(
            c.to_std(Instant::from_secs(12)) - at_start,
            Duration::from_secs(2)
        );
        assert!(c.to_std(Instant::from_secs(9)) <= at_start);
        // Moving the clock does not move the mapping.
        c.advance(Duration::from_secs(5));
        assert_eq!(c.to_std(Instant::from_secs(10)), at_start);
        assert_eq!(c.now(), Instant::from_secs(15));
    }
}
