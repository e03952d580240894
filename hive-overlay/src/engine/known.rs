//! What the manifest listed: each track's fragments in sequence order.

use std::collections::VecDeque;

use hive_core::time::Duration;
use hive_core::{ByteRange, ContentId, FragmentId, TrackId};

use super::FragmentInfo;

/// A fragment's place within its track: sequence number, then the byte range that tells apart
/// fragments sharing one (the order of [`FragmentId`] within a track).
type Key = (u64, Option<ByteRange>);

fn key_of(id: &FragmentId) -> Key {
    (id.sequence, id.range)
}

fn media_end(info: &FragmentInfo) -> Duration {
    info.media_time.saturating_add(info.duration)
}

/// The fragments listed, per (content, track), each track's in increasing [`Key`] order.
///
/// A manifest lists a live track's fragments in order and the oldest are forgotten first, so a
/// new fragment goes at the back of its track and old ones leave from its front, without the
/// node splits and shifts of a map keyed by whole fragment ids.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Sorted by (content, track).
    tracks: Vec<((ContentId, TrackId), VecDeque<FragmentInfo>)>,
}

impl Known {
    fn track_index(&self, content: &ContentId, track: TrackId) -> Result<usize, usize> {
        self.tracks
            .binary_search_by(|((c, t), _)| c.cmp(content).then(t.cmp(&track)))
    }

    /// The fragment's position in its track: `Ok((track, i))` if listed, else `Err` with the
    /// track (if any) and where the fragment would go.
    fn find(&self, id: &FragmentId) -> Option<(usize, Result<usize, usize>)> {
        let t = self.track_index(&id.content, id.track).ok()?;
        let frags = &self.tracks[t].1;
        let k = key_of(id);
        if frags.back().is_none_or(|b| key_of(&b.id) < k) {
            return Some((t, Err(frags.len())));
        }
        Some((t, frags.binary_search_by(|f| key_of(&f.id).cmp(&k))))
    }

    /// What is known of `id`.
    pub(super) fn get(&self, id: &FragmentId) -> Option<&FragmentInfo> {
        match self.find(id)? {
            (t, Ok(i)) => self.tracks[t].1.get(i),
            (_, Err(_)) => None,
        }
    }

    /// The newest sequence listed of `content`'s `track`, if the track is known.
    pub(super) fn newest(&self, content: &ContentId, track: TrackId) -> Option<u64> {
        let t = self.track_index(content, track).ok()?;
        self.tracks[t].1.back().map(|f| f.id.sequence)
    }

    /// Whether `id` is listed.
    pub(super) fn contains(&self, id: &FragmentId) -> bool {
        matches!(self.find(id), Some((_, Ok(_))))
    }

    /// Lists `info`, replacing what was known of its fragment; returns whether it is new.
    pub(super) fn insert(&mut self, info: FragmentInfo) -> bool {
        let t = match self.track_index(&info.id.content, info.id.track) {
            Ok(t) => t,
            Err(t) => {
                self.tracks
                    .insert(t, ((info.id.content, info.id.track), VecDeque::new()));
                t
            }
        };
        let frags = &mut self.tracks[t].1;
        let k = key_of(&info.id);
        if frags.back().is_none_or(|b| key_of(&b.id) < k) {
            frags.push_back(info);
            return true;
        }
        match frags.binary_search_by(|f| key_of(&f.id).cmp(&k)) {
            Ok(i) => {
                // A trusted hash once known stays known (a later listing may carry none).
                let hash = info.hash.or(frags[i].hash);
                frags[i] = info;
                frags[i].hash = hash;
                false
            }
            Err(i) => {
                frags.insert(i, info);
                true
            }
        }
    }

    /// Records `id`'s trusted hash; false when `id` is not listed.
    pub(super) fn set_hash(&mut self, id: &FragmentId, hash: hive_core::ContentHash) -> bool {
        match self.find(id) {
            Some((t, Ok(i))) => {
                if let Some(f) = self.tracks[t].1.get_mut(i) {
                    f.hash = Some(hash);
                }
                true
            }
            _ => false,
        }
    }

    /// Forgets, in each track, the fragments listed before the first whose media end is within
    /// `window` of the track's last fragment's, except those `keep` holds on to.
    pub(super) fn forget(&mut self, window: Duration, keep: impl Fn(&FragmentId) -> bool) {
        for (_, frags) in &mut self.tracks {
            let newest_end = frags.back().map(media_end).unwrap_or_default();
            let cutoff = newest_end.saturating_sub(window);
            let old = frags
                .iter()
                .position(|i| media_end(i) >= cutoff)
                .unwrap_or(frags.len());
            // Usually every old fragment goes: from the front, one by one.
            let mut gone = 0;
            while gone < old && frags.front().is_some_and(|f| !keep(&f.id)) {
                frags.pop_front();
                gone += 1;
            }
            let old = old - gone;
            if frags.iter().take(old).any(|f| !keep(&f.id)) {
                let mut i = 0;
                frags.retain(|f| {
                    let stays = i >= old || keep(&f.id);
                    i += 1;
                    stays
                });
            }
        }
        self.tracks.retain(|(_, frags)| !frags.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(track: u16, seq: u64) -> FragmentInfo {
        FragmentInfo {
            id: FragmentId::new(ContentId::derive("c"), TrackId(track), seq),
            url: format!("{track}/{seq}"),
            media_time: Duration::from_secs(2 * seq),
            duration: Duration::from_secs(2),
            size_estimate: 1000,
            hash: None,
        }
    }

    #[test]
    fn lists_in_any_order_and_replaces() {
        let mut k = Known::default();
        for s in [5, 1, 3, 9, 7] {
            assert!(k.insert(info(1, s)));
        }
        assert!(k.insert(info(0, 4)));
        let mut again = info(1, 3);
        again.size_estimate = 7;
        assert!(!k.insert(again));
        assert_eq!(k.get(&info(1, 3).id).map(|i| i.size_estimate), Some(7));
        assert!(k.contains(&info(0, 4).id));
        assert!(!k.contains(&info(0, 5).id));
        assert!(!k.contains(&info(2, 5).id));
        let seqs: Vec<u64> = k.tracks[1].1.iter().map(|i| i.id.sequence).collect();
        assert_eq!(seqs, [1, 3, 5, 7, 9]);
    }

    #[test]
    fn forgets_old_fragments_but_those_kept() {
        let mut k = Known::default();
        for s in 0..20 {
            k.insert(info(0, s));
        }
        k.insert(info(1, 3));
        // Newest end 40 s; a 10 s window keeps the fragments ending at 30 s or later.
        k.forget(Duration::from_secs(10), |id| id.sequence == 2);
        let seqs: Vec<u64> = k.tracks[0].1.iter().map(|i| i.id.sequence).collect();
        assert_eq!(seqs, [2, 14, 15, 16, 17, 18, 19]);
        assert!(k.contains(&info(1, 3).id), "a track's own window");
        k.forget(Duration::from_secs(10), |_| false);
        assert!(!k.contains(&info(0, 2).id));
        assert_eq!(k.tracks[0].1.len(), 6);
    }
}
