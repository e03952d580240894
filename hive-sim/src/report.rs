//! Simulation reports: the QoE table and the JSON of DESIGN.md.

use std::fmt::Write;

use hive_core::time::Instant;
use hive_overlay::SwarmStats;
use serde::Serialize;

use crate::player::Player;
use crate::scenario::Scenario;

/// Totals gathered over every viewer of a run.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Bytes the origin served.
    pub origin_bytes: u64,
    /// Bytes handed to players.
    pub player_bytes: u64,
    /// Deadline misses.
    pub deadline_misses: u64,
    /// Bytes received from peers (verified).
    pub peer_bytes: u64,
    /// Requests to peers abandoned (timeout, reject, disconnect).
    pub peer_fallbacks: u64,
    /// Stall time, seconds.
    pub stall_s: f64,
    /// Watch time after start, seconds.
    pub watch_s: f64,
    /// Start-up times, seconds.
    pub startups: Vec<f64>,
    /// Viewers that never started.
    pub never_started: u64,
    /// Sum of played bitrates and count.
    pub bitrate_sum: f64,
    /// Fragments played.
    pub fragments: u64,
    /// Delay behind the live edge at the end, seconds, per viewer.
    pub live_delays: Vec<f64>,
    /// Origin fetches the policies chose.
    pub origin_by_policy: u64,
    /// Origin fetches forced by the time budget (past a fragment's last call).
    pub origin_last_call: u64,
    /// Origin fetches because the peer a policy named was unusable.
    pub origin_peer_unusable: u64,
    /// Seconds from each seek to the first fragment after it.
    pub seek_waits: Vec<f64>,
    /// Origin egress, bytes per one-second bucket since the start (empty: not recorded).
    pub origin_egress: Vec<f64>,
    /// Viewers joining (+) and leaving (−) per one-second bucket (empty: not recorded).
    pub active_delta: Vec<i64>,
}

