//! LL-HLS parts and preload hints (RFC 8216bis-16 §4.4.4.9 `EXT-X-PART`, §4.4.5.3
//! `EXT-X-PRELOAD-HINT`).
//!
//! m3u8-rs 6 keeps these as unknown tags and drops the ones after the last segment URI (the parts
//! of the segment still being produced, and the hints), which are exactly the ones that matter
//! live. So the playlist is scanned line by line here: a part belongs to the segment whose URI
//! line follows it, and parts after the last URI belong to the next media sequence number.

use hive_core::ByteRange;
use hive_core::manifest::Part;
use url::Url;

use super::attributes::{attribute, attributes};
use crate::identity::resolve;
use crate::limits::{MAX_FRAGMENT_DURATION, MAX_RANGE_BYTES};

/// Parses a `len[@offset]` byte range (RFC 8216 §4.3.2.2); `None` unless it is non-empty, at
/// most [`MAX_RANGE_BYTES`] and ends within `u64`.
pub(crate) fn byte_range(value: &str, default_start: u64) -> Option<ByteRange> {
    let (len, start) = match value.split_once('@') {
        Some((l, o)) => (l.trim().parse().ok()?, o.trim().parse().ok()?),
        None => (value.trim().parse().ok()?, default_start),
    };
    valid(ByteRange { start, len })
}

fn valid(r: ByteRange) -> Option<ByteRange> {
    (r.len > 0 && r.len <= MAX_RANGE_BYTES && r.start.checked_add(r.len).is_some()).then_some(r)
}

/// The parts and preload hints of a media playlist whose first segment has sequence
/// `media_sequence`, at most `max` of them.
pub(crate) fn parts(text: &str, base: &Url, media_sequence: u64, max: usize) -> Vec<Part> {
    let mut out = Vec::new();
    let mut segment = media_sequence;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            segment = segment.saturating_add(1);
            continue;
        }
        if out.len() >= max {
            break;
        }
        if let Some(list) = line.strip_prefix("#EXT-X-PART:") {
            let Some(url) = attribute(list, "URI").and_then(|u| resolve(base, u)) else {
                continue;
            };
            let duration = attribute(list, "DURATION")
                .and_then(|d| d.parse::<f64>().ok())
                .and_then(|d| hive_core::time::Duration::try_from_secs_f64(d).ok())
                .filter(|d| *d <= MAX_FRAGMENT_DURATION)
                .unwrap_or_default();
            // A part with a byte range out of bounds is left out, not widened to the resource.
            let range = match attribute(list, "BYTERANGE") {
                Some(r) => match byte_range(r, 0) {
                    Some(r) => Some(r),
                    None => continue,
                },
                None => None,
            };
            out.push(Part {
                segment,
                url: url.into(),
                byte_range: range,
                duration,
                independent: attribute(list, "INDEPENDENT") == Some("YES"),
                preload_hint: false,
            });
        } else if let Some(list) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let Some(url) = attribute(list, "URI").and_then(|u| resolve(base, u)) else {
                continue;
            };
            let mut start = None;
            let mut len = None;
            for (n, v) in attributes(list) {
                match n {
                    "BYTERANGE-START" => start = v.parse::<u64>().ok(),
                    "BYTERANGE-LENGTH" => len = v.parse::<u64>().ok(),
                    _ => {}
                }
            }
            out.push(Part {
                segment,
                url: url.into(),
                byte_range: match (start, len) {
                    (Some(start), Some(len)) => match valid(ByteRange { start, len }) {
                        Some(r) => Some(r),
                        None => continue,
                    },
                    _ => None,
                },
                duration: Default::default(),
                independent: false,
                preload_hint: true,
            });
        }
    }
    out
}
