//! Scenarios: who watches what, over which network.

use hive_core::time::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One site (enterprise) or AS (public internet).
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Name for reports.
    pub name: String,
    /// Viewers in it.
    pub viewers: usize,
    /// Capacity of its VPN link to the gateway site, per direction (enterprise branches), bit/s.
    /// `None`: the site holds the internet gateway (or, on the public internet, an AS).
    pub vpn_bps: Option<u64>,
    /// AS number (public internet).
    pub asn: u32,
}

/// How viewers' access links are sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// Download capacity, bit/s.
    pub down_bps: u64,
    /// Upload capacities, bit/s, drawn uniformly from this list per viewer.
    pub up_bps: Vec<u64>,
    /// The drop-tail buffer of each viewer's uplink, as time at its rate; `None`:
    /// [`DEFAULT_UP_BUFFER`]. `hive lab` shapes it; the simulator delays what a viewer sends
    /// while its uplink is saturated by the queue a loss-based controller keeps in it
    /// ([`saturated_uplink_queue`]).
    pub up_buffer: Option<Duration>,
}

/// A viewer's uplink buffer when the scenario names none: `hive lab`'s default drop-tail
/// buffer on every shaped link.
pub const DEFAULT_UP_BUFFER: Duration = Duration::from_millis(100);

/// The share of a saturated drop-tail buffer that a loss-based controller keeps filled on
/// average: Cubic's sawtooth runs between its decrease factor (0.7) and the whole buffer.
pub const LOSS_BASED_QUEUE_SHARE: f64 = 0.85;

/// The queueing delay of a viewer's saturated uplink whose buffer is `up_buffer` (`None`: the
/// default): what everything the viewer sends waits while its uploads fill the uplink. The
/// simulator's flow model stands for uploads at a fixed, TCP-fair priority (a loss-based
/// controller, which fills the buffer); a LEDBAT upload would hold it at its target instead.
/// (Modelling choice: one mean delay, no sawtooth, no losses.)
pub fn saturated_uplink_queue(up_buffer: Option<Duration>) -> Duration {
    up_buffer
        .unwrap_or(DEFAULT_UP_BUFFER)
        .mul_f64(LOSS_BASED_QUEUE_SHARE)
}

/// On-demand content: the whole title exists from the start; viewers start at its beginning or
/// at a random position, seek now and then, and leave at its end or after a random watch time.
#[derive(Clone, Debug, PartialEq)]
pub struct Vod {
    /// Length of the title.
    pub title: Duration,
    /// Probability that a viewer starts at the beginning (otherwise at a uniformly random
    /// fragment).
    pub start_at_zero: f64,
    /// Mean time between a viewer's seeks (exponential); zero: no seeks. A seek goes to a
    /// uniformly random fragment.
    pub seek_every: Duration,
    /// Mean watch time (exponential); a viewer also leaves at the end of the title.
    pub watch_mean: Duration,
    /// Each agent's on-demand cache budget, bytes.
    pub cache_bytes: u64,
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Sites or ASes.
    pub sites: Vec<Site>,
    /// The internet gateway of the gateway site (enterprise), bit/s; `None` on the public internet.
    pub gateway_bps: Option<u64>,
    /// Viewers' access links.
    pub access: Access,
    /// The bitrate ladder, bit/s, lowest first.
    pub ladder_bps: Vec<u64>,
    /// Fragment duration.
    pub fragment: Duration,
    /// Simulated time.
    pub duration: Duration,
    /// Viewers join uniformly over this period.
    pub join_over: Duration,
    /// Fraction of viewers behind NAT.
    pub nat_fraction: f64,
    /// Probability that two NATed viewers can connect directly.
    pub nat_pair_success: f64,
    /// Fraction of viewers leaving (and replaced) per minute.
    pub churn_per_min: f64,
    /// On-demand content; `None`: a live stream.
    pub vod: Option<Vod>,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Scenario {
    /// Total viewers.
    pub fn viewers(&self) -> usize {
        self.sites.iter().map(|s| s.viewers).sum()
    }

    /// Whether the network is an enterprise (sites behind one gateway).
    pub fn enterprise(&self) -> bool {
        self.gateway_bps.is_some()
    }

    /// Fragments per track of the on-demand title (`None` for live).
    pub fn vod_fragments(&self) -> Option<u64> {
        let v = self.vod.as_ref()?;
        let n = (v.title.as_secs_f64() / self.fragment.as_secs_f64()).ceil();
        Some((n as u64).max(1))
    }
}

/// The network's fixed one-way latencies, the same in `hive sim` and `hive lab` (which shapes
/// real links with them).
pub mod latency {
    use hive_core::time::Duration;

