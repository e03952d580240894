//! A flow-level network: links with capacities, transfers (flows) along paths of links, rates
//! shared max-min fairly (progressive filling), recomputed whenever a flow starts or ends.
//!
//! Sans-IO and deterministic: the simulator asks [`Net::next_completion`], advances to it with
//! [`Net::advance`], and collects finished flows.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use hive_core::time::{Duration, Instant};

/// A total order on the finite floats of the allocation (NaN never occurs: capacities are
/// positive and finite, user counts positive).
#[derive(Clone, Copy, Debug, PartialEq)]
struct OrdF64(f64);

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The rate of a flow that crosses no constrained link, bytes/s (effectively instant).
const UNCONSTRAINED_RATE: f64 = 1e12;

/// A link's index.
pub type LinkId = usize;
/// A flow's id.
pub type FlowId = u64;

/// One directional link.
#[derive(Clone, Debug)]
pub struct Link {
    /// A name for reports ("vpn:site-3:down", "gw:down", "up:v17").
    pub name: String,
    /// Capacity, bytes per second (`f64::INFINITY` for an unconstrained link).
    pub capacity: f64,
    /// One-way latency added by crossing it (as given to [`Net::add_link`]: [`Net::latency`]
    /// reads a copy made then).
    pub latency: Duration,
    /// Whether reports count copies of fragments crossing it (VPN and gateway links).
    pub bottleneck: bool,
    /// Bytes that crossed it.
    pub bytes: u64,
}

#[derive(Clone, Debug)]
struct Flow {
    path: Vec<LinkId>,
    /// Bytes left at `since`.
    remaining: f64,
    /// When `remaining` was last brought up to date.
    since: Instant,
    rate: f64,
    /// When it completes at its current rate (its entry in `Net::completions`).
    due: Option<Instant>,
}

impl Flow {
    fn remaining_at(&self, t: Instant) -> f64 {
        self.remaining - self.rate * t.saturating_duration_since(self.since).as_secs_f64()
    }

    fn completion(&self) -> Option<Instant> {
        (self.rate > 0.0).then(|| {
            self.since + Duration::from_secs_f64((self.remaining.max(0.0) / self.rate).min(1e6))
        })
    }
}

/// The network.
///
/// Rates are recomputed only for the flows that share a constrained link, directly or through
/// other flows, with the flow that started or ended (its component); every other flow keeps
/// its rate. Progress is kept lazily (bytes left at the last rate change) and completions sit
/// in a heap, so an event costs the size of its component, not of the whole network.
#[derive(Clone, Debug, Default)]
pub struct Net {
    /// The links.
    pub links: Vec<Link>,
    /// Each link's latency, apart (summed for every message: a compact array).
    latencies: Vec<Duration>,
    /// Flows by id (looked up, never iterated where order matters: components are sorted).
    flows: HashMap<FlowId, Flow, foldhash::fast::FixedState>,
    /// Flows crossing each constrained link, in id order (a new flow's id is the highest: it
    /// goes at the end). Unconstrained links do not keep theirs: no allocation reads them.
    on_link: Vec<Vec<FlowId>>,
    /// Each flow's completion at its current rate, kept up to date (no stale entries: a swarm
    /// re-rates thousands of flows per event, and stale heap entries piled up into millions).
    completions: BTreeSet<(Instant, FlowId)>,
    next_id: FlowId,
    now: Instant,
    /// Per link, the last component search that reached it (see [`Net::component`]).
    reached: Vec<u64>,
    /// Component searches so far.
    searches: u64,
}

impl Net {
    /// An empty network.
    pub fn new() -> Self {
        Net::default()
    }

