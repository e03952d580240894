//! Sets of fragment sequence numbers, as peers advertise them with `Have`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// A set of sequence numbers stored as disjoint, non-adjacent inclusive ranges.
///
/// Live swarms hold a sliding window of consecutive fragments, so a set is usually one or a few
/// ranges whatever its size.
///
/// ```
/// use hive_core::SeqSet;
/// let mut s = SeqSet::new();
/// s.insert_range(10..=14);
/// s.insert(16);
/// s.insert(15);
/// assert_eq!(s.ranges().collect::<Vec<_>>(), vec![10..=16]);
/// s.remove_below(12);
/// assert_eq!(s.len(), 5);
/// assert!(s.contains(12) && !s.contains(11));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// start -> end (inclusive).
    ranges: BTreeMap<u64, u64>,
}

impl SeqSet {
    /// An empty set.
    pub fn new() -> Self {
        SeqSet::default()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The number of sequence numbers in the set (saturating).
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .fold(0u64, |n, (s, e)| n.saturating_add(e - s).saturating_add(1))
    }

    /// The number of disjoint ranges.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        self.ranges
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &e)| e >= seq)
    }

    /// Adds one sequence number.
    pub fn insert(&mut self, seq: u64) {
        self.insert_range(seq..=seq);
    }

    /// Adds an inclusive range; empty ranges are ignored.
    pub fn insert_range(&mut self, r: RangeInclusive<u64>) {
        let (mut start, mut end) = (*r.start(), *r.end());
        if start > end {
            return;
        }
        // Merge with a range that starts before and touches or overlaps.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e.saturating_add(1) >= start {
                start = s;
                end = end.max(e);
            }
        }
        // Absorb ranges that start inside or right after [start, end].
        loop {
            let next = self.ranges.range(start..).next().map(|(&s, &e)| (s, e));
            match next {
                Some((s, e)) if s <= end.saturating_add(1) => {
                    self.ranges.remove(&s);
                    end = end.max(e);
                }
                _ => break,
            }
        }
        self.ranges.insert(start, end);
    }

    /// Removes one sequence number.
    pub fn remove(&mut self, seq: u64) {
        if let Some((&s, &e)) = self.ranges.range(..=seq).next_back() {
            if e < seq {
                return;
            }
            self.ranges.remove(&s);
            if s < seq {
                self.ranges.insert(s, seq - 1);
            }
            if seq < e {
                self.ranges.insert(seq + 1, e);
            }
        }
    }

    /// Removes every sequence number below `floor` (live-window expiry).
    pub fn remove_below(&mut self, floor: u64) {
        let keep = self.ranges.split_off(&floor);
        let straddling = self
            .ranges
            .iter()
            .next_back()
            .map(|(_, &e)| e)
            .filter(|&e| e >= floor);
        self.ranges = keep;
        if let Some(e) = straddling {
            self.ranges.insert(floor, e);
        }
    }

    /// The smallest element.
    pub fn first(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// The largest element.
    pub fn last(&self) -> Option<u64> {
        self.ranges.values().next_back().copied()
    }

    /// The disjoint ranges in increasing order.
    pub fn ranges(&self) -> impl Iterator<Item = RangeInclusive<u64>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..=e)
    }

    /// Every element in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges().flatten()
    }

    /// The elements of `self` that are not in `other` (what `other` lacks).
    pub fn difference(&self, other: &SeqSet) -> SeqSet {
        let mut out = self.clone();
        for r in other.ranges() {
            out.remove_range(r);
        }
        out
    }

    /// Removes an inclusive range.
    pub fn remove_range(&mut self, r: RangeInclusive<u64>) {
        let (start, end) = (*r.start(), *r.end());
        if start > end {
            return;
        }
        let overlapping: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(_, e)| **e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in overlapping {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start - 1);
            }
            if e > end {
                self.ranges.insert(end + 1, e);
            }
        }
    }
}

impl FromIterator<u64> for SeqSet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> Self {
        let mut s = SeqSet::new();
        for x in iter {
            s.insert(x);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((0u8..4, 0u64..200, 0u64..8), 0..200)) {
            let mut s = SeqSet::new();
            let mut model = BTreeSet::new();
            for (op, x, w) in ops {
                match op {
                    0 => { s.insert_range(x..=x + w); model.extend(x..=x + w); }
                    1 => { s.remove(x); model.remove(&x); }
                    2 => { s.remove_below(x); model = model.split_off(&x); }
                    _ => { s.remove_range(x..=x + w); for y in x..=x + w { model.remove(&y); } }
                }
                prop_assert_eq!(s.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(s.len(), model.len() as u64);
                // Ranges stay disjoint and non-adjacent.
                let rs: Vec<_> = s.ranges().collect();
                for w in rs.windows(2) {
                    prop_assert!(w[0].end() + 1 < *w[1].start());
                }
            }
        }

        #[test]
        fn difference_matches_model(a in proptest::collection::btree_set(0u64..100, 0..60), b in proptest::collection::btree_set(0u64..100, 0..60)) {
            let sa: SeqSet = a.iter().copied().collect();
            let sb: SeqSet = b.iter().copied().collect();
            let d: Vec<u64> = sa.difference(&sb).iter().collect();
            let m: Vec<u64> = a.difference(&b).copied().collect();
            prop_assert_eq!(d, m);
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = SeqSet::new();
        s.insert(u64::MAX);
        s.insert_range(u64::MAX - 3..=u64::MAX - 1);
        assert_eq!(s.range_count(), 1);
        assert_eq!(s.len(), 4);
        s.remove(u64::MAX);
        assert_eq!(s.last(), Some(u64::MAX - 1));
        s.insert(0);
        s.remove_below(0);
        assert!(s.contains(0));
    }
}
