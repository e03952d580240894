//! The agent's clock: the swarm engine's `Instant`s are microseconds since the process's first
//! use of it, convertible to tokio deadlines.

use std::sync::OnceLock;
use std::time::Duration;

use hive_core::time::Instant;

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Now, on the engine's clock.
pub(crate) fn now() -> Instant {
    Instant::from_micros(epoch().elapsed().as_micros() as u64)
}

/// The tokio instant of an engine instant (far future for `Instant::MAX`).
pub(crate) fn to_tokio(t: Instant) -> tokio::time::Instant {
    let far = Duration::from_secs(86_400 * 365);
    let d = Duration::from_micros(t.as_micros()).min(epoch().elapsed() + far);
    tokio::time::Instant::from_std(epoch() + d)
}
