//! A flow-level network: links with capacities, transfers (flows) along paths of links, rates
//! shared max-min fairly (progressive filling), recomputed whenever a flow starts or ends.
//!
//! Sans-IO and deterministic: the simulator asks [`Net::next_completion`], advances to it with
//! [`Net::advance`], and collects finished flows.

use std::collections::BTreeMap;

use hive_core::time::{Duration, Instant};

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
    /// One-way latency added by crossing it.
    pub latency: Duration,
    /// Whether reports count copies of fragments crossing it (VPN and gateway links).
    pub bottleneck: bool,
    /// Bytes that crossed it.
    pub bytes: u64,
}

#[derive(Clone, Debug)]
struct Flow {
    path: Vec<LinkId>,
    remaining: f64,
    rate: f64,
}

/// The network.
#[derive(Clone, Debug, Default)]
pub struct Net {
    /// The links.
    pub links: Vec<Link>,
    flows: BTreeMap<FlowId, Flow>,
    next_id: FlowId,
    now: Instant,
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
        self.links.len() - 1
    }

    /// One-way latency of a path.
    pub fn latency(&self, path: &[LinkId]) -> Duration {
        path.iter().map(|&l| self.links[l].latency).sum()
    }

    /// Number of active flows.
    pub fn active(&self) -> usize {
        self.flows.len()
    }

    /// (remaining bytes, rate) of a flow, for debugging.
    pub fn flow_state(&self, id: FlowId) -> Option<(f64, f64)> {
        self.flows.get(&id).map(|f| (f.remaining, f.rate))
    }

    /// Active flows without a rate (a starved flow; should not happen).
    pub fn starved(&self) -> usize {
        self.flows.values().filter(|f| f.rate <= 0.0).count()
    }

    /// Starts a transfer of `bytes` along `path` at `now`.
    pub fn start(&mut self, now: Instant, path: Vec<LinkId>, bytes: u64) -> FlowId {
        self.advance(now);
        self.next_id += 1;
        for &l in &path {
            self.links[l].bytes += bytes;
        }
        self.flows.insert(
            self.next_id,
            Flow {
                path,
                remaining: bytes.max(1) as f64,
                rate: 0.0,
            },
        );
        self.allocate();
        self.next_id
    }

    /// Aborts a transfer (its bytes stay counted on the links as sent).
    pub fn abort(&mut self, now: Instant, id: FlowId) {
        self.advance(now);
        if self.flows.remove(&id).is_some() {
            self.allocate();
        }
    }

    /// When the next flow completes.
    pub fn next_completion(&self) -> Option<Instant> {
        self.flows
            .values()
            .filter(|f| f.rate > 0.0)
            .map(|f| self.now + Duration::from_secs_f64((f.remaining / f.rate).min(1e6)))
            .min()
    }

    /// Moves time to `now` and returns the flows that completed by then.
    pub fn advance(&mut self, now: Instant) -> Vec<FlowId> {
        if now <= self.now {
            return Vec::new();
        }
        let dt = now.saturating_duration_since(self.now).as_secs_f64();
        self.now = now;
        let mut done = Vec::new();
        for (id, f) in &mut self.flows {
            f.remaining -= f.rate * dt;
            // Within a microsecond's worth of bytes: done.
            if f.remaining <= f.rate * 1e-6 + 1e-9 {
                done.push(*id);
            }
        }
        if !done.is_empty() {
            for id in &done {
                self.flows.remove(id);
            }
            self.allocate();
        }
        done
    }

    /// Max-min fair rates by progressive filling: raise every unfrozen flow's rate equally until
    /// a link saturates, freeze the flows crossing it, repeat.
    fn allocate(&mut self) {
        let n_links = self.links.len();
        let mut residual: Vec<f64> = self.links.iter().map(|l| l.capacity).collect();
        let mut users = vec![0usize; n_links];
        let mut frozen: BTreeMap<FlowId, f64> = BTreeMap::new();
        for f in self.flows.values() {
            for &l in &f.path {
                users[l] += 1;
            }
        }
        let mut level = 0.0f64;
        while frozen.len() < self.flows.len() {
            // The smallest increment that saturates a link in use.
            let mut inc = f64::INFINITY;
            for l in 0..n_links {
                if users[l] > 0 && residual[l].is_finite() {
                    inc = inc.min(residual[l] / users[l] as f64);
                }
            }
            if !inc.is_finite() {
                // Only unconstrained links left: those flows are limited by nothing we model.
                for id in self.flows.keys() {
                    frozen.entry(*id).or_insert(UNCONSTRAINED_RATE);
                }
                break;
            }
            level += inc;
            for l in 0..n_links {
                if users[l] > 0 && residual[l].is_finite() {
                    residual[l] -= inc * users[l] as f64;
                }
            }
            // Unconstrained links never saturate (an infinite residual compares equal to its bound).
            let saturated: Vec<LinkId> = (0..n_links)
                .filter(|&l| {
                    users[l] > 0
                        && residual[l].is_finite()
                        && residual[l] <= 1e-9 * self.links[l].capacity.max(1.0)
                })
                .collect();
            for (id, f) in &self.flows {
                if frozen.contains_key(id) || !f.path.iter().any(|l| saturated.contains(l)) {
                    continue;
                }
                frozen.insert(*id, level);
                for &l in &f.path {
                    users[l] -= 1;
                }
            }
        }
        for (id, f) in &mut self.flows {
            f.rate = frozen.get(id).copied().unwrap_or(0.0);
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
    fn link_bytes_count_every_crossing() {
        let mut n = Net::new();
        let l = n.add_link("vpn", mbit(20), Duration::from_millis(20), true);
        n.start(Instant::ZERO, vec![l], 500);
        n.start(Instant::ZERO, vec![l], 700);
        assert_eq!(n.links[l].bytes, 1200);
        assert_eq!(n.latency(&[l, l]), Duration::from_millis(40));
    }
}