/// The one-second bucket of `t`, growing `v` to hold it.
fn bucket<T: Default + Clone>(v: &mut Vec<T>, t: f64) -> &mut T {
    // Bounded: simulations last at most a day.
    let i = (t.max(0.0) as usize).min(10 * 86_400);
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

impl Metrics {
    /// Adds a viewer's figures (when it leaves or at the end).
    pub fn absorb(&mut self, s: &SwarmStats, p: &Player, now: Instant) {
        self.player_bytes += s.player_bytes;
        self.deadline_misses += s.deadline_misses;
        self.peer_bytes += s.peer_bytes;
        self.peer_fallbacks += s.peer_fallbacks;
        self.origin_by_policy += s.origin_by_policy;
        self.origin_last_call += s.origin_last_call;
        self.origin_peer_unusable += s.origin_peer_unusable;
        match p.started {
            Some(t) => {
                self.startups
                    .push(t.saturating_duration_since(p.joined).as_secs_f64());
                self.watch_s += now.saturating_duration_since(t).as_secs_f64();
                self.stall_s += p.stalled.as_secs_f64();
            }
            None => self.never_started += 1,
        }
        self.bitrate_sum += p.bitrate_sum;
        self.fragments += p.fragments;
        self.seek_waits.extend_from_slice(&p.seek_waits);
    }

    /// The origin sent `bytes` from `start` to `end`: spread evenly over the seconds it took.
    pub fn add_origin_egress(&mut self, start: Instant, end: Instant, bytes: u64) {
        let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
        if e - s < 1e-6 {
            *bucket(&mut self.origin_egress, s) += bytes as f64;
            return;
        }
        let mut t = s;
        while t < e {
            let next = (t.floor() + 1.0).min(e);
            *bucket(&mut self.origin_egress, t) += bytes as f64 * (next - t) / (e - s);
            t = next;
        }
    }

    /// A viewer joined (`+1`) or left (`-1`) at `t`.
    pub fn viewer_change(&mut self, t: Instant, delta: i64) {
        *bucket(&mut self.active_delta, t.as_secs_f64()) += delta;
    }
}

fn pct(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A per-second series over `duration_s` seconds, mapped by `f`; seconds past the recorded ones
/// take `after`. Empty if nothing was recorded.
fn series<T: Copy, U>(recorded: &[T], duration_s: f64, after: T, f: impl Fn(T) -> U) -> Vec<U> {
    if recorded.is_empty() {
        return Vec::new();
    }
    let n = (duration_s.ceil().max(1.0) as usize).min(10 * 86_400);
    (0..n)
        .map(|i| f(recorded.get(i).copied().unwrap_or(after)))
        .collect()
}

/// The JSON keys DESIGN.md gives `hive sim` and `hive demo` reports: an interface scripts rely
/// on. [`SimReport`] may add keys, never drop these.
pub const DESIGN_KEYS: [&str; 16] = [
    "scenario",
    "policy",
    "viewers",
    "duration_s",
    "offload",
    "rebuffer_ratio",
    "startup_s_p50",
    "startup_s_p95",
    "avg_bitrate_kbps",
    "live_delay_s_p50",
    "deadline_misses",
    "origin_bytes",
    "player_bytes",
    "max_link_copies",
    "wall_s",
    "peak_rss_mib",
];

/// Offload (DESIGN.md's measure): `1 − origin bytes / bytes delivered to players`; 0 before
/// any byte reached a player.
pub fn offload(origin_bytes: u64, player_bytes: u64) -> f64 {
    if player_bytes == 0 {
        0.0
    } else {
        1.0 - origin_bytes as f64 / player_bytes as f64
    }
}

/// One run's figures, with the keys of DESIGN.md.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SimReport {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Viewers at full join.
    pub viewers: usize,
    /// Simulated seconds.
    pub duration_s: f64,
    /// 1 − origin bytes / player bytes.
    pub offload: f64,
    /// Stall time / watch time.
    pub rebuffer_ratio: f64,
    /// Median start-up time, s.
    pub startup_s_p50: f64,
    /// 95th percentile start-up time, s.
    pub startup_s_p95: f64,
    /// Mean played bitrate, kbit/s.
    pub avg_bitrate_kbps: f64,
    /// Median delay behind the live edge, s.
    pub live_delay_s_p50: f64,
    /// Player requests answered after their deadline.
    pub deadline_misses: u64,
    /// Bytes the origin served.
    pub origin_bytes: u64,
    /// Bytes handed to players.
    pub player_bytes: u64,
    /// Bytes received from peers.
    pub peer_bytes: u64,
    /// Requests to peers abandoned for another source.
    pub peer_fallbacks: u64,
    /// Worst copies per fragment per bitrate over any VPN or gateway link.
    pub max_link_copies: f64,
    /// Copies per fragment on every VPN and gateway link, per bitrate that crossed it, worst
    /// first (empty on the public internet and in `hive demo`).
    pub link_copies: Vec<LinkCopies>,
    /// Why agents went to the origin: fetches the policy chose, fetches forced by the time
    /// budget (a fragment past its last call), and fetches because the named peer was unusable.
    pub origin_fetches: OriginFetches,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
    /// Seeks viewers made (on demand).
    pub seeks: u64,
    /// Median wait from a seek to the first fragment after it, s.
    pub seek_s_p50: f64,
    /// 95th percentile wait from a seek to the first fragment after it, s.
    pub seek_s_p95: f64,
    /// Origin egress in each second of the run, bit/s (empty when not recorded).
    pub origin_egress_bps: Vec<u64>,
    /// Viewers watching at the end of each second of the run (empty when not recorded).
    pub active_viewers: Vec<u32>,
}

/// The targets a run is held to (issue #6): offload, rebuffering, start-up within a second of a
/// CDN's, and (enterprise) copies per fragment over the VPN and gateway links.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Targets {
    /// Least offload.
    pub min_offload: f64,
    /// Most rebuffering ratio.
    pub max_rebuffer: f64,
    /// Most copies per fragment per bitrate over any VPN or gateway link (None: not checked).
    pub max_link_copies: Option<f64>,
}

impl Targets {
    /// The targets `r` misses, each as a sentence naming the figure; `cdn` is NoPeer on the same
    /// scenario with unconstrained links (the start-up reference). Empty: every target met.
    pub fn misses(&self, r: &SimReport, cdn: &SimReport) -> Vec<String> {
        let mut out = Vec::new();
        let name = &r.scenario;
        if r.offload < self.min_offload {
            out.push(format!(
                "{name}: offload {:.4} < {}",
                r.offload, self.min_offload
            ));
        }
        if r.rebuffer_ratio > self.max_rebuffer {
            out.push(format!(
                "{name}: rebuffering {:.5} > {}",
                r.rebuffer_ratio, self.max_rebuffer
            ));
        }
        if r.startup_s_p95 > cdn.startup_s_p95 + 1.0 {
            out.push(format!(
                "{name}: start-up p95 {:.2} s > unconstrained CDN {:.2} s + 1 s",
                r.startup_s_p95, cdn.startup_s_p95
            ));
        }
        if let Some(max) = self.max_link_copies {
            if r.max_link_copies > max {
                out.push(format!(
                    "{name}: {:.3} copies per fragment per bitrate on the worst VPN or gateway \
                     link > {max}",
                    r.max_link_copies
                ));
            }
        }
        out
    }
}

