//! Splitting a `SegmentBase` resource into subsegments by its Segment Index box (ISO/IEC
//! 14496-12 §8.16.3 `sidx`; ISO/IEC 23009-1 §6.3.4.4 indexed media segments).

use hive_core::manifest::{Fragment, Track};
use hive_core::{ByteRange, FragmentId, ManifestError};

use crate::limits::{check_fragments, malformed, ticks};

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let hi = u64::from(self.u32()?);
        Some(hi << 32 | u64::from(self.u32()?))
    }
}

/// The subsegments of `track` (a `SegmentBase` track) described by the `sidx` box `index`
/// fetched from byte `index_start` of the track's resource. Fragments are numbered from 0 and
/// addressed by byte range; at most `max` are returned.
///
/// ISO/IEC 14496-12 §8.16.3.3: "first_offset: the distance in bytes from the anchor point [the
/// first byte following the sidx box] to the first byte of the indexed material".
pub fn sidx_fragments(
    track: &Track,
    index_start: u64,
    index: &[u8],
    max: usize,
) -> Result<Vec<Fragment>, ManifestError> {
    const F: &str = super::NAME;
    let bad = |what: &str| malformed(F, "sidx", what.to_string());
    let base = track
        .fragments
        .first()
        .or(track.init.as_ref())
        .ok_or_else(|| bad("track has no resource"))?;
    let mut r = Reader(index);
    let size = r.u32().ok_or_else(|| bad("truncated"))?;
    if r.take(4) != Some(b"sidx") {
        return Err(bad("not a sidx box"));
    }
    let version = r.take(4).ok_or_else(|| bad("truncated"))?[0];
    let _reference_id = r.u32();
    let timescale = u64::from(r.u32().ok_or_else(|| bad("truncated"))?);
    let (ept, first_offset) = if version == 0 {
        (r.u32().map(u64::from), r.u32().map(u64::from))
    } else {
        (r.u64(), r.u64())
    };
    let (mut time, first_offset) = ept.zip(first_offset).ok_or_else(|| bad("truncated"))?;
    r.u16();
    let count = r.u16().ok_or_else(|| bad("truncated"))?;
    let mut offset = index_start
        .saturating_add(u64::from(size))
        .saturating_add(first_offset);
    let mut out = Vec::with_capacity(usize::from(count).min(max));
    for seq in 0..u64::from(count) {
        if out.len() >= max {
            break;
        }
        let typed_size = r.u32().ok_or_else(|| bad("truncated reference"))?;
        let duration = u64::from(r.u32().ok_or_else(|| bad("truncated reference"))?);
        r.u32();
        let len = u64::from(typed_size & 0x7fff_ffff);
        let range = ByteRange { start: offset, len };
        let id = FragmentId::new(base.id.content, track.id, seq).with_range(range);
        out.push(Fragment {
            id,
            url: base.url.clone(),
            byte_range: Some(range),
            duration: ticks(duration, timescale),
            media_time: base.media_time.saturating_add(ticks(time, timescale)),
        });
        offset = offset.saturating_add(len);
        time = time.saturating_add(duration);
    }
    check_fragments(F, "sidx", None, &out)?;
    Ok(out)
}
