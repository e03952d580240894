//! A set of disjoint half-open `u64` ranges: received packet numbers, acknowledged stream
//! offsets.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent half-open ranges, keyed by start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// Whether `x` is in the set.
    pub(crate) fn contains(&self, x: u64) -> bool {
        self.map
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &end)| x < end)
    }

    /// Adds `r`, merging with neighbours. Returns whether anything new was added.
    pub(crate) fn insert(&mut self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return false;
        }
        let (mut start, mut end) = (r.start, r.end);
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= end {
                return false;
            }
            if e >= start {
                start = s;
                self.map.remove(&s);
            }
        }
        let overlapping: Vec<(u64, u64)> =
            self.map.range(start..=end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in overlapping {
            self.map.remove(&s);
            end = end.max(e);
        }
        self.map.insert(start, end);
        true
    }

    /// The ranges, lowest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The largest element.
    #[cfg(test)]
    pub(crate) fn max(&self) -> Option<u64> {
        self.map.iter().next_back().map(|(_, &e)| e - 1)
    }

    /// The smallest element.
    pub(crate) fn min(&self) -> Option<u64> {
        self.map.keys().next().copied()
    }

    /// Number of ranges.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes every element below `x`.
    pub(crate) fn remove_below(&mut self, x: u64) {
        while let Some((&s, &e)) = self.map.iter().next() {
            if e <= x {
                self.map.remove(&s);
            } else {
                if s < x {
                    self.map.remove(&s);
                    self.map.insert(x, e);
                }
                break;
            }
        }
    }

    /// Removes and returns up to `max` elements from the lowest range.
    pub(crate) fn pop_front(&mut self, max: u64) -> Option<Range<u64>> {
        let (&s, &e) = self.map.iter().next()?;
        self.map.remove(&s);
        let end = e.min(s.saturating_add(max.max(1)));
        if end < e {
            self.map.insert(end, e);
        }
        Some(s..end)
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops the lowest ranges until at most `n` remain.
    pub(crate) fn keep_newest(&mut self, n: usize) {
        while self.map.len() > n {
            if let Some(&s) = self.map.keys().next() {
                self.map.remove(&s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_contains() {
        let mut s = RangeSet::default();
        assert!(s.insert(5..10));
        assert!(s.insert(0..2));
        assert!(!s.insert(6..8));
        assert!(s.insert(2..5));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..10]);
        assert!(s.insert(12..14));
        assert!(s.insert(9..20));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..20]);
        assert!(s.contains(19) && !s.contains(20));
        s.remove_below(15);
        assert_eq!(s.min(), Some(15));
        assert_eq!(s.max(), Some(19));
    }
}
