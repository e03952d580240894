//! The discrete-event loop: one swarm engine per viewer, a flow-level network, players, a
//! tracker, NAT and churn, all on virtual time from one seed.
//!
//! # Windows, on every core
//!
//! Virtual time advances in windows of [`WINDOW`] (10 ms: no message between two agents takes
//! less, each access link adds 5 ms). Within a window an agent's engine sees only its own events
//! (messages and transfers that reached it, its timers), and what it does reaches other agents at
//! the earliest at the window's end; so the agents of a window run in parallel (rayon, one thread
//! per core unless `RAYON_NUM_THREADS` says otherwise). Messages, dials and disconnects go from
//! chunk to chunk of agents and are queued, after their path's latency, when the next window
//! starts, also in parallel. A sequential step applies the rest in time order: transfers start
//! in the flow network at the instant they were sent, and the network's completions are
//! delivered. Two things wait for a window's edge: the tracker's and the
//! scenario's events (joins, leaves, announces, publications, seeks), handled between windows;
//! and the report to a sender that its bytes left, which reaches it at the end of the window in
//! which its transfer completed. A run's result depends on its seed only, not on the number of
//! threads (tested).
//!
//! Here are the run, its windows and the sequential step between them; beside them, the queued
//! events (`queue`), what agents send out of a window (`mail`), an agent's window through its
//! engine (`engine`), the viewers and their agents (`agent`), their joins, leaves and churn
//! (`join`), the tracker (`tracker`), paths and NAT (`paths`), transfers through the flow
//! network (`flows`), the publisher's fragments (`fragments`), on-demand viewers (`vod`) and the
//! report (`report`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};

use hive_core::overlay::SupernodePlan;
use hive_core::time::{Duration, Instant};
use hive_core::wire::Message;
use hive_core::{ContentId, Locality, PeerId};
use hive_overlay::PolicyKind;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::flownet::{FlowId, LinkId, Net};
use crate::payloads::Payloads;
use crate::report::{Metrics, SimReport};
use crate::scenario::{Scenario, latency};

mod agent;
mod engine;
mod flows;
mod fragments;
mod join;
mod mail;
mod paths;
mod queue;
mod report;
mod tracker;
mod vod;

use agent::{Agent, IdHash, Sched, Viewer};
use engine::Ctx;
use flows::{Copies, FlowTag};
use mail::{CHUNK, Effect, Mail, post};
use paths::{ACCESS_LATENCY, Paths};
use queue::{Ev, Local, Slab};
use tracker::TrackerIndex;

/// The window in which agents run independently (see the module docs): the least latency of a
/// message between two agents, so that nothing one agent sends within a window reaches another
/// within it.
const WINDOW: Duration = Duration::from_millis(10);
const _: () = assert!(2 * ACCESS_LATENCY.as_micros() >= WINDOW.as_micros());