/// The copies of one bitrate's fragments that crossed one bottleneck link.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkCopies {
    /// The link ("gateway:down", "vpn:branch-3:down", ...).
    pub link: String,
    /// The bitrate, kbit/s.
    pub bitrate_kbps: u64,
    /// Distinct fragments of that bitrate that crossed it.
    pub fragments: u64,
    /// Bytes that crossed it / bytes of those distinct fragments (1.0: each crossed once).
    pub copies: f64,
}

/// Origin fetches by cause (counted when the fetch is decided; retries are not counted again).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct OriginFetches {
    /// The policy chose the origin.
    pub policy: u64,
    /// The time budget overrode the policy: the fragment was past its last call.
    pub last_call: u64,
    /// The peer the policy named was not connected or had already failed for this fragment.
    pub peer_unusable: u64,
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

impl SimReport {
    pub(crate) fn new(
        s: &Scenario,
        policy: &str,
        m: &Metrics,
        max_link_copies: f64,
        wall: std::time::Duration,
    ) -> Self {
        Self::from_metrics(
            &s.name,
            policy,
            s.viewers(),
            s.duration.as_secs_f64(),
            m,
            max_link_copies,
            wall,
        )
    }

    /// A report from gathered metrics: what `hive demo` uses with real agents and players, so
    /// the demo and the simulator print the same table and JSON.
    pub fn from_metrics(
        scenario: &str,
        policy: &str,
        viewers: usize,
        duration_s: f64,
        m: &Metrics,
        max_link_copies: f64,
        wall: std::time::Duration,
    ) -> Self {
        SimReport {
            scenario: scenario.to_string(),
            policy: policy.to_string(),
            viewers,
            duration_s,
            offload: offload(m.origin_bytes, m.player_bytes),
            rebuffer_ratio: if m.watch_s == 0.0 {
                0.0
            } else {
                m.stall_s / m.watch_s
            },
            startup_s_p50: pct(&m.startups, 0.5),
            startup_s_p95: pct(&m.startups, 0.95),
            avg_bitrate_kbps: if m.fragments == 0 {
                0.0
            } else {
                m.bitrate_sum / m.fragments as f64 / 1000.0
            },
            live_delay_s_p50: pct(&m.live_delays, 0.5),
            deadline_misses: m.deadline_misses,
            origin_bytes: m.origin_bytes,
            player_bytes: m.player_bytes,
            peer_bytes: m.peer_bytes,
            peer_fallbacks: m.peer_fallbacks,
            max_link_copies,
            link_copies: Vec::new(),
            origin_fetches: OriginFetches {
                policy: m.origin_by_policy,
                last_call: m.origin_last_call,
                peer_unusable: m.origin_peer_unusable,
            },
            wall_s: wall.as_secs_f64(),
            peak_rss_mib: peak_rss_mib(),
            seeks: m.seek_waits.len() as u64,
            seek_s_p50: pct(&m.seek_waits, 0.5),
            seek_s_p95: pct(&m.seek_waits, 0.95),
            origin_egress_bps: series(&m.origin_egress, duration_s, 0.0, |b| {
                (b * 8.0).round() as u64
            }),
            active_viewers: {
                let mut n = 0i64;
                let running: Vec<i64> = m
                    .active_delta
                    .iter()
                    .map(|d| {
                        n += d;
                        n
                    })
                    .collect();
                series(&running, duration_s, n, |n| {
                    u32::try_from(n.max(0)).unwrap_or(0)
                })
            },
        }
    }

    /// The table header.
    pub fn table_header() -> String {
        format!(
            "{:<24} {:<11} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7}\n",
            "scenario",
            "policy",
            "viewers",
            "offload",
            "rebuf",
            "start50",
            "start95",
            "kbit/s",
            "delay",
            "misses",
            "copies",
            "wall s"
        )
    }

    /// One row of the table.
    pub fn table_row(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<24} {:<11} {:>7} {:>7.2}% {:>7.3}% {:>7.2} {:>7.2} {:>8.0} {:>7.1} {:>7} {:>7.2} {:>7.2}",
            self.scenario,
            self.policy,
            self.viewers,
            self.offload * 100.0,
            self.rebuffer_ratio * 100.0,
            self.startup_s_p50,
            self.startup_s_p95,
            self.avg_bitrate_kbps,
            self.live_delay_s_p50,
            self.deadline_misses,
            self.max_link_copies,
            self.wall_s,
        );
        s
    }
}
