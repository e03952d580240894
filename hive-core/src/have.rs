//! Sets of fragment sequence numbers, as peers advertise them with `Have`.

use std::ops::RangeInclusive;

use smallvec::SmallVec;

/// Ranges kept inline (without a heap allocation): a live window is one or two.
type Ranges = SmallVec<[(u64, u64); 2]>;

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
    /// (start, end) inclusive, sorted, disjoint and non-adjacent. A sorted vector rather than a
    /// tree, its first two ranges inline: sets are one or a few ranges, looked up far more often
    /// than changed (every neighbour's, at every decision), and grow at the end (new
    /// fragments); bulk changes go through [`SeqSet::union_with`], linear in both sizes.
    ranges: Ranges,
    /// The largest element (0 when empty), kept beside the ranges: most lookups are of a
    /// neighbour's set for the newest fragment, which it often does not hold yet, and this
    /// answers them without reading ranges that spilled to the heap.
    max: u64,
}

impl SeqSet {
    /// An empty set.
    pub fn new() -> Self {
        SeqSet::default()
    }

    /// Whether the set is empty.
    #[inline]
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
    #[inline]
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Whether `seq` is in the set.
    #[inline]
    pub fn contains(&self, seq: u64) -> bool {
        if seq > self.max || self.ranges.is_empty() {
            return false;
        }
        let i = self.ranges.partition_point(|&(s, _)| s <= seq);
        i > 0 && self.ranges[i - 1].1 >= seq
    }

    /// Adds one sequence number.
    #[inline]
    pub fn insert(&mut self, seq: u64) {
        self.insert_range(seq..=seq);
    }

    /// Adds an inclusive range; empty ranges are ignored.
    #[inline]
    pub fn insert_range(&mut self, r: RangeInclusive<u64>) {
        self.insert_range_only(r);
        self.sync_max();
    }

    /// Sets `max` from the ranges (after every change).
    #[inline]
    fn sync_max(&mut self) {
        self.max = self.ranges.last().map_or(0, |r| r.1);
    }

    fn insert_range_only(&mut self, r: RangeInclusive<u64>) {
        let (start, end) = (*r.start(), *r.end());
        if start > end {
            return;
        }
        // The common case: past the end (a new fragment, a decoded list in order).
        match self.ranges.last_mut() {
            None => {
                self.ranges.push((start, end));
                return;
            }
            Some(last) if last.1.saturating_add(1) < start => {
                self.ranges.push((start, end));
                return;
            }
            Some(last) if last.0 <= start => {
                last.1 = last.1.max(end);
                return;
            }
            Some(_) => {}
        }
        // Ranges i..j touch or overlap [start, end]: they become one.
        let i = self
            .ranges
            .partition_point(|&(_, e)| e.saturating_add(1) < start);
        let j = self
            .ranges
            .partition_point(|&(s, _)| s <= end.saturating_add(1));
        if i == j {
            self.ranges.insert(i, (start, end));
        } else {
            let merged = (start.min(self.ranges[i].0), end.max(self.ranges[j - 1].1));
            self.ranges[i] = merged;
            self.ranges.drain(i + 1..j);
        }
    }

    /// Adds every element of `other`, in time linear in both sets' ranges.
    pub fn union_with(&mut self, other: &SeqSet) {
        if other.ranges.len() <= 4 {
            for &(s, e) in &other.ranges {
                self.insert_range_only(s..=e);
            }
            self.sync_max();
            return;
        }
        let mine = std::mem::take(&mut self.ranges);
        let mut out = Ranges::with_capacity(mine.len() + other.ranges.len());
        let (mut a, mut b) = (mine.iter().peekable(), other.ranges.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            let Some(&(s, e)) = next else { break };
            match out.last_mut() {
                Some(last) if last.1.saturating_add(1) >= s => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        self.ranges = out;
        self.sync_max();
    }

    /// Removes one sequence number.
    pub fn remove(&mut self, seq: u64) {
        self.remove_range(seq..=seq);
    }

    /// Removes every sequence number below `floor` (live-window expiry).
    pub fn remove_below(&mut self, floor: u64) {
        let i = self.ranges.partition_point(|&(_, e)| e < floor);
        self.ranges.drain(..i);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(floor);
        }
        self.sync_max();
    }

    /// The smallest element.
    #[inline]
    pub fn first(&self) -> Option<u64> {
        self.ranges.first().map(|r| r.0)
    }

    /// The largest element.
    #[inline]
    pub fn last(&self) -> Option<u64> {
        (!self.ranges.is_empty()).then_some(self.max)
    }

    /// The disjoint ranges in increasing order.
    pub fn ranges(&self) -> impl Iterator<Item = RangeInclusive<u64>> + '_ {
        self.ranges.iter().map(|&(s, e)| s..=e)
    }

