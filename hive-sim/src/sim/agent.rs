//! The viewers and their agents: where each viewer sits ([`Viewer`]), each agent's engine,
//! player and events ([`Agent`]), when each runs next ([`Sched`]), how each is described to the
//! others ([`peer_info`]) and found by its id ([`IdHash`]).

use std::collections::BinaryHeap;

use hive_core::time::Instant;
use hive_core::{Locality, PeerId, PeerInfo, Role};
use hive_overlay::Swarm;

use super::Sim;
use super::mail::{Effect, Routed};
use super::queue::{Local, Queued, SEQ_BITS};
use crate::flownet::LinkId;
use crate::player::Player;
use crate::scenario::Scenario;

/// A viewer as every agent may see it: its place in the network. Changed only between windows.
pub(super) struct Viewer {
    pub(super) site: usize,
    pub(super) id: PeerId,
    pub(super) up: LinkId,
    /// Upload capacity, kbit/s (what the agent advertises).
    pub(super) up_kbps: u32,
    pub(super) down: LinkId,
    pub(super) natted: bool,
    pub(super) role: Role,
    /// Whether its agent runs (joined and not left).
    pub(super) running: bool,
}

/// A viewer's running state: its engine, its player and its events. Within a window only the
/// thread running this agent touches it.
pub(super) struct Agent {
    pub(super) swarm: Option<Swarm>,
    pub(super) player: Player,
    /// On demand: the viewer has the title's last fragment and leaves when it is played.
    pub(super) ending: bool,
    /// When the engine wants [`Swarm::handle_timeout`] (as it last said).
    pub(super) timer: Option<Instant>,
    pub(super) queue: BinaryHeap<Queued>,
    /// Events queued between windows, moved into `queue` when the agent runs (in parallel).
    pub(super) inbox: Vec<Queued>,
    pub(super) seq: u64,
    /// This window's effects, with the time each was made.
    pub(super) out: Vec<(Instant, Effect)>,
    /// This window's messages, dials and disconnects, in the order made.
    pub(super) mail: Vec<Routed>,
    /// The newest live fragment the player's playlist listed (it asks for none beyond).
    pub(super) player_latest: Option<u64>,
}

impl Agent {
    pub(super) fn new() -> Self {
        Agent {
            swarm: None,
            player: Player::new(Instant::ZERO, 0, 0),
            ending: false,
            timer: None,
            queue: BinaryHeap::new(),
            inbox: Vec::new(),
            seq: 0,
            out: Vec::new(),
            mail: Vec::new(),
            player_latest: None,
        }
    }

    /// Queues `ev` for `t` (into the inbox: the queue is ordered when the agent runs).
    pub(super) fn push(&mut self, epoch: u64, t: Instant, ev: Local) {
        self.seq += 1;
        let epoch = epoch.min((1 << (64 - SEQ_BITS)) - 1);
        self.inbox.push(Queued {
            t,
            order: epoch << SEQ_BITS | (self.seq & ((1 << SEQ_BITS) - 1)),
            ev,
        });
    }

    /// When the agent must run next: its earliest event or timer ([`Instant::MAX`]: never).
    pub(super) fn next_wake(&self) -> Instant {
        let earliest = [
            self.queue.peek().map(|q| q.t),
            self.inbox.iter().map(|q| q.t).min(),
            self.timer,
        ];
        earliest.into_iter().flatten().min().unwrap_or(Instant::MAX)
    }

    /// Forgets every event and timer (the agent left).
    pub(super) fn clear(&mut self) {
        self.timer = None;
        self.queue.clear();
        self.inbox.clear();
    }
}

/// What the loop checks of every agent in every window, kept apart from the agents (one
/// compact array scanned instead of thousands of agents' cache lines).
#[derive(Clone, Copy, Debug)]
pub(super) struct Sched {
    /// The agent's next event or timer.
    pub(super) wake: Instant,
    /// Whether it made effects in this window.
    pub(super) out: bool,
}

impl Sched {
    pub(super) const IDLE: Sched = Sched {
        wake: Instant::MAX,
        out: false,
    };
}

/// How agent `v` is described to others (by the tracker, in its Hello). Without an address:
/// the simulator dials by id. Its site is named when `sites` (in enterprise networks, and for
/// the hierarchy policy, which groups by site): otherwise an agent's locality is its AS (what
/// the public-internet policies group by), and agents hold thousands of these descriptions
/// (candidates, neighbours), one string each if named.
pub(super) fn peer_info(s: &Scenario, viewers: &[Viewer], v: usize, sites: bool) -> PeerInfo {
    let viewer = &viewers[v];
    let site = &s.sites[viewer.site];
    PeerInfo {
        id: viewer.id,
        addrs: Vec::new(),
        locality: Locality {
            asn: Some(site.asn),
            site: sites.then(|| site.name.clone()),
            country: None,
        },
        role: viewer.role,
        upload_kbps: viewer.up_kbps,
    }
}

/// Hashes agent ids by their first eight bytes: they are hashes already (BLAKE3), and every
/// message looks its receiver up by id (hashing all 32 bytes was 1.6% of a run).
#[derive(Clone, Copy, Default)]
pub(super) struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// See [`IdHash`]: the first eight bytes written (an id's), and nothing of the length prefix.
pub(super) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut w = [0u8; 8];
        let n = bytes.len().min(8);
        w[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(w);
    }

    fn write_usize(&mut self, _len: usize) {}
}

impl Sim<'_> {
    pub(super) fn peer_info(&self, v: usize) -> PeerInfo {
        peer_info(self.s, &self.viewers, v, self.sites)
    }
}

#[cfg(test)]
mod tests {
    use hive_overlay::PolicyKind;

    use crate::sim::Sim;

    /// Agents are described with their site where a policy or the network needs it: the
    /// hierarchy groups by site, on the public internet too.
    #[test]
    fn sites_are_named_for_the_hierarchy_and_in_enterprises() {
        let named = |name: &str, policy| {
            let full = crate::scenario::named(name, 1).expect("a named scenario");
            let s = crate::scenario::scaled(full, 0.01, hive_core::time::Duration::from_secs(10));
            let sim = Sim::new(&s, policy);
            super::peer_info(&s, &sim.viewers, 0, sim.sites)
                .locality
                .site
                .is_some()
        };
        assert!(named("wan-6000", PolicyKind::PrivateHierarchy));
        assert!(!named("wan-6000", PolicyKind::PublicMesh));
        assert!(named("enterprise-2068", PolicyKind::PublicMesh));
        assert!(named("enterprise-2068", PolicyKind::PrivateHierarchy));
    }
}
