//! The lab's network, from a scenario: one host per viewer (its own network namespace and
//! address), the internet host (origin and tracker), the control host (the players), and the
//! shaped links between them — the simulator's links, with the simulator's capacities and
//! latencies (`hive_sim::scenario::latency`), so that a packet between two hosts crosses
//! what a message between the same two simulated viewers crosses.
//!
//! Addresses: viewer `i` is `10.77.0.0 + 256 + i` (from 10.77.1.0); the origin 10.77.0.1, the
//! tracker 10.77.0.2, the players 10.77.0.3.

use std::net::Ipv4Addr;

use hive_core::time::Duration;
use hive_sim::scenario::{Scenario, latency};
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// The origin's address (in the lab process's namespace).
pub const ORIGIN_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The tracker's address (in the lab process's namespace).
pub const TRACKER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The players' address (in the lab process's namespace): their traffic crosses no shaped link.
pub const CONTROL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
/// The lab's whole range.
pub const LAB_PREFIX: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 77, 0, 0), 16);
/// The first viewer's address (as a number).
const FIRST_VIEWER: u32 = u32::from_be_bytes([10, 77, 1, 0]);
/// Most viewers a lab holds (its /16 less the first 256 addresses).
pub const MAX_VIEWERS: usize = 65_000;

/// How long a link's drop-tail buffer is at its rate: a shaped link needs one, and 100 ms is a
/// common VPN appliance's. A viewer's uplink has the simulator's default
/// ([`hive_sim::scenario::DEFAULT_UP_BUFFER`], the same) unless the file sets its own.
pub const BUFFER: Duration = hive_sim::scenario::DEFAULT_UP_BUFFER;

/// One shaped link, one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    /// As the simulator names it: `gateway:down`, `vpn:paris:up`, `up:12`, ...
    pub name: String,
    /// Its rate, bit/s; `None`: not a bottleneck (only its latency counts).
    pub rate_bps: Option<u64>,
    /// One-way propagation delay.
    pub latency: Duration,
    /// Its drop-tail buffer, as time at its rate.
    pub buffer: Duration,
    /// Whether copies per fragment are reported for it (the gateway and VPN links, down).
    pub counted: bool,
}

/// One end of a packet's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// Viewer `i` (its agent).
    Viewer(usize),
    /// The origin and the tracker, on the internet.
    Internet,
    /// The players, beside the lab: their traffic to their agents is not shaped.
    Control,
}

/// A viewer's place in the network.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewerSpec {
    /// Its site (index into the scenario's sites).
    pub site: usize,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Its upload capacity, bit/s (drawn from the scenario's list).
    pub up_bps: u64,
    /// Its access links (indices into [`Topology::links`]).
    pub up: usize,
    /// See `up`.
    pub down: usize,
}

/// The lab's network.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Every link, one direction each.
    pub links: Vec<LinkSpec>,
    /// Every viewer, in the order the lab starts them.
    pub viewers: Vec<ViewerSpec>,
    origin: usize,
    internet: usize,
    /// The gateway (enterprise): (down, up).
    gateway: Option<(usize, usize)>,
    /// Each site's VPN link (down, up), enterprise branches.
    vpn: Vec<Option<(usize, usize)>>,
    enterprise: bool,
}

/// Why a scenario cannot run in the lab.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TopologyError {
    /// More viewers than the lab's addresses.
    #[error("{0} viewers: the lab holds at most {MAX_VIEWERS}")]
    TooMany(usize),
    /// No viewer at all.
    #[error("the scenario has no viewer")]
    Empty,
}

