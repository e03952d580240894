//! On-demand viewers: where they start, when they seek, when they leave.
//!
//! The whole title exists from the start (no publication): players request fragments by their
//! manifest entries, agents keep what they fetched in a byte-bounded
//! [`VodCache`](hive_core::cache::VodCache) and announce it, as for live.
//!
//! Two effects show even without peers (`NoPeer`): a viewer seeking back to what it already
//! watched is served by its own cache (offload above zero: 13.6% over vod-500's full 90 minutes
//! at scale 0.1); and when a viewer seeks, its request in flight is withdrawn (a peer request is
//! cancelled), but a fetch from the origin already under way still completes (and is cached) —
//! origin bytes no player asked for.
//! Peer bytes (`peer_bytes`) separate what peers served from both.

use hive_core::time::Duration;
use hive_core::{FragmentId, TrackId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Ev, Sim};

/// An exponential draw of mean `mean` (zero mean: zero).
fn exponential(rng: &mut ChaCha8Rng, mean: Duration) -> Duration {
    let u: f64 = rng.random();
    // u is in [0, 1): 1 − u is in (0, 1], its logarithm finite.
    Duration::from_secs_f64(-mean.as_secs_f64() * (1.0 - u).ln())
}

impl Sim<'_> {
    /// The fragment a joining viewer starts at: the title's start, or a random position.
    pub(super) fn vod_start(&mut self) -> u64 {
        let (Some(vod), Some(n)) = (&self.s.vod, self.s.vod_fragments()) else {
            return 0;
        };
        if self.rng.random_bool(vod.start_at_zero.clamp(0.0, 1.0)) {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// A viewer joined: its first seek and its departure after a random watch time.
    pub(super) fn vod_joined(&mut self, v: usize) {
        let Some(vod) = &self.s.vod else { return };
        let (seek_every, watch_mean) = (vod.seek_every, vod.watch_mean);
        if !seek_every.is_zero() {
            let at = self.now + exponential(&mut self.rng, seek_every);
            self.at(at, Ev::Seek(v));
        }
        let at = self.now + exponential(&mut self.rng, watch_mean);
        self.at(
            at,
            Ev::Leave {
                v,
                crash: false,
                replace: false,
            },
        );
    }

    /// The viewer jumps to a random fragment, then plans its next seek.
    pub(super) fn seek(&mut self, v: usize) {
        let (Some(vod), Some(n)) = (&self.s.vod, self.s.vod_fragments()) else {
            return;
        };
        let seek_every = vod.seek_every;
        let w = &self.agents[v];
        if w.swarm.is_none() || w.ending || w.player.gone {
            return;
        }
        let to = self.rng.random_range(0..n);
        let content = self.content;
        self.with_agent(v, |ctx, a, now| {
            // The request in flight is abandoned: the agent is told, and cancels its transfer.
            if let Some((seq, track, _)) = a.player.inflight {
                let id = FragmentId::new(content, TrackId(track as u16), seq);
                if let Some(s) = a.swarm.as_mut() {
                    s.handle_player_cancel(now, id);
                }
                ctx.drain(v, a, now);
            }
            a.player.seek(now, to);
            ctx.maybe_request(v, a, now);
        });
        let at = self.now + exponential(&mut self.rng, seek_every);
        self.at(at, Ev::Seek(v));
    }

    /// Every fragment duration: players whose buffer has room again ask for more.
    pub(super) fn vod_tick(&mut self) {
        for v in 0..self.viewers.len() {
            if self.agents[v].swarm.is_some() {
                self.with_agent(v, |ctx, a, now| ctx.maybe_request(v, a, now));
            }
        }
        self.at(self.now + self.s.fragment, Ev::Tick);
    }
}
