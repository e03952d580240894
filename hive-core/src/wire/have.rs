//! `Have`: which fragments a peer holds, per track, in runs and bitmaps.
//!
//! The in-memory form is a [`SeqSet`] per track. On the wire each track's set is a list of
//! *blocks*, delta-coded from the previous block's end. A block is either a **run** (an inclusive
//! range: cheap for the consecutive fragments of a live window) or a **bitmap** (one bit per
//! sequence number: cheap for a holey set). The encoder picks the segmentation into runs and
//! bitmaps with the fewest bytes (an exact dynamic programme over the set's ranges, with bitmaps
//! of at most [`ENCODER_MAX_BITMAP_LEN`] bytes). This borrows RFC 7574 §4's chunk ranges; its
//! bin numbers are replaced by plain bitmaps, which are simpler to bound. The per-track floor
//! plays the part of RFC 7574 §7.9's live discard window: what falls below it is gone.

use bytes::{BufMut, BytesMut};

use super::error::WireError;
use super::limits::WireLimits;
use super::reader::Reader;
use super::varint::{put_varint, unzigzag, varint_len, zigzag};
use crate::have::SeqSet;
use crate::ids::TrackId;

/// The largest bitmap block the encoder emits, in bytes (512 sequence numbers).
pub const ENCODER_MAX_BITMAP_LEN: usize = 64;

/// The longest run one block encodes (runs carry `len - 1` shifted left by one bit); longer
/// ranges are split into adjacent runs.
const MAX_RUN_LEN_MINUS_ONE: u64 = (1 << 63) - 1;

/// Whether a `Have` replaces or extends the receiver's view of the sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HaveKind {
    /// The sender holds exactly these fragments (for the tracks listed): replace the view.
    #[default]
    Snapshot,
    /// The sender also holds these fragments: add them to the view.
    Add,
}

/// What a peer holds of one track.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackHave {
    /// The sender dropped every fragment below this sequence number (the tail of its live
    /// window); the receiver forgets them. 0: nothing dropped.
    pub floor: u64,
    /// The sequence numbers held (or, for [`HaveKind::Add`], newly held).
    pub seqs: SeqSet,
}

/// Which fragments the sender holds, per track (RFC 7574's HAVE, for many ranges at once).
///
/// ```
/// use hive_core::wire::{Have, Message, WireLimits, decode_frame, Decoded};
/// use hive_core::{SeqSet, TrackId};
///
/// let mut have = Have::snapshot();
/// have.insert(TrackId(0), 1000, (1000..1015).collect::<SeqSet>());
/// let frame = Message::Have(have.clone()).to_bytes();
/// assert_eq!(frame.len(), 14); // 6-byte header, 8-byte body
/// assert_eq!(decode_frame(&frame, &WireLimits::default()).unwrap(), Decoded::Message(Message::Have(have)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Have {
    /// Snapshot or incremental.
    pub kind: HaveKind,
    /// Per track. Tracks not listed are unchanged (for both kinds).
    pub tracks: HaveTracks,
}

/// The tracks of a [`Have`] and what is held of each, in increasing track order.
///
/// A short sorted list, two tracks inline: a `Have` names a track or two, agents send one to
/// every neighbour for every few fragments, and a tree map allocated a node for each. It reads
/// like the map it replaces.
///
/// ```
/// use hive_core::wire::{HaveTracks, TrackHave};
/// use hive_core::{SeqSet, TrackId};
/// let mut t = HaveTracks::default();
/// t.insert(TrackId(2), TrackHave::default());
/// t.insert(TrackId(0), TrackHave { floor: 5, seqs: (5..9).collect::<SeqSet>() });
/// assert_eq!(t.keys().collect::<Vec<_>>(), [&TrackId(0), &TrackId(2)]);
/// assert_eq!(t[&TrackId(0)].floor, 5);
/// assert!(t.get(&TrackId(1)).is_none());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaveTracks(smallvec::SmallVec<[(TrackId, TrackHave); 2]>);

impl HaveTracks {
    /// Sets what is held of `track`; returns what was set before, if anything.
    pub fn insert(&mut self, track: TrackId, have: TrackHave) -> Option<TrackHave> {
        match self.0.binary_search_by_key(&track, |e| e.0) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, have)),
            Err(i) => {
                self.0.insert(i, (track, have));
                None
            }
        }
    }

    /// What is held of `track`, if listed.
    pub fn get(&self, track: &TrackId) -> Option<&TrackHave> {
        self.0
            .binary_search_by_key(track, |e| e.0)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// How many tracks are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no track is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tracks and what is held of each, in track order.
    pub fn iter(&self) -> impl Iterator<Item = (&TrackId, &TrackHave)> {
        self.0.iter().map(|(t, h)| (t, h))
    }

    /// The tracks listed, in order.
    pub fn keys(&self) -> impl Iterator<Item = &TrackId> {
        self.0.iter().map(|(t, _)| t)
    }

    /// What is held of each track, in track order.
    pub fn values(&self) -> impl Iterator<Item = &TrackHave> {
        self.0.iter().map(|(_, h)| h)
    }
}