impl Topology {
    /// The network of `s`: the viewers site by site, uploads drawn with the scenario's seed.
    pub fn new(s: &Scenario) -> Result<Self, TopologyError> {
        let n = s.viewers();
        if n == 0 {
            return Err(TopologyError::Empty);
        }
        if n > MAX_VIEWERS {
            return Err(TopologyError::TooMany(n));
        }
        let mut links = Vec::new();
        let up_buffer = s.access.up_buffer.unwrap_or(BUFFER);
        let mut add = |name: String, rate_bps: Option<u64>, latency: Duration, counted: bool| {
            links.push(LinkSpec {
                name,
                rate_bps,
                latency,
                buffer: BUFFER,
                counted,
            });
            links.len() - 1
        };
        let origin = add("origin".into(), None, latency::ORIGIN, false);
        let internet = add("internet".into(), None, latency::INTERNET, false);
        let gateway = s.gateway_bps.map(|b| {
            (
                add("gateway:down".into(), Some(b), latency::GATEWAY, true),
                add("gateway:up".into(), Some(b), latency::GATEWAY, false),
            )
        });
        let vpn: Vec<Option<(usize, usize)>> = s
            .sites
            .iter()
            .map(|site| {
                site.vpn_bps.map(|b| {
                    (
                        add(
                            format!("vpn:{}:down", site.name),
                            Some(b),
                            latency::VPN,
                            true,
                        ),
                        add(
                            format!("vpn:{}:up", site.name),
                            Some(b),
                            latency::VPN,
                            false,
                        ),
                    )
                })
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x1ab);
        // Uplinks whose buffer the file sets (after the loop: `add` holds `links` till then).
        let mut links_buffer = Vec::new();
        let mut viewers = Vec::with_capacity(n);
        for (site, spec) in s.sites.iter().enumerate() {
            for _ in 0..spec.viewers {
                let i = viewers.len();
                let up_bps = *s.access.up_bps.choose(&mut rng).unwrap_or(&10_000_000);
                let up = add(format!("up:{i}"), Some(up_bps), latency::ACCESS, false);
                links_buffer.push((up, up_buffer));
                let down = add(
                    format!("down:{i}"),
                    Some(s.access.down_bps),
                    latency::ACCESS,
                    false,
                );
                viewers.push(ViewerSpec {
                    site,
                    addr: Ipv4Addr::from(FIRST_VIEWER + i as u32),
                    up_bps,
                    up,
                    down,
                });
            }
        }
        for (l, b) in links_buffer {
            links[l].buffer = b;
        }
        Ok(Topology {
            links,
            viewers,
            origin,
            internet,
            gateway,
            vpn,
            enterprise: s.enterprise(),
        })
    }

    /// The host at `addr`, if it is one of the lab's.
    pub fn host_of(&self, addr: Ipv4Addr) -> Option<Host> {
        match addr {
            ORIGIN_ADDR | TRACKER_ADDR => Some(Host::Internet),
            CONTROL_ADDR => Some(Host::Control),
            a => {
                let i = u32::from(a).checked_sub(FIRST_VIEWER)? as usize;
                (i < self.viewers.len()).then_some(Host::Viewer(i))
            }
        }
    }

    /// The links a packet from `from` to `to` crosses, in order (as the simulator's paths:
    /// the sender's uplink, the VPN links or the internet between two sites, the receiver's
    /// downlink; from the origin: its link, the gateway or the internet, the site's VPN link,
    /// the viewer's downlink; and the reverse). The players' traffic crosses nothing.
    pub fn path(&self, from: Host, to: Host) -> Vec<usize> {
        let mut p = Vec::with_capacity(4);
        match (from, to) {
            (Host::Control, _) | (_, Host::Control) | (Host::Internet, Host::Internet) => {}
            (Host::Viewer(a), Host::Viewer(b)) => {
                let (va, vb) = (&self.viewers[a], &self.viewers[b]);
                p.push(va.up);
                if va.site != vb.site {
                    if self.enterprise {
                        if let Some((_, up)) = self.vpn[va.site] {
                            p.push(up);
                        }
                        if let Some((down, _)) = self.vpn[vb.site] {
                            p.push(down);
                        }
                    } else {
                        p.push(self.internet);
                    }
                }
                p.push(vb.down);
            }
            (Host::Internet, Host::Viewer(v)) => {
                let v = &self.viewers[v];
                p.push(self.origin);
                p.push(self.gateway.map_or(self.internet, |(down, _)| down));
                if let Some((down, _)) = self.vpn[v.site] {
                    p.push(down);
                }
                p.push(v.down);
            }
            (Host::Viewer(v), Host::Internet) => {
                let v = &self.viewers[v];
                p.push(v.up);
                if let Some((_, up)) = self.vpn[v.site] {
                    p.push(up);
                }
                p.push(self.gateway.map_or(self.internet, |(_, up)| up));
                p.push(self.origin);
            }
        }
        p
    }

    /// The viewers whose downloads cross link `l` (from the origin or from other sites).
    pub fn viewers_behind(&self, l: usize) -> Vec<usize> {
        (0..self.viewers.len())
            .filter(|&v| self.path(Host::Internet, Host::Viewer(v)).contains(&l))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enterprise() -> Scenario {
        let text = r#"{
          "sites": [{ "name": "hq", "viewers": 3 }, { "name": "paris", "viewers": 2, "vpn_mbps": 10 }],
          "gateway_mbps": 20,
          "access": { "down_mbps": 100, "up_mbps": [10, 20] },
          "ladder_kbps": [500, 1000]
        }"#;
        hive_sim::network_file::parse(text, 7).expect("a valid network")
    }

    fn names(t: &Topology, p: &[usize]) -> Vec<String> {
        p.iter().map(|&l| t.links[l].name.clone()).collect()
    }

    /// A file's `up_buffer_ms` deepens the viewers' uplinks only; every other link keeps the
    /// lab's 100 ms.
    #[test]
    fn the_files_uplink_buffer_shapes_uplinks_only() {
        let t = Topology::new(&enterprise()).expect("fits");
        assert!(t.links.iter().all(|l| l.buffer == BUFFER));
        let text = r#"{
          "sites": [{ "name": "hq", "viewers": 3 }],
          "access": { "down_mbps": 100, "up_mbps": [2], "up_buffer_ms": 1000 },
          "ladder_kbps": [500, 1000]
        }"#;
        let s = hive_sim::network_file::parse(text, 7).expect("a valid network");
        let t = Topology::new(&s).expect("fits");
        for l in &t.links {
            let want = if l.name.starts_with("up:") {
                Duration::from_millis(1000)
            } else {
                BUFFER
            };
            assert_eq!(l.buffer, want, "{}", l.name);
        }
        assert_eq!(
            t.links.iter().filter(|l| l.name.starts_with("up:")).count(),
            3
        );
    }