    /// The origin's own link (its data centre to the internet).
    pub const ORIGIN: Duration = Duration::from_millis(20);
    /// The public internet between two ASes, or between the internet and a gateway.
    pub const INTERNET: Duration = Duration::from_millis(20);
    /// An enterprise's internet gateway.
    pub const GATEWAY: Duration = Duration::from_millis(2);
    /// A branch's VPN link to the gateway site, each direction.
    pub const VPN: Duration = Duration::from_millis(15);
    /// A viewer's access link, each direction (a message between two viewers crosses two).
    pub const ACCESS: Duration = Duration::from_millis(5);
}

fn mbit(x: f64) -> u64 {
    (x * 1e6) as u64
}

/// Site sizes skewed like a Zipf law, summing to `total`, none below `min`.
fn skewed(total: usize, n: usize, min: usize, first: Option<usize>) -> Vec<usize> {
    let mut sizes = vec![min; n];
    let mut left = total.saturating_sub(min * n);
    if let Some(f) = first {
        let extra = f.saturating_sub(min).min(left);
        sizes[0] += extra;
        left -= extra;
    }
    let start = usize::from(first.is_some());
    let weights: Vec<f64> = (start..n).map(|i| 1.0 / (i + 1 - start) as f64).collect();
    let wsum: f64 = weights.iter().sum();
    let mut given = 0;
    for (k, i) in (start..n).enumerate() {
        let share = ((left as f64) * weights[k] / wsum).floor() as usize;
        sizes[i] += share;
        given += share;
    }
    // Rounding leftovers to the largest non-first sites.
    let mut i = start;
    while given < left && n > start {
        sizes[i] += 1;
        given += 1;
        i = if i + 1 < n { i + 1 } else { start };
    }
    sizes
}

/// Public-internet ASes of the given sizes (AS numbers from 64500).
fn public_ases(sizes: &[usize]) -> Vec<Site> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &v)| Site {
            name: format!("as{}", 64500 + i),
            viewers: v,
            vpn_bps: None,
            asn: 64500 + i as u32,
        })
        .collect()
}

/// Home access links on the public internet: 20 Mbit/s down; uploads drawn from 0.3 to 10 Mbit/s.
fn public_access() -> Access {
    Access {
        down_bps: mbit(20.0),
        up_bps: vec![mbit(0.3), mbit(1.0), mbit(2.0), mbit(5.0), mbit(10.0)],
        up_buffer: None,
    }
}