    /// Adds a link; capacity in bits per second (`None`: unconstrained).
    pub fn add_link(
        &mut self,
        name: impl Into<String>,
        bps: Option<u64>,
        latency: Duration,
        bottleneck: bool,
    ) -> LinkId {
        self.links.push(Link {
            name: name.into(),
            capacity: bps.map_or(f64::INFINITY, |b| b as f64 / 8.0),
            latency,
            bottleneck,
            bytes: 0,
        });
        self.latencies.push(latency);
        self.on_link.push(Vec::new());
        self.reached.push(0);
        self.links.len() - 1
    }

    /// The one-way latency of a path: the sum of its links'.
    pub fn latency(&self, path: &[LinkId]) -> Duration {
        path.iter().map(|&l| self.latencies[l]).sum()
    }

    /// Number of active flows.
    pub fn active(&self) -> usize {
        self.flows.len()
    }

    /// (remaining bytes, rate) of a flow now, for tests and debugging.
    pub fn flow_state(&self, id: FlowId) -> Option<(f64, f64)> {
        self.flows
            .get(&id)
            .map(|f| (f.remaining_at(self.now), f.rate))
    }

    /// Whether the flows crossing `link` use all of its capacity now (never for an
    /// unconstrained link): it is some flow's bottleneck, and a real one would hold a queue.
    pub fn saturated(&self, link: LinkId) -> bool {
        let Some(l) = self.links.get(link) else {
            return false;
        };
        if !l.capacity.is_finite() {
            return false;
        }
        let load: f64 = self.on_link[link]
            .iter()
            .filter_map(|f| self.flows.get(f))
            .map(|f| f.rate)
            .sum();
        load >= l.capacity * 0.999
    }

    /// Active flows without a rate (a starved flow; should not happen).
    pub fn starved(&self) -> usize {
        self.flows.values().filter(|f| f.rate <= 0.0).count()
    }

    /// Starts a transfer of `bytes` along `path` at `now`.
    pub fn start(&mut self, now: Instant, path: Vec<LinkId>, bytes: u64) -> FlowId {
        self.now = self.now.max(now);
        self.next_id += 1;
        let id = self.next_id;
        for &l in &path {
            self.links[l].bytes += bytes;
            // Once per link, however often the path crosses it (the id is the highest yet, so a
            // repeat is the last entry).
            if self.links[l].capacity.is_finite() && self.on_link[l].last() != Some(&id) {
                self.on_link[l].push(id);
            }
        }
        let seeds = path.clone();
        self.flows.insert(
            id,
            Flow {
                path,
                remaining: bytes.max(1) as f64,
                since: self.now,
                rate: 0.0,
                due: None,
            },
        );
        self.reallocate(&seeds, Some(id));
        id
    }

    /// Aborts a transfer (its bytes stay counted on the links as sent).
    pub fn abort(&mut self, now: Instant, id: FlowId) {
        self.now = self.now.max(now);
        if let Some(f) = self.remove(id) {
            self.reallocate(&f.path, None);
        }
    }

    fn remove(&mut self, id: FlowId) -> Option<Flow> {
        let f = self.flows.remove(&id)?;
        if let Some(t) = f.due {
            self.completions.remove(&(t, id));
        }
        for &l in &f.path {
            let on = &mut self.on_link[l];
            if let Ok(i) = on.binary_search(&id) {
                on.remove(i);
            }
        }
        Some(f)
    }

    /// When the next flow completes.
    pub fn next_completion(&mut self) -> Option<Instant> {
        self.completions.first().map(|(t, _)| *t)
    }

    /// Moves time to `now` and returns the flows that completed by then.
    pub fn advance(&mut self, now: Instant) -> Vec<FlowId> {
        self.now = self.now.max(now);
        let mut done = Vec::new();
        while let Some(&(t, id)) = self.completions.first() {
            if t > self.now {
                break;
            }
            self.completions.pop_first();
            if let Some(f) = self.flows.get_mut(&id) {
                f.due = None;
            }
            done.push(id);
        }
        let mut seeds = Vec::new();
        for id in &done {
            if let Some(f) = self.remove(*id) {
                seeds.extend(f.path);
            }
        }
        if !seeds.is_empty() {
            self.reallocate(&seeds, None);
        }
        done
    }

