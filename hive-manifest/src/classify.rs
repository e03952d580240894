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

/// What one canonical URL maps to: the whole resource and/or byte ranges of it.
#[derive(Clone, Debug, Default)]
struct Entry {
    whole: Option<FragmentId>,
    ranges: Vec<(ByteRange, FragmentId)>,
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
        let e = self.by_url.entry(key).or_default();
        match f.byte_range {
            // The same URL listed twice without a range: the first listing wins.
            None => {
                e.whole.get_or_insert(f.id);
            }
            Some(r) => e.ranges.push((r, f.id)),
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
    /// it through: the whole-resource fragment, or the only byte range listed for `url`.
    pub fn classify(&self, url: &str) -> Option<FragmentId> {
        let e = self.by_url.get(&self.policy.canonical(url)?)?;
        match (e.whole, e.ranges.as_slice()) {
            (Some(id), _) => Some(id),
            (None, [(_, id)]) => Some(*id),
            _ => None,
        }
    }

    /// The fragment a request for `url` with an HTTP `Range` of `range` fetches: the listed
    /// fragment with exactly that range, else the whole-resource fragment of `url`, if listed.
    pub fn classify_range(&self, url: &str, range: Option<ByteRange>) -> Option<FragmentId> {
        let Some(range) = range else {
            return self.classify(url);
        };
        let e = self.by_url.get(&self.policy.canonical(url)?)?;
        e.ranges
            .iter()
            .find(|(r, _)| *r == range)
            .map(|(_, id)| *id)
            .or(e.whole)
    }
}

/// Parses an HTTP `Range` header value of one closed range, `bytes=first-last`.
pub fn parse_range_header(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    // `bytes=0-18446744073709551615` is 2^64 bytes, which no `ByteRange` holds.
    let len = last.checked_sub(first)?.checked_add(1)?;
    Some(ByteRange { start: first, len })
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
        assert_eq!(parse_range_header("bytes=0-18446744073709551615"), None);
        assert_eq!(
            parse_range_header("bytes=1-18446744073709551615"),
            Some(ByteRange {
                start: 1,
                len: u64::MAX
            })
        );
    }
}
