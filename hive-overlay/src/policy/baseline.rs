//! The baselines every comparison runs beside the real policies.

use hive_core::FragmentId;
use hive_core::overlay::{FetchContext, FetchDecision, LocalView, NeighbourPlan, OverlayPolicy};
use hive_core::time::Instant;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

/// A pure CDN: no neighbours, every fragment from the origin.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPeer;

impl OverlayPolicy for NoPeer {
    fn name(&self) -> &'static str {
        "no-peer"
    }
    fn plan_neighbours(&mut self, _now: Instant, view: &LocalView<'_>) -> NeighbourPlan {
        NeighbourPlan {
            connect: Vec::new(),
            drop: view.neighbours.iter().map(|n| n.info.id).collect(),
        }
    }
    fn fetch_source(
        &mut self,
        _now: Instant,
        _view: &LocalView<'_>,
        _need: &FetchContext,
    ) -> FetchDecision {
        FetchDecision::Origin
    }
    fn should_prefetch(
        &mut self,
        _now: Instant,
        _view: &LocalView<'_>,
        _fragment: &FragmentId,
    ) -> bool {
        false
    }
}

/// Random neighbours, no locality, no tiers.
///
/// A fragment comes from a random neighbour that announced it; if none has, the agent waits a
/// random part of its slack (the time between wanting the fragment and its deadline) and then
/// goes to the origin, so that in a swarm one early agent fetches from the origin and the others
/// find it nearby. The part is drawn once per (agent, fragment): asking again gives the same wait.
#[derive(Clone, Debug)]
pub struct RandomMesh {
    rng: ChaCha8Rng,
    seed: u64,
}

impl RandomMesh {
    /// A policy with its own seeded random source.
    pub fn new(seed: u64) -> Self {
        RandomMesh {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
        }
    }

    /// A fraction in [0, 1) fixed for this agent and fragment.
    fn wait_fraction(&self, f: &FragmentId) -> f64 {
        let x = super::fragment_hash(self.seed, f);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl OverlayPolicy for RandomMesh {
    fn name(&self) -> &'static str {
        "random-mesh"
    }

    fn plan_neighbours(&mut self, _now: Instant, view: &LocalView<'_>) -> NeighbourPlan {
        let room = view.max_neighbours.saturating_sub(view.neighbours.len());
        let mut ids: Vec<_> = view.candidates.iter().map(|c| c.id).collect();
        ids.shuffle(&mut self.rng);
        ids.truncate(room);
        NeighbourPlan {
            connect: ids,
            drop: Vec::new(),
        }
    }

    fn fetch_source(
        &mut self,
        now: Instant,
        view: &LocalView<'_>,
        need: &FetchContext,
    ) -> FetchDecision {
        let holders: Vec<_> = view
            .neighbours
            .iter()
            .filter(|n| !n.choked && n.has(&need.fragment))
            .map(|n| n.info.id)
            .collect();
        if let Some(p) = holders.get(self.rng.random_range(0..holders.len().max(1))) {
            return FetchDecision::Peer(*p);
        }
        if view.neighbours.is_empty() || need.attempts > 0 {
            return FetchDecision::Origin;
        }
        // The engine caps the wait at the last moment the origin can still make the deadline.
        let slack = need.deadline.saturating_duration_since(need.since);
        let until = need.since + slack.mul_f64(self.wait_fraction(&need.fragment));
        if now >= until {
            FetchDecision::Origin
        } else {
            FetchDecision::WaitUntil(until)
        }
    }

    fn should_prefetch(
        &mut self,
        _now: Instant,
        _view: &LocalView<'_>,
        _fragment: &FragmentId,
    ) -> bool {
        false
    }
}