/// The named scenarios, at full size. [`scaled`] shrinks one for tests.
pub fn named(name: &str, seed: u64) -> Option<Scenario> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let s = match name {
        "corporate-130" => Scenario {
            name: name.into(),
            sites: vec![Site {
                name: "office".into(),
                viewers: 130,
                vpn_bps: None,
                asn: 1,
            }],
            gateway_bps: Some(mbit(60.0)),
            access: Access {
                down_bps: mbit(1000.0),
                up_bps: vec![mbit(1000.0)],
                up_buffer: None,
            },
            ladder_bps: vec![mbit(0.5), mbit(1.0)],
            fragment: Duration::from_secs(2),
            duration: Duration::from_secs(600),
            join_over: Duration::from_secs(120),
            nat_fraction: 0.0,
            nat_pair_success: 1.0,
            churn_per_min: 0.0,
            vod: None,
            seed,
        },
        "enterprise-2068" | "enterprise-3000" => {
            let (total, n_sites, hq) = if name == "enterprise-2068" {
                (2068, 30, 400)
            } else {
                (3000, 60, 400)
            };
            let sizes = skewed(total, n_sites, 10, Some(hq));
            let sites = sizes
                .iter()
                .enumerate()
                .map(|(i, &v)| Site {
                    name: if i == 0 {
                        "hq".into()
                    } else {
                        format!("branch-{i}")
                    },
                    viewers: v,
                    vpn_bps: (i > 0).then(|| mbit(rng.random_range(20.0..=100.0))),
                    asn: 1,
                })
                .collect();
            Scenario {
                name: name.into(),
                sites,
                gateway_bps: Some(mbit(300.0)),
                access: Access {
                    down_bps: mbit(100.0),
                    up_bps: vec![mbit(100.0)],
                    up_buffer: None,
                },
                ladder_bps: vec![mbit(0.5), mbit(0.9), mbit(1.4)],
                fragment: Duration::from_secs(2),
                duration: Duration::from_secs(600),
                join_over: Duration::from_secs(120),
                nat_fraction: 0.0,
                nat_pair_success: 1.0,
                churn_per_min: 0.0,
                vod: None,
                seed,
            }
        }
        "wan-6000" => {
            let sizes = skewed(6000, 50, 20, None);
            Scenario {
                name: name.into(),
                sites: public_ases(&sizes),
                gateway_bps: None,
                // 20% of agents upload less than the 700 kbit/s stream.
                access: public_access(),
                ladder_bps: vec![mbit(0.35), mbit(0.7)],
                fragment: Duration::from_secs(2),
                duration: Duration::from_secs(600),
                join_over: Duration::from_secs(120),
                nat_fraction: 0.78,
                nat_pair_success: 0.85,
                churn_per_min: 0.05,
                vod: None,
                seed,
            }
        }
        "vod-500" => {
            let sizes = skewed(500, 20, 5, None);
            Scenario {
                name: name.into(),
                sites: public_ases(&sizes),
                gateway_bps: None,
                // wan-6000's access links: a fifth of the agents upload less than the lowest
                // bitrate.
                access: public_access(),
                ladder_bps: vec![mbit(0.5), mbit(1.0), mbit(2.0)],
                fragment: Duration::from_secs(2),
                // An hour of arrivals, and the last arrivals' half hour of the title.
                duration: Duration::from_secs(5400),
                join_over: Duration::from_secs(3600),
                nat_fraction: 0.78,
                nat_pair_success: 0.85,
                churn_per_min: 0.0,
                vod: Some(Vod {
                    title: Duration::from_secs(1800),
                    start_at_zero: 0.7,
                    seek_every: Duration::from_secs(300),
                    watch_mean: Duration::from_secs(1200),
                    cache_bytes: 256 << 20,
                }),
                seed,
            }
        }
        _ => return None,
    };
    Some(s)
}

/// The names [`named`] knows, with a description.
pub const NAMES: &[(&str, &str)] = &[
    (
        "corporate-130",
        "one office, 130 viewers over 2 min, 1 Mbit/s stream, 60 Mbit/s gateway",
    ),
    (
        "enterprise-2068",
        "2068 viewers over 30 sites behind 20-100 Mbit/s VPN links, 300 Mbit/s HQ gateway",
    ),
    (
        "enterprise-3000",
        "3000 viewers over 60 sites, as enterprise-2068",
    ),
    (
        "wan-6000",
        "6000 viewers in 50 ASes, 700 kbit/s, 78% NATed, 5% churn per minute",
    ),
    (
        "vod-500",
        "500 viewers of a 30-min on-demand title over 1 h, seeks every ~5 min, 0.5/1/2 Mbit/s",
    ),
];

