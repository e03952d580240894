//! The simulated publisher's fragments: their sizes, their manifest entries and trusted
//! hashes, the Data chunk size that keeps each whole, and their payloads.

use bytes::Bytes;
use hive_core::{ContentHash, ContentId, FragmentId, TrackId};
use hive_overlay::FragmentInfo;

use super::Sim;
use super::engine::Ctx;
use crate::scenario::Scenario;

/// Data chunk size in the simulator, at least: larger than any fragment of the named scenarios
/// (16 Mbit/s × 2 s), so that one fragment is one flow (see `join`); a network file's larger
/// fragments get chunks as large.
const SIM_CHUNK: usize = 4 << 20;

/// Realistic sizes: the nominal bitrate ±10%, varying per fragment.
pub(super) fn fragment_size(s: &Scenario, seq: u64, track: usize) -> u64 {
    let nominal = s.ladder_bps[track] as f64 * s.fragment.as_secs_f64() / 8.0;
    let h = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ track as u64).rotate_left(17) % 2001;
    (nominal * (0.9 + 0.2 * h as f64 / 2000.0)) as u64
}

/// A fragment as the manifest lists it, without a URL: the simulated origin serves by id (and
/// formatting one for every agent and fragment was 3.5% of a run's instructions).
pub(super) fn fragment_info(
    s: &Scenario,
    content: ContentId,
    seq: u64,
    track: usize,
) -> FragmentInfo {
    let id = FragmentId::new(content, TrackId(track as u16), seq);
    FragmentInfo {
        id,
        url: String::new(),
        media_time: s.fragment * seq as u32,
        duration: s.fragment,
        size_estimate: fragment_size(s, seq, track),
        hash: Some(trusted_label(&id)),
    }
}

/// The trusted hash the simulated publisher lists for a fragment, known to every agent when
/// the fragment is listed (as a publisher's signed list beside the playlist is). The engines
/// run with [`Verify::TrustedDeclared`](hive_overlay::Verify::TrustedDeclared): they require a
/// trusted hash before asking a peer, as agents do, but compare the hash a sender declares with
/// it instead of hashing the bytes (the simulated network cannot alter bytes). So the trusted
/// hash is a label made from the fragment's id, the same for the origin's copy and every peer's.
pub(super) fn trusted_label(id: &FragmentId) -> ContentHash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&id.sequence.to_le_bytes());
    h[8..10].copy_from_slice(&id.track.0.to_le_bytes());
    h[10..18].copy_from_slice(&id.content.as_bytes()[..8]);
    ContentHash(h)
}

impl Sim<'_> {
    pub(super) fn info(&self, seq: u64, track: usize) -> FragmentInfo {
        fragment_info(self.s, self.content, seq, track)
    }

    /// The Data chunk size: above the largest fragment of the scenario (the top bitrate's
    /// nominal size + 10%, see [`fragment_size`]), at least [`SIM_CHUNK`].
    pub(super) fn chunk_size(&self) -> usize {
        let top = self.s.ladder_bps.iter().max().copied().unwrap_or(0) as f64;
        let largest = top * self.s.fragment.as_secs_f64() / 8.0 * 1.1;
        SIM_CHUNK.max(largest.ceil() as usize + 1)
    }
}

impl Ctx<'_> {
    /// A fragment's bytes and their hash (made, and hashed, once for the whole run). The bytes
    /// are zeros, a slice of one static buffer: nothing in the simulator reads them (its
    /// network cannot alter them, and players count bytes), so a title's payloads take no
    /// memory (vod-500 at full size held 650 MB of distinct payloads).
    pub(super) fn payload(&self, id: FragmentId) -> (Bytes, ContentHash) {
        static ZEROS: [u8; SIM_CHUNK] = [0; SIM_CHUNK];
        let size = fragment_size(self.s, id.sequence, usize::from(id.track.0)) as usize;
        let make = || match ZEROS.get(..size) {
            Some(z) => Bytes::from_static(z),
            None => Bytes::from(vec![0; size]),
        };
        // The newest 64 of each track: more than any live window; on demand, the whole title.
        let keep = if self.s.vod.is_some() { u64::MAX } else { 64 };
        // Agents read in parallel; the first to need a payload makes it.
        let held = self
            .payloads
            .read()
            .ok()
            .and_then(|p| p.get(id.track.0, id.sequence));
        if let Some(b) = held {
            return b;
        }
        match self.payloads.write() {
            Ok(mut p) => p.get_or_make(id.track.0, id.sequence, keep, make),
            Err(_) => {
                let b = make();
                let hash = ContentHash::of(&b);
                (b, hash)
            }
        }
    }
}
