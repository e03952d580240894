//! Mapping a player's request back to a fragment, in constant time.
//!
//! [`Presentation::classify`] scans every fragment and compares URLs exactly. The agent classifies
//! every request it proxies, so [`Classifier`] indexes a presentation once: canonical URL (per the
//! operator's [`UrlPolicy`]) to fragment, with the byte ranges of resources addressed by range
//! (HLS `EXT-X-BYTERANGE`, DASH `SegmentBase`). Key URIs and LL-HLS parts are never indexed: they
//! pass through to the origin.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use hive_core::manifest::{Fragment, Presentation};
use hive_core::{ByteRange, FragmentId};

use crate::identity::UrlPolicy;

#[derive(Clone, Debug)]
enum Entry {
    Whole(FragmentId),
    Ranges(Vec<(ByteRange, FragmentId)>),
}

/// An index from request URL to fragment, built once per presentation.
#[derive(Clone, Debug)]
pub struct Classifier {
    policy: UrlPolicy,
    by_url: HashMap<String, Entry, RandomState>,
}

impl Classifier {
    /// Indexes every fragment and init segment of `presentation`.
    pub fn new(presentation: &Presentation, policy: UrlPolicy) -> Self {
        let mut c = Classifier {
            policy,
            by_url: HashMap::with_capacity_and_hasher(
                presentation.fragments_total(),
                RandomState::default(),
            ),
        };
        for track in &presentation.tracks {
            for f in track.init.iter().chain(track.fragments.iter()) {
                c.insert(f);
            }
        }
        c
    }

    fn insert(&mut self, f: &Fragment) {
        let Some(key) = self.policy.canonical(&f.url) else {
            return;
        };
        match (f.byte_range, self.by_url.get_mut(&key)) {
            (None, None) => {
                self.by_url.insert(key, Entry::Whole(f.id));
            }
            (Some(r), None) => {
                self.by_url.insert(key, Entry::Ranges(vec![(r, f.id)]));
            }
            (Some(r), Some(Entry::Ranges(v))) => v.push((r, f.id)),
            // The same URL listed twice without a range (or mixed): the first listing wins.
            (_, Some(_)) => {}
        }
    }

    /// The number of indexed URLs.
    pub fn len(&self) -> usize {
        self.by_url.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }

    /// The fragment a request for `url` (without a `Range` header) fetches, or `None` to pass
    /// it through. A resource addressed by several byte ranges is a fragment only if it has one.
    pub fn classify(&self, url: &str) -> Option<FragmentId> {
        match self.by_url.get(&self.policy.canonical(url)?)? {
            Entry::Whole(id) => Some(*id),
            Entry::Ranges(v) if v.len() == 1 => Some(v[0].1),
            Entry::Ranges(_) => None,
        }
    }

    /// The fragment a request for `url` with an HTTP `Range` of `range` fetches: the listed
    /// fragment with exactly that range (a whole-resource fragment ignores the range).
    pub fn classify_range(&self, url: &str, range: Option<ByteRange>) -> Option<FragmentId> {
        let Some(range) = range else {
            return self.classify(url);
        };
        match self.by_url.get(&self.policy.canonical(url)?)? {
            Entry::Whole(id) => Some(*id),
            Entry::Ranges(v) => v.iter().find(|(r, _)| *r == range).map(|(_, id)| *id),
        }
    }
}

/// Parses an HTTP `Range` header value of one closed range, `bytes=first-last`.
pub fn parse_range_header(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    (last >= first).then(|| ByteRange {
        start: first,
        len: last - first + 1,
    })
}

/// Linear classification under a policy, for [`ManifestFormat::classify`]
/// (hive_core::manifest::ManifestFormat): correct but O(fragments); the agent keeps a
/// [`Classifier`] per presentation instead.
pub(crate) fn classify_linear(
    policy: &UrlPolicy,
    p: &Presentation,
    url: &str,
) -> Option<FragmentId> {
    let key = policy.canonical(url)?;
    let mut found = None;
    for f in p
        .tracks
        .iter()
        .flat_map(|t| t.init.iter().chain(t.fragments.iter()))
    {
        if policy.canonical(&f.url).as_deref() == Some(key.as_str()) {
            if f.byte_range.is_none() {
                return Some(f.id);
            }
            if found.is_some() {
                return None;
            }
            found = Some(f.id);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header() {
        assert_eq!(
            parse_range_header("bytes=10-19"),
            Some(ByteRange { start: 10, len: 10 })
        );
        assert_eq!(parse_range_header("bytes=10-"), None);
        assert_eq!(parse_range_header("bytes=9-3"), None);
    }
}
