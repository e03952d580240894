//! Reports of peers that served bytes failing a signed hash, and the peers refused for them.
//!
//! An agent refuses a peer whose bytes fail a trusted (signed) hash at once, on its own; it also
//! tells the tracker (`POST /v1/report`). A report counts only from a peer listed in that
//! swarm, proving it is that peer's announcer with its leave key, and one reporter counts once
//! per accused peer. Once [`TrackerConfig::refuse_after_reports`](super::TrackerConfig)
//! distinct reporters accused a peer, the tracker drops it from the swarm and refuses its
//! announces there for [`TrackerConfig::refuse_for`](super::TrackerConfig): it is introduced to
//! nobody new. (A single liar cannot get an honest peer refused alone; a crowd of fake ids can,
//! unless the tracker requires registrar tokens, which makes every reporter an admitted one.)

use std::collections::{BTreeSet, HashMap};

use hive_core::{ContentId, PeerId};
use parking_lot::Mutex;

/// Most accused peers tracked at once (the table is cleared when full: reports are cheap to
/// repeat, refusals are kept apart).
const MAX_ACCUSED: usize = 16_384;
/// Most peers refused at once (the oldest refusals end first when full).
const MAX_REFUSED: usize = 65_536;
/// Most reporters remembered per accused peer.
const MAX_REPORTERS: usize = 16;

/// The reports and refusals of one tracker (in memory: per tracker instance).
#[derive(Debug, Default)]
pub(crate) struct Reports {
    accused: Mutex<HashMap<(ContentId, PeerId), BTreeSet<PeerId>>>,
    /// (content, peer) → refused until (unix ms).
    refused: Mutex<HashMap<(ContentId, PeerId), u64>>,
}

impl Reports {
    /// Records that `reporter` accused `peer` in `content`; returns whether `peer` is refused
    /// from now on (the `threshold`-th distinct reporter), until `until_ms`.
    pub(crate) fn report(
        &self,
        content: ContentId,
        reporter: PeerId,
        peer: PeerId,
        threshold: usize,
        until_ms: u64,
    ) -> bool {
        let n = {
            let mut a = self.accused.lock();
            if a.len() >= MAX_ACCUSED && !a.contains_key(&(content, peer)) {
                a.clear();
            }
            let set = a.entry((content, peer)).or_default();
            if set.len() < MAX_REPORTERS {
                set.insert(reporter);
            }
            set.len()
        };
        if n < threshold.max(1) {
            return false;
        }
        let mut r = self.refused.lock();
        if r.len() >= MAX_REFUSED
            && let Some(first) = r.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k)
        {
            r.remove(&first);
        }
        r.insert((content, peer), until_ms);
        self.accused.lock().remove(&(content, peer));
        true
    }

    /// Whether `peer` is refused in `content` at `now_ms`.
    pub(crate) fn is_refused(&self, content: ContentId, peer: PeerId, now_ms: u64) -> bool {
        let mut r = self.refused.lock();
        match r.get(&(content, peer)) {
            Some(&until) if until > now_ms => true,
            Some(_) => {
                r.remove(&(content, peer));
                false
            }
            None => false,
        }
    }

    /// Peers refused now, over all swarms.
    pub(crate) fn refused_count(&self) -> usize {
        self.refused.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_reporters_refuse_a_peer_until_it_expires() {
        let r = Reports::default();
        let c = ContentId::derive("c");
        let (a, b, liar) = (
            PeerId::from_bytes([1; 32]),
            PeerId::from_bytes([2; 32]),
            PeerId::from_bytes([9; 32]),
        );
        assert!(!r.report(c, a, liar, 2, 1000));
        // The same reporter twice counts once.
        assert!(!r.report(c, a, liar, 2, 1000));
        assert!(!r.is_refused(c, liar, 10));
        assert!(r.report(c, b, liar, 2, 1000));
        assert!(r.is_refused(c, liar, 10));
        // Only in that swarm, and only until it expires.
        assert!(!r.is_refused(ContentId::derive("other"), liar, 10));
        assert!(!r.is_refused(c, liar, 1000));
        assert_eq!(r.refused_count(), 0);
    }
}