    /// Every element in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges().flatten()
    }

    /// The elements of `self` that are not in `other` (what `other` lacks), in time linear in
    /// both sets' ranges.
    pub fn difference(&self, other: &SeqSet) -> SeqSet {
        let mut out = Ranges::with_capacity(self.ranges.len());
        let mut j = 0;
        for &(s, e) in &self.ranges {
            // Skip other's ranges wholly below this one.
            while j < other.ranges.len() && other.ranges[j].1 < s {
                j += 1;
            }
            let mut cur = s;
            let mut k = j;
            let mut done = false;
            while k < other.ranges.len() && other.ranges[k].0 <= e {
                let (os, oe) = other.ranges[k];
                if os > cur {
                    out.push((cur, os - 1));
                }
                if oe >= e {
                    done = true;
                    break;
                }
                cur = cur.max(oe + 1);
                k += 1;
            }
            if !done {
                out.push((cur, e));
            }
        }
        let mut d = SeqSet {
            ranges: out,
            max: 0,
        };
        d.sync_max();
        d
    }

    /// Removes an inclusive range.
    pub fn remove_range(&mut self, r: RangeInclusive<u64>) {
        self.remove_range_only(r);
        self.sync_max();
    }

    fn remove_range_only(&mut self, r: RangeInclusive<u64>) {
        let (start, end) = (*r.start(), *r.end());
        if start > end {
            return;
        }
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        let j = self.ranges.partition_point(|&(s, _)| s <= end);
        if i >= j {
            return;
        }
        let (first, last) = (self.ranges[i].0, self.ranges[j - 1].1);
        self.ranges.drain(i..j);
        let mut at = i;
        if first < start {
            self.ranges.insert(at, (first, start - 1));
            at += 1;
        }
        if last > end {
            self.ranges.insert(at, (end + 1, last));
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
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((0u8..6, 0u64..200, 0u64..8), 0..200)) {
            let mut s = SeqSet::new();
            let mut model = BTreeSet::new();
            for (op, x, w) in ops {
                match op {
                    0 => { s.insert_range(x..=x + w); model.extend(x..=x + w); }
                    1 => { s.remove(x); model.remove(&x); }
                    4 => { s.insert(x); model.insert(x); }
                    2 => { s.remove_below(x); model = model.split_off(&x); }
                    // Every other number from x: several ranges, so the linear merge runs.
                    3 => {
                        let other: SeqSet = (0..w * 3).map(|i| x + 2 * i).collect();
                        s.union_with(&other);
                        model.extend(other.iter());
                    }
                    _ => { s.remove_range(x..=x + w); for y in x..=x + w { model.remove(&y); } }
                }
                prop_assert_eq!(s.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(s.len(), model.len() as u64);
                // Equal to the same set built afresh (what is kept beside the ranges included).
                prop_assert_eq!(&s, &model.iter().copied().collect::<SeqSet>());
                // Lookups (which first compare with the kept largest element) agree.
                prop_assert_eq!(s.last(), model.last().copied());
                prop_assert_eq!(s.first(), model.first().copied());
                for y in [0, x.saturating_sub(1), x, x + w, x + w + 1, x + 3 * w, 250] {
                    prop_assert_eq!(s.contains(y), model.contains(&y), "contains({})", y);
                }
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
            let diff = sa.difference(&sb);
            let d: Vec<u64> = diff.iter().collect();
            let m: Vec<u64> = a.difference(&b).copied().collect();
            prop_assert_eq!(diff.last(), m.last().copied());
            for &y in &m {
                prop_assert!(diff.contains(y));
            }
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