impl std::ops::Index<&TrackId> for HaveTracks {
    type Output = TrackHave;

    /// What is held of `track`; panics when it is not listed (as a map's index does).
    fn index(&self, track: &TrackId) -> &TrackHave {
        match self.get(track) {
            Some(h) => h,
            None => panic!("track {} not in this Have", track.0),
        }
    }
}

impl<'a> IntoIterator for &'a HaveTracks {
    type Item = (&'a TrackId, &'a TrackHave);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (TrackId, TrackHave)>,
        fn(&'a (TrackId, TrackHave)) -> (&'a TrackId, &'a TrackHave),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(t, h)| (t, h))
    }
}

impl IntoIterator for HaveTracks {
    type Item = (TrackId, TrackHave);
    type IntoIter = smallvec::IntoIter<[(TrackId, TrackHave); 2]>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(TrackId, TrackHave)> for HaveTracks {
    fn from_iter<I: IntoIterator<Item = (TrackId, TrackHave)>>(iter: I) -> Self {
        let mut t = HaveTracks::default();
        for (track, have) in iter {
            t.insert(track, have);
        }
        t
    }
}

impl Have {
    /// An empty snapshot.
    pub fn snapshot() -> Self {
        Have::default()
    }

    /// An empty incremental update.
    pub fn add() -> Self {
        Have {
            kind: HaveKind::Add,
            tracks: HaveTracks::default(),
        }
    }

    /// Sets what is held of `track`.
    pub fn insert(&mut self, track: TrackId, floor: u64, seqs: SeqSet) {
        self.tracks.insert(track, TrackHave { floor, seqs });
    }

    /// The number of disjoint ranges over all tracks (what decoding allocates for).
    pub fn range_count(&self) -> usize {
        self.tracks.values().map(|t| t.seqs.range_count()).sum()
    }

    pub(crate) fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u8(match self.kind {
            HaveKind::Add => 0,
            HaveKind::Snapshot => 1,
        });
        put_varint(buf, self.tracks.len() as u64);
        for (track, t) in &self.tracks {
            let plan = Plan::new(t);
            put_varint(buf, u64::from(track.0));
            put_varint(buf, t.floor);
            put_varint(buf, plan.blocks.len() as u64);
            plan.encode(buf);
        }
    }

    pub(crate) fn body_len(&self) -> usize {
        let mut len = 1 + varint_len(self.tracks.len() as u64);
        for (track, t) in &self.tracks {
            let plan = Plan::new(t);
            len += varint_len(u64::from(track.0))
                + varint_len(t.floor)
                + varint_len(plan.blocks.len() as u64)
                + plan.len();
        }
        len
    }

