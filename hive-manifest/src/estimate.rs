//! How many bytes a fragment is expected to have before it is fetched: the agent's
//! `size_estimate`, from which the swarm engine derives bit rates and origin fetch budgets.
//!
//! The inputs come from the manifest (an `EXT-X-BYTERANGE` length, a `BANDWIDTH`, an `EXTINF`),
//! so the answer is clamped to [`MAX_FRAGMENT_BYTES`]: a hostile
//! `#EXT-X-BYTERANGE:18446744073709551615@0` once made the engine turn 2^64 bytes into a
//! fetch budget with `Duration::from_secs_f64`, which panicked.

use hive_core::manifest::Fragment;
use hive_core::time::Duration;

use crate::limits::MAX_FRAGMENT_BYTES;

/// Bit rate assumed for a track whose manifest gives none (a lone HLS media playlist).
pub const DEFAULT_BANDWIDTH_BPS: u64 = 1_000_000;

/// Shortest duration an estimate assumes (a zero `EXTINF` still costs some bytes).
const MIN_ESTIMATE_DURATION: Duration = Duration::from_millis(100);

/// The expected size of `fragment` of a track declaring `track_bandwidth` bits per second (0:
/// unknown, [`DEFAULT_BANDWIDTH_BPS`] is assumed): its byte-range length when it has one, else
/// bandwidth × duration (at least 100 ms). Always within `1..=`[`MAX_FRAGMENT_BYTES`].
///
/// ```
/// use hive_core::manifest::Fragment;
/// use hive_core::time::Duration;
/// use hive_core::{ByteRange, ContentId, FragmentId, TrackId};
/// use hive_manifest::{limits::MAX_FRAGMENT_BYTES, size_estimate};
///
/// let mut f = Fragment {
///     id: FragmentId::new(ContentId::derive("x"), TrackId(0), 1),
///     url: "http://o/1.ts".into(),
///     byte_range: None,
///     duration: Duration::from_secs(2),
///     media_time: Duration::ZERO,
/// };
/// assert_eq!(size_estimate(1_600_000, &f), 400_000);
/// f.byte_range = Some(ByteRange { start: 0, len: u64::MAX });
/// assert_eq!(size_estimate(1_600_000, &f), MAX_FRAGMENT_BYTES);
/// ```
pub fn size_estimate(track_bandwidth: u64, fragment: &Fragment) -> u64 {
    let bytes = match fragment.byte_range {
        Some(r) => r.len,
        None => {
            let bps = if track_bandwidth == 0 {
                DEFAULT_BANDWIDTH_BPS
            } else {
                track_bandwidth
            };
            let nanos = fragment.duration.max(MIN_ESTIMATE_DURATION).as_nanos();
            let bytes = u128::from(bps).saturating_mul(nanos) / 8_000_000_000;
            u64::try_from(bytes).unwrap_or(u64::MAX)
        }
    };
    bytes.clamp(1, MAX_FRAGMENT_BYTES)
}