/// One run of a scenario: the network, the viewers and their agents, the queued events, the
/// transfers, the tracker and the metrics.
struct Sim<'a> {
    s: &'a Scenario,
    policy: PolicyKind,
    /// Per site: where its agents sit, as they announce it to the tracker.
    site_localities: Vec<Locality>,
    /// Whether every site is in one AS (an enterprise): the tracker's AS tier is everyone.
    single_asn: bool,
    now: Instant,
    rng: ChaCha8Rng,
    net: Net,
    origin_link: LinkId,
    gw_down: Option<LinkId>,
    paths: Paths,
    viewers: Vec<Viewer>,
    /// Per viewer, the Data bytes it handed to the network that have not left its uplink (its
    /// transport's backlog: what a queue in its uplink can hold at most).
    up_backlog: Vec<u64>,
    agents: Vec<Agent>,
    /// Per agent: when it runs next, and whether it has effects to apply.
    sched: Vec<Sched>,
    /// Messages, dials and disconnects of a window on their way to their receivers' inboxes
    /// (see [`Sim::run_agents`]).
    mail: Mail,
    /// Orders the events queued for an agent at the same instant by when they were queued, as
    /// if one thread did everything in turn: each window's mail (queued in the next window,
    /// in parallel) is of the window's odd epoch, what the sequential step after it and the
    /// scenario's events then queue, of the even one after. The run starts at 0.
    epoch: u64,
    /// Viewer index by agent id (looked up for every message sent; never iterated).
    ids: HashMap<PeerId, usize, IdHash>,
    /// Whether agents are described with their site (see [`agent::peer_info`]).
    sites: bool,
    events: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    payloads: Slab,
    seq: u64,
    /// Transfers in the network (looked up by id; never iterated).
    flows: HashMap<FlowId, (FlowTag, Vec<LinkId>), foldhash::fast::FixedState>,
    /// Per (sender, receiver) connection: Data waiting for the transfer before it to end.
    pair_queues: HashMap<(usize, usize), VecDeque<Box<Message>>, foldhash::fast::FixedState>,
    /// Connections with a transfer in the network.
    pair_busy: HashSet<(usize, usize), foldhash::fast::FixedState>,
    content: ContentId,
    t0: Instant,
    latest: Option<u64>,
    /// The origin's payloads, shared with every agent's cache (one copy per fragment).
    origin_payloads: Arc<RwLock<Payloads>>,
    copies: BTreeMap<LinkId, Copies>,
    /// Origin flows in progress: when each started and its bytes (the egress series).
    origin_flows: HashMap<FlowId, (Instant, u64), foldhash::fast::FixedState>,
    metrics: Metrics,
    /// The tracker's index of the agents running, per site and in all.
    tracker: TrackerIndex,
    /// How many supernodes the tracker promotes per site (the default plan, the gateway site
    /// named).
    supernode_plan: SupernodePlan,
}

/// Runs `s` with every agent on `policy`, on one thread per core (or `RAYON_NUM_THREADS`).
pub fn run(s: &Scenario, policy: PolicyKind) -> SimReport {
    match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(|| run_here(s, policy)),
        // No pool of its own: rayon's global pool runs the agents.
        Err(_) => run_here(s, policy),
    }
}

/// Runs `s` with every agent on `policy`, on `threads` threads: the same result as [`run`]
/// (a run depends on its seed only), in more or less time.
///
/// # Errors
///
/// When the threads cannot be started.
pub fn run_on_threads(
    s: &Scenario,
    policy: PolicyKind,
    threads: usize,
) -> Result<SimReport, rayon::ThreadPoolBuildError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()?;
    Ok(pool.install(|| run_here(s, policy)))
}