    /// The checks [`decode_body`](Self::decode_body) makes, on the in-memory form.
    pub(crate) fn check(&self, limits: &WireLimits) -> Result<(), WireError> {
        bound("Have tracks", self.tracks.len(), limits.max_have_tracks)?;
        bound("Have ranges", self.range_count(), limits.max_have_ranges)?;
        for t in self.tracks.values() {
            let plan = Plan::new(t);
            bound("Have blocks", plan.blocks.len(), limits.max_have_blocks)?;
            for b in &plan.blocks {
                if let Block::Bitmap { start, end, .. } = *b {
                    bound(
                        "Have bitmap",
                        bitmap_len(start, end),
                        limits.max_have_bitmap_len,
                    )?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, limits: &WireLimits) -> Result<Have, WireError> {
        let kind = match r.u8("Have flags")? {
            0 => HaveKind::Add,
            1 => HaveKind::Snapshot,
            code => {
                return Err(WireError::InvalidCode {
                    field: "Have flags",
                    code: u64::from(code),
                });
            }
        };
        // A track takes at least 3 bytes: id, floor, block count.
        let n = r.count("Have tracks", limits.max_have_tracks, 3)?;
        let mut tracks = HaveTracks::default();
        let mut prev: Option<u16> = None;
        let mut ranges_before = 0usize;
        for _ in 0..n {
            let track = r.varint_u16("Have track")?;
            if prev.is_some_and(|p| track <= p) {
                return Err(WireError::Malformed {
                    field: "Have track",
                    reason: "track ids not strictly increasing",
                });
            }
            prev = Some(track);
            let floor = r.varint("Have floor")?;
            let seqs = decode_blocks(r, limits, floor, ranges_before)?;
            ranges_before += seqs.range_count();
            tracks.insert(TrackId(track), TrackHave { floor, seqs });
        }
        Ok(Have { kind, tracks })
    }
}

fn bound(what: &'static str, len: usize, limit: u32) -> Result<(), WireError> {
    if len as u64 > u64::from(limit) {
        Err(WireError::LimitExceeded {
            what,
            len: len as u64,
            limit: u64::from(limit),
        })
    } else {
        Ok(())
    }
}

const OVERFLOW: WireError = WireError::Malformed {
    field: "Have block",
    reason: "sequence number overflows",
};

fn decode_blocks(
    r: &mut Reader<'_>,
    limits: &WireLimits,
    floor: u64,
    ranges_before: usize,
) -> Result<SeqSet, WireError> {
    // A block takes at least 2 bytes: gap and header.
    let n = r.count("Have blocks", limits.max_have_blocks, 2)?;
    let mut seqs = SeqSet::new();
    let insert = |seqs: &mut SeqSet, start: u64, end: u64| {
        seqs.insert_range(start..=end);
        bound(
            "Have ranges",
            ranges_before + seqs.range_count(),
            limits.max_have_ranges,
        )
    };
    let mut prev_end: Option<u64> = None;
    for _ in 0..n {
        let gap = r.varint("Have block gap")?;
        let start = match prev_end {
            None => floor.wrapping_add(unzigzag(gap) as u64),
            Some(e) => e
                .checked_add(1)
                .and_then(|s| s.checked_add(gap))
                .ok_or(OVERFLOW)?,
        };
        let head = r.varint("Have block header")?;
        let end = if head & 1 == 0 {
            let end = start.checked_add(head >> 1).ok_or(OVERFLOW)?;
            insert(&mut seqs, start, end)?;
            end
        } else {
            let len = (head >> 1) + 1;
            if len > u64::from(limits.max_have_bitmap_len) {
                return Err(WireError::LimitExceeded {
                    what: "Have bitmap",
                    len,
                    limit: u64::from(limits.max_have_bitmap_len),
                });
            }
            let bits = r.take(len as usize, "Have bitmap")?;
            decode_bitmap(bits, start, |s, e| insert(&mut seqs, s, e))?
        };
        prev_end = Some(end);
    }
    Ok(seqs)
}

/// Calls `insert` for each run of set bits of `bits` (bit `i` stands for `start + i`, least
/// significant bit first) and returns the last sequence number set.
fn decode_bitmap(
    bits: &[u8],
    start: u64,
    mut insert: impl FnMut(u64, u64) -> Result<(), WireError>,
) -> Result<u64, WireError> {
    let (Some(&first), Some(&last)) = (bits.first(), bits.last()) else {
        return Err(WireError::Malformed {
            field: "Have bitmap",
            reason: "empty",
        });
    };
    if first & 1 == 0 {
        return Err(WireError::Malformed {
            field: "Have bitmap",
            reason: "does not start with a set bit",
        });
    }
    if last == 0 {
        return Err(WireError::Malformed {
            field: "Have bitmap",
            reason: "ends with a zero byte",
        });
    }
    let last_bit = (bits.len() as u64 - 1) * 8 + u64::from(7 - last.leading_zeros());
    let end = start.checked_add(last_bit).ok_or(OVERFLOW)?;
    let mut run: Option<u64> = None;
    for (i, &byte) in bits.iter().enumerate() {
        match (byte, run) {
            (0xff, Some(_)) | (0x00, None) => continue,
            _ => {}
        }
        for bit in 0..8u64 {
            let off = i as u64 * 8 + bit;
            match (byte >> bit & 1 == 1, run) {
                (true, None) => run = Some(off),
                (false, Some(s)) => {
                    insert(start + s, start + (off - 1))?;
                    run = None;
                }
                _ => {}
            }
        }
    }
    if let Some(s) = run {
        insert(start + s, end)?;
    }
    Ok(end)
}

/// One block of an encoded track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// `start..=end`, with `end - start <= MAX_RUN_LEN_MINUS_ONE`.
    Run { start: u64, end: u64 },
    /// The ranges `first..=last` of the plan, from `start` to `end`.
    Bitmap {
        start: u64,
        end: u64,
        first: usize,
        last: usize,
    },
}

impl Block {
    fn bounds(&self) -> (u64, u64) {
        match *self {
            Block::Run { start, end } | Block::Bitmap { start, end, .. } => (start, end),
        }
    }
}

fn bitmap_len(start: u64, end: u64) -> usize {
    ((end - start) / 8 + 1) as usize
}

fn gap(floor: u64, prev_end: Option<u64>, start: u64) -> u64 {
    match prev_end {
        None => zigzag(start.wrapping_sub(floor) as i64),
        Some(e) => start - e - 1,
    }
}

fn run_head_len(start: u64, end: u64) -> usize {
    if end - start <= MAX_RUN_LEN_MINUS_ONE {
        varint_len((end - start) << 1)
    } else {
        // Split in two adjacent runs: the second costs a 1-byte gap and its own header.
        varint_len(MAX_RUN_LEN_MINUS_ONE << 1)
            + 1
            + varint_len((end - start - MAX_RUN_LEN_MINUS_ONE - 1) << 1)
    }
}

fn bitmap_head_len(len: usize) -> usize {
    varint_len(((len as u64 - 1) << 1) | 1)
}

/// How one track's set is cut into blocks.
struct Plan {
    floor: u64,
    ranges: Vec<(u64, u64)>,
    blocks: Vec<Block>,
}

impl Plan {
    fn new(t: &TrackHave) -> Plan {
        let ranges: Vec<(u64, u64)> = t.seqs.ranges().map(|r| (*r.start(), *r.end())).collect();
        let segments = if ranges.len() <= 1 {
            ranges
                .iter()
                .enumerate()
                .map(|(i, _)| (i, i, false))
                .collect()
        } else {
            segment(t.floor, &ranges)
        };
        let mut blocks = Vec::with_capacity(segments.len());
        for (i, j, bitmap) in segments {
            let (start, end) = (ranges[i].0, ranges[j].1);
            if bitmap {
                blocks.push(Block::Bitmap {
                    start,
                    end,
                    first: i,
                    last: j,
                });
            } else if end - start <= MAX_RUN_LEN_MINUS_ONE {
                blocks.push(Block::Run { start, end });
            } else {
                let mid = start + MAX_RUN_LEN_MINUS_ONE;
                blocks.push(Block::Run { start, end: mid });
                blocks.push(Block::Run {
                    start: mid + 1,
                    end,
                });
            }
        }
        Plan {
            floor: t.floor,
            ranges,
            blocks,
        }
    }

    /// Encoded length of the blocks.
    fn len(&self) -> usize {
        let mut prev_end = None;
        let mut len = 0;
        for b in &self.blocks {
            let (start, end) = b.bounds();
            len += varint_len(gap(self.floor, prev_end, start));
            len += match b {
                Block::Run { .. } => varint_len((end - start) << 1),
                Block::Bitmap { .. } => {
                    let n = bitmap_len(start, end);
                    bitmap_head_len(n) + n
                }
            };
            prev_end = Some(end);
        }
        len
    }

    fn encode(&self, buf: &mut BytesMut) {
        let mut prev_end = None;
        for b in &self.blocks {
            let (start, end) = b.bounds();
            put_varint(buf, gap(self.floor, prev_end, start));
            match *b {
                Block::Run { .. } => put_varint(buf, (end - start) << 1),
                Block::Bitmap { first, last, .. } => {
                    let n = bitmap_len(start, end);
                    put_varint(buf, ((n as u64 - 1) << 1) | 1);
                    let mut bits = [0u8; ENCODER_MAX_BITMAP_LEN];
                    for &(s, e) in &self.ranges[first..=last] {
                        for seq in s..=e {
                            let off = (seq - start) as usize;
                            bits[off / 8] |= 1 << (off % 8);
                        }
                    }
                    buf.put_slice(&bits[..n]);
                }
            }
            prev_end = Some(end);
        }
    }
}

/// The cheapest cut of `ranges` (at least two) into blocks, as `(first, last, is_bitmap)`
/// range-index triples in order.
///
/// `best[k]` is the fewest bytes that encode `ranges[..k]`. The gap before a block that starts
/// at range `i` depends only on range `i - 1`'s end (every block ends at the end of its last
/// range), so each block's cost is independent of how the earlier ranges were cut and the
/// programme is exact.
fn segment(floor: u64, ranges: &[(u64, u64)]) -> Vec<(usize, usize, bool)> {
    let n = ranges.len();
    let gap_len: Vec<usize> = (0..n)
        .map(|i| {
            let prev_end = i.checked_sub(1).map(|p| ranges[p].1);
            varint_len(gap(floor, prev_end, ranges[i].0))
        })
        .collect();
    let max_span = (ENCODER_MAX_BITMAP_LEN * 8) as u64;
    let mut best = vec![0usize; n + 1];
    let mut from = vec![(0usize, false); n + 1];
    for j in 0..n {
        let (s, e) = ranges[j];
        best[j + 1] = best[j] + gap_len[j] + run_head_len(s, e);
        from[j + 1] = (j, false);
        for i in (0..j).rev() {
            let span_minus_one = e - ranges[i].0;
            if span_minus_one >= max_span {
                break;
            }
            let len = (span_minus_one / 8 + 1) as usize;
            let cost = best[i] + gap_len[i] + bitmap_head_len(len) + len;
            if cost < best[j + 1] {
                best[j + 1] = cost;
                from[j + 1] = (i, true);
            }
        }
    }
    let mut out = Vec::new();
    let mut k = n;
    while k > 0 {
        let (i, bitmap) = from[k];
        out.push((i, k - 1, bitmap));
        k = i;
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Decoded, Message, decode_frame};

    fn round_trip(have: &Have) -> usize {
        let frame = Message::Have(have.clone()).to_bytes();
        assert_eq!(frame.len(), Message::Have(have.clone()).encoded_len());
        let back = decode_frame(&frame, &WireLimits::default()).unwrap();
        assert_eq!(back, Decoded::Message(Message::Have(have.clone())));
        frame.len()
    }

    /// 30 s of 2 s fragments (15 per track) on 4 tracks, live sequence numbers.
    fn live_window(first: u64) -> Have {
        let mut have = Have::snapshot();
        for t in 0..4 {
            have.insert(TrackId(t), first, (first..first + 15).collect());
        }
        have
    }

    #[test]
    fn live_window_have_is_small() {
        // Small sequence numbers (a stream that started an hour ago).
        let small = round_trip(&live_window(1800));
        // Sequence numbers derived from wall-clock time (epoch seconds / 2).
        let large = round_trip(&live_window(870_000_000));
        println!(
            "Have, 30 s of 2 s fragments x 4 tracks: {small} bytes (seq ~1800), {large} bytes (seq ~8.7e8)"
        );
        assert_eq!(small, 32);
        assert_eq!(large, 44);
    }

    #[test]
    fn holey_set_uses_a_bitmap() {
        let mut have = Have::add();
        have.insert(TrackId(3), 0, (0..30).step_by(2).collect());
        let plan = Plan::new(&have.tracks[&TrackId(3)]);
        assert_eq!(plan.blocks.len(), 1);
        assert!(matches!(plan.blocks[0], Block::Bitmap { .. }));
        // 6 header + flags + count + track + floor + blocks + gap + head + 4 bitmap bytes.
        assert_eq!(round_trip(&have), 6 + 7 + 4);
    }

    #[test]
    fn far_apart_ranges_use_runs() {
        let mut seqs = SeqSet::new();
        seqs.insert_range(10..=20);
        seqs.insert_range(10_000..=10_100);
        let t = TrackHave { floor: 0, seqs };
        let plan = Plan::new(&t);
        assert!(plan.blocks.iter().all(|b| matches!(b, Block::Run { .. })));
    }

    #[test]
    fn extremes_round_trip() {
        let mut all = SeqSet::new();
        all.insert_range(0..=u64::MAX);
        let mut have = Have::snapshot();
        have.insert(TrackId(0), u64::MAX, all);
        let mut top = SeqSet::new();
        top.insert(u64::MAX);
        top.insert(u64::MAX - 2);
        have.insert(TrackId(u16::MAX), 0, top);
        have.insert(TrackId(7), 5, SeqSet::new());
        round_trip(&have);
        assert_eq!(Plan::new(&have.tracks[&TrackId(0)]).blocks.len(), 2);
    }

    #[test]
    fn dp_never_loses_to_all_runs() {
        // Mixed: a dense holey stretch then a long run then a sparse tail.
        let mut seqs: SeqSet = (100..200).filter(|x| x % 3 != 0).collect();
        seqs.insert_range(300..=900);
        for x in (1000..5000).step_by(97) {
            seqs.insert(x);
        }
        let t = TrackHave { floor: 90, seqs };
        let plan = Plan::new(&t);
        let runs_only: usize = {
            let mut prev = None;
            t.seqs
                .ranges()
                .map(|r| {
                    let (s, e) = (*r.start(), *r.end());
                    let l = varint_len(gap(90, prev, s)) + varint_len((e - s) << 1);
                    prev = Some(e);
                    l
                })
                .sum()
        };
        assert!(plan.len() < runs_only, "{} vs {runs_only}", plan.len());
        let mut have = Have::snapshot();
        have.tracks.insert(TrackId(1), t);
        round_trip(&have);
    }
}