    /// The flows sharing a constrained link with `seeds`' links, transitively, in id order.
    /// Links reached are marked with the search's number, so that a component of thousands
    /// of links (a shared bottleneck) costs no more per link than one of a few.
    fn component(&mut self, seeds: &[LinkId]) -> Vec<FlowId> {
        self.searches += 1;
        let search = self.searches;
        let Net {
            links,
            flows,
            on_link,
            reached,
            ..
        } = self;
        let mut stack: Vec<LinkId> = Vec::new();
        let mut reach = |l: LinkId, stack: &mut Vec<LinkId>| {
            if links[l].capacity.is_finite() && reached[l] != search {
                reached[l] = search;
                stack.push(l);
            }
        };
        for &l in seeds {
            reach(l, &mut stack);
        }
        let mut members = Vec::new();
        while let Some(l) = stack.pop() {
            for &f in &on_link[l] {
                members.push(f);
                if let Some(flow) = flows.get(&f) {
                    for &x in &flow.path {
                        reach(x, &mut stack);
                    }
                }
            }
        }
        members.sort_unstable();
        members.dedup();
        members
    }

    /// Max-min fair rates for the component of `seeds` (plus `extra`, a new flow that may cross
    /// only unconstrained links), by progressive filling: raise every unfrozen flow's rate
    /// equally until a link saturates, freeze the flows crossing it, repeat.
    fn reallocate(&mut self, seeds: &[LinkId], extra: Option<FlowId>) {
        let mut members = self.component(seeds);
        if let Some(e) = extra {
            if let Err(i) = members.binary_search(&e) {
                members.insert(i, e);
            }
        }
        let now = self.now;
        // Bring progress up to date before rates change.
        for id in &members {
            if let Some(f) = self.flows.get_mut(id) {
                f.remaining = f.remaining_at(now);
                f.since = now;
            }
        }
        // Progressive filling with a heap: a link saturates at level
        // (capacity − rates frozen on it) / (unfrozen flows on it); pop the lowest, freeze its
        // flows at that level, update the links they cross. O((links + flows·hops) log links).
        // Per constrained link, in link order: (link, capacity left, users, version).
        let mut left: Vec<(LinkId, f64, usize, u64)> = Vec::new();
        for id in &members {
            if let Some(f) = self.flows.get(id) {
                for &l in &f.path {
                    if self.links[l].capacity.is_finite() {
                        left.push((l, self.links[l].capacity, 0, 0));
                    }
                }
            }
        }
        left.sort_unstable_by_key(|e| e.0);
        left.dedup_by_key(|e| e.0);
        let find = |left: &[(LinkId, f64, usize, u64)], l: LinkId| {
            left.binary_search_by_key(&l, |e| e.0).ok()
        };
        for id in &members {
            if let Some(f) = self.flows.get(id) {
                for &l in &f.path {
                    if let Some(i) = find(&left, l) {
                        left[i].2 += 1;
                    }
                }
            }
        }
        let mut heap: BinaryHeap<Reverse<(OrdF64, LinkId, u64)>> = left
            .iter()
            .map(|&(l, c, n, v)| Reverse((OrdF64(c / n as f64), l, v)))
            .collect();
        // Each member's rate, in `members`' order (NaN: not frozen yet).
        let mut rates: Vec<f64> = vec![f64::NAN; members.len()];
        while let Some(Reverse((OrdF64(level), l, version))) = heap.pop() {
            let Some(li) = find(&left, l) else {
                continue;
            };
            if left[li].3 != version || left[li].2 == 0 {
                continue;
            }
            let frozen: Vec<usize> = self.on_link[l]
                .iter()
                .filter_map(|f| members.binary_search(f).ok())
                .filter(|&m| rates[m].is_nan())
                .collect();
            for m in frozen {
                rates[m] = level.max(0.0);
                let Some(f) = self.flows.get(&members[m]) else {
                    continue;
                };
                for &x in &f.path {
                    if let Some(xi) = find(&left, x) {
                        let e = &mut left[xi];
                        e.1 -= level;
                        e.2 -= 1;
                        e.3 += 1;
                        if e.2 > 0 && x != l {
                            heap.push(Reverse((OrdF64((e.1 / e.2 as f64).max(level)), x, e.3)));
                        }
                    }
                }
            }
        }
        for (id, rate) in members.into_iter().zip(rates) {
            // Flows crossing only unconstrained links.
            let rate = if rate.is_nan() {
                UNCONSTRAINED_RATE
            } else {
                rate
            };
            if let Some(f) = self.flows.get_mut(&id) {
                if f.rate != rate || f.due.is_none() {
                    f.rate = rate;
                    let due = f.completion();
                    if due != f.due {
                        if let Some(old) = f.due {
                            self.completions.remove(&(old, id));
                        }
                        if let Some(t) = due {
                            self.completions.insert((t, id));
                        }
                        f.due = due;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbit(x: u64) -> Option<u64> {
        Some(x * 1_000_000)
    }

    #[test]
    fn max_min_shares_a_bottleneck_and_gives_the_rest_away() {
        let mut n = Net::new();
        let shared = n.add_link("shared", mbit(10), Duration::ZERO, true);
        let slow = n.add_link("slow", mbit(2), Duration::ZERO, false);
        let t = Instant::ZERO;
        // Flow a crosses the shared link only; flow b also a 2 Mbit/s link.
        let a = n.start(t, vec![shared], 1_000_000);
        let _b = n.start(t, vec![shared, slow], 1_000_000);
        // b gets 2 Mbit/s, a the remaining 8 Mbit/s: a's 8 Mbit completes in 1 s.
        let first = n.next_completion().unwrap();
        assert!((first.as_secs_f64() - 1.0).abs() < 1e-3, "{first}");
        assert_eq!(n.advance(first), vec![a]);
        // b alone now, still limited to 2 Mbit/s: 6 Mbit left... it had sent 2 Mbit in 1 s.
        let second = n.next_completion().unwrap();
        assert!((second.as_secs_f64() - 4.0).abs() < 1e-3, "{second}");
    }

    #[test]
    fn a_link_is_saturated_while_it_bounds_a_flow() {
        let mut n = Net::new();
        let up = n.add_link("up", mbit(2), Duration::ZERO, false);
        let down = n.add_link("down", mbit(10), Duration::ZERO, false);
        let thin = n.add_link("thin", mbit(1), Duration::ZERO, false);
        let core = n.add_link("core", None, Duration::ZERO, false);
        assert!(!n.saturated(up), "idle");
        // Bounded by the uplink: it is full, the wider downlink is not.
        let a = n.start(Instant::ZERO, vec![up, core, down], 250_000);
        assert!(n.saturated(up) && !n.saturated(down) && !n.saturated(core));
        let done = n.next_completion().unwrap();
        assert_eq!(n.advance(done), vec![a]);
        assert!(!n.saturated(up), "idle again");
        // Bounded further on (1 Mbit/s): the uplink keeps room.
        n.start(done, vec![up, thin], 250_000);
        assert!(!n.saturated(up) && n.saturated(thin));
    }

    #[test]
    fn unconstrained_links_do_not_freeze_flows() {
        let mut n = Net::new();
        let core = n.add_link("core", None, Duration::ZERO, false);
        let slow = n.add_link("slow", mbit(1), Duration::ZERO, false);
        let fast = n.add_link("fast", mbit(100), Duration::ZERO, false);
        // One flow through the core and a slow link, one through the core and a fast link: the
        // slow one must not drag the other down to its rate.
        n.start(Instant::ZERO, vec![core, slow], 1_000_000);
        let b = n.start(Instant::ZERO, vec![core, fast], 1_000_000);
        assert_eq!(n.flow_state(b).map(|(_, r)| r), Some(100e6 / 8.0));
    }

    #[test]
    fn a_path_crossing_a_link_twice_shares_it_as_two_users() {
        let mut n = Net::new();
        let l = n.add_link("loop", mbit(12), Duration::ZERO, false);
        let twice = n.start(Instant::ZERO, vec![l, l], 1_000_000);
        let once = n.start(Instant::ZERO, vec![l], 1_000_000);
        // Three crossings share 12 Mbit/s: 4 each, the flow crossing twice gets one share.
        let rate = |f| n.flow_state(f).map(|(_, r)| r);
        assert_eq!(rate(twice), Some(4e6 / 8.0));
        assert_eq!(rate(once), Some(4e6 / 8.0));
        let first = n.next_completion().expect("a completion");
        assert_eq!(n.advance(first).len(), 2);
        assert_eq!(n.active(), 0);
    }

    #[test]
    fn link_bytes_count_every_crossing() {
        let mut n = Net::new();
        let l = n.add_link("vpn", mbit(20), Duration::from_millis(20), true);
        n.start(Instant::ZERO, vec![l], 500);
        n.start(Instant::ZERO, vec![l], 700);
        assert_eq!(n.links[l].bytes, 1200);
        assert_eq!(n.latency(&[l, l]), Duration::from_millis(40));
    }

    /// The textbook progressive filling over every flow at once, as an oracle.
    fn naive_rates(links: &[f64], paths: &[Vec<usize>]) -> Vec<f64> {
        let mut residual = links.to_vec();
        let mut rate = vec![f64::NAN; paths.len()];
        let mut level = 0.0;
        while rate.iter().any(|r| r.is_nan()) {
            let users = |l: usize| {
                paths
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| rate[*i].is_nan() && p.contains(&l))
                    .count()
            };
            let inc = (0..links.len())
                .filter(|&l| users(l) > 0)
                .map(|l| residual[l] / users(l) as f64)
                .fold(f64::INFINITY, f64::min);
            level += inc;
            let counts: Vec<usize> = (0..links.len()).map(users).collect();
            for l in 0..links.len() {
                residual[l] -= inc * counts[l] as f64;
            }
            for (i, p) in paths.iter().enumerate() {
                if rate[i].is_nan() && p.iter().any(|&l| counts[l] > 0 && residual[l] <= 1e-6) {
                    rate[i] = level;
                }
            }
        }
        rate
    }

    proptest::proptest! {
        #[test]
        fn heap_allocation_matches_progressive_filling(
            caps in proptest::collection::vec(1u64..100, 2..8),
            raw in proptest::collection::vec(proptest::collection::vec(0usize..8, 1..4), 1..12),
        ) {
            let mut n = Net::new();
            let links: Vec<LinkId> = caps.iter().map(|c| n.add_link("l", Some(c * 8_000_000), Duration::ZERO, false)).collect();
            let paths: Vec<Vec<usize>> = raw.iter().map(|p| {
                let mut p: Vec<usize> = p.iter().map(|x| x % caps.len()).collect();
                p.sort_unstable();
                p.dedup();
                p
            }).collect();
            let ids: Vec<FlowId> = paths.iter().map(|p| n.start(Instant::ZERO, p.iter().map(|&i| links[i]).collect(), 1 << 40)).collect();
            let caps_bytes: Vec<f64> = caps.iter().map(|c| (*c * 1_000_000) as f64).collect();
            let want = naive_rates(&caps_bytes, &paths);
            for (id, w) in ids.iter().zip(want) {
                let got = n.flow_state(*id).map(|(_, r)| r).unwrap_or(0.0);
                proptest::prop_assert!((got - w).abs() <= 1e-6 * w.max(1.0), "flow {id}: {got} vs {w}");
            }
        }
    }
}