/// A scenario shrunk by `factor` (viewers, sites' capacities and gateway scale together, so the
/// ratio of demand without Hive to capacity stays; VPN links keep room for 1.5 copies of every
/// bitrate, the floor any policy needs), and run for `duration` ([`with_duration`]).
pub fn scaled(mut s: Scenario, factor: f64, duration: Duration) -> Scenario {
    let factor = factor.clamp(1e-3, 1.0);
    // A link must still carry one copy of every bitrate once the viewers behind it shrink:
    // demand without Hive scales with the viewers, the physical limit (one copy per bitrate in
    // use) does not.
    let one_copy_each: u64 = s.ladder_bps.iter().sum();
    // Nor may a link become so thin that a fragment takes longer to cross it than at full
    // size allows: a pull-through chain (gateway, VPN link, site) must still cross within a
    // fragment's deadline. A link keeps at least ten times the top bitrate (a fragment crosses
    // in a fifth of its duration), or its full-size capacity if that is less.
    let top = s.ladder_bps.iter().copied().max().unwrap_or(0);
    for site in &mut s.sites {
        site.viewers = ((site.viewers as f64 * factor).round() as usize).max(1);
        site.vpn_bps = site.vpn_bps.map(|b| {
            ((b as f64 * factor) as u64)
                .max(mbit(2.0))
                .max(one_copy_each + one_copy_each / 2)
                .max(b.min(10 * top))
        });
    }
    s.gateway_bps = s
        .gateway_bps
        .map(|b| ((b as f64 * factor) as u64).max(mbit(4.0)));
    s = with_duration(s, duration);
    s.name = format!("{}@{factor}", s.name);
    s
}

/// The same viewers with no gateway and no VPN links, each reaching the origin over its own
/// access link only: NoPeer there gives the start-up time of a CDN, the reference for
/// "CDN-equal playback". (Links of a huge but finite capacity would tie every flow into one
/// max-min computation, quadratic in the viewers.)
pub fn unconstrained(s: &Scenario) -> Scenario {
    let mut free = s.clone();
    free.gateway_bps = None;
    for site in &mut free.sites {
        site.vpn_bps = None;
    }
    free
}

/// A scenario run for `duration` instead of its own: a shorter run compresses the join period in
/// proportion, so every viewer still joins. Viewers' behaviour on demand (seeks, watch time) and
/// the title are left as they are.
pub fn with_duration(mut s: Scenario, duration: Duration) -> Scenario {
    let k = duration.as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
    s.join_over = s.join_over.mul_f64(k.min(1.0));
    s.duration = duration;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saturated_uplink_queues_most_of_its_buffer() {
        let near = |d: Duration, ms: f64| (d.as_secs_f64() * 1e3 - ms).abs() < 1e-6;
        assert!(near(saturated_uplink_queue(None), 85.0));
        assert!(near(
            saturated_uplink_queue(Some(Duration::from_secs(1))),
            850.0
        ));
    }

    #[test]
    fn named_scenarios_have_their_sizes() {
        assert_eq!(named("corporate-130", 1).map(|s| s.viewers()), Some(130));
        let e = named("enterprise-2068", 1).unwrap();
        assert_eq!(e.viewers(), 2068);
        assert_eq!(e.sites.len(), 30);
        assert_eq!(e.sites[0].viewers, 400);
        assert!(e.sites.iter().all(|s| s.viewers >= 10));
        assert!(
            e.sites[1..]
                .iter()
                .all(|s| (20_000_000..=100_000_000).contains(&s.vpn_bps.unwrap()))
        );
        assert_eq!(named("enterprise-3000", 1).map(|s| s.viewers()), Some(3000));
        assert_eq!(named("wan-6000", 1).map(|s| s.viewers()), Some(6000));
        let vod = named("vod-500", 1).unwrap();
        assert_eq!(vod.viewers(), 500);
        assert_eq!(vod.vod_fragments(), Some(900));
        assert!(vod.ladder_bps.windows(2).all(|w| w[0] < w[1]));
        let small = scaled(vod, 0.1, Duration::from_secs(540));
        assert_eq!(small.join_over, Duration::from_secs(360));
        assert_eq!(
            small.vod_fragments(),
            Some(900),
            "the title keeps its length"
        );
        assert!(named("nope", 1).is_none());
    }
}