/// Runs `step` on this thread while the pool's other threads spin: between two windows the
/// sequential step is short, and rayon's threads would otherwise fall asleep during it and need
/// waking (a system call each, every window) when the next window's agents are handed out.
/// Their spin yields now and then (every 256 spins), for machines with fewer cores than threads.
fn keeping_threads_awake(step: impl FnOnce() + Send) {
    /// Ends the spin however `step` ends: a panic in it must fail the run, not leave the
    /// spinners (which the scope waits for) spinning forever.
    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Release);
        }
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let others = rayon::current_num_threads().saturating_sub(1);
    rayon::scope(|scope| {
        for _ in 0..others {
            scope.spawn(|_| {
                let mut spins = 0u32;
                while !done.load(std::sync::atomic::Ordering::Acquire) {
                    spins = spins.wrapping_add(1);
                    if spins % 256 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let _done = Done(&done);
        step();
    });
}

/// Runs on the current thread, and on the rayon pool it belongs to (if any) for the agents.
fn run_here(s: &Scenario, policy: PolicyKind) -> SimReport {
    let wall = std::time::Instant::now();
    let mut sim = Sim::new(s, policy);
    sim.main_loop();
    sim.report(wall.elapsed())
}

impl<'a> Sim<'a> {
    fn new(s: &'a Scenario, policy: PolicyKind) -> Self {
        let mut net = Net::new();
        let origin_link = net.add_link("origin", None, latency::ORIGIN, false);
        let core_link = net.add_link("internet", None, latency::INTERNET, false);
        // Traffic from the internet into the gateway site: the link that bounds origin fetches.
        let gw_down = s
            .gateway_bps
            .map(|b| net.add_link("gateway:down", Some(b), latency::GATEWAY, true));
        let vpn = s
            .sites
            .iter()
            .map(|site| {
                site.vpn_bps.map(|b| {
                    (
                        net.add_link(
                            format!("vpn:{}:down", site.name),
                            Some(b),
                            latency::VPN,
                            true,
                        ),
                        net.add_link(format!("vpn:{}:up", site.name), Some(b), latency::VPN, true),
                    )
                })
            })
            .collect::<Vec<Option<(LinkId, LinkId)>>>();
        let core_latency = net.latency(&[core_link]);
        let vpn_latency = vpn
            .iter()
            .map(|l| l.map(|(down, up)| (net.latency(&[down]), net.latency(&[up]))))
            .collect();
        let sites = s.enterprise() || policy == PolicyKind::PrivateHierarchy;
        let site_localities = s
            .sites
            .iter()
            .map(|site| Locality {
                asn: Some(site.asn),
                site: sites.then(|| site.name.clone()),
                country: None,
            })
            .collect();
        let single_asn = s.sites.windows(2).all(|w| w[0].asn == w[1].asn);
        let mut sim = Sim {
            s,
            policy,
            site_localities,
            single_asn,
            now: Instant::ZERO,
            rng: ChaCha8Rng::seed_from_u64(s.seed),
            net,
            origin_link,
            gw_down,
            paths: Paths {
                enterprise: s.enterprise(),
                core_link,
                vpn,
                core_latency,
                vpn_latency,
            },
            viewers: Vec::new(),
            up_backlog: Vec::new(),
            agents: Vec::new(),
            sched: Vec::new(),
            mail: Mail::default(),
            epoch: 0,
            ids: HashMap::default(),
            sites,
            events: BinaryHeap::new(),
            payloads: Slab::default(),
            seq: 0,
            flows: HashMap::default(),
            pair_queues: HashMap::default(),
            pair_busy: HashSet::default(),
            content: ContentId::derive(&format!("sim/{}", s.name)),
            t0: Instant::ZERO,
            latest: None,
            origin_payloads: Arc::new(RwLock::new(Payloads::default())),
            copies: BTreeMap::new(),
            origin_flows: HashMap::default(),
            metrics: Metrics::default(),
            tracker: TrackerIndex::default(),
            supernode_plan: SupernodePlan {
                gateway_site: s.enterprise().then(|| s.sites[0].name.clone()),
                ..SupernodePlan::default()
            },
        };
        sim.plan();
        sim
    }

    fn at(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        let slot = self.payloads.put(ev);
        self.events.push(Reverse((t, self.seq, slot)));
    }

    /// Queues `ev` for agent `to` at `t`.
    fn push(&mut self, to: usize, t: Instant, ev: Local) {
        self.agents[to].push(self.epoch, t, ev);
        let wake = &mut self.sched[to].wake;
        *wake = (*wake).min(t);
    }

    /// What agents read while they run, and the agents (disjoint borrows of `self`).
    fn split(&mut self) -> (Ctx<'_>, &mut Vec<Agent>) {
        let ctx = Ctx {
            s: self.s,
            paths: &self.paths,
            viewers: &self.viewers,
            ids: &self.ids,
            sites: self.sites,
            content: self.content,
            latest: self.latest,
            payloads: &self.origin_payloads,
            net: &self.net,
            up_backlog: &self.up_backlog,
        };
        (ctx, &mut self.agents)
    }

    /// Runs `f` on agent `v` between windows (its effects are applied after the window).
    fn with_agent(&mut self, v: usize, f: impl FnOnce(&Ctx<'_>, &mut Agent, Instant)) {
        let now = self.now;
        let (ctx, agents) = self.split();
        f(&ctx, &mut agents[v], now);
        self.sched[v] = Sched {
            wake: self.agents[v].next_wake(),
            out: !self.agents[v].out.is_empty() || !self.agents[v].mail.is_empty(),
        };
    }

    fn main_loop(&mut self) {
        let stop = Instant::ZERO + self.s.duration;
        let mut t = Instant::ZERO;
        self.now = t;
        self.scenario_events(t);
        while t <= stop {
            let end = (t + WINDOW).min(stop + Duration::from_micros(1));
            self.run_agents(end);
            t += WINDOW;
            // The sequential step between two windows: this window's effects, the next one's
            // scenario events.
            keeping_threads_awake(|| {
                // This window's mail goes out (it is queued when the next window starts: no
                // message between agents arrives sooner), then what this step queues.
                self.mail.hand_over(self.epoch + 1);
                self.epoch += 2;
                self.apply_effects(end);
                if t <= stop {
                    self.now = t;
                    self.scenario_events(t);
                }
            });
        }
        self.now = stop;
    }

    /// The scenario's and the tracker's events due by `t`, at `t`.
    fn scenario_events(&mut self, t: Instant) {
        while let Some(&Reverse((at, _, slot))) = self.events.peek() {
            if at > t {
                break;
            }
            self.events.pop();
            if let Some(ev) = self.payloads.take(slot) {
                self.handle(ev);
            }
        }
    }

    /// Every agent with an event or a timer before `end` runs up to `end`, in parallel, in
    /// chunks. A chunk first queues the mail (messages, dials, disconnects) the last window
    /// sent its agents, from every sending chunk in order: so an agent's inbox gets them by
    /// sender, then in the order made, as if one thread had posted them agent after agent.
    /// Then it runs its agents that are due, and sorts their mail (and any made between
    /// windows) by receiving chunk.
    fn run_agents(&mut self, end: Instant) {
        // Chunks of agents are handed out (work-stealing), each scanned by a plain loop: most
        // agents of a window have nothing due.
        let mut sched = std::mem::take(&mut self.sched);
        let mut mail = std::mem::take(&mut self.mail);
        mail.fit(self.agents.len().div_ceil(CHUNK));
        let pending = mail.pending.take();
        let (ctx, agents) = self.split();
        agents
            .par_chunks_mut(CHUNK)
            .zip(sched.par_chunks_mut(CHUNK))
            .zip(mail.out.par_iter_mut().zip(mail.into.par_iter_mut()))
            .zip(mail.effects.par_iter_mut())
            .enumerate()
            .for_each(|(c, (((agents, sched), (out, into)), effects))| {
                if let Some(epoch) = pending {
                    for cell in into.iter_mut() {
                        for r in cell.drain(..) {
                            let i = r.to - c * CHUNK;
                            if let (Some(a), Some(sc)) = (agents.get_mut(i), sched.get_mut(i)) {
                                a.push(epoch, r.at, r.ev);
                                sc.wake = sc.wake.min(r.at);
                            }
                        }
                    }
                }
                for (i, (a, sc)) in agents.iter_mut().zip(sched.iter_mut()).enumerate() {
                    let due = sc.wake < end;
                    if due {
                        ctx.run_window(c * CHUNK + i, a, end);
                        sc.wake = a.next_wake();
                    }
                    if due || sc.out {
                        post(a, out, end);
                        sc.out = !a.out.is_empty();
                        if sc.out {
                            effects.push(c * CHUNK + i);
                        }
                    }
                }
            });
        self.sched = sched;
        self.mail = mail;
    }

    /// Applies the window's effects (messages, dials and disconnects have gone to their
    /// receivers' inboxes already, in [`Sim::run_agents`]): transfers and origin fetches start
    /// in time order (at equal times, by agent), each after the network's completions up to
    /// its time; then the completions up to `end`.
    fn apply_effects(&mut self, end: Instant) {
        let mut timed: Vec<(Instant, usize, Effect)> = Vec::new();
        // The agents with effects, in order (as the window's chunks listed them, once each).
        let mut lists = std::mem::take(&mut self.mail.effects);
        for v in lists.iter_mut().flat_map(|l| l.drain(..)) {
            self.sched[v].out = false;
            let a = &mut self.agents[v];
            timed.extend(a.out.drain(..).map(|(t, e)| (t, v, e)));
        }
        self.mail.effects = lists;
        timed.sort_by_key(|e| e.0);
        for (t, v, e) in timed {
            self.complete(t, true, end);
            self.now = self.now.max(t);
            self.apply(v, e);
        }
        self.complete(end, false, end);
    }

    fn apply(&mut self, v: usize, e: Effect) {
        match e {
            Effect::Data { to, msg } => self.send_data(v, to, msg),
            Effect::FetchOrigin { id } => self.fetch_origin(v, id),
            Effect::Leave { at } => self.at(
                at,
                Ev::Leave {
                    v,
                    crash: false,
                    replace: false,
                },
            ),
        }
    }

    /// When viewer `v`'s agent and player learn of a live fragment the origin publishes at
    /// `now`: neither is told. The agent refreshes its live playlists every
    /// [`hive_overlay::live_refresh_interval`], the player its own every half fragment while it
    /// waits for the next one (as `hive lab`'s and `hive demo`'s players do), each on a grid
    /// of its own phase; the answer comes back after a round trip to the origin. The agent
    /// learns at its refresh or its player's (which passes through it), whichever is first.
    /// (Modelling choice: a player polls on its grid whether or not it waits; a real one that
    /// does not wait polls later, when it does.)
    fn learns_at(&self, v: usize, now: Instant) -> (Instant, Instant) {
        let next = |period: Duration, salt: u64| {
            let period = period.as_secs_f64().max(1e-3);
            let h = (v as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let phase = (h >> 11) as f64 / (1u64 << 53) as f64 * period;
            let t = now.saturating_duration_since(Instant::ZERO).as_secs_f64();
            let n = ((t - phase) / period).ceil().max(0.0);
            Instant::ZERO + Duration::from_secs_f64(phase + n * period)
        };
        let rtt = self.net.latency(&self.path_origin(v)) * 2;
        let agent = next(hive_overlay::live_refresh_interval(self.s.fragment), 0xa9e);
        let player = next(self.s.fragment / 2, 0x91a) + rtt;
        ((agent + rtt).min(player).max(now), player.max(now))
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Join(v) => self.join(v),
            Ev::Leave { v, crash, replace } => self.leave(v, crash, replace),
            Ev::Seek(v) => self.seek(v),
            Ev::Tick => self.vod_tick(),
            Ev::Publish(k) => {
                self.latest = Some(k);
                for i in 0..self.tracker.all.len() {
                    let v = self.tracker.all[i];
                    let (agent, player) = self.learns_at(v, now);
                    self.push(v, agent, Local::Published(k));
                    self.push(v, player, Local::PlayerSees(k));
                }
            }
            Ev::Announce(v) => {
                if self.viewers[v].running {
                    let candidates = self.tracker_sample(v);
                    self.push(v, now, Local::Candidates(candidates));
                    let next = self.next_announce(v);
                    self.at(now + next, Ev::Announce(v));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents and players learn a published fragment on their own refresh grids, never before
    /// it is published and within one refresh interval and a round trip after it; the agent no
    /// later than its player (whose refresh passes through it); phases differ between viewers.
    #[test]
    fn fragments_are_learnt_on_each_viewers_refresh_grid() {
        let s = crate::scenario::scaled(
            crate::scenario::named("corporate-130", 1).expect("a named scenario"),
            0.1,
            Duration::from_secs(60),
        );
        let sim = Sim::new(&s, PolicyKind::PublicMesh);
        assert!(
            sim.viewers.len() > 4,
            "viewers are placed when the run is made"
        );
        let agent_every = hive_overlay::live_refresh_interval(s.fragment);
        let player_every = s.fragment / 2;
        let mut agent_delays = Vec::new();
        for v in 0..sim.viewers.len() {
            let rtt = sim.net.latency(&sim.path_origin(v)) * 2;
            for k in 0..20u32 {
                let now = Instant::ZERO + s.fragment * (k + 3);
                let (agent, player) = sim.learns_at(v, now);
                assert!(agent >= now && player >= now);
                assert!(
                    agent <= player,
                    "the player's refresh passes through its agent"
                );
                assert!(agent - now <= agent_every + rtt + Duration::from_micros(1));
                assert!(player - now <= player_every + rtt + Duration::from_micros(1));
                agent_delays.push(agent - now);
            }
        }
        let (min, max) = (
            agent_delays.iter().min().copied().unwrap_or_default(),
            agent_delays.iter().max().copied().unwrap_or_default(),
        );
        assert!(
            max - min > agent_every / 4,
            "viewers refresh on phases of their own: {min:?}..{max:?}"
        );
    }
}