    /// Paths are the simulator's: within a site, across the VPN links, from and to the origin
    /// through the gateway; the players' traffic is not shaped.
    #[test]
    fn paths_cross_the_simulators_links() {
        let t = Topology::new(&enterprise()).expect("fits");
        assert_eq!(t.viewers.len(), 5);
        assert_eq!(t.viewers[3].site, 1);
        assert_eq!(
            names(&t, &t.path(Host::Viewer(0), Host::Viewer(1))),
            ["up:0", "down:1"]
        );
        assert_eq!(
            names(&t, &t.path(Host::Viewer(0), Host::Viewer(4))),
            ["up:0", "vpn:paris:down", "down:4"]
        );
        assert_eq!(
            names(&t, &t.path(Host::Viewer(4), Host::Viewer(0))),
            ["up:4", "vpn:paris:up", "down:0"]
        );
        assert_eq!(
            names(&t, &t.path(Host::Internet, Host::Viewer(4))),
            ["origin", "gateway:down", "vpn:paris:down", "down:4"]
        );
        assert_eq!(
            names(&t, &t.path(Host::Viewer(4), Host::Internet)),
            ["up:4", "vpn:paris:up", "gateway:up", "origin"]
        );
        assert!(t.path(Host::Control, Host::Viewer(2)).is_empty());
        assert!(t.path(Host::Viewer(2), Host::Control).is_empty());
        // Latencies as the simulator's: 5 + 15 + 5 ms between the sites.
        let one_way: Duration = t
            .path(Host::Viewer(0), Host::Viewer(4))
            .iter()
            .map(|&l| t.links[l].latency)
            .sum();
        assert_eq!(one_way, Duration::from_millis(25));
        let gw = t
            .links
            .iter()
            .find(|l| l.name == "gateway:down")
            .expect("a gateway");
        assert_eq!((gw.rate_bps, gw.counted), (Some(20_000_000), true));
        let mut ups: Vec<u64> = t.viewers.iter().map(|v| v.up_bps).collect();
        ups.dedup();
        assert!(ups.iter().all(|u| [10_000_000, 20_000_000].contains(u)));
    }

    /// Addresses map back to their hosts; strangers map to none.
    #[test]
    fn addresses_name_their_hosts() {
        let t = Topology::new(&enterprise()).expect("fits");
        for (i, v) in t.viewers.iter().enumerate() {
            assert_eq!(t.host_of(v.addr), Some(Host::Viewer(i)));
        }
        assert_eq!(t.host_of(ORIGIN_ADDR), Some(Host::Internet));
        assert_eq!(t.host_of(TRACKER_ADDR), Some(Host::Internet));
        assert_eq!(t.host_of(CONTROL_ADDR), Some(Host::Control));
        assert_eq!(
            t.host_of(Ipv4Addr::new(10, 77, 1, 5)),
            None,
            "past the last viewer"
        );
        assert_eq!(t.host_of(Ipv4Addr::new(10, 77, 0, 9)), None);
        assert_eq!(t.host_of(Ipv4Addr::new(192, 168, 1, 1)), None);
        let gw = t
            .links
            .iter()
            .position(|l| l.name == "gateway:down")
            .expect("a gateway");
        assert_eq!(t.viewers_behind(gw), vec![0, 1, 2, 3, 4]);
        let paris = t
            .links
            .iter()
            .position(|l| l.name == "vpn:paris:down")
            .expect("a VPN link");
        assert_eq!(t.viewers_behind(paris), vec![3, 4]);
    }

    /// The public internet: sites are ASes joined by the internet link.
    #[test]
    fn public_sites_meet_over_the_internet() {
        let text = r#"{
          "sites": [{ "name": "as1", "viewers": 1 }, { "name": "as2", "viewers": 1 }],
          "access": { "down_mbps": 100, "up_mbps": [10] },
          "ladder_kbps": [500]
        }"#;
        let s = hive_sim::network_file::parse(text, 1).expect("valid");
        let t = Topology::new(&s).expect("fits");
        assert_eq!(
            names(&t, &t.path(Host::Viewer(0), Host::Viewer(1))),
            ["up:0", "internet", "down:1"]
        );
        assert_eq!(
            names(&t, &t.path(Host::Internet, Host::Viewer(1))),
            ["origin", "internet", "down:1"]
        );
    }
}
