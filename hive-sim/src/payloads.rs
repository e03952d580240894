//! The origin's payloads: each fragment's bytes and hash, made once for the whole simulation.
//!
//! A payload is a slice of one static buffer of zeros (nothing in the simulator reads the
//! bytes: its network cannot alter them, engines run without verifying, players count bytes),
//! and its hash is computed once, when it is first made; agents take that hash with the
//! origin's bytes instead of hashing every origin fetch again. Every copy an agent receives or
//! caches is a slice of the same bytes (a fragment crosses as one Data chunk, passed on whole),
//! so memory does not grow with viewers × cache size, and the table holds little more than ids
//! and hashes, even for a whole on-demand title.

use std::collections::BTreeMap;

use bytes::Bytes;
use hive_core::ContentHash;

/// The origin's payloads, by (track, sequence), with their hashes.
#[derive(Debug, Default)]
pub(crate) struct Payloads {
    map: BTreeMap<(u16, u64), (Bytes, ContentHash)>,
}

impl Payloads {
    /// The payload of `(track, seq)`, made by `make` the first time; keeps the newest `keep`
    /// sequences of each track (`u64::MAX`: all, for an on-demand title).
    pub(crate) fn get_or_make(
        &mut self,
        track: u16,
        seq: u64,
        keep: u64,
        make: impl FnOnce() -> Bytes,
    ) -> (Bytes, ContentHash) {
        if let Some(held) = self.map.get(&(track, seq)) {
            return held.clone();
        }
        let b = make();
        let hash = ContentHash::of(&b);
        self.map.insert((track, seq), (b.clone(), hash));
        // Forget the oldest sequences of this track beyond `keep` (a late request makes them
        // again: the bytes are a function of the id).
        let newest = self
            .map
            .range((track, 0)..=(track, u64::MAX))
            .next_back()
            .map_or(seq, |(&(_, s), _)| s);
        let floor = newest.saturating_sub(keep.saturating_sub(1));
        let old: Vec<(u16, u64)> = self
            .map
            .range((track, 0)..(track, floor))
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            self.map.remove(&k);
        }
        (b, hash)
    }

    /// The payload of `(track, seq)` and its hash, if it is held.
    pub(crate) fn get(&self, track: u16, seq: u64) -> Option<(Bytes, ContentHash)> {
        self.map.get(&(track, seq)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_made_and_hashed_once_and_kept() {
        let mut p = Payloads::default();
        let mut made = 0;
        let (bytes, hash) = p.get_or_make(1, 7, 64, || {
            made += 1;
            Bytes::from(vec![3u8; 1000])
        });
        // The table hashes what it makes (the agents take that hash with the bytes).
        assert_eq!(hash, ContentHash::of(&bytes));
        assert_eq!(p.get(1, 7), Some((bytes.clone(), hash)));
        let again = p.get_or_make(1, 7, 64, || {
            made += 1;
            Bytes::new()
        });
        assert_eq!(again, (bytes, hash));
        assert_eq!(made, 1);
        // An on-demand title's table keeps everything.
        for seq in 0..900 {
            p.get_or_make(0, seq, u64::MAX, || Bytes::from_static(b"z"));
        }
        assert!(p.get(0, 0).is_some() && p.get(0, 899).is_some());
    }

    #[test]
    fn old_sequences_are_forgotten_per_track() {
        let mut p = Payloads::default();
        for s in 0..100 {
            p.get_or_make(0, s, 10, || Bytes::from_static(b"x"));
            p.get_or_make(1, s, 10, || Bytes::from_static(b"y"));
        }
        assert_eq!(p.map.len(), 20);
        assert!(p.map.contains_key(&(0, 90)) && !p.map.contains_key(&(0, 89)));
    }
}
